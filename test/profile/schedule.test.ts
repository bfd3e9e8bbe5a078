import { hotContributors, HOT_SHARE_OF_CAPACITY } from '../../plugin/profile/hot';
import type { types } from 'mediasoup';
import { audioProducerAsks, consumerPeriodMs, nextRoundDelayMs, RateAverage, rtpSample, takeDue } from '../../plugin/profile/schedule';
import { nextDueMs } from '../../plugin/util/stagger';
import type { WorkerPrediction } from '../../plugin/predict/types';

describe('schedule helpers (pure)', () => {
	test('rtpSample sums counters over the streams of an answer, keeps each layer (its rid only when it has one), the worst loss, jitter and score, the longest RTT', () => {
		const stream = (over: Partial<types.RtpStreamSendStats>): types.RtpStreamSendStats =>
			({ type: 'outbound-rtp', timestamp: 0, ssrc: 1, kind: 'video', mimeType: 'video/VP8', packetsLost: 0, fractionLost: 0, packetsDiscarded: 0, packetsRetransmitted: 0, packetsRepaired: 0, nackCount: 0, nackPacketCount: 0, pliCount: 0, firCount: 0, score: 10, packetCount: 0, byteCount: 0, bitrate: 0, ...over }) as types.RtpStreamSendStats;
		const sample = rtpSample(5000, [
			stream({ ssrc: 11, rid: 'r0', byteCount: 1000, packetCount: 10, fractionLost: 3, nackCount: 1, pliCount: 2, firCount: 0, score: 9, roundTripTime: 20 }),
			stream({ ssrc: 12, byteCount: 4000, packetCount: 30, fractionLost: 7, nackCount: 2, pliCount: 1, firCount: 1, score: 7, roundTripTime: 35 }),
		]);
		expect(sample).toEqual({
			atMs: 5000,
			byteCount: 5000,
			packetCount: 40,
			layers: [
				{ ssrc: 11, rid: 'r0', byteCount: 1000, packetCount: 10 },
				{ ssrc: 12, byteCount: 4000, packetCount: 30 },
			],
			fractionLost: 7,
			jitter: 0,
			nackCount: 3,
			pliCount: 3,
			firCount: 1,
			score: 7,
			roundTripTimeMs: 35,
		});
		expect('rid' in sample.layers[1]!).toBe(false);
		const empty = rtpSample(1, []);
		expect('score' in empty || 'roundTripTimeMs' in empty).toBe(false);
	});

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

describe('RateAverage (the rate-change trigger)', () => {
	const run = (avg: RateAverage, from: number, to: number, every: number, bps: (t: number) => number, slow: (t: number) => boolean): number[] => {
		const fired: number[] = [];
		for (let t = from; t <= to; t += every) if (avg.update(t, bps(t), slow(t), 5000)) fired.push(t);
		return fired;
	};

	test('a steady stream never triggers, from its first rate on (no average started at 0)', () => {
		const avg = new RateAverage();
		// The join's fast tier (every second for 20 s, rates swinging ±20 % with keyframes), then slow.
		expect(run(avg, 0, 20_000, 1000, (t) => 800_000 * (t % 4000 === 0 ? 1.2 : 0.93), () => false)).toEqual([]);
		expect(run(avg, 25_000, 300_000, 5000, (t) => 800_000 * (1 + 0.05 * Math.sin(t / 7000)), () => true)).toEqual([]);
	});

	test('a step of more than 15 % on slow-tier rates triggers at its second rate; a small one does not', () => {
		const avg = new RateAverage();
		run(avg, 0, 100_000, 5000, () => 1_000_000, () => true);
		expect(run(avg, 105_000, 110_000, 5000, () => 1_100_000, () => true)).toEqual([]);
		// (Rates stay slow here; a real trigger puts the stream in the fast tier, whose rates are not judged.)
		expect(run(avg, 115_000, 140_000, 5000, () => 1_400_000, () => true)[0]).toBe(120_000);
		// Down again: another change, from its second rate.
		expect(run(avg, 145_000, 170_000, 5000, () => 700_000, () => true)[0]).toBe(150_000);
	});

	test('one rate off the average, or rates off on alternate sides, is wobble: no trigger', () => {
		const avg = new RateAverage();
		run(avg, 0, 100_000, 5000, () => 1_000_000, () => true);
		// A sender stalled across a boundary: one interval short of bytes, the next with them.
		expect(run(avg, 105_000, 200_000, 5000, (t) => (t === 105_000 ? 700_000 : t === 110_000 ? 1_300_000 : 1_000_000), () => true)).toEqual([]);
		// Keyframes falling one then two to a 5 s interval, for minutes.
		expect(run(avg, 205_000, 500_000, 5000, (t) => (t % 10_000 ? 800_000 : 1_250_000), () => true)).toEqual([]);
	});

	test('the first slow-tier rate after a fast period is not judged', () => {
		const avg = new RateAverage();
		run(avg, 0, 60_000, 5000, () => 1_000_000, () => true);
		// Fast for 10 s, then a slow rate far off: the first one straddles the fast period.
		run(avg, 61_000, 70_000, 1000, () => 1_000_000, () => false);
		expect(run(avg, 75_000, 75_000, 5000, () => 2_000_000, () => true)).toEqual([]);
		expect(run(avg, 80_000, 85_000, 5000, () => 2_000_000, () => true)).toEqual([85_000]);
	});
});

describe('audioProducerAsks (audio producers refreshed from their consumers\' answers)', () => {
	const base = { periodMs: 5000, consumerEveryMs: 11_000, consumerAnswersNow: false };

	test('not when one of its consumers asks in the same round, even with no answer before', () => {
		expect(audioProducerAsks({ ...base, nowMs: 10_000, fast: false, consumerSampledAtMs: undefined, consumerAnswersNow: true })).toBe(false);
		expect(audioProducerAsks({ ...base, nowMs: 10_000, fast: true, consumerSampledAtMs: undefined, consumerAnswersNow: true })).toBe(false);
	});

	test('with no consumer answer it asks every period; the slow tier waits a consumer period for one, the fast tier its own', () => {
		expect(audioProducerAsks({ ...base, nowMs: 10_000, fast: false, consumerSampledAtMs: undefined })).toBe(true);
		// 7 s since a consumer answered: within the slow tier's cap (11 s), past the fast tier's period (1 s).
		expect(audioProducerAsks({ ...base, nowMs: 10_000, fast: false, consumerSampledAtMs: 3000 })).toBe(false);
		expect(audioProducerAsks({ ...base, nowMs: 10_000, periodMs: 1000, fast: true, consumerSampledAtMs: 3000 })).toBe(true);
		// The staleness cap: 11 s without a consumer's answer.
		expect(audioProducerAsks({ ...base, nowMs: 14_000, fast: false, consumerSampledAtMs: 3000 })).toBe(true);
	});

	test('three consumers spread over their 10 s period keep a slow-tier audio producer from asking at all, whatever its phase', () => {
		// Rounds of 1 s; the producer is due every 5 s; each consumer asks every 10 s from a random phase.
		for (let trial = 0; trial < 50; trial++) {
			const phases = [0, 1, 2].map(() => Math.round(nextDueMs(0, 10_000, true) / 1000) * 1000);
			const producerPhase = Math.round(nextDueMs(0, 5000, true) / 1000) * 1000;
			let sampledAt: number | undefined;
			let asks = 0;
			for (let t = 20_000; t < 620_000; t += 1000) {
				const consumerNow = phases.some((p) => (t - p) % 10_000 === 0);
				const due = (t - producerPhase) % 5000 === 0;
				// Counted once a consumer has answered (before, it asks, as a producer with no consumers does).
				if (due && audioProducerAsks({ ...base, nowMs: t, fast: false, consumerSampledAtMs: sampledAt, consumerAnswersNow: consumerNow }) && sampledAt !== undefined) asks++;
				if (consumerNow) sampledAt = t;
			}
			expect(asks).toBe(0);
		}
	});
});

describe('consumerPeriodMs (a consumer\'s own rounds)', () => {
	const base = { baseMs: 10_000, capMs: 30_000, audio: false };
	test('a steady video consumer asks half as often after each steady answer, down to the cap', () => {
		let period: number | undefined;
		const periods: number[] = [];
		for (let i = 0; i < 4; i++) periods.push((period = consumerPeriodMs({ ...base, previousMs: period, steady: true })));
		expect(periods).toEqual([20_000, 30_000, 30_000, 30_000]);
	});

	test('an answer that is not steady, or an audio consumer, keeps the base period', () => {
		expect(consumerPeriodMs({ ...base, previousMs: 30_000, steady: false })).toBe(10_000);
		expect(consumerPeriodMs({ ...base, audio: true, previousMs: undefined, steady: true })).toBe(10_000);
		// A cap below the base (transports asked more often than consumers) never shortens the base.
		expect(consumerPeriodMs({ ...base, capMs: 5000, previousMs: undefined, steady: true })).toBe(10_000);
	});
});

describe('nextRoundDelayMs', () => {
	test('consumers that joined together spread their periodic rounds over the period; afterwards each keeps its period', () => {
		const delays = Array.from({ length: 200 }, () => nextRoundDelayMs(10_000, true));
		expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
		expect(Math.max(...delays)).toBeLessThan(10_000);
		// 200 draws: every 2.5 s quarter of the period gets some.
		for (let q = 0; q < 4; q++) expect(delays.some((d) => d >= q * 2500 && d < (q + 1) * 2500)).toBe(true);
		expect(nextRoundDelayMs(10_000, false)).toBe(10_000);
	});
});
