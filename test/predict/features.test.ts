import {
	fitNormalization,
	normalizationMismatch,
	normalizeInPlace,
	rampUp,
	STREAM_FEATURE_COUNT,
	STREAM_FEATURES,
	streamContexts,
	streamFeatures,
	WORKER_FEATURE_COUNT,
	WORKER_TREND_WINDOW_S,
	workerFeatures,
} from '../../plugin/predict/features';
import type { WorkerLoadSample } from '../../plugin/profile/schema';
import { audioRoom, syntheticSession, videoRoom } from './synthetic';

describe('stream features', () => {
	const [producer, ...consumers] = videoRoom('v', 10);

	test('have one finite value per declared name', () => {
		const ctx = streamContexts([producer!, ...consumers]).get('v')!;
		const f = streamFeatures(producer!, ctx);
		expect(f).toHaveLength(STREAM_FEATURE_COUNT);
		expect(f.every(Number.isFinite)).toBe(true);
		expect(f[STREAM_FEATURES.indexOf('active_layers')]).toBe(3);
		expect(f[STREAM_FEATURES.indexOf('log_fan_out')]).toBeCloseTo(Math.log1p(10));
		expect(f[STREAM_FEATURES.indexOf('entity_producer')]).toBe(1);
		expect(f[STREAM_FEATURES.indexOf('kind_video')]).toBe(1);
	});

	test('fan-out counts consumers of a listed producer; consumers have none', () => {
		const ctx = streamContexts([producer!, ...consumers, ...audioRoom('a', 3)]);
		expect(ctx.get('v')!.fanOut).toBe(10);
		expect(ctx.get('a')!.fanOut).toBe(3);
		expect(ctx.get('v-c0')!.fanOut).toBe(0);
	});

	test('age comes from the latest join event; unknown age counts as settled', () => {
		const now = 100_000;
		const ctx = streamContexts([producer!], [{ ts: now - 4000, type: 'join', streamId: 'v', entity: 'producer' }], now);
		expect(ctx.get('v')!.ageS).toBe(4);
		expect(streamContexts([producer!]).get('v')!.ageS).toBe(Number.POSITIVE_INFINITY);
		expect(rampUp(0)).toBe(1);
		expect(rampUp(Number.POSITIVE_INFINITY)).toBe(0);
	});

	test('a non-finite stat stays NaN raw and normalizes to the training mean (0)', () => {
		const broken = { ...producer!, flow: { ...producer!.flow, bitrateBps: Number.NaN } };
		const raw = streamFeatures(broken, { fanOut: 0, ageS: Number.POSITIVE_INFINITY });
		expect(Number.isNaN(raw[STREAM_FEATURES.indexOf('log_bitrate_kbps')]!)).toBe(true);
		const norm = fitNormalization(STREAM_FEATURES, [streamFeatures(producer!, { fanOut: 1, ageS: 5 }), streamFeatures(consumers[0]!, { fanOut: 0, ageS: 1 })]);
		normalizeInPlace(norm, raw);
		expect(raw.every(Number.isFinite)).toBe(true);
		expect(raw[STREAM_FEATURES.indexOf('log_bitrate_kbps')]).toBe(0);
	});
});

describe('normalization', () => {
	test('z-scores fitted rows and leaves constant features unscaled', () => {
		const rows = [
			[1, 5],
			[3, 5],
			[5, 5],
		];
		const norm = fitNormalization(['a', 'b'], rows);
		expect(norm.mean).toEqual([3, 5]);
		expect(norm.std[0]).toBeCloseTo(2);
		expect(norm.std[1]).toBe(1);
		const row = [5, 5];
		normalizeInPlace(norm, row);
		expect(row).toEqual([1, 0]);
	});

	test('mismatch names missing, unknown and reordered features', () => {
		const norm = fitNormalization(['a', 'b'], [[1, 2]]);
		expect(normalizationMismatch(norm, ['a', 'b'], 'stream')).toBeUndefined();
		expect(normalizationMismatch(norm, ['b', 'a'], 'stream')).toMatch(/reordered/);
		expect(normalizationMismatch(norm, ['a', 'c'], 'stream')).toMatch(/missing: c; unknown: b/);
	});
});

describe('worker features', () => {
	test('see the same load window live (minutes of samples) as in a training example (--history s of them)', () => {
		const now = 200_000;
		// CPU climbs steeply for the last 10 s after a slow decline: a 30 s window would see another slope.
		const samples = Array.from({ length: 120 }, (_, i) => {
			const ts = now - (119 - i) * 1000;
			const ageS = (now - ts) / 1000;
			const cpuPct = ageS < WORKER_TREND_WINDOW_S ? 60 - 3 * ageS : 40 + 0.2 * ageS;
			return { ts, workerId: 'w', pid: 1, cpuPct, rssBytes: 50e6, routers: 1, transports: 2, producers: 2, consumers: 4, dataProducers: 0, dataConsumers: 0 } satisfies WorkerLoadSample;
		});
		const live = workerFeatures({ workerId: 'w', now, samples, streams: [], events: [] });
		const asTrained = workerFeatures({ workerId: 'w', now, samples: samples.filter((s) => s.ts > now - WORKER_TREND_WINDOW_S * 1000), streams: [], events: [] });
		expect(live.slice(0, 3)).toEqual(asTrained.slice(0, 3));
		expect(live[0]).toBeCloseTo(3);
	});

	test('are finite, fixed-length and see churn', () => {
		const examples = syntheticSession(7, { workers: 1, steps: 60 });
		for (const e of examples) {
			const f = workerFeatures(e.snapshot);
			expect(f).toHaveLength(WORKER_FEATURE_COUNT);
			expect(f.every(Number.isFinite)).toBe(true);
		}
	});
});
