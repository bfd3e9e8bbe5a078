import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { PredictionEngine } from '../../plugin/predict/engine';
import { STREAM_FEATURES } from '../../plugin/predict/features';
import { KnnPredictor } from '../../plugin/predict/knn';
import { ModelLoadError, TfPredictor } from '../../plugin/predict/model';
import { attributionResidual, HORIZONS_S, TARGETS, type WorkerSnapshot } from '../../plugin/predict/types';
import { audioRoom, syntheticSession, videoRoom } from './synthetic';
import { runTrainingFixture } from './trainingFixture';

const heldOut = syntheticSession(3, { workers: 2, steps: 60, stride: 2 });
let dir: string;
let fixture: { trainExamples: number; unit: number[]; weak: number[]; wallMs: number };
let model: TfPredictor;

beforeAll(async () => {
	dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-model-'));
	fixture = await runTrainingFixture<typeof fixture>('train-synthetic.ts', dir);
	model = await TfPredictor.load(path.join(dir, 'unit'));
}, 180_000);
afterAll(async () => {
	model?.dispose();
	if (dir) await rm(dir, { recursive: true, force: true });
});

/** A fresh copy of a saved model directory, to break or to hand over. */
async function copyModel(name = 'unit'): Promise<string> {
	const target = await mkdtemp(path.join(dir, 'copy-'));
	await cp(path.join(dir, name), target, { recursive: true });
	return target;
}

describe('trained additive model (synthetic cost law)', () => {
	test('training reduces the loss', () => {
		const first = fixture.unit[0]!;
		const last = fixture.unit[fixture.unit.length - 1]!;
		expect(fixture.unit).toHaveLength(model.manifest.training.epochs);
		expect(last).toBeLessThan(first / 2);
		expect(model.manifest.training.finalLoss).toBeCloseTo(last, 10);
	});

	test('attribution sums to the worker prediction and costs are non-negative', () => {
		const predictions = model.predict(heldOut.map((e) => e.snapshot));
		for (const p of predictions) {
			expect(attributionResidual(p)).toBeLessThan(1e-12);
			for (const s of p.streams) for (const h of HORIZONS_S) for (const t of TARGETS) expect(s.cost[h][t]).toBeGreaterThanOrEqual(0);
			for (const h of HORIZONS_S) for (const t of TARGETS) expect(p.horizons[h].total[t].p95).toBeGreaterThanOrEqual(p.horizons[h].total[t].mean);
		}
	});

	test('an idle worker (no streams) is all base', () => {
		const [p] = model.predict([{ ...heldOut[0]!.snapshot, streams: [], events: [] }]);
		expect(p!.streams).toEqual([]);
		for (const h of HORIZONS_S) for (const t of TARGETS) expect(p!.horizons[h].total[t].mean).toBe(p!.horizons[h].base[t]);
		expect(model.predictResourceNeeds([])[15].cpuPct).toEqual({ mean: 0, p95: 0 });
	});

	test('ranks a 720p three-layer simulcast producer with 10 consumers above an audio-only one', () => {
		const video = model.predictResourceNeeds(videoRoom('v', 10));
		const audio = model.predictResourceNeeds(audioRoom('a', 10));
		for (const h of HORIZONS_S) {
			expect(video[h].cpuPct.mean).toBeGreaterThan(audio[h].cpuPct.mean);
			expect(video[h].egressBps.mean).toBeGreaterThan(audio[h].egressBps.mean);
		}
		// Same ranking from the attribution inside one worker carrying both.
		const streams = [...videoRoom('v', 10), ...audioRoom('a', 10)];
		const snapshot: WorkerSnapshot = { ...heldOut[0]!.snapshot, streams, events: [] };
		const [p] = model.predict([snapshot]);
		const groupCost = (prefix: string) => p!.streams.filter((s) => s.streamId.startsWith(prefix)).reduce((sum, s) => sum + s.cost[15].cpuPct, 0);
		expect(groupCost('v')).toBeGreaterThan(groupCost('a'));
	});

	test('the wasm, plain-JS and tensor inference paths compute the same predictions', () => {
		const snaps = heldOut.slice(0, 8).map((e) => e.snapshot);
		const chosen = model.inference;
		try {
			model.inference = 'js';
			const js = model.predict(snaps);
			model.inference = 'wasm';
			// Same float64 arithmetic in the same order: identical, not merely close.
			expect(model.predict(snaps)).toEqual(js);
			model.inference = 'tensor';
			const tensor = model.predict(snaps);
			js.forEach((p, w) => {
				for (const h of HORIZONS_S) {
					for (const t of TARGETS) {
						const a = p.horizons[h].total[t];
						const b = tensor[w]!.horizons[h].total[t];
						expect(Math.abs(a.mean - b.mean)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(b.mean)));
						expect(Math.abs(a.p95 - b.p95)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(b.p95)));
					}
				}
			});
		} finally {
			model.inference = chosen;
		}
	});

	test('p95 calibration and metrics are recorded in the manifest', () => {
		const m = model.manifest;
		expect(m.training.examples).toBe(fixture.trainExamples);
		expect(m.training.sessions).toEqual(['session-1', 'session-4']);
		expect(m.metrics['validation_mae_cpuPct_15s']).toBeGreaterThan(0);
		expect(m.metrics['validation_p95_coverage_cpuPct_15s']).toBeGreaterThanOrEqual(0.9);
		expect(m.host.cores).toBeGreaterThan(0);
	});
});

describe('model directory', () => {
	test('save → load gives identical predictions', async () => {
		const resaved = path.join(dir, 'resaved');
		await model.save(resaved);
		const loaded = await TfPredictor.load(resaved);
		try {
			const snaps = heldOut.slice(0, 20).map((e) => e.snapshot);
			expect(loaded.predict(snaps)).toEqual(model.predict(snaps));
			expect(loaded.predictResourceNeeds(videoRoom('v', 4))).toEqual(model.predictResourceNeeds(videoRoom('v', 4)));
			expect(loaded.manifest).toEqual(model.manifest);
		} finally {
			loaded.dispose();
		}
	});

	const cases: Array<[string, (d: string) => Promise<void>, ModelLoadError['problem'], RegExp]> = [
		['manifest that is not JSON', (d) => writeFile(path.join(d, 'manifest.json'), '{"format": "mediasoup-fore'), 'corrupt', /manifest\.json: not valid JSON/],
		[
			'manifest missing a field',
			async (d) => {
				const m = JSON.parse(await readFile(path.join(d, 'manifest.json'), 'utf8')) as Record<string, unknown>;
				delete m.targetScale;
				await writeFile(path.join(d, 'manifest.json'), JSON.stringify(m));
			},
			'corrupt',
			/targetScale/,
		],
		[
			'manifest of a newer format version',
			async (d) => {
				const m = JSON.parse(await readFile(path.join(d, 'manifest.json'), 'utf8')) as Record<string, unknown>;
				await writeFile(path.join(d, 'manifest.json'), JSON.stringify({ ...m, schemaVersion: 99 }));
			},
			'incompatible',
			/schemaVersion 99, this build reads 1/,
		],
		[
			'model trained on other features',
			async (d) => {
				const m = JSON.parse(await readFile(path.join(d, 'manifest.json'), 'utf8')) as { streamNormalization: { names: string[] } };
				m.streamNormalization.names = [...STREAM_FEATURES].reverse();
				await writeFile(path.join(d, 'manifest.json'), JSON.stringify(m));
			},
			'incompatible',
			/stream features differ/,
		],
		['truncated weights', async (d) => writeFile(path.join(d, 'stream.weights.bin'), (await readFile(path.join(d, 'stream.weights.bin'))).subarray(0, 100)), 'corrupt', /stream\.weights\.bin: 100 bytes/],
		[
			'weights with one flipped byte',
			async (d) => {
				const bytes = await readFile(path.join(d, 'worker.weights.bin'));
				bytes[10] = bytes[10]! ^ 0xff;
				await writeFile(path.join(d, 'worker.weights.bin'), bytes);
			},
			'corrupt',
			/worker\.weights\.bin: sha256/,
		],
		['topology that is not a layers model', (d) => writeFile(path.join(d, 'stream.model.json'), JSON.stringify({ format: 'graph-model' })), 'corrupt', /stream\.model\.json/],
		['missing weights file', (d) => rm(path.join(d, 'worker.weights.bin')), 'missing', /worker\.weights\.bin: ENOENT/],
	];

	test.each(cases)('%s → clear error and the engine keeps serving the kNN', async (_label, damage, problem, message) => {
		const broken = await copyModel();
		await damage(broken);
		const error = await TfPredictor.load(broken).then(
			() => undefined,
			(e: unknown) => e,
		);
		expect(error).toBeInstanceOf(ModelLoadError);
		expect((error as ModelLoadError).problem).toBe(problem);
		expect((error as ModelLoadError).message).toMatch(message);

		const engine = new PredictionEngine({ fallback: new KnnPredictor([]) });
		const result = await engine.loadModel(broken);
		expect(result.ok).toBe(false);
		expect(engine.usingFallback).toBe(true);
		const [p] = engine.predict([heldOut[0]!.snapshot]);
		expect(p!.predictor).toBe('knn');
	});

	test('a missing directory is reported as missing', async () => {
		await expect(TfPredictor.load(path.join(dir, 'nope'))).rejects.toThrow(/model missing: .*manifest\.json: ENOENT/);
	});
});

describe('engine with trained models', () => {
	test('maybeReplace deploys a better candidate, keeps the deployed model against a worse one, and logs both scores', async () => {
		const lines: string[] = [];
		const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]), logger });
		expect((await engine.loadModel(await copyModel('weak'))).ok).toBe(true);
		expect(engine.active.name).toBe('tfjs:weak@1');

		const better = engine.maybeReplace(await TfPredictor.load(await copyModel('unit')), heldOut);
		expect(better.replaced).toBe(true);
		expect(better.candidate.score).toBeLessThan(better.deployed.score);
		expect(engine.active.name).toBe('tfjs:unit@1');

		const worse = engine.maybeReplace(await TfPredictor.load(await copyModel('weak')), heldOut);
		expect(worse.replaced).toBe(false);
		expect(worse.candidate.score).toBeGreaterThan(worse.deployed.score);
		expect(engine.active.name).toBe('tfjs:unit@1');

		const logged = lines.map((l) => JSON.parse(l) as { msg: string; metric?: string; deployed: { score: number }; candidate: { score: number } }).filter((l) => l.metric);
		expect(logged.map((l) => [l.msg, l.deployed.score, l.candidate.score])).toEqual([
			['candidate model deployed', better.deployed.score, better.candidate.score],
			['candidate model rejected', worse.deployed.score, worse.candidate.score],
		]);
	});

	test('without recent held-out data nothing is replaced', async () => {
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]) });
		const decision = engine.maybeReplace(await TfPredictor.load(await copyModel('unit')), []);
		expect(decision.replaced).toBe(false);
		expect(engine.usingFallback).toBe(true);
	});
});
