/**
 * npm run bench -- overhead [--phases 6] [--measure-s 20] [--warmup-s 10] [--copies 50] [--options JSON] [--in-process] [--no-jit-warmup] [--floor]
 *
 * Profiling overhead: the same load — `copies` replayed talking-head peers
 * (video with 3 simulcast layers + audio = 2 producers each) across 2 workers,
 * each peer consumed by 3 SRTP consumer bots (6 consumers per peer) — is run in
 * phases of three kinds, in a palindromic order (off, profiling, plugin,
 * plugin, profiling, off, …) so a slow drift of the machine cancels out, after one unmeasured
 * plugin phase that has V8 compile Foresight's code (`--no-jit-warmup` skips it):
 *  - off: no Foresight;
 *  - profiling: what the profiling issue budgets — the observer, the worker
 *    load sampler and the profiler with its default options, every profile
 *    handed to an in-memory store;
 *  - plugin: the whole of Foresight attached (dry run), i.e. profiling plus
 *    live prediction and allocation decision rounds;
 *  - floor (only with `--floor`): the getStats() calls the default schedule makes,
 *    answers discarded — the share of the profiling figure that is mediasoup's.
 * Fresh workers each phase, since the observer API only sees entities created
 * after attaching. Worker CPU comes from getResourceUsage() deltas over the
 * measured window; Node CPU from process.cpuUsage() of this process, which
 * hosts only the mediasoup side: the copies' packets are sent and the bots'
 * received by a SenderProcess, as clients are elsewhere in production (with
 * the replayer in this process, its third of a core, varying with timer
 * batching under load, drowned a 2 % difference: `--in-process` keeps that
 * layout for comparison).
 *
 * Last line: {"worker_cpu_ratio": profiling/off, "node_cpu_pct_per_100_producers":
 * profiling − off, and the same two for the whole plugin, …}
 */
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { attach, type Foresight } from '../plugin';
import { parseOptions } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { GraphObserver } from '../plugin/observe/attach';
import { WorkerLoadSampler } from '../plugin/observe/workerLoad';
import { Profiler } from '../plugin/profile/profiler';
import { MemoryStore } from '../plugin/store/memoryStore';
import { nextDueMs } from '../plugin/util/stagger';
import { MEDIA_CODECS } from '../training/media/rig';
import { readRecording } from '../training/record/format';
import { Replayer } from '../training/loadgen/replayer';
import { SenderProcess } from '../training/loadgen/senderProcess';

function arg(name: string, fallback: number): number {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? fallback : Number(process.argv[i + 1]);
}

/** `--floor` adds a `floor` phase to each half of the palindrome (see attachStatsFloor). */
const FLOOR = process.argv.includes('--floor');
const PHASES = arg('phases', FLOOR ? 8 : 6);
const MEASURE_S = arg('measure-s', 20);
const WARMUP_S = arg('warmup-s', 10);
const COPIES = arg('copies', 50);
const BOTS_PER_COPY = 3;
const IN_PROCESS = process.argv.includes('--in-process');
const JIT_WARMUP = !process.argv.includes('--no-jit-warmup');
/** `--options '{"profiling":{"sampling":false}}'`: Foresight options for both profiling modes, to see what a knob costs. */
const OPTIONS_AT = process.argv.indexOf('--options');
const EXTRA_OPTIONS = OPTIONS_AT === -1 ? {} : (JSON.parse(process.argv[OPTIONS_AT + 1] ?? '{}') as Record<string, unknown>);

const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));

type Mode = 'off' | 'profiling' | 'plugin' | 'floor';
const ORDER: readonly Mode[] = FLOOR ? ['off', 'floor', 'profiling', 'plugin', 'plugin', 'profiling', 'floor', 'off'] : ['off', 'profiling', 'plugin', 'plugin', 'profiling', 'off'];

interface PhaseResult {
	mode: Mode;
	workerCpuPct: number;
	nodeCpuPct: number;
	producers: number;
	consumers: number;
	profiledStreams: number;
	/** The replayed load actually delivered: phases compare only if these agree. */
	sentPacketsPerS: number;
	sinkPacketsPerS: number;
	/** In the sender process: over the whole phase (its counter is not reset at the window). */
	maxTickLagMs: number;
}

async function cpuMs(worker: mediasoup.types.Worker): Promise<number> {
	const u = await worker.getResourceUsage();
	return u.ru_utime + u.ru_stime;
}

/** The profiling agent alone, wired as Foresight wires it; resolves to its detach. */
function attachProfiling(onStreams: (count: number) => void): () => Promise<void> {
	const options = parseOptions({ ...EXTRA_OPTIONS, logLevel: 'error' });
	const log = createLogger(options.logLevel);
	const graph = new GraphObserver(mediasoup, log);
	const store = new MemoryStore();
	const load = new WorkerLoadSampler(graph.registry, options.loadSampleIntervalMs, log);
	load.on('sample', (s) => void store.writeWorkerLoad([s]));
	const profiler = new Profiler(graph.registry, { statsIntervalMs: options.statsIntervalMs, ...options.profiling }, log);
	profiler.on('profiles', (p) => {
		void store.writeStreamProfiles(p.streams);
		void store.writeConnectionProfiles(p.connections);
		onStreams(p.streams.length);
	});
	load.start();
	profiler.start();
	return async () => {
		load.stop();
		await profiler.stop();
		graph.detach();
		await store.close();
	};
}

/**
 * What the profile's schedule asks of mediasoup and nothing else: the observer, and the
 * getStats() calls on the default cadences (every producer each statsIntervalMs, each
 * consumer and transport every consumerStatsEveryMs/transportStatsEveryMs, staggered),
 * answers discarded. Any profiler with these defaults pays at least this much Node CPU:
 * the channel round trips and mediasoup's parsing of the answers.
 */
function attachStatsFloor(): () => Promise<void> {
	const options = parseOptions({ ...EXTRA_OPTIONS, logLevel: 'error' });
	const log = createLogger(options.logLevel);
	const graph = new GraphObserver(mediasoup, log);
	const nextDue = new Map<string, number>();
	const due = (id: string, now: number, everyMs: number): boolean => {
		const at = nextDue.get(id);
		if (at !== undefined && now < at) return false;
		nextDue.set(id, nextDueMs(now, everyMs, at === undefined));
		return true;
	};
	const ignore = (): void => undefined;
	const timer = setInterval(() => {
		const now = Date.now();
		const r = graph.registry;
		for (const p of r.all('producer')) p.handle.getStats().catch(ignore);
		for (const c of r.all('consumer')) if (due(c.id, now, options.profiling.consumerStatsEveryMs)) c.handle.getStats().catch(ignore);
		for (const t of r.all('transport')) if (due(t.id, now, options.profiling.transportStatsEveryMs)) t.handle.getStats().catch(ignore);
	}, options.statsIntervalMs);
	return async () => {
		clearInterval(timer);
		graph.detach();
	};
}

async function phase(mode: Mode): Promise<PhaseResult> {
	let foresight: Foresight | undefined;
	let detachProfiling: (() => Promise<void>) | undefined;
	let profiledStreams = 0;
	const onStreams = (count: number): void => void (profiledStreams = Math.max(profiledStreams, count));
	if (mode === 'plugin') {
		// Dry run: this measures observing, profiling and predicting, not the effect of acting.
		foresight = attach(mediasoup, { ...EXTRA_OPTIONS, useEnv: false, logLevel: 'error', dryRun: true });
		foresight.on('profiles', (p) => onStreams(p.streams.length));
	} else if (mode === 'profiling') {
		detachProfiling = attachProfiling(onStreams);
	} else if (mode === 'floor') {
		detachProfiling = attachStatsFloor();
	}
	const workers = await Promise.all([0, 1].map(() => mediasoup.createWorker({ logLevel: 'error' })));
	const routers = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: MEDIA_CODECS })));
	const sender = IN_PROCESS ? undefined : await SenderProcess.spawn({ seed: 7 });
	const replayer = new Replayer({ seed: 7, ...(sender ? { sender } : {}) });
	const replayStats = async () => (sender ? sender.stats() : replayer.stats());
	let producers = 0;
	let consumers = 0;
	for (let i = 0; i < COPIES; i++) {
		const router = routers[i % routers.length]!;
		const pub = await replayer.publish(router, recording, { loop: true, autoStart: false });
		const ps = [...pub.producers.values()];
		producers += ps.length;
		for (let b = 0; b < BOTS_PER_COPY; b++) {
			const sub = await replayer.subscribe(router, ps, { preferredSpatialLayer: 2 });
			consumers += sub.consumers.length;
		}
		// Copies start one by one, as peers join: started together, their first keyframes
		// would leave in one burst that the replayer cannot send on time.
		replayer.start(pub);
	}
	await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
	const w0 = await Promise.all(workers.map(cpuMs));
	const s0 = await replayStats();
	replayer.maxTickLagMs = 0;
	const n0 = process.cpuUsage();
	const t0 = performance.now();
	await new Promise((r) => setTimeout(r, MEASURE_S * 1000));
	const w1 = await Promise.all(workers.map(cpuMs));
	const n1 = process.cpuUsage(n0);
	const wallMs = performance.now() - t0;
	const s1 = await replayStats();
	replayer.close();
	await sender?.close();
	await foresight?.detach();
	await detachProfiling?.();
	for (const w of workers) w.close();
	await new Promise((r) => setTimeout(r, 500));
	const workerCpuMs = w1.reduce((a, v, i) => a + v - w0[i]!, 0);
	return {
		mode,
		workerCpuPct: (100 * workerCpuMs) / wallMs,
		nodeCpuPct: (100 * (n1.user + n1.system)) / 1000 / wallMs,
		producers,
		consumers,
		profiledStreams,
		sentPacketsPerS: ((s1.packetsSent - s0.packetsSent) * 1000) / wallMs,
		sinkPacketsPerS: ((s1.sinkPackets - s0.sinkPackets) * 1000) / wallMs,
		maxTickLagMs: s1.maxTickLagMs,
	};
}

async function main(): Promise<void> {
	if (JIT_WARMUP) {
		// The first phase to run Foresight's code also pays for compiling it (it runs interpreted until
		// V8 optimizes it): a run once measured 12.0 % of Node CPU in its first profiling phase and 7.8 %
		// in its second. An SFU compiles it once in its lifetime, so an unmeasured phase does it here.
		const r = await phase('plugin');
		process.stdout.write(`warm-up   plugin    (not counted: compiles Foresight's code) node_cpu=${r.nodeCpuPct.toFixed(2)}%\n`);
	}
	const results: PhaseResult[] = [];
	for (let i = 0; i < PHASES; i++) {
		const mode = ORDER[i % ORDER.length]!;
		const r = await phase(mode);
		results.push(r);
		process.stdout.write(
			`phase ${i + 1}/${PHASES} ${mode.padEnd(9)} producers=${r.producers} consumers=${r.consumers} ` +
				`profiled=${r.profiledStreams} worker_cpu=${r.workerCpuPct.toFixed(2)}% node_cpu=${r.nodeCpuPct.toFixed(2)}% ` +
				`sent=${Math.round(r.sentPacketsPerS)}/s sink=${Math.round(r.sinkPacketsPerS)}/s max_tick_lag=${r.maxTickLagMs.toFixed(0)}ms\n`,
		);
	}
	const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
	const of = (mode: Mode): PhaseResult[] => results.filter((r) => r.mode === mode);
	const workerPct = (mode: Mode): number => mean(of(mode).map((r) => r.workerCpuPct));
	const nodePct = (mode: Mode): number => mean(of(mode).map((r) => r.nodeCpuPct));
	const producers = results[0]!.producers;
	const perProducers = (mode: Mode): number => Number((((nodePct(mode) - nodePct('off')) * 100) / producers).toFixed(3));
	const offNode = of('off').map((r) => r.nodeCpuPct);
	const summary = {
		worker_cpu_ratio: Number((workerPct('profiling') / workerPct('off')).toFixed(4)),
		node_cpu_pct_per_100_producers: perProducers('profiling'),
		worker_cpu_ratio_full_plugin: Number((workerPct('plugin') / workerPct('off')).toFixed(4)),
		node_cpu_pct_per_100_producers_full_plugin: perProducers('plugin'),
		...(FLOOR ? { node_cpu_pct_per_100_producers_stats_floor: perProducers('floor'), worker_cpu_ratio_stats_floor: Number((workerPct('floor') / workerPct('off')).toFixed(4)) } : {}),
		worker_cpu_pct_off: Number(workerPct('off').toFixed(2)),
		node_cpu_pct_off: Number(nodePct('off').toFixed(2)),
		// How far the two baselines disagree: the noise floor of the Node CPU figures.
		node_cpu_pct_off_spread: Number((Math.max(...offNode) - Math.min(...offNode)).toFixed(2)),
		producers,
		consumers: results[0]!.consumers,
		phases: PHASES,
		measure_s: MEASURE_S,
	};
	process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
	process.stderr.write(`overhead bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});
