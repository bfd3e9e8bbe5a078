import { KnnPredictor, streamPrior, type ObservedProfile } from '../../plugin/predict/knn';
import { attributionResidual, HORIZONS_S, type ResourceVector } from '../../plugin/predict/types';
import { audioRoom, profile, videoRoom } from './synthetic';

const usage = (cpuPct: number): ResourceVector => ({ cpuPct, rssBytes: cpuPct * 1e6, ingressBps: cpuPct * 1e3, egressBps: 0 });
const audio = (id: string, packetRate: number, entropy = 0) =>
	profile({ streamId: id, entity: 'producer', kind: 'audio', bitrateBps: packetRate * 800, packetRate, entropy });

describe('kNN (the specification algorithm)', () => {
	test('without any history it answers the documented per-kind prior, inflated by entropy', () => {
		const knn = new KnnPredictor([], { entropyFactor: 0.25 });
		const q = audio('q', 50, 0.4);
		const est = knn.estimateStream(q);
		expect(est.source).toBe('prior');
		expect(est.estimate.cpuPct.mean).toBeCloseTo(streamPrior(q).cpuPct * 1.1);
		expect(est.estimate.cpuPct.p95).toBeGreaterThan(est.estimate.cpuPct.mean);
	});

	test('history of other entities or kinds is never "similar"', () => {
		const videoOnly: ObservedProfile[] = videoRoom('v', 2).map((p) => ({ profile: p, usage: usage(9) }));
		expect(new KnnPredictor(videoOnly).estimateStream(audio('q', 50)).source).toBe('prior');
	});

	test('identical usage among neighbours is returned as is, times (1 + β·entropy)', () => {
		const history = [40, 50, 60, 70].map((r, i) => ({ profile: audio(`h${i}`, r), usage: usage(2) }));
		const knn = new KnnPredictor(history, { entropyFactor: 0.5 });
		const est = knn.estimateStream(audio('q', 55, 0.2));
		expect(est.source).toBe('neighbours');
		expect(est.estimate.cpuPct.mean).toBeCloseTo(2 * 1.1, 10);
		expect(est.estimate.cpuPct.p95).toBeCloseTo(2 * 1.1, 10);
	});

	test('closer profiles weigh more: the estimate lies between, nearer the similar one', () => {
		const history = [
			{ profile: audio('near', 50), usage: usage(1) },
			{ profile: audio('far', 500), usage: usage(10) },
		];
		const est = new KnnPredictor(history, { entropyFactor: 0 }).estimateStream(audio('q', 52));
		expect(est.neighbours).toBe(2);
		expect(est.estimate.cpuPct.mean).toBeGreaterThan(1);
		expect(est.estimate.cpuPct.mean).toBeLessThan(5.5);
		expect(est.estimate.cpuPct.p95).toBeGreaterThan(est.estimate.cpuPct.mean);
	});

	test('only the k nearest candidates get a weight', () => {
		const history = [
			{ profile: audio('far1', 900), usage: usage(1000) },
			{ profile: audio('near1', 50), usage: usage(1) },
			{ profile: audio('far2', 700), usage: usage(1000) },
			{ profile: audio('near2', 54), usage: usage(3) },
			{ profile: audio('far3', 500), usage: usage(1000) },
		];
		const est = new KnnPredictor(history, { k: 2, entropyFactor: 0 }).estimateStream(audio('q', 52));
		expect(est.neighbours).toBe(2);
		expect(est.estimate.cpuPct.mean).toBeGreaterThanOrEqual(1);
		expect(est.estimate.cpuPct.mean).toBeLessThanOrEqual(3);
	});

	test('zero total weight (fixed bandwidth, query far from all) falls back to the nearest candidate', () => {
		const history = [
			{ profile: audio('a', 50), usage: usage(1) },
			{ profile: audio('b', 60), usage: usage(2) },
			{ profile: audio('c', 70), usage: usage(3) },
		];
		const est = new KnnPredictor(history, { bandwidth: 1e-3, entropyFactor: 0 }).estimateStream(audio('q', 5000));
		expect(est.source).toBe('nearest');
		expect(est.totalWeight).toBe(0);
		expect(est.estimate.cpuPct.mean).toBe(3);
	});

	test('NaN in the query is neutralized; candidates with NaN usage are skipped', () => {
		const history = [
			{ profile: audio('a', 50), usage: usage(1) },
			{ profile: audio('b', 50), usage: usage(Number.NaN) },
		];
		const knn = new KnnPredictor(history, { entropyFactor: 0 });
		expect(knn.historySize).toBe(1);
		const broken = { ...audio('q', 50), flow: { ...audio('q', 50).flow, packetRate: Number.NaN, bitrateBps: Number.NaN }, entropy: Number.NaN };
		const est = knn.estimateStream(broken);
		expect(est.estimate.cpuPct.mean).toBe(1);
		expect(Number.isFinite(est.estimate.cpuPct.p95)).toBe(true);
		expect(new KnnPredictor([{ profile: audio('x', 50), usage: usage(Number.NaN) }]).estimateStream(audio('q', 50)).source).toBe('prior');
	});

	test('rejects a non-positive fixed bandwidth', () => {
		expect(() => new KnnPredictor([], { bandwidth: 0 })).toThrow(/bandwidth/);
	});

	test('worker prediction = base + Σ stream estimates, and a heavy video room needs more than an audio room', () => {
		const knn = new KnnPredictor([]);
		const streams = [...videoRoom('v', 10), ...audioRoom('a', 10)];
		const [p] = knn.predict([{ workerId: 'w', now: 0, samples: [], streams, events: [] }]);
		expect(attributionResidual(p!)).toBeLessThan(1e-12);
		expect(p!.streams).toHaveLength(streams.length);
		for (const h of HORIZONS_S) expect(p!.horizons[h].total.cpuPct.p95).toBeGreaterThanOrEqual(p!.horizons[h].total.cpuPct.mean);
		expect(knn.predictResourceNeeds(videoRoom('v', 10))[15].cpuPct.mean).toBeGreaterThan(knn.predictResourceNeeds(audioRoom('a', 10))[15].cpuPct.mean);
	});
});
