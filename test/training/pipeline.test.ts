import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { PredictionEngine } from '../../plugin/predict/engine';
import { KnnPredictor } from '../../plugin/predict/knn';
import { TfPredictor } from '../../plugin/predict/model';
import { readSessionsIndex } from '../../training/sessions';
import { examplesOf, readSessions } from '../../training/train';

/**
 * The training pipeline end to end on three recorded sessions of one scenario (one
 * each for training, p95 calibration and held-out), with a
 * two-epoch training run. train.ts and evaluate.ts run as child processes, as
 * `npm run train` / `npm run evaluate` do (tfjs inside jest's vm is ~100× slower).
 */

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const run = promisify(execFile);
const ACCEPTANCE_KEYS = ['p90_abs_err_pp_15s', 'mae_gain_vs_last', 'mae_gain_vs_ewma', 'mae_gain_vs_knn', 'p95_coverage'];

/** Three recorded sessions of one scenario (a copy of `npm run sessions` output, audio-only-town-hall seeds 1–3). */
const sessionsDir = path.join(__dirname, 'fixtures', 'sessions');
let dir: string;
let modelDir: string;
let subset: string[];

beforeAll(async () => {
	dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-training-'));
	modelDir = path.join(dir, 'model');
	subset = (await readSessionsIndex(sessionsDir)).sessions.map((s) => s.id);
});

afterAll(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

test('recorded sessions load into examples, split by whole sessions', async () => {
	const sessions = await readSessions(sessionsDir);
	expect(sessions.map((s) => s.entry.id)).toEqual(subset);
	for (const s of sessions) {
		// Only the session's own worker is kept.
		expect(s.timelines.map((t) => t.workerId)).toEqual([s.entry.workerId]);
		expect(s.timelines[0]!.samples.length).toBeGreaterThan(40);
	}
	const examples = examplesOf(sessions, { historyS: 10, strideS: 1, toleranceMs: 2000 });
	expect(new Set(examples.map((e) => e.sessionId))).toEqual(new Set(subset));
});

test('train.ts → evaluate.ts: a versioned, loadable model and a report ending in the acceptance JSON', async () => {
	const train = await run(TSX, ['training/train.ts', '--sessions', sessionsDir, '--out', modelDir, '--epochs', '2', '--stride', '2'], { cwd: ROOT, timeout: 60_000 });
	const trained = JSON.parse(train.stdout.trim().split('\n').pop()!) as { model: string; sessions: { train: number; validation: number; heldOut: number }; training_wall_s: number };
	expect(trained.model).toBe('default@1');
	expect(trained.sessions).toEqual({ train: 1, validation: 1, heldOut: 1 });
	expect(trained.training_wall_s).toBeGreaterThan(0);

	const summary = JSON.parse(await readFile(path.join(modelDir, 'training.json'), 'utf8')) as { split: { train: string[]; validation: string[]; heldOut: string[] } };
	const all = [...summary.split.train, ...summary.split.validation, ...summary.split.heldOut];
	expect(new Set(all).size).toBe(3);
	expect(summary.split.heldOut).toEqual([subset[2]]);

	const evaluation = await run(TSX, ['training/evaluate.ts', '--model', modelDir], { cwd: ROOT, timeout: 60_000 });
	const figures = JSON.parse(evaluation.stdout.trim().split('\n').pop()!) as Record<string, number>;
	expect(Object.keys(figures).sort()).toEqual([...ACCEPTANCE_KEYS].sort());
	for (const k of ACCEPTANCE_KEYS) expect(Number.isFinite(figures[k])).toBe(true);
	expect(figures.p95_coverage).toBeGreaterThanOrEqual(0);
	expect(figures.p95_coverage).toBeLessThanOrEqual(1);
	const report = await readFile(path.join(modelDir, 'MODEL-REPORT.md'), 'utf8');
	expect(report).toContain(JSON.stringify(figures));
	for (const plot of ['predicted-vs-actual.svg', 'error-by-horizon.svg', 'p95-calibration.svg']) {
		const svg = await readFile(path.join(modelDir, 'plots', plot), 'utf8');
		expect(svg.startsWith('<svg')).toBe(true);
		expect(svg).toContain('<path');
	}

	// A second training run bumps the version in the same directory.
	const again = await run(TSX, ['training/train.ts', '--sessions', sessionsDir, '--out', modelDir, '--epochs', '1', '--stride', '5'], { cwd: ROOT, timeout: 60_000 });
	expect((JSON.parse(again.stdout.trim().split('\n').pop()!) as { model: string }).model).toBe('default@2');
}, 150_000);

test('a corrupt model directory leaves the engine serving the specification kNN', async () => {
	const good = await TfPredictor.load(modelDir);
	const snapshot = { workerId: 'w', now: 0, samples: [], streams: [], events: [] };
	expect(good.predict([snapshot])[0]!.predictor).toBe(good.name);
	good.dispose();

	const broken = path.join(dir, 'broken');
	await cp(modelDir, broken, { recursive: true });
	const weights = path.join(broken, 'stream.weights.bin');
	const bytes = await readFile(weights);
	bytes[0] = bytes[0]! ^ 0xff;
	await writeFile(weights, bytes);

	const engine = new PredictionEngine({ fallback: new KnnPredictor([]), logger: pino({ level: 'silent' }) });
	const result = await engine.loadModel(broken);
	expect(result.ok).toBe(false);
	if (!result.ok) {
		expect(result.error.problem).toBe('corrupt');
		expect(result.error.message).toContain('stream.weights.bin');
	}
	expect(engine.usingFallback).toBe(true);
	expect(engine.predict([snapshot])[0]!.predictor).toBe('knn');

	// The intact directory loads into the same engine.
	expect(await engine.loadModel(modelDir)).toEqual({ ok: true, name: 'tfjs:default@2' });
	expect(engine.usingFallback).toBe(false);
	engine.setModel(undefined);
});
