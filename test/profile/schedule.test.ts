import { hotContributors, HOT_SHARE_OF_CAPACITY } from '../../plugin/profile/hot';
import { slopePerS, takeDue } from '../../plugin/profile/schedule';
import type { WorkerPrediction } from '../../plugin/predict/types';

describe('schedule helpers (pure)', () => {
	test('takeDue returns each due item once, skips entries left behind by a reschedule, and keeps later buckets', () => {
		const a = { id: 'a', due: 3 };
		const b = { id: 'b', due: 5 };
		const c = { id: 'c', due: 2 };
		const buckets = new Map<number, Array<typeof a>>([
			[2, [c]],
			// a was first due in 4, then moved to 3 by a trigger: its entry in 4 is stale.
			[3, [a]],
			[4, [a]],
			[5, [b]],
		]);
		const taken = takeDue(buckets, 4, (x) => x.due, (x) => (x.due = -1));
		expect(taken.map((x) => x.id).sort()).toEqual(['a', 'c']);
		expect([...buckets.keys()]).toEqual([5]);
		expect(a.due).toBe(-1);
		expect(takeDue(buckets, 4, (x) => x.due, () => undefined)).toEqual([]);
		expect(takeDue(buckets, 9, (x) => x.due, () => undefined)).toEqual([b]);
	});

	test('slopePerS is the least-squares CPU slope in percent per second', () => {
		expect(slopePerS([0, 1000, 2000, 3000, 4000].map((ts, i) => ({ ts, pct: 10 + 2 * i })))).toBeCloseTo(2, 9);
		expect(slopePerS([0, 1000, 2000].map((ts) => ({ ts, pct: 40 })))).toBe(0);
		// Noise around a level is no rise.
		expect(Math.abs(slopePerS([0, 1000, 2000, 3000, 4000].map((ts, i) => ({ ts, pct: 30 + (i % 2 ? 1 : -1) })))) < 0.5).toBe(true);
	});
});

function prediction(p95: number, costs: Record<string, number>): WorkerPrediction {
	const zero = { cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 };
	const estimate = { mean: p95 * 0.9, p95 };
	const horizon = {
		base: zero,
		total: { cpuPct: estimate, rssBytes: { mean: 0, p95: 0 }, ingressBps: { mean: 0, p95: 0 }, egressBps: { mean: 0, p95: 0 } },
	};
	return {
		workerId: 'w',
		predictor: 'test',
		horizons: { 5: horizon, 15: horizon, 30: horizon },
		streams: Object.entries(costs).map(([streamId, cpuPct]) => ({
			streamId,
			transportId: 't',
			cost: { 5: { ...zero, cpuPct }, 15: { ...zero, cpuPct }, 30: { ...zero, cpuPct } },
		})),
	} as WorkerPrediction;
}

describe('hotContributors', () => {
	test('a worker below the hot share has none', () => {
		expect(hotContributors(prediction(HOT_SHARE_OF_CAPACITY * 100 - 1, { a: 30, b: 20 }), 100)).toEqual([]);
	});

	test('on a hot worker, the largest contributors that make half of its attributed CPU', () => {
		// 40 + 25 = 65 of 100 ≥ 50 after b; c, d, e are not needed.
		expect(hotContributors(prediction(95, { c: 15, a: 40, d: 10, b: 25, e: 10 }), 100)).toEqual(['a', 'b']);
		// Capacity scales the line: 50 % of a core is hot when capacity is 60.
		expect(hotContributors(prediction(50, { a: 10, b: 9 }), 60)).toEqual(['a']);
	});
});
