/**
 * Session generator: runs load-generator scenarios against real mediasoup workers
 * with Foresight attached and records what it observes — the "recorded sessions"
 * the model is trained and evaluated on.
 *
 *   MEDIASOUP_WORKER_BIN=… npx tsx training/sessions.ts
 *       [--scenarios steady-meeting,webinar-fanout | file.json | gen:<family> | browser-meeting,…]  (default: every scenarios/*.json)
 *       [--browser-pages 4] [--browser-listeners 8] [--browser-source talking-head] [--sources DIR] [--chromium PATH]
 *           (browser-meeting: its publishers are headless Chromium pages, loadgen/browserFamily.ts)
 *       [--peers 24 (generated families: peers at the busiest moment)]
 *       [--seeds 3] [--first-seed 1] [--duration S (cap per scenario)] [--lead 3] [--tail 10]
 *       [--workers 2] [--out training/data/sessions] [--influx URL (default $INFLUX_URL)]
 *       [--recordings test/fixtures/recordings] [--gzip] [--max-group 40 (cap on peers per scenario group; 0 = none)]
 *       [--append (keep the sessions already listed in <out>/sessions.json; same ids are replaced)]
 *
 * The cap on group sizes keeps the default run (5 scenarios × 3 seeds × 60 s, two at a time)
 * at ~10 minutes on 2 shared cores: uncapped, the 200-listener town hall starves the event
 * loop and its timeline stretches several-fold.
 *
 * One session = one (scenario, seed) on one fresh worker. `--workers` sessions run at
 * once, each on its own worker (so each session's worker id is its tag), which is also
 * how an SFU host looks: neighbours compete for the same cores.
 *
 * Everything goes through a ProfileStore (InfluxDB when --influx/INFLUX_URL is set, else
 * a MemoryStore whose snapshot is saved to <out>/memory-snapshot.json). After each round
 * every session's range is exported (training/export.ts) into <out>/<session>.jsonl[.gz]
 * and listed in <out>/sessions.json, which is what training/train.ts reads.
 * The last stdout line is a JSON summary.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { createGzip } from 'node:zlib';
import { Presets, SingleBar } from 'cli-progress';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { z } from 'zod';
import { attach } from '../plugin/foresight';
import { parseOptions } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { InfluxStore } from '../plugin/store/influxStore';
import { MemoryStore } from '../plugin/store/memoryStore';
import { saveMemorySnapshot } from '../plugin/store/snapshot';
import type { ProfileStore } from '../plugin/store/types';
import type { WorkerLoadSample } from '../plugin/profile/schema';
import { exportDataset } from './export';
import { Replayer } from './loadgen/replayer';
import { runScenario } from './loadgen/runner';
import { loadScenario, type Scenario } from './loadgen/scenario';
import { generateScenario, parseFamilyRef } from './loadgen/generator';
import { MEDIA_CODECS } from './media/rig';
import { BrowserClients, DEFAULT_BROWSER_SPEC, type BrowserClientsOptions } from './loadgen/browserClients';
import { BROWSER_FAMILY, BROWSER_FAMILY_DEFAULTS, browserScenario } from './loadgen/browserFamily';
import { setTimeout as sleep } from 'node:timers/promises';

const SCENARIOS_DIR = join(__dirname, 'loadgen', 'scenarios');
export const DEFAULT_SESSIONS_DIR = join(__dirname, 'data', 'sessions');
export const SESSIONS_INDEX = 'sessions.json';


export const sessionEntrySchema = z.object({
	id: z.string().min(1),
	scenario: z.string(),
	seed: z.int(),
	workerId: z.string(),
	/** Recorded range, ms since the epoch (lead-in and tail included). */
	from: z.number(),
	to: z.number(),
	file: z.string(),
	counts: z.object({ worker_load: z.int(), connection_profile: z.int(), stream_profile: z.int(), action: z.int() }),
	/** Host load while it ran: 1-minute load average at start and end (of os.cpus().length cores). */
	hostLoad: z.object({ start: z.number(), end: z.number() }),
	/** Worker CPU (% of one core) while idle in the lead-in and tail: the measurement noise floor. */
	idleCpu: z.object({ mean: z.number(), std: z.number(), samples: z.int() }),
	peak: z.object({ peers: z.int(), publishers: z.int(), consumers: z.int() }),
	maxEventLagMs: z.number(),
});
export type SessionEntry = z.infer<typeof sessionEntrySchema>;

export const sessionsIndexSchema = z.object({
	format: z.literal('foresight-sessions'),
	version: z.literal(1),
	createdAt: z.string(),
	store: z.string(),
	host: z.object({ cpus: z.int(), model: z.string() }),
	statsIntervalMs: z.int(),
	sessions: z.array(sessionEntrySchema),
});
export type SessionsIndex = z.infer<typeof sessionsIndexSchema>;

export async function readSessionsIndex(dir: string): Promise<SessionsIndex> {
	const path = join(dir, SESSIONS_INDEX);
	const parsed = sessionsIndexSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
	if (!parsed.success) throw new Error(`${path}: not a sessions index: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
	return parsed.data;
}

/** A scenario file, or a generated family (whose structure depends on the seed). */
export type ScenarioSource = Scenario | ((seed: number) => Scenario);

export interface GenerateOptions {
	scenarios: ScenarioSource[];
	seeds: number[];
	out: string;
	store: ProfileStore;
	storeLabel: string;
	recordingsDir: string;
	workers?: number;
	leadS?: number;
	tailS?: number;
	gzip?: boolean;
	/** Keep the sessions already indexed in `out` (a re-run id replaces its old entry). */
	append?: boolean;
	/** How sessions whose scenario has `client: "browser"` groups start their Chromium (one per session). */
	browser?: BrowserClientsOptions;
	/** Called about once a second. */
	onTick?: (progress: { doneS: number; totalS: number; running: string[]; done: number; total: number }) => void;
}

interface Job {
	scenario: Scenario;
	seed: number;
	id: string;
}

function meanStd(values: readonly number[]): { mean: number; std: number } {
	if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
	const m = values.reduce((a, b) => a + b, 0) / values.length;
	return { mean: m, std: Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length) };
}

async function gzipFile(path: string): Promise<string> {
	await pipeline(createReadStream(path), createGzip({ level: 9 }), createWriteStream(`${path}.gz`));
	await rm(path);
	return `${path}.gz`;
}

/** Runs every (scenario, seed) and writes the session files plus the index; returns the index. */
export async function generateSessions(options: GenerateOptions): Promise<SessionsIndex> {
	const workers = Math.max(1, options.workers ?? 2);
	const leadMs = (options.leadS ?? 3) * 1000;
	const tailMs = (options.tailS ?? 10) * 1000;
	const statsIntervalMs = 1000;
	await mkdir(options.out, { recursive: true });
	const jobs: Job[] = options.scenarios.flatMap((source) =>
		options.seeds.map((seed) => {
			const scenario = typeof source === 'function' ? source(seed) : source;
			return { scenario, seed, id: `${scenario.name}-seed${seed}` };
		}),
	);
	const rounds: Job[][] = [];
	for (let i = 0; i < jobs.length; i += workers) rounds.push(jobs.slice(i, i + workers));
	const roundS = (round: Job[]) => Math.max(...round.map((j) => j.scenario.durationS)) + (leadMs + tailMs) / 1000;
	const totalS = rounds.reduce((a, r) => a + roundS(r), 0);

	const logger = createLogger('error');
	// Observe only: an allocation manager acting on the workers (dropping consumers, lowering
	// layers) would change the scenario's workload under the recording.
	const foresight = attach(mediasoup, { statsIntervalMs, loadSampleIntervalMs: 1000, useEnv: false, logger, dryRun: true, profiling: { sampling: true } });
	const loads = new Map<string, WorkerLoadSample[]>();
	foresight.on('workerLoad', (s) => {
		loads.get(s.workerId)?.push(s);
		void options.store.writeWorkerLoad([s]);
	});
	foresight.on('profiles', (p) => {
		void options.store.writeStreamProfiles(p.refreshed);
		void options.store.writeConnectionProfiles(p.refreshedConnections);
	});

	const entries: SessionEntry[] = [];
	let doneS = 0;
	let done = 0;
	try {
		for (const round of rounds) {
			const roundStart = Date.now();
			const status = new Map(round.map((j) => [j.id, `${j.id} starting`]));
			const ticker = setInterval(() => options.onTick?.({ doneS: doneS + (Date.now() - roundStart) / 1000, totalS, running: [...status.values()], done, total: jobs.length }), 1000);
			try {
				const results = await Promise.all(round.map((job) => runSession(job, { leadMs, tailMs, recordingsDir: options.recordingsDir, loads, browser: options.browser, status: (text) => status.set(job.id, `${job.id} ${text}`) })));
				// Let the last profiling round and load sample reach the store before exporting.
				await sleep(statsIntervalMs + 200);
				await options.store.flush(10_000);
				for (const r of results) {
					const file = join(options.out, `${r.job.id}.jsonl`);
					const counts = await exportDataset({ store: options.store, from: r.from, to: r.to, out: file, source: options.storeLabel, workerId: r.workerId });
					const stored = options.gzip ? await gzipFile(file) : file;
					entries.push({
						id: r.job.id,
						scenario: r.job.scenario.name,
						seed: r.job.seed,
						workerId: r.workerId,
						from: r.from,
						to: r.to,
						file: basename(stored),
						counts,
						hostLoad: r.hostLoad,
						idleCpu: r.idleCpu,
						peak: r.peak,
						maxEventLagMs: Math.round(r.maxEventLagMs),
					});
					done++;
				}
			} finally {
				clearInterval(ticker);
			}
			doneS += roundS(round);
			options.onTick?.({ doneS, totalS, running: [], done, total: jobs.length });
		}
	} finally {
		await foresight.detach();
	}
	const previous = options.append && existsSync(join(options.out, SESSIONS_INDEX)) ? (await readSessionsIndex(options.out)).sessions : [];
	const fresh = new Set(entries.map((e) => e.id));
	const index: SessionsIndex = {
		format: 'foresight-sessions',
		version: 1,
		createdAt: new Date().toISOString(),
		store: options.storeLabel,
		host: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
		statsIntervalMs,
		sessions: [...previous.filter((e) => !fresh.has(e.id)), ...entries],
	};
	await writeFile(join(options.out, SESSIONS_INDEX), `${JSON.stringify(index, null, '\t')}\n`);
	return index;
}

interface SessionResult {
	job: Job;
	workerId: string;
	from: number;
	to: number;
	hostLoad: { start: number; end: number };
	idleCpu: { mean: number; std: number; samples: number };
	peak: { peers: number; publishers: number; consumers: number };
	maxEventLagMs: number;
}

/** One session on a fresh worker: idle lead-in, the scenario, idle tail. */
async function runSession(
	job: Job,
	ctx: { leadMs: number; tailMs: number; recordingsDir: string; loads: Map<string, WorkerLoadSample[]>; browser?: BrowserClientsOptions; status: (text: string) => void },
): Promise<SessionResult> {
	// Chromium starts before the worker, so that its launch is over before the lead-in's idle samples.
	let browser: BrowserClients | undefined;
	if (job.scenario.groups.some((g) => g.client === 'browser')) {
		ctx.status('launching Chromium');
		browser = await BrowserClients.launch(ctx.browser ?? { sourcesDir: join(tmpdir(), 'foresight-sources') });
	}
	const worker = await mediasoup.createWorker({ logLevel: 'warn' });
	const workerId = String(worker.pid);
	const samples: WorkerLoadSample[] = [];
	const replayer = new Replayer({ seed: job.seed });
	const hostStart = loadavg()[0]!;
	try {
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const from = Date.now();
		// Foresight names workers by pid (plugin/observe/attach.ts).
		ctx.loads.set(workerId, samples);
		await sleep(ctx.leadMs);
		const scenarioStart = Date.now();
		const peak = { peers: 0, publishers: 0, consumers: 0 };
		const final = await runScenario(job.scenario, {
			router,
			replayer,
			recordingsDir: ctx.recordingsDir,
			seed: job.seed,
			...(browser ? { browser: (router: types.Router, e: Parameters<BrowserClients['publish']>[1], appData: Record<string, unknown>) => browser.publish(router, e, appData) } : {}),
			onEvent: (_e, s) => {
				ctx.status(`${(s.elapsedMs / 1000).toFixed(0)}s peers ${s.peers} consumers ${s.consumers} lag ${Math.round(s.maxEventLagMs)}ms`);
				peak.peers = Math.max(peak.peers, s.peers);
				peak.publishers = Math.max(peak.publishers, s.publishers);
				peak.consumers = Math.max(peak.consumers, s.consumers);
			},
		});
		// The runner returns at the last event; hold on to the scenario's full length.
		const remaining = scenarioStart + job.scenario.durationS * 1000 - Date.now();
		if (remaining > 0) await sleep(remaining);
		const scenarioEnd = Date.now();
		ctx.status('tail');
		await sleep(ctx.tailMs);
		const to = Date.now();
		const idle = samples.filter((s) => s.ts < scenarioStart || s.ts > scenarioEnd + 2000).map((s) => s.cpuPct);
		ctx.loads.delete(workerId);
		return {
			job,
			workerId,
			from,
			to,
			hostLoad: { start: hostStart, end: loadavg()[0]! },
			idleCpu: { ...meanStd(idle), samples: idle.length },
			peak,
			maxEventLagMs: final.maxEventLagMs,
		};
	} finally {
		replayer.close();
		await browser?.close();
		worker.close();
	}
}

/** Scenario files by name or path, and `gen:<family>` generated families; `adjust` caps each (sizes, duration). */
function resolveScenarios(list: string | undefined, peers: number, browserFamily: { pages: number; listeners: number }, adjust: (s: Scenario) => Scenario): ScenarioSource[] {
	const names = list ? list.split(',').filter(Boolean) : readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.json')).sort();
	return names.map((n) => {
		if (n === BROWSER_FAMILY) return (seed: number) => adjust(browserScenario(seed, browserFamily));
		const family = parseFamilyRef(n);
		if (family) return (seed: number) => adjust(generateScenario(family, seed, { peers }));
		return adjust(loadScenario(existsSync(n) ? n : join(SCENARIOS_DIR, n.endsWith('.json') ? n : `${n}.json`)));
	});
}

async function main(argv: string[]): Promise<void> {
	const { values } = parseArgs({
		args: argv,
		options: {
			scenarios: { type: 'string' },
			seeds: { type: 'string', default: '3' },
			'first-seed': { type: 'string', default: '1' },
			duration: { type: 'string' },
			lead: { type: 'string', default: '3' },
			tail: { type: 'string', default: '10' },
			workers: { type: 'string', default: '2' },
			out: { type: 'string', default: DEFAULT_SESSIONS_DIR },
			influx: { type: 'string' },
			db: { type: 'string' },
			recordings: { type: 'string', default: join(__dirname, '..', 'test', 'fixtures', 'recordings') },
			gzip: { type: 'boolean', default: false },
			'max-group': { type: 'string', default: '40' },
			append: { type: 'boolean', default: false },
			peers: { type: 'string', default: '24' },
			'browser-pages': { type: 'string', default: String(BROWSER_FAMILY_DEFAULTS.pages) },
			'browser-listeners': { type: 'string', default: String(BROWSER_FAMILY_DEFAULTS.listeners) },
			'browser-source': { type: 'string', default: DEFAULT_BROWSER_SPEC },
			sources: { type: 'string', default: join(tmpdir(), 'foresight-sources') },
			chromium: { type: 'string' },
		},
	});
	const positive = (name: string, v: string | undefined): number => {
		const n = Number(v);
		if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${v}`);
		return n;
	};
	const maxGroup = Number(values['max-group']);
	if (!(maxGroup >= 0)) throw new Error(`--max-group must be ≥ 0, got ${values['max-group']}`);
	const duration = values.duration ? positive('duration', values.duration) : undefined;
	const listeners = Number(values['browser-listeners']);
	if (!(Number.isInteger(listeners) && listeners >= 0)) throw new Error(`--browser-listeners must be an integer ≥ 0, got ${values['browser-listeners']}`);
	const browserFamily = { pages: Math.round(positive('browser-pages', values['browser-pages'])), listeners };
	const scenarios = resolveScenarios(values.scenarios, positive('peers', values.peers), browserFamily, (s) => {
		if (maxGroup > 0) for (const g of s.groups) g.count = Math.min(g.count, maxGroup);
		if (duration !== undefined) s.durationS = Math.min(s.durationS, duration);
		return s;
	});
	const firstSeed = Number(values['first-seed']);
	const seeds = Array.from({ length: Math.round(positive('seeds', values.seeds)) }, (_, i) => firstSeed + i);
	const out = resolve(values.out!);

	let store: ProfileStore;
	let storeLabel: string;
	const influxUrl = values.influx ?? process.env.INFLUX_URL;
	if (influxUrl) {
		const influx = parseOptions({ influx: { url: influxUrl, database: values.db ?? process.env.INFLUX_DATABASE ?? 'foresight' } }).influx!;
		store = await InfluxStore.open({ ...influx, logger: createLogger('warn') });
		storeLabel = `influx:${influx.database}`;
	} else {
		// Every session of the run is exported and snapshotted from it: none ages out.
		store = new MemoryStore({ retentionMs: Infinity });
		storeLabel = 'memory';
	}

	const bar = new SingleBar(
		{
			format: 'sessions [{bar}] {percentage}% | {value}/{total} s | {done}/{jobs} done | running {running}',
			stream: process.stderr,
			hideCursor: true,
			// Also when piped to a log: a line every 10 s.
			noTTYOutput: true,
			notTTYSchedule: 10_000,
		},
		Presets.shades_classic,
	);
	const started = Date.now();
	let barStarted = false;
	try {
		const index = await generateSessions({
			scenarios,
			seeds,
			out,
			store,
			storeLabel,
			recordingsDir: resolve(values.recordings!),
			workers: Math.round(positive('workers', values.workers)),
			leadS: Number(values.lead),
			tailS: Number(values.tail),
			gzip: values.gzip,
			append: values.append,
			browser: { sourcesDir: resolve(values.sources!), spec: values['browser-source']!, ...(values.chromium ? { chromiumPath: values.chromium } : {}) },
			onTick: (p) => {
				if (!barStarted) {
					bar.start(Math.round(p.totalS), 0, { done: 0, jobs: p.total, running: '-' });
					barStarted = true;
				}
				bar.update(Math.min(Math.round(p.totalS), Math.round(p.doneS)), { done: p.done, jobs: p.total, running: p.running.join(', ') || '-' });
			},
		});
		bar.stop();
		if (store instanceof MemoryStore) await saveMemorySnapshot(store, join(out, values.append ? `memory-snapshot-${Date.now()}.json` : 'memory-snapshot.json'));
		const idle = index.sessions.map((s) => s.idleCpu.std).filter(Number.isFinite);
		process.stdout.write(
			`${JSON.stringify({
				out,
				store: storeLabel,
				sessions: index.sessions.length,
				records: index.sessions.reduce((a, s) => a + s.counts.worker_load + s.counts.stream_profile + s.counts.connection_profile, 0),
				idle_cpu_std_pp: idle.length ? idle.reduce((a, b) => a + b, 0) / idle.length : null,
				host_load_avg: index.sessions.length ? index.sessions.reduce((a, s) => a + (s.hostLoad.start + s.hostLoad.end) / 2, 0) / index.sessions.length : null,
				wall_s: (Date.now() - started) / 1000,
			})}\n`,
		);
	} finally {
		bar.stop();
		await store.close();
	}
}

if (require.main === module) {
	main(process.argv.slice(2)).catch((err: unknown) => {
		process.stderr.write(`sessions failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
		process.exit(1);
	});
}
