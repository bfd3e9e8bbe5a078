import {
	BBB_SCORE,
	CONSUMER_COUNT_SCORE,
	EwmaPredictor,
	LastValuePredictor,
	LinearTrendPredictor,
	staticScore,
	StaticScorePredictor,
} from '../../plugin/predict/baselines';
import type { WorkerLoadSample } from '../../plugin/profile/schema';
import { attributionResidual, HORIZONS_S, type TrainingExample, type WorkerSnapshot } from '../../plugin/predict/types';
import { audioRoom, syntheticSession, videoRoom } from './synthetic';

const T0 = 1_700_000_000_000;
function sample(s: number, cpuPct: number, rssBytes = 1e7): WorkerLoadSample {
	return { ts: T0 + s * 1000, workerId: 'w', pid: 1, cpuPct, rssBytes, routers: 1, transports: 2, producers: 1, consumers: 1, dataProducers: 0, dataConsumers: 0 };
}
const snap = (samples: WorkerLoadSample[], streams = videoRoom('v', 1)): WorkerSnapshot => ({
	workerId: 'w',
	now: samples[samples.length - 1]!.ts,
	samples,
	streams,
	events: [],
});

describe('time-series baselines', () => {
	test('last value repeats the latest sample at every horizon; network is the streams’ present bitrate', () => {
		const streams = videoRoom('v', 2);
		const [p] = new LastValuePredictor().predict([snap([sample(0, 5), sample(1, 7)], streams)]);
		const producer = streams[0]!.flow.bitrateBps;
		for (const h of HORIZONS_S) {
			expect(p!.horizons[h].total.cpuPct.mean).toBe(7);
			expect(p!.horizons[h].total.ingressBps.mean).toBe(producer);
		}
		expect(p!.streams.every((s) => HORIZONS_S.every((h) => s.cost[h].cpuPct === 0))).toBe(true);
		expect(attributionResidual(p!)).toBe(0);
	});

	test('EWMA: after one half-life a step is half absorbed', () => {
		const [p] = new EwmaPredictor(10).predict([snap([sample(0, 0), sample(10, 10)])]);
		expect(p!.horizons[5].total.cpuPct.mean).toBeCloseTo(5, 10);
	});

	test('linear trend extrapolates an exact line to now + h', () => {
		const samples = Array.from({ length: 20 }, (_, s) => sample(s, 2 + 0.5 * s));
		const [p] = new LinearTrendPredictor(30).predict([snap(samples)]);
		for (const h of HORIZONS_S) expect(p!.horizons[h].total.cpuPct.mean).toBeCloseTo(2 + 0.5 * (19 + h), 8);
	});

	test('p95 widens by how much the series moved over one horizon before', () => {
		const flat = new LastValuePredictor().predict([snap(Array.from({ length: 40 }, (_, s) => sample(s, 5)))])[0]!;
		const noisy = new LastValuePredictor().predict([snap(Array.from({ length: 40 }, (_, s) => sample(s, 5 + (s % 2) * 4)))])[0]!;
		expect(flat.horizons[5].total.cpuPct.p95).toBe(flat.horizons[5].total.cpuPct.mean);
		expect(noisy.horizons[5].total.cpuPct.p95).toBeGreaterThan(noisy.horizons[5].total.cpuPct.mean);
	});
});

describe('static scores', () => {
	test('BigBlueButton score is 10·transports + 5·producers + 2·consumers', () => {
		const s = { ...sample(0, 1), transports: 3, producers: 2, consumers: 7 };
		expect(staticScore(snap([s]), BBB_SCORE)).toBe(10 * 3 + 5 * 2 + 2 * 7);
		expect(staticScore(snap([s]), CONSUMER_COUNT_SCORE)).toBe(7);
	});

	test('the fitted scale recovers a linear law, and attribution sums to the prediction', () => {
		const examples: TrainingExample[] = [1, 2, 3, 4, 5].map((k) => {
			const s = { ...sample(0, 0), transports: k, producers: k, consumers: 2 * k };
			const cpu = 3 + 0.1 * staticScore(snap([s]), BBB_SCORE);
			const target = { cpuPct: cpu, rssBytes: 1e7, ingressBps: 0, egressBps: 0 };
			return { snapshot: snap([s]), targets: { 5: target, 15: target, 30: target } };
		});
		const bbb = StaticScorePredictor.fitted('bbb', BBB_SCORE, examples);
		const streams = [...videoRoom('v', 3), ...audioRoom('a', 2)];
		const s = { ...sample(0, 0), transports: 7, producers: 2, consumers: 5 };
		const [p] = bbb.predict([snap([s], streams)]);
		expect(p!.horizons[15].total.cpuPct.mean).toBeCloseTo(3 + 0.1 * (70 + 10 + 10), 8);
		expect(attributionResidual(p!)).toBeLessThan(1e-12);
		const producerCost = p!.streams.find((x) => x.streamId === 'v')!.cost[15].cpuPct;
		expect(producerCost).toBeCloseTo(0.5, 8);
		expect(bbb.predictResourceNeeds(videoRoom('v', 10))[15].cpuPct.mean).toBeCloseTo(0.1 * (5 + 20), 8);
	});

	test('fits on synthetic sessions without error and predicts finite values', () => {
		const examples = syntheticSession(11, { workers: 2, steps: 50 });
		const cc = StaticScorePredictor.fitted('consumers', CONSUMER_COUNT_SCORE, examples);
		for (const p of cc.predict(examples.map((e) => e.snapshot))) {
			expect(Number.isFinite(p.horizons[30].total.cpuPct.mean)).toBe(true);
			expect(attributionResidual(p)).toBeLessThan(1e-9);
		}
	});
});
