/**
 * `npm run train`: builds the dataset from the recorded sessions, splits it by session,
 * trains the model with a progress bar and writes a versioned model directory.
 *
 *   npx tsx training/train.ts [--sessions DIR (default models/default/sessions if present, else training/data/sessions)]
 *       [--out models/default] [--epochs 60] [--seed 1] [--history 10] [--stride 1]
 *       [--tolerance 2000] [--held-out id,id] [--validation id,id] [--version N]
 *       [--cpu-weight W] [--huber DELTA] [--weighting example|session] [--keep-epoch last|best-validation|average]
 *       [--worker-hidden 8[,8]]
 *
 * --cpu-weight: weight of the CPU outputs in the mean's loss next to RSS/ingress/egress (1 each
 * by default). --huber: Huber threshold of that loss in target-spread units (squared error by
 * default). --weighting session: every training session weighs alike. --keep-epoch
 * best-validation: keep the epoch with the lowest 15 s CPU MAE on the validation sessions;
 * average: keep the mean weights of the second half's epochs.
 * --version: the model version to write (default: the previous manifest's in --out + 1).
 *
 * --tolerance: how far (ms) the load sample used as a target may be from now + h. Load
 * sampling is nominally 1 s, but on a saturated host its timer slips by seconds.
 *
 * Split (by whole sessions, never rows): for every scenario with ≥ 3 seeds the last
 * seed is held out for `npm run evaluate`, the one before it calibrates the p95
 * (validation), the rest trains; scenarios with 2 seeds give one to training and one
 * to the held-out set. `--held-out`/`--validation` override. The split is recorded in
 * <out>/training.json so evaluate.ts scores exactly the held-out sessions.
 * The last stdout line is a JSON summary with the training wall time.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { Presets, SingleBar } from 'cli-progress';
import { z } from 'zod';
import { buildExamples, splitBySession } from '../plugin/predict/dataset';
import { WORKER_TREND_WINDOW_S } from '../plugin/predict/features';
import { describeHost } from '../plugin/predict/model';
import { trainModel } from '../plugin/predict/train';
import type { TrainingExample } from '../plugin/predict/types';
import { readWorkerTimelines, type DatasetWorkerTimeline } from './dataset';
import { DEFAULT_SESSIONS_DIR, readSessionsIndex, type SessionEntry } from './sessions';

export const REPO_ROOT = resolve(__dirname, '..');
export const DEFAULT_MODEL_DIR = join(REPO_ROOT, 'models', 'default');
export const TRAINING_SUMMARY = 'training.json';

/** Committed sessions win, so a fresh checkout trains and evaluates on what the report was made from. */
export function defaultSessionsDir(modelDir = DEFAULT_MODEL_DIR): string {
	const committed = join(modelDir, 'sessions');
	return existsSync(join(committed, 'sessions.json')) ? committed : DEFAULT_SESSIONS_DIR;
}

export interface SessionData {
	entry: SessionEntry;
	timelines: DatasetWorkerTimeline[];
}

/** Reads every session file listed in a sessions directory (gzip or plain dataset files). */
export async function readSessions(dir: string): Promise<SessionData[]> {
	const index = await readSessionsIndex(dir);
	const tmp = await mkdtemp(join(tmpdir(), 'foresight-sessions-'));
	try {
		const out: SessionData[] = [];
		for (const entry of index.sessions) {
			let path = join(dir, entry.file);
			if (path.endsWith('.gz')) {
				const plain = join(tmp, entry.file.slice(0, -3));
				await pipeline(createReadStream(path), createGunzip(), createWriteStream(plain));
				path = plain;
			}
			// Only the session's own worker: a neighbour's records are not this session's.
			const timelines = (await readWorkerTimelines(path, entry.id)).filter((t) => t.workerId === entry.workerId);
			out.push({ entry, timelines });
		}
		return out;
	} finally {
		await rm(tmp, { recursive: true, force: true });
	}
}

export interface ExampleSettings {
	historyS: number;
	strideS: number;
	/** How far a target's load sample may be from now + h. */
	toleranceMs: number;
}

export function examplesOf(sessions: readonly SessionData[], settings: ExampleSettings): TrainingExample[] {
	return sessions.flatMap((s) => s.timelines.flatMap((t) => buildExamples(t, { historyS: settings.historyS, strideS: settings.strideS, toleranceMs: settings.toleranceMs })));
}

export interface SessionSplit {
	train: string[];
	validation: string[];
	heldOut: string[];
}

/** The default split described in the header: by seed within each scenario. */
export function defaultSplit(entries: readonly SessionEntry[]): SessionSplit {
	const byScenario = new Map<string, SessionEntry[]>();
	for (const e of entries) byScenario.set(e.scenario, [...(byScenario.get(e.scenario) ?? []), e]);
	const split: SessionSplit = { train: [], validation: [], heldOut: [] };
	for (const list of byScenario.values()) {
		const sorted = [...list].sort((a, b) => a.seed - b.seed);
		if (sorted.length >= 3) {
			split.heldOut.push(sorted.pop()!.id);
			split.validation.push(sorted.pop()!.id);
		} else if (sorted.length === 2) split.heldOut.push(sorted.pop()!.id);
		split.train.push(...sorted.map((e) => e.id));
	}
	return split;
}

export const trainingSummarySchema = z.object({
	model: z.string(),
	version: z.int(),
	createdAt: z.string(),
	sessionsDir: z.string(),
	split: z.object({ train: z.array(z.string()), validation: z.array(z.string()), heldOut: z.array(z.string()) }),
	examples: z.object({ train: z.int(), validation: z.int(), heldOut: z.int() }),
	settings: z.object({
		historyS: z.number(),
		strideS: z.number(),
		toleranceMs: z.number(),
		epochs: z.int(),
		seed: z.int(),
		// Absent in summaries written before these options existed (their defaults applied).
		cpuWeight: z.number().optional(),
		huberDelta: z.number().nullable().optional(),
		weighting: z.enum(['example', 'session']).optional(),
		keepEpoch: z.enum(['last', 'best-validation', 'average']).optional(),
		keptEpoch: z.int().optional(),
	}),
	data: z.object({
		scenarios: z.array(z.string()),
		sessions: z.int(),
		workerLoadSamples: z.int(),
		streamProfiles: z.int(),
		connectionProfiles: z.int(),
		recordedSeconds: z.number(),
		hostLoadAvg: z.number(),
		idleCpuStdPp: z.number().nullable(),
	}),
	trainingWallMs: z.number(),
	finalLoss: z.number(),
	/** Per-epoch training loss (and validation 15 s CPU MAE when it was tracked). */
	history: z.array(z.object({ epoch: z.int(), loss: z.number(), validationCpuMae15: z.number().optional() })).optional(),
	host: z.record(z.string(), z.union([z.string(), z.number()])),
});
export type TrainingSummary = z.infer<typeof trainingSummarySchema>;

export async function readTrainingSummary(modelDir: string): Promise<TrainingSummary> {
	const path = join(modelDir, TRAINING_SUMMARY);
	const parsed = trainingSummarySchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
	if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
	return parsed.data;
}

async function previousVersion(modelDir: string): Promise<number> {
	try {
		const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')) as { version?: unknown };
		return typeof manifest.version === 'number' && Number.isInteger(manifest.version) ? manifest.version : 0;
	} catch {
		return 0;
	}
}

const idList = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').filter(Boolean));

async function main(argv: string[]): Promise<void> {
	const { values } = parseArgs({
		args: argv,
		options: {
			sessions: { type: 'string' },
			out: { type: 'string', default: DEFAULT_MODEL_DIR },
			epochs: { type: 'string', default: '60' },
			seed: { type: 'string', default: '1' },
			// The live engine's trend window: a shorter history starves the worker features of samples.
			history: { type: 'string', default: String(WORKER_TREND_WINDOW_S) },
			stride: { type: 'string', default: '1' },
			tolerance: { type: 'string', default: '2000' },
			'held-out': { type: 'string' },
			validation: { type: 'string' },
			version: { type: 'string' },
			'cpu-weight': { type: 'string', default: '1' },
			huber: { type: 'string' },
			weighting: { type: 'string', default: 'example' },
			'keep-epoch': { type: 'string', default: 'last' },
			'worker-hidden': { type: 'string', default: '8' },
		},
	});
	const out = resolve(values.out!);
	const sessionsDir = resolve(values.sessions ?? defaultSessionsDir(out));
	const epochs = Number(values.epochs);
	const seed = Number(values.seed);
	const settings: ExampleSettings = { historyS: Number(values.history), strideS: Number(values.stride), toleranceMs: Number(values.tolerance) };
	if (!(Number.isInteger(epochs) && epochs > 0)) throw new Error('--epochs must be a positive integer');
	if (!(settings.historyS > 0 && settings.strideS > 0 && settings.toleranceMs > 0)) throw new Error('--history, --stride and --tolerance must be positive');
	const cpuWeight = Number(values['cpu-weight']);
	if (!(cpuWeight > 0)) throw new Error('--cpu-weight must be positive');
	const huberDelta = values.huber === undefined ? undefined : Number(values.huber);
	if (huberDelta !== undefined && !(huberDelta > 0)) throw new Error('--huber must be positive');
	const weighting = values.weighting;
	if (weighting !== 'example' && weighting !== 'session') throw new Error('--weighting must be example or session');
	const keepEpoch = values['keep-epoch'];
	if (keepEpoch !== 'last' && keepEpoch !== 'best-validation' && keepEpoch !== 'average') throw new Error('--keep-epoch must be last, best-validation or average');
	// The worker net runs once per worker, not per stream: widening it costs inference next to nothing.
	const workerHidden = values['worker-hidden']!.split(',').map(Number);
	if (!workerHidden.every((n) => Number.isInteger(n) && n > 0)) throw new Error('--worker-hidden must be positive integers, comma-separated');
	const version = values.version === undefined ? (await previousVersion(out)) + 1 : Number(values.version);
	if (!(Number.isInteger(version) && version > 0)) throw new Error('--version must be a positive integer');

	const sessions = await readSessions(sessionsDir);
	if (sessions.length === 0) throw new Error(`${sessionsDir}: no sessions (run \`npm run sessions\` first)`);
	const known = new Set(sessions.map((s) => s.entry.id));
	const auto = defaultSplit(sessions.map((s) => s.entry));
	const heldOut = idList(values['held-out']) ?? auto.heldOut;
	const validation = idList(values.validation) ?? (values['held-out'] ? [] : auto.validation);
	for (const id of [...heldOut, ...validation]) if (!known.has(id)) throw new Error(`unknown session ${id} (known: ${[...known].join(', ')})`);
	const split: SessionSplit = { train: [...known].filter((id) => !heldOut.includes(id) && !validation.includes(id)), validation, heldOut };
	if (split.train.length === 0) throw new Error('no training sessions left after the split');

	const examples = examplesOf(sessions, settings);
	const first = splitBySession(examples, new Set(heldOut));
	const split2 = splitBySession(first.train, new Set(validation));
	const train = split2.train;
	const validationExamples = split2.heldOut;
	if (train.length === 0) throw new Error('the training sessions give no examples (sessions too short for --history + 30 s?)');

	const bar = new SingleBar({ format: 'train [{bar}] {percentage}% | epoch {value}/{total} | loss {loss} | validation CPU MAE 15 s {val} | {eta}s left', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
	bar.start(epochs, 0, { loss: '-', val: '-' });
	const started = Date.now();
	let result: ReturnType<typeof trainModel>;
	try {
		result = trainModel(train, {
			name: 'default',
			version,
			epochs,
			seed,
			batchSize: 32,
			validation: validationExamples,
			targetWeights: { cpuPct: cpuWeight },
			...(huberDelta === undefined ? {} : { huberDelta }),
			exampleWeighting: weighting,
			keepEpoch,
			workerHidden,
			onEpoch: (log) => bar.update(log.epoch, { loss: log.loss.toFixed(4), val: log.validationCpuMae15?.toFixed(3) ?? '-' }),
		});
	} finally {
		bar.stop();
	}
	const trainingWallMs = Date.now() - started;
	const manifest = await result.predictor.save(out);
	result.predictor.dispose();

	const entries = sessions.map((s) => s.entry);
	const idle = entries.map((e) => e.idleCpu.std).filter(Number.isFinite);
	const summary: TrainingSummary = {
		model: manifest.name,
		version: manifest.version,
		createdAt: manifest.createdAt,
		sessionsDir: sessionsDir.startsWith(REPO_ROOT) ? sessionsDir.slice(REPO_ROOT.length + 1) : sessionsDir,
		split,
		examples: { train: train.length, validation: validationExamples.length, heldOut: first.heldOut.length },
		settings: { ...settings, epochs, seed, cpuWeight, huberDelta: huberDelta ?? null, weighting, keepEpoch, keptEpoch: result.keptEpoch },
		data: {
			scenarios: [...new Set(entries.map((e) => e.scenario))].sort(),
			sessions: entries.length,
			workerLoadSamples: entries.reduce((a, e) => a + e.counts.worker_load, 0),
			streamProfiles: entries.reduce((a, e) => a + e.counts.stream_profile, 0),
			connectionProfiles: entries.reduce((a, e) => a + e.counts.connection_profile, 0),
			recordedSeconds: entries.reduce((a, e) => a + (e.to - e.from) / 1000, 0),
			hostLoadAvg: entries.reduce((a, e) => a + (e.hostLoad.start + e.hostLoad.end) / 2, 0) / entries.length,
			idleCpuStdPp: idle.length > 0 ? idle.reduce((a, b) => a + b, 0) / idle.length : null,
		},
		trainingWallMs,
		finalLoss: manifest.training.finalLoss,
		history: result.history.map(({ epoch, loss, validationCpuMae15 }) => ({ epoch, loss, ...(validationCpuMae15 === undefined ? {} : { validationCpuMae15 }) })),
		host: { ...describeHost() },
	};
	await writeFile(join(out, TRAINING_SUMMARY), `${JSON.stringify(summary, null, '\t')}\n`);
	process.stdout.write(
		`${JSON.stringify({
			model: `${manifest.name}@${manifest.version}`,
			out,
			sessions: { train: split.train.length, validation: split.validation.length, heldOut: split.heldOut.length },
			examples: summary.examples,
			epochs,
			final_loss: manifest.training.finalLoss,
			validation_mae_cpu_15s: manifest.metrics['validation_mae_cpuPct_15s'] ?? null,
			kept_epoch: result.keptEpoch,
			training_wall_s: trainingWallMs / 1000,
		})}\n`,
	);
}

if (require.main === module) {
	main(process.argv.slice(2)).catch((err: unknown) => {
		process.stderr.write(`train failed: ${err instanceof Error ? err.message : String(err)}\n`);
		process.exit(1);
	});
}
