import { LastValuePredictor } from '../../plugin/predict/baselines';
import { PredictionEngine, type Observation } from '../../plugin/predict/engine';
import { acceptanceFigures, evaluateOnline, evaluatePredictor } from '../../plugin/predict/evaluate';
import { KnnPredictor } from '../../plugin/predict/knn';
import type { WorkerLoadSample } from '../../plugin/profile/schema';
import type { TrainingExample, WorkerSnapshot } from '../../plugin/predict/types';
import { syntheticSession, videoRoom } from './synthetic';

const sample = (ts: number, cpuPct: number): WorkerLoadSample => ({
	ts,
	workerId: 'w',
	pid: 1,
	cpuPct,
	rssBytes: 0,
	routers: 0,
	transports: 0,
	producers: 0,
	consumers: 0,
	dataProducers: 0,
	dataConsumers: 0,
});
/** Last value predicts `now`; the actual is now + error at every horizon. */
const example = (now: number, error: number): TrainingExample => {
	const target = { cpuPct: now + error, rssBytes: 0, ingressBps: 0, egressBps: 0 };
	return { snapshot: { workerId: 'w', now: 0, samples: [sample(0, now)], streams: [], events: [] }, targets: { 5: target, 15: target, 30: target } };
};

test('MAE, p90 absolute error and p95 coverage follow their definitions', () => {
	const errors = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10];
	const report = evaluatePredictor(new LastValuePredictor(), errors.map((e) => example(20, e)));
	expect(report.examples).toBe(10);
	expect(report.mae[15].cpuPct).toBeCloseTo(5.5, 10);
	// |errors| sorted 1..10: the 0.9 quantile interpolates between 9 and 10.
	expect(report.p90AbsErrCpu[15]).toBeCloseTo(9.1, 10);
	// One sample: no spread, p95 = mean; covered when the actual is at or below it (negative errors).
	expect(report.p95CoverageCpu[15]).toBe(0.5);
});

test('acceptance figures are 15 s gains as fractions', () => {
	const base = evaluatePredictor(new LastValuePredictor(), [example(10, 4)]);
	const better = evaluatePredictor(new LastValuePredictor(), [example(10, 1)]);
	const figures = acceptanceFigures(better, { last: base, ewma: base, knn: base });
	expect(figures.mae_gain_vs_last).toBeCloseTo(0.75, 10);
	expect(figures.p90_abs_err_pp_15s).toBe(1);
	expect(figures.p95_coverage).toBe(0);
});

describe('online replay through the engine', () => {
	const examples = syntheticSession(31, { workers: 3, steps: 120 });

	test('bias correction learned from past actuals removes a worker’s constant offset', () => {
		// Fixed streams, actual = the kNN's prediction + 7 pp at every instant: all its error
		// is a level the engine can learn.
		const knn = new KnnPredictor([]);
		const streams = videoRoom('v', 3);
		const T0 = 1_700_000_000_000;
		const snapshots = ['w1', 'w2', 'w3'].flatMap((workerId) => Array.from({ length: 90 }, (_, i) => ({ workerId, now: T0 + i * 1000, samples: [], streams, events: [] })));
		const raw = knn.predict(snapshots);
		const shifted: TrainingExample[] = snapshots.map((snapshot, i) => {
			const target = (h: 5 | 15 | 30) => ({ ...raw[i]!.horizons[h].base, cpuPct: raw[i]!.horizons[h].total.cpuPct.mean + 7 });
			return { snapshot, targets: { 5: target(5), 15: target(15), 30: target(30) } };
		});
		const offline = evaluatePredictor(knn, shifted);
		// α = 0.3: the offset is learned within ~10 observations; the 30 s horizon still errs
		// fully for its first 30 instants, whose actuals are not known yet.
		const online = evaluateOnline(new PredictionEngine({ fallback: new KnnPredictor([]), biasAlpha: 0.3 }), shifted);
		expect(online.name).toBe('knn+online');
		expect(online.examples).toBe(shifted.length);
		for (const h of [5, 15, 30] as const) {
			expect(offline.mae[h].cpuPct).toBeCloseTo(7, 8);
			expect(online.mae[h].cpuPct).toBeLessThan(offline.mae[h].cpuPct / 2);
		}
		// Longer horizons learn later (their actuals arrive h s after the prediction), so they gain less.
		expect(online.mae[5].cpuPct).toBeLessThan(online.mae[30].cpuPct);
	});

	test('never shows the engine an actual from the future', () => {
		const log: Array<{ kind: 'observe' | 'predict'; ts: number }> = [];
		class RecordingEngine extends PredictionEngine {
			override observe(obs: Observation) {
				log.push({ kind: 'observe', ts: obs.ts });
				return super.observe(obs);
			}
			override predict(snapshots: readonly WorkerSnapshot[]) {
				for (const s of snapshots) log.push({ kind: 'predict', ts: s.now });
				return super.predict(snapshots);
			}
		}
		const report = evaluateOnline(new RecordingEngine({ fallback: new KnnPredictor([]) }), [...examples].reverse());
		expect(report.examples).toBe(examples.length);
		// Every actual handed over must be due by the prediction that follows it.
		let nextPrediction = Number.POSITIVE_INFINITY;
		let observed = 0;
		for (const entry of [...log].reverse()) {
			if (entry.kind === 'predict') nextPrediction = entry.ts;
			else {
				observed++;
				expect(entry.ts).toBeLessThanOrEqual(nextPrediction);
			}
		}
		expect(observed).toBeGreaterThan(examples.length);
	});
});
