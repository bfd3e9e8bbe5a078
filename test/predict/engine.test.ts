import { PageHinkley, PredictionEngine, type DriftEvent } from '../../plugin/predict/engine';
import { KnnPredictor } from '../../plugin/predict/knn';
import { attributionResidual, HORIZONS_S, type ResourceVector, type WorkerSnapshot } from '../../plugin/predict/types';
import { rng, videoRoom } from './synthetic';

describe('Page-Hinkley', () => {
	test('stays quiet on a stationary error and fires soon after its mean rises', () => {
		const random = rng(42);
		const ph = new PageHinkley(0.5, 20);
		for (let i = 0; i < 1000; i++) expect(ph.update(1 + random())).toBe(false);
		let firedAfter = -1;
		for (let i = 0; i < 100 && firedAfter < 0; i++) if (ph.update(4 + random())) firedAfter = i + 1;
		// Each shifted value adds ≈ 3 − δ = 2.5 to the statistic: λ = 20 is crossed within ~9.
		expect(firedAfter).toBeGreaterThan(0);
		expect(firedAfter).toBeLessThanOrEqual(10);
		expect(ph.lastAlarm).toBeGreaterThan(20);
		expect(ph.statistic).toBe(0);
	});

	test('ignores non-finite values and rejects bad parameters', () => {
		const ph = new PageHinkley(0, 1);
		expect(ph.update(Number.NaN)).toBe(false);
		expect(() => new PageHinkley(-1, 1)).toThrow(RangeError);
		expect(() => new PageHinkley(0, 0)).toThrow(RangeError);
	});
});

describe('PredictionEngine with the kNN fallback', () => {
	const T0 = 1_700_000_000_000;
	const streams = videoRoom('v', 3);
	const snapshotAt = (s: number): WorkerSnapshot => ({ workerId: 'w1', now: T0 + s * 1000, samples: [], streams, events: [] });

	test('learns a worker’s constant offset online and keeps attribution exact', () => {
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]), biasAlpha: 0.2 });
		const raw = new KnnPredictor([]).predict([snapshotAt(0)])[0]!;
		const actual = (h: 5 | 15 | 30): ResourceVector => {
			const t = raw.horizons[h].total;
			return { cpuPct: t.cpuPct.mean + 7, rssBytes: t.rssBytes.mean + 5e6, ingressBps: t.ingressBps.mean, egressBps: t.egressBps.mean };
		};
		let matched = 0;
		for (let s = 0; s < 120; s++) {
			engine.predict([snapshotAt(s)]);
			matched += engine.observe({ workerId: 'w1', ts: T0 + s * 1000, actual: actual(5) }).matchedHorizons.filter((h) => h === 5).length;
		}
		expect(matched).toBe(115);
		const [corrected] = engine.predict([snapshotAt(120)]);
		expect(corrected!.horizons[5].total.cpuPct.mean).toBeCloseTo(raw.horizons[5].total.cpuPct.mean + 7, 6);
		expect(corrected!.horizons[5].total.rssBytes.mean).toBeCloseTo(raw.horizons[5].total.rssBytes.mean + 5e6, 0);
		expect(corrected!.horizons[5].base.cpuPct).toBeCloseTo(raw.horizons[5].base.cpuPct + 7, 6);
		expect(attributionResidual(corrected!)).toBeLessThan(1e-12);
		expect(engine.bias('w1')![5].cpuPct).toBeCloseTo(7, 6);
		// Other workers are untouched.
		expect(engine.bias('w2')).toBeUndefined();
	});

	test('an observation scores each prediction at most once per horizon', () => {
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]), matchToleranceMs: 1000 });
		engine.predict([snapshotAt(0)]);
		const actual = { cpuPct: 1, rssBytes: 1, ingressBps: 0, egressBps: 0 };
		expect(engine.observe({ workerId: 'w1', ts: T0 + 4500, actual }).matchedHorizons).toEqual([5]);
		expect(engine.observe({ workerId: 'w1', ts: T0 + 5000, actual }).matchedHorizons).toEqual([]);
		expect(engine.observe({ workerId: 'w1', ts: T0 + 15_000, actual }).matchedHorizons).toEqual([15]);
	});

	test('reports drift when the live CPU error jumps', () => {
		const events: DriftEvent[] = [];
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]), biasAlpha: 0.01, driftLambda: 30, onDrift: (e) => events.push(e) });
		const raw = new KnnPredictor([]).predict([snapshotAt(0)])[0]!.horizons[15].total;
		const at = (s: number, offset: number) => ({
			workerId: 'w1',
			ts: T0 + s * 1000,
			actual: { cpuPct: raw.cpuPct.mean + offset, rssBytes: raw.rssBytes.mean, ingressBps: raw.ingressBps.mean, egressBps: raw.egressBps.mean },
		});
		let firstDrift = -1;
		for (let s = 0; s < 200; s++) {
			engine.predict([snapshotAt(s)]);
			const { drift } = engine.observe(at(s, s < 100 ? 0.1 : 20));
			if (drift && firstDrift < 0) firstDrift = s;
		}
		expect(firstDrift).toBeGreaterThanOrEqual(100);
		expect(firstDrift).toBeLessThan(110);
		expect(events[0]).toMatchObject({ workerId: 'w1', predictor: 'knn' });
		expect(events[0]!.statistic).toBeGreaterThan(30);
	});

	test('serves the fallback when no model is loaded, for workers and connections', () => {
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]) });
		expect(engine.usingFallback).toBe(true);
		const [p] = engine.predict([snapshotAt(0)]);
		expect(p!.predictor).toBe('knn');
		for (const h of HORIZONS_S) expect(engine.predictResourceNeeds(streams)[h].cpuPct.mean).toBeGreaterThan(0);
	});
});

test('predictions that can no longer be scored are dropped even without observations', () => {
	const engine = new PredictionEngine({ fallback: new KnnPredictor([]) });
	const T0 = 1_700_000_000_000;
	const streams = videoRoom('v', 1);
	for (let i = 0; i < 2000; i++) engine.predict([{ workerId: 'w', now: T0 + i * 100, samples: [], streams, events: [] }]);
	// 10 predictions per second, kept for 30.5 s at most, pruned once past the soft limit.
	expect(engine.pendingPredictions('w')).toBeLessThanOrEqual(306 + 256);
	expect(engine.pendingPredictions('w')).toBeGreaterThanOrEqual(306);
	// The recent ones are still there to be scored at every horizon.
	const actual = { cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 };
	expect(engine.observe({ workerId: 'w', ts: T0 + 1999 * 100 + 5000, actual }).matchedHorizons).toEqual([5, 15, 30]);
});
