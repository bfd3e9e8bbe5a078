/**
 * npm run bench -- soak [--duration-min 60] [--streams 400] [--growth-from-min 10]
 *   [--sample-every-s 60] [--churn-every-s 30] [--options JSON]
 *
 * Does Foresight leak over a long run? The whole plugin (dry run, its default options and
 * in-memory store) is attached to real mediasoup workers carrying replayed talking-head peers:
 * each copy is a publisher (video with 3 simulcast layers + audio) consumed by 3 SRTP bots,
 * 8 streams (2 producers + 6 consumers), so `--streams 400` is 50 copies on 2 workers. One
 * copy leaves and a new one joins every `--churn-every-s` seconds (0: never), so entities come
 * and go as in a live SFU and every forget path runs. The copies' packets are sent by a
 * SenderProcess, so this process hosts only the mediasoup side.
 *
 * Every `--sample-every-s` seconds, after a full garbage collection, it records:
 *  - heap used and ArrayBuffer memory (the typed-array store's rows live outside the heap);
 *  - listeners on the mediasoup observers and emitters of every live entity, and on Foresight's
 *    emitters (Foresight itself and the emitters it holds: registry, profiler, samplers…);
 *  - live timers (setTimeout/setInterval, counted by wrapping them: see liveTimers) and active
 *    resources by type (process.getActiveResourcesInfo(): ref'd timers, sockets, handles).
 * Entities are counted too: with churn the count at a sample can differ by a copy in flight, so
 * listeners are also given per entity.
 *
 * Growth is measured from the sample at `--growth-from-min` (the first minutes fill stores,
 * rings and JIT caches) to the last sample. Last line: one JSON object with
 * heap_growth_mb_after_10min (null when growth was measured from another minute; then see
 * heap_growth_mb and growth_from_min), listener_growth, timer_growth, and the settings.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as mediasoup from 'mediasoup';
import { attach } from '../plugin';
import { MEDIA_CODECS } from '../training/media/rig';
import { readRecording } from '../training/record/format';
import { Replayer } from '../training/loadgen/replayer';
import { SenderProcess } from '../training/loadgen/senderProcess';
import { joinCopy, type BotCopy } from './support/copies';

function arg(name: string, fallback: number): number {
	const i = process.argv.indexOf(`--${name}`);
	if (i === -1) return fallback;
	const v = Number(process.argv[i + 1]);
	if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: expected a non-negative number, got ${process.argv[i + 1]}`);
	return v;
}
function argText(name: string): string | undefined {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? undefined : process.argv[i + 1];
}

const DURATION_MIN = arg('duration-min', 60);
const STREAMS = arg('streams', 400);
const GROWTH_FROM_MIN = arg('growth-from-min', 10);
const SAMPLE_EVERY_S = arg('sample-every-s', 60);
const CHURN_EVERY_S = arg('churn-every-s', 30);
const EXTRA_OPTIONS = JSON.parse(argText('options') ?? '{}') as Record<string, unknown>;
const BOTS_PER_COPY = 3;
/** A copy's streams: its 2 producers and each bot's consumer of each. */
const STREAMS_PER_COPY = 2 + 2 * BOTS_PER_COPY;
const COPIES = Math.max(1, Math.round(STREAMS / STREAMS_PER_COPY));
const WORKERS = 2;

if (GROWTH_FROM_MIN >= DURATION_MIN) throw new Error(`--growth-from-min (${GROWTH_FROM_MIN}) must be below --duration-min (${DURATION_MIN})`);

/**
 * Live timers, counted at the source: process.getActiveResourcesInfo() lists only timers that
 * keep the event loop alive, and Foresight unrefs all of its own (a monitor must not keep an app
 * running), so a leak of them would not show there. setTimeout/setInterval are wrapped before
 * anything runs; a timeout leaves the set when it fires or is cleared, an interval when cleared.
 */
const liveTimers = new Set<unknown>();
{
	const g = globalThis as unknown as Record<'setTimeout' | 'setInterval' | 'clearTimeout' | 'clearInterval', (...a: unknown[]) => unknown>;
	const st = g.setTimeout.bind(globalThis);
	const si = g.setInterval.bind(globalThis);
	const ct = g.clearTimeout.bind(globalThis);
	const ci = g.clearInterval.bind(globalThis);
	g.setTimeout = (fn: unknown, ...rest: unknown[]) => {
		const t = st((...a: unknown[]) => {
			liveTimers.delete(t);
			if (typeof fn === 'function') (fn as (...x: unknown[]) => unknown)(...a);
		}, ...rest);
		liveTimers.add(t);
		return t;
	};
	g.setInterval = (...args: unknown[]) => {
		const t = si(...args);
		liveTimers.add(t);
		return t;
	};
	g.clearTimeout = (t: unknown) => {
		liveTimers.delete(t);
		return ct(t);
	};
	g.clearInterval = (t: unknown) => {
		liveTimers.delete(t);
		return ci(t);
	};
}

// A sample after a full collection measures what is retained, not what the last minute left for the collector.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));

interface Sample {
	atMin: number;
	heapUsedMb: number;
	arrayBuffersMb: number;
	entities: number;
	mediasoupListeners: number;
	foresightListeners: number;
	resources: Record<string, number>;
	/** Live timers of this process, unref'd ones included (see liveTimers). */
	timers: number;
	streamsProfiled: number;
}

/** Listeners on an EventEmitter, or on the EventEmitter a TypedEmitter wraps. */
function listenersOf(x: unknown): number {
	const e = x instanceof EventEmitter ? x : (x as { emitter?: unknown } | null)?.emitter;
	if (!(e instanceof EventEmitter)) return 0;
	let n = 0;
	for (const name of e.eventNames()) n += e.listenerCount(name);
	return n;
}

/**
 * Listeners on Foresight and on every emitter reachable from it through object fields, up to
 * `depth` fields away (Map and Set contents are not walked: they hold mediasoup entities,
 * which are counted on their own).
 */
function foresightListeners(root: object, depth = 3): number {
	const seen = new Set<object>();
	let total = 0;
	const walk = (o: object, d: number): void => {
		if (seen.has(o)) return;
		seen.add(o);
		total += listenersOf(o);
		if (d === 0 || o instanceof EventEmitter) return;
		for (const v of Object.values(o)) {
			if (v && typeof v === 'object' && !(v instanceof Map) && !(v instanceof Set) && !Array.isArray(v) && !ArrayBuffer.isView(v)) walk(v as object, d - 1);
		}
	};
	walk(root, depth);
	return total;
}

/** Every live mediasoup entity, tracked through mediasoup's own observers (a constant few listeners per entity). */
class Entities {
	readonly live = new Set<{ observer: EventEmitter } & EventEmitter>();

	constructor() {
		mediasoup.observer.on('newworker', (w) => {
			this.add(w);
			w.observer.on('newrouter', (r) => {
				this.add(r);
				r.observer.on('newtransport', (t) => {
					this.add(t);
					t.observer.on('newproducer', (p) => this.add(p));
					t.observer.on('newconsumer', (c) => this.add(c));
					t.observer.on('newdataproducer', (p) => this.add(p));
					t.observer.on('newdataconsumer', (c) => this.add(c));
				});
			});
		});
	}

	private add(e: { observer: EventEmitter } & EventEmitter): void {
		this.live.add(e);
		e.observer.once('close', () => this.live.delete(e));
	}

	listeners(): number {
		let n = 0;
		for (const e of this.live) n += listenersOf(e) + listenersOf(e.observer);
		return n;
	}
}

function mb(bytes: number): number {
	return Math.round((bytes / 2 ** 20) * 100) / 100;
}

async function main(): Promise<void> {
	const entities = new Entities();
	const foresight = attach(mediasoup, { ...EXTRA_OPTIONS, useEnv: false, logLevel: 'error', dryRun: true });
	let profiled = 0;
	foresight.on('profiles', (p) => (profiled = Math.max(profiled, p.streams.length)));
	const workers = await Promise.all(Array.from({ length: WORKERS }, () => mediasoup.createWorker({ logLevel: 'error' })));
	const routers = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: MEDIA_CODECS })));
	const sender = await SenderProcess.spawn({ seed: 7 });
	const replayer = new Replayer({ seed: 7, sender });
	const copies: BotCopy[] = [];
	let joined = 0;
	const join = async (): Promise<void> => {
		copies.push(await joinCopy(replayer, routers[joined++ % routers.length]!, recording, BOTS_PER_COPY));
	};
	const t0 = Date.now();
	for (let i = 0; i < COPIES; i++) await join();
	let churning: Promise<void> | undefined;
	const churn =
		CHURN_EVERY_S > 0
			? setInterval(() => {
					if (churning) return;
					const leaving = copies.shift()!;
					for (const s of leaving.subs) replayer.unsubscribe(s);
					replayer.unpublish(leaving.pub);
					churning = join().finally(() => (churning = undefined));
				}, CHURN_EVERY_S * 1000)
			: undefined;

	const samples: Sample[] = [];
	const sample = async (): Promise<Sample> => {
		// A copy half replaced would count its entities twice or not at all.
		while (churning) await churning;
		gc();
		const mem = process.memoryUsage();
		const resources: Record<string, number> = {};
		for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
		const s: Sample = {
			atMin: Math.round(((Date.now() - t0) / 60_000) * 100) / 100,
			heapUsedMb: mb(mem.heapUsed),
			arrayBuffersMb: mb(mem.arrayBuffers),
			entities: entities.live.size,
			mediasoupListeners: entities.listeners(),
			foresightListeners: foresightListeners(foresight),
			resources,
			timers: liveTimers.size,
			streamsProfiled: profiled,
		};
		profiled = 0;
		process.stdout.write(
			`t=${s.atMin.toFixed(1)}min heap=${s.heapUsedMb}MB arrayBuffers=${s.arrayBuffersMb}MB entities=${s.entities} ` +
				`listeners mediasoup=${s.mediasoupListeners} foresight=${s.foresightListeners} timers=${s.timers} profiled=${s.streamsProfiled} ` +
				`resources=${JSON.stringify(s.resources)}\n`,
		);
		return s;
	};
	const endAt = t0 + DURATION_MIN * 60_000;
	for (let next = t0 + SAMPLE_EVERY_S * 1000; next <= endAt; next += SAMPLE_EVERY_S * 1000) {
		await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
		samples.push(await sample());
	}
	clearInterval(churn);
	while (churning) await churning;
	// The sender process sends the copies' packets: its counters, not this process's.
	const stats = await sender.stats();
	const profilerStats = foresight.profilerStats();
	replayer.close();
	await sender.close();
	await foresight.detach();
	for (const w of workers) w.close();

	const from = samples.find((s) => s.atMin >= GROWTH_FROM_MIN - 0.05) ?? samples[0]!;
	const last = samples[samples.length - 1]!;
	const after = samples.filter((s) => s.atMin >= from.atMin);
	const heapGrowth = Math.round((last.heapUsedMb - from.heapUsedMb) * 100) / 100;
	const perEntity = (s: Sample): number => (s.entities > 0 ? s.mediasoupListeners / s.entities : 0);
	const summary = {
		heap_growth_mb_after_10min: GROWTH_FROM_MIN === 10 ? heapGrowth : null,
		heap_growth_mb: heapGrowth,
		// Least-squares slope over the samples after growth_from_min: a short run's growth as a rate.
		heap_slope_mb_per_h: Math.round(slopePerH(after.map((s) => [s.atMin, s.heapUsedMb])) * 100) / 100,
		array_buffers_growth_mb: Math.round((last.arrayBuffersMb - from.arrayBuffersMb) * 100) / 100,
		listener_growth: last.mediasoupListeners + last.foresightListeners - (from.mediasoupListeners + from.foresightListeners),
		mediasoup_listener_growth: last.mediasoupListeners - from.mediasoupListeners,
		foresight_listener_growth: last.foresightListeners - from.foresightListeners,
		mediasoup_listeners_per_entity: { from: round2(perEntity(from)), last: round2(perEntity(last)) },
		entities: { from: from.entities, last: last.entities },
		timer_growth: last.timers - from.timers,
		resource_growth: Object.fromEntries(
			[...new Set([...Object.keys(from.resources), ...Object.keys(last.resources)])].map((k) => [k, (last.resources[k] ?? 0) - (from.resources[k] ?? 0)]),
		),
		heap_mb: { from: from.heapUsedMb, last: last.heapUsedMb, max_after_from: Math.max(...after.map((s) => s.heapUsedMb)) },
		growth_from_min: from.atMin,
		samples: samples.map((s) => ({ min: s.atMin, heap_mb: s.heapUsedMb, ab_mb: s.arrayBuffersMb, listeners: s.mediasoupListeners + s.foresightListeners, timers: s.timers, entities: s.entities })),
		copies_joined: joined,
		profiler_swallowed_errors: profilerStats.swallowedErrors,
		sent_packets: stats.packetsSent,
		settings: {
			duration_min: DURATION_MIN,
			streams: COPIES * STREAMS_PER_COPY,
			copies: COPIES,
			workers: WORKERS,
			growth_from_min: GROWTH_FROM_MIN,
			sample_every_s: SAMPLE_EVERY_S,
			churn_every_s: CHURN_EVERY_S,
			options: EXTRA_OPTIONS,
		},
	};
	process.stdout.write(`${JSON.stringify(summary)}\n`);
	process.exit(0);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Least-squares slope of [minute, MB] points, per hour. */
function slopePerH(points: Array<[number, number]>): number {
	const n = points.length;
	if (n < 2) return 0;
	const mt = points.reduce((a, [t]) => a + t, 0) / n;
	const mv = points.reduce((a, [, v]) => a + v, 0) / n;
	let num = 0;
	let den = 0;
	for (const [t, v] of points) {
		num += (t - mt) * (v - mv);
		den += (t - mt) ** 2;
	}
	return den > 0 ? (60 * num) / den : 0;
}

main().catch((error: unknown) => {
	process.stderr.write(`soak bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});
