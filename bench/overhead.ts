/**
 * npm run bench -- overhead [--steady-s 300] [--phase-s 60] [--warmup-s 30] [--copies 50]
 *   [--order off,profiling,…] [--options JSON] [--in-process] [--no-jit-warmup] [--plugin]
 *   [--cpu-series FILE]
 *
 * Profiling overhead, all in one run. The same load — `copies` replayed talking-head
 * peers (video with 3 simulcast layers + audio = 2 producers each) across 2 workers, each
 * peer consumed by 3 SRTP consumer bots (6 consumers per peer) — runs in phases of these
 * kinds, interleaved in a palindromic order so a slow drift of the machine cancels out:
 *  - off: no Foresight (steady load);
 *  - profiling: the observer, the worker load sampler and the profiler with its default
 *    options, every refreshed profile handed to an in-memory store (steady load);
 *  - floor: no profiler; the channel requests the last profiling phase made (its request
 *    log: stats requests and trace-type switches, at the same times after the phase start,
 *    on the entity created in the same place) replayed, answers discarded — what mediasoup
 *    and the worker cost for that schedule. profiling − floor is the profiler's own work.
 *    Tap requests (a DirectTransport's consumers) are not replayed: their packets count as own work;
 *  - hot: profiling with every stream hurried each second, as on a worker predicted hot
 *    (the fast tier everywhere);
 *  - churn-off / churn: copies leave and join (one copy replaced every 2 s), without and with profiling;
 *  - plugin (with --plugin): the whole of Foresight attached (dry run).
 * off, profiling and floor phases measure `--steady-s` seconds, the others `--phase-s`,
 * each after `--warmup-s` seconds (longer than the 20 s a new producer spends in the fast
 * tier, so steady phases are steady). Fresh workers each phase, since the observer API only
 * sees entities created after attaching. Worker CPU from getResourceUsage() deltas over
 * the measured window; Node CPU from process.cpuUsage() of this process, which hosts only
 * the mediasoup side: the copies' packets are sent and the bots' received by a
 * SenderProcess, as clients are elsewhere in production (`--in-process` keeps them here).
 *
 * `--cpu-series FILE` appends every worker load reading of the profiling-kind phases to FILE
 * as JSON lines ({ phase, mode, worker, t_s, cpu_pct }, t_s since the phase started), the
 * series the rising-CPU trigger sees.
 *
 * Each phase prints a line with its figures and the profiler's requests/s and
 * notifications/s by kind. Last line: one JSON object (see `summary` below).
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { attach, type Foresight } from '../plugin';
import { parseOptions } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { GraphObserver } from '../plugin/observe/attach';
import type { GraphNode, Registry } from '../plugin/observe/registry';
import { WorkerLoadSampler } from '../plugin/observe/workerLoad';
import { PROFILER_NOTIFICATION_KINDS, PROFILER_REQUEST_KINDS, type ProfilerRequestKind, type ProfilerStats } from '../plugin/profile/meter';
import { Profiler } from '../plugin/profile/profiler';
import { MemoryStore } from '../plugin/store/memoryStore';
import { MEDIA_CODECS } from '../training/media/rig';
import { readRecording } from '../training/record/format';
import { Replayer } from '../training/loadgen/replayer';
import { SenderProcess } from '../training/loadgen/senderProcess';
import { joinCopy, type BotCopy } from './support/copies';

function arg(name: string, fallback: number): number {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? fallback : Number(process.argv[i + 1]);
}
function argText(name: string): string | undefined {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? undefined : process.argv[i + 1];
}

const STEADY_S = arg('steady-s', 300);
const PHASE_S = arg('phase-s', 60);
const WARMUP_S = arg('warmup-s', 30);
const COPIES = arg('copies', 50);
const BOTS_PER_COPY = 3;
/** In churn phases one copy leaves and a new one joins this often. */
const CHURN_EVERY_MS = 2000;
/** In hot phases every stream is hurried this often (a trigger holds the fast tier for 10 s). */
const HOT_EVERY_MS = 1000;
const IN_PROCESS = process.argv.includes('--in-process');
const JIT_WARMUP = !process.argv.includes('--no-jit-warmup');
const PLUGIN = process.argv.includes('--plugin');
/** `--options '{"profiling":{"sampling":false}}'`: Foresight options for every profiling mode, to see what a knob costs. */
const EXTRA_OPTIONS = JSON.parse(argText('options') ?? '{}') as Record<string, unknown>;
const CPU_SERIES = argText('cpu-series');
let phaseNo = 0;

const MODES = ['off', 'profiling', 'floor', 'hot', 'churn-off', 'churn', 'plugin'] as const;
type Mode = (typeof MODES)[number];
const DEFAULT_ORDER: readonly Mode[] = [
	'off',
	'profiling',
	'floor',
	'hot',
	'churn-off',
	'churn',
	...(PLUGIN ? (['plugin', 'plugin'] as const) : []),
	'churn',
	'churn-off',
	'hot',
	'floor',
	'profiling',
	'off',
];
const ORDER: readonly Mode[] = argText('order')
	? argText('order')!.split(',').map((m) => {
			if (!(MODES as readonly string[]).includes(m)) throw new Error(`--order: unknown phase ${m} (one of ${MODES.join(', ')})`);
			return m as Mode;
		})
	: DEFAULT_ORDER;

const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));

interface PhaseResult {
	mode: Mode;
	measureS: number;
	workerCpuPct: number;
	nodeCpuPct: number;
	producers: number;
	consumers: number;
	/** Most streams one round carried. */
	profiledStreams: number;
	/** Profiles built per second (what the store is handed). */
	refreshedPerS: number;
	requestsPerS: Partial<Record<ProfilerRequestKind, number>>;
	notificationsPerS: Record<string, number>;
	/** Triggers of the tiered schedule per second, by kind. */
	triggersPerS: Record<string, number>;
	/** The replayed load actually delivered: phases compare only if these agree. */
	sentPacketsPerS: number;
	sinkPacketsPerS: number;
	/** In the sender process: over the whole phase (its counter is not reset at the window). */
	maxTickLagMs: number;
}

/** A request of the log, with where its entity was created (kind and creation order), so a later phase can find its counterpart. */
interface LoggedRequest {
	atMs: number;
	kind: ProfilerRequestKind;
	entity: string;
	detail?: readonly string[];
}

async function cpuMs(worker: mediasoup.types.Worker): Promise<number> {
	const u = await worker.getResourceUsage();
	return u.ru_utime + u.ru_stime;
}

/**
 * Each entity of a phase by `${kind}#${creation order}`: phases create the same entities in
 * the same order (one copy after the other), so a key names the same place in every phase.
 */
class EntityIndex {
	private readonly keyById = new Map<string, string>();
	private readonly nodeByKey = new Map<string, GraphNode>();
	private readonly counts = new Map<string, number>();

	constructor(registry: Registry) {
		registry.on('added', (node) => {
			const n = this.counts.get(node.kind) ?? 0;
			this.counts.set(node.kind, n + 1);
			const key = `${node.kind}#${n}`;
			this.keyById.set(node.id, key);
			this.nodeByKey.set(key, node);
		});
	}

	keyOf(id: string): string | undefined {
		return this.keyById.get(id);
	}

	node(key: string): GraphNode | undefined {
		return this.nodeByKey.get(key);
	}
}

interface Attached {
	profiler?: Profiler;
	detach(): Promise<void>;
}

/** The profiling agent alone, wired as Foresight wires it. */
function attachProfiling(onRound: (streams: number, refreshed: number) => void, log: LoggedRequest[] | undefined, t0: number, mode: Mode): Attached {
	const options = parseOptions({ ...EXTRA_OPTIONS, logLevel: 'error' });
	const logger = createLogger(options.logLevel);
	const graph = new GraphObserver(mediasoup, logger);
	const index = log ? new EntityIndex(graph.registry) : undefined;
	const store = new MemoryStore();
	const load = new WorkerLoadSampler(graph.registry, options.loadSampleIntervalMs, logger);
	const profiler = new Profiler(graph.registry, { statsIntervalMs: options.statsIntervalMs, ...options.profiling }, logger);
	load.on('sample', (s) => {
		void store.writeWorkerLoad([s]);
		profiler.observeWorkerLoad(s.workerId, s.ts, s.cpuPct);
		if (CPU_SERIES) {
			const worker = [...graph.registry.all('worker')].findIndex((w) => w.id === s.workerId);
			appendFileSync(CPU_SERIES, `${JSON.stringify({ phase: phaseNo, mode, worker, t_s: (s.ts - t0) / 1000, cpu_pct: s.cpuPct })}\n`);
		}
	});
	profiler.on('profiles', (p) => {
		void store.writeStreamProfiles(p.refreshed);
		void store.writeConnectionProfiles(p.refreshedConnections);
		onRound(p.streams.length, p.refreshed.length);
	});
	if (log && index) {
		profiler.logRequests((kind, id, detail) => {
			const entity = index.keyOf(id);
			if (entity) log.push({ atMs: Date.now() - t0, kind, entity, ...(detail ? { detail } : {}) });
		});
	}
	load.start();
	profiler.start();
	return {
		profiler,
		async detach() {
			load.stop();
			await profiler.stop();
			graph.detach();
			await store.close();
		},
	};
}

/** The request log of a profiling phase replayed on this phase's entities (see the header). */
function attachFloor(log: readonly LoggedRequest[], t0: number): Attached {
	const options = parseOptions({ ...EXTRA_OPTIONS, logLevel: 'error' });
	const graph = new GraphObserver(mediasoup, createLogger(options.logLevel));
	const index = new EntityIndex(graph.registry);
	const ignore = (): void => undefined;
	let next = 0;
	const replay = (): void => {
		const now = Date.now() - t0;
		for (; next < log.length && log[next]!.atMs <= now; next++) {
			const r = log[next]!;
			const node = index.node(r.entity);
			if (!node || node.handle.closed) continue;
			if (r.kind === 'traceSwitch' && node.kind === 'producer') {
				node.handle.enableTraceEvent((r.detail ?? []) as mediasoup.types.ProducerTraceEventType[]).catch(ignore);
			} else if (r.kind !== 'tap' && r.kind !== 'traceSwitch' && 'getStats' in node.handle) {
				(node.handle.getStats() as Promise<unknown>).catch(ignore);
			}
		}
	};
	// The profiler sends a round's requests together once a second; 20 ms keeps the replay within a tick of the log.
	const timer = setInterval(replay, 20);
	return {
		async detach() {
			clearInterval(timer);
			graph.detach();
		},
	};
}

const SINCE_START: LoggedRequest[] = [];
let lastProfilingLog: LoggedRequest[] = SINCE_START;

async function phase(mode: Mode): Promise<PhaseResult> {
	phaseNo++;
	const measureS = mode === 'off' || mode === 'profiling' || mode === 'floor' ? STEADY_S : PHASE_S;
	const t0 = Date.now();
	let foresight: Foresight | undefined;
	let attached: Attached | undefined;
	let profiledStreams = 0;
	let refreshed = 0;
	const onRound = (streams: number, built: number): void => {
		profiledStreams = Math.max(profiledStreams, streams);
		refreshed += built;
	};
	const log: LoggedRequest[] = [];
	if (mode === 'plugin') {
		// Dry run: this measures observing, profiling and predicting, not the effect of acting.
		foresight = attach(mediasoup, { ...EXTRA_OPTIONS, useEnv: false, logLevel: 'error', dryRun: true });
		foresight.on('profiles', (p) => onRound(p.streams.length, p.refreshed.length));
	} else if (mode === 'profiling' || mode === 'hot' || mode === 'churn') {
		attached = attachProfiling(onRound, mode === 'profiling' ? log : undefined, t0, mode);
	} else if (mode === 'floor') {
		attached = attachFloor(lastProfilingLog, t0);
	}
	const workers = await Promise.all([0, 1].map(() => mediasoup.createWorker({ logLevel: 'error' })));
	const routers = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: MEDIA_CODECS })));
	const sender = IN_PROCESS ? undefined : await SenderProcess.spawn({ seed: 7 });
	const replayer = new Replayer({ seed: 7, ...(sender ? { sender } : {}) });
	const replayStats = async () => (sender ? sender.stats() : replayer.stats());
	let producers = 0;
	let consumers = 0;
	const copies: BotCopy[] = [];
	let joined = 0;
	const join = async (): Promise<void> => {
		copies.push(await joinCopy(replayer, routers[joined++ % routers.length]!, recording, BOTS_PER_COPY));
	};
	for (let i = 0; i < COPIES; i++) await join();
	producers = copies.reduce((a, c) => a + c.pub.producers.size, 0);
	consumers = copies.reduce((a, c) => a + c.subs.reduce((b, s) => b + s.consumers.length, 0), 0);
	let churn: NodeJS.Timeout | undefined;
	let churning = false;
	if (mode === 'churn' || mode === 'churn-off') {
		churn = setInterval(() => {
			if (churning) return;
			churning = true;
			const leaving = copies.shift()!;
			for (const s of leaving.subs) replayer.unsubscribe(s);
			replayer.unpublish(leaving.pub);
			void join().finally(() => (churning = false));
		}, CHURN_EVERY_MS);
	}
	let hot: NodeJS.Timeout | undefined;
	if (mode === 'hot' && attached?.profiler) {
		const profiler = attached.profiler;
		hot = setInterval(() => {
			const ids = copies.flatMap((c) => [...c.pub.producers.values()].map((p) => p.id).concat(c.subs.flatMap((s) => s.consumers.map((x) => x.id))));
			profiler.hurry(ids, 'predictedHot');
		}, HOT_EVERY_MS);
	}
	await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
	const w0 = await Promise.all(workers.map(cpuMs));
	const s0 = await replayStats();
	const p0 = attached?.profiler?.stats() ?? foresight?.profilerStats();
	const refreshed0 = refreshed;
	replayer.maxTickLagMs = 0;
	const n0 = process.cpuUsage();
	const tm0 = performance.now();
	await new Promise((r) => setTimeout(r, measureS * 1000));
	const w1 = await Promise.all(workers.map(cpuMs));
	const n1 = process.cpuUsage(n0);
	const wallMs = performance.now() - tm0;
	const p1 = attached?.profiler?.stats() ?? foresight?.profilerStats();
	const refreshed1 = refreshed;
	const s1 = await replayStats();
	clearInterval(churn);
	clearInterval(hot);
	replayer.close();
	await sender?.close();
	await foresight?.detach();
	await attached?.detach();
	for (const w of workers) w.close();
	await new Promise((r) => setTimeout(r, 500));
	if (mode === 'profiling') lastProfilingLog = log;
	const workerCpuMs = w1.reduce((a, v, i) => a + v - w0[i]!, 0);
	return {
		mode,
		measureS,
		workerCpuPct: (100 * workerCpuMs) / wallMs,
		nodeCpuPct: (100 * (n1.user + n1.system)) / 1000 / wallMs,
		producers,
		consumers,
		profiledStreams,
		refreshedPerS: ((refreshed1 - refreshed0) * 1000) / wallMs,
		requestsPerS: p0 && p1 ? perSecond(PROFILER_REQUEST_KINDS, p0.requests, p1.requests, wallMs) : floorRequestsPerS(lastProfilingLog, mode, wallMs),
		notificationsPerS: p0 && p1 ? perSecond(PROFILER_NOTIFICATION_KINDS, p0.notifications, p1.notifications, wallMs) : {},
		triggersPerS: p0 && p1 ? triggerRates(p0, p1, wallMs) : {},
		sentPacketsPerS: ((s1.packetsSent - s0.packetsSent) * 1000) / wallMs,
		sinkPacketsPerS: ((s1.sinkPackets - s0.sinkPackets) * 1000) / wallMs,
		maxTickLagMs: s1.maxTickLagMs,
	};
}

function perSecond<K extends string>(kinds: readonly K[], a: Record<K, number>, b: Record<K, number>, wallMs: number): Record<K, number> {
	const out = {} as Record<K, number>;
	for (const k of kinds) out[k] = round2(((b[k] - a[k]) * 1000) / wallMs);
	return out;
}

function triggerRates(a: ProfilerStats, b: ProfilerStats, wallMs: number): Record<string, number> {
	const out: Record<string, number> = {};
	for (const [k, v] of Object.entries(b.fastTriggers)) out[k] = round2(((v - (a.fastTriggers[k] ?? 0)) * 1000) / wallMs);
	return out;
}

/** A floor phase's request rates are those of the log it replays over the measured window. */
function floorRequestsPerS(log: readonly LoggedRequest[], mode: Mode, wallMs: number): Partial<Record<ProfilerRequestKind, number>> {
	if (mode !== 'floor') return {};
	const from = WARMUP_S * 1000;
	const out: Partial<Record<ProfilerRequestKind, number>> = {};
	for (const r of log) {
		if (r.atMs < from || r.atMs >= from + wallMs || r.kind === 'tap') continue;
		out[r.kind] = (out[r.kind] ?? 0) + 1;
	}
	for (const k of Object.keys(out) as ProfilerRequestKind[]) out[k] = round2((out[k]! * 1000) / wallMs);
	return out;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
function median(xs: number[]): number {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
	if (ORDER.includes('floor') && !ORDER.slice(0, ORDER.indexOf('floor')).includes('profiling')) {
		throw new Error('--order: a floor phase replays an earlier profiling phase; put one before it');
	}
	if (JIT_WARMUP) {
		// The first phase to run Foresight's code also pays for compiling it (it runs interpreted until
		// V8 optimizes it). An SFU compiles it once in its lifetime, so an unmeasured phase does it here.
		const saved = lastProfilingLog;
		const r = await phase('hot');
		lastProfilingLog = saved;
		process.stdout.write(`warm-up   hot (not counted: compiles Foresight's code) node_cpu=${r.nodeCpuPct.toFixed(2)}%\n`);
	}
	const results: PhaseResult[] = [];
	for (let i = 0; i < ORDER.length; i++) {
		const r = await phase(ORDER[i]!);
		results.push(r);
		const nonZero = (o: Record<string, number | undefined>): string =>
			Object.entries(o)
				.filter(([, v]) => v)
				.map(([k, v]) => `${k}=${v}`)
				.join(' ');
		process.stdout.write(
			`phase ${i + 1}/${ORDER.length} ${r.mode.padEnd(9)} ${r.measureS}s producers=${r.producers} consumers=${r.consumers} ` +
				`profiled=${r.profiledStreams} refreshed=${r.refreshedPerS.toFixed(1)}/s worker_cpu=${r.workerCpuPct.toFixed(2)}% node_cpu=${r.nodeCpuPct.toFixed(2)}% ` +
				`sent=${Math.round(r.sentPacketsPerS)}/s sink=${Math.round(r.sinkPacketsPerS)}/s max_tick_lag=${r.maxTickLagMs.toFixed(0)}ms\n` +
				`    requests/s: ${nonZero(r.requestsPerS) || '-'}\n    notifications/s: ${nonZero(r.notificationsPerS) || '-'}\n    triggers/s: ${nonZero(r.triggersPerS) || '-'}\n`,
		);
	}
	const of = (mode: Mode): PhaseResult[] => results.filter((r) => r.mode === mode);
	const has = (mode: Mode): boolean => of(mode).length > 0;
	const nodePct = (mode: Mode): number => mean(of(mode).map((r) => r.nodeCpuPct));
	const workerPct = (mode: Mode): number => mean(of(mode).map((r) => r.workerCpuPct));
	const producers = results[0]!.producers;
	const per100 = (mode: Mode, base: Mode): number | null => (has(mode) && has(base) ? round3(((nodePct(mode) - nodePct(base)) * 100) / producers) : null);
	/** Each phase of `mode` against the mean of `base` phases; the median over them. */
	const ratio = (mode: Mode, base: Mode): number | null => (has(mode) && has(base) ? round4(median(of(mode).map((r) => r.workerCpuPct / workerPct(base)))) : null);
	const offNode = of('off').map((r) => r.nodeCpuPct);
	const offWorker = of('off').map((r) => r.workerCpuPct);
	const meanRates = (mode: Mode, pick: (r: PhaseResult) => Record<string, number | undefined>): Record<string, number> => {
		const out: Record<string, number> = {};
		for (const r of of(mode)) for (const [k, v] of Object.entries(pick(r))) if (v) out[k] = round2((out[k] ?? 0) + v / of(mode).length);
		return out;
	};
	const summary = {
		node_cpu_pct_per_100_producers: per100('profiling', 'off'),
		node_cpu_pct_per_100_producers_all_hot: per100('hot', 'off'),
		own_work_pct_per_100_producers: per100('profiling', 'floor'),
		node_cpu_pct_per_100_producers_floor: per100('floor', 'off'),
		node_cpu_pct_per_100_producers_join_leave: per100('churn', 'churn-off'),
		...(PLUGIN ? { node_cpu_pct_per_100_producers_full_plugin: per100('plugin', 'off'), worker_cpu_ratio_full_plugin: ratio('plugin', 'off') } : {}),
		worker_cpu_ratio: ratio('profiling', 'off'),
		worker_cpu_ratio_all_hot: ratio('hot', 'off'),
		worker_cpu_ratio_floor: ratio('floor', 'off'),
		worker_cpu_ratio_join_leave: ratio('churn', 'churn-off'),
		requests_per_s: meanRates('profiling', (r) => r.requestsPerS),
		notifications_per_s: meanRates('profiling', (r) => r.notificationsPerS),
		requests_per_s_all_hot: meanRates('hot', (r) => r.requestsPerS),
		notifications_per_s_all_hot: meanRates('hot', (r) => r.notificationsPerS),
		triggers_per_s: meanRates('profiling', (r) => r.triggersPerS),
		profiles_per_s: round2(mean(of('profiling').map((r) => r.refreshedPerS))),
		worker_cpu_pct_off: round2(workerPct('off')),
		node_cpu_pct_off: round2(nodePct('off')),
		// How far the off phases disagree: the noise floor of the figures above.
		node_cpu_pct_off_spread: round2(Math.max(...offNode) - Math.min(...offNode)),
		worker_cpu_pct_off_spread: round2(Math.max(...offWorker) - Math.min(...offWorker)),
		phases: results.map((r) => ({ mode: r.mode, s: r.measureS, node_cpu_pct: round2(r.nodeCpuPct), worker_cpu_pct: round2(r.workerCpuPct) })),
		producers,
		consumers: results[0]!.consumers,
		steady_s: STEADY_S,
		phase_s: PHASE_S,
		warmup_s: WARMUP_S,
	};
	process.stdout.write(`${JSON.stringify(summary)}\n`);
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const round4 = (x: number): number => Math.round(x * 10000) / 10000;

main().catch((error: unknown) => {
	process.stderr.write(`overhead bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});
