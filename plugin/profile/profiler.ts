/**
 * The profiler's I/O side: for every producer, consumer, data producer and data
 * consumer in the registry it runs getStats() rounds (one round of channel
 * requests per worker per tick), samples `rtp` traces on a low duty cycle, keeps
 * `keyframe` traces on, and taps payloads through a per-router DirectTransport
 * (audio TOC/levels, video keyframe headers, data message sizes). Everything it
 * learns goes into a pure StreamAccumulator per stream.
 *
 * Overhead knobs (ProfilerOptions): statsIntervalMs, traceEveryMs/traceWindowMs
 * (the rtp trace costs the worker ~1 µs per packet while on), tapEveryMs/
 * tapWindowMs (an audio tap costs one packet copy to Node per packet while on),
 * resolutionRefreshMs (each video resolution probe makes the sender produce one
 * keyframe per simulcast layer — the same cost as a new viewer joining),
 * probeWaitMs (a probe's tap forwards every packet of its layer to Node until
 * the keyframe arrives: a browser answers within ~200 ms, a replayed recording
 * only at its next recorded keyframe, seconds away).
 *
 * The work is split by role, each module with one small interface over its own
 * slot of the per-stream state (stream.ts): schedule.ts (stats rounds and
 * connection profiles), consumerCounters.ts (consumers' flow between their own
 * getStats()), traces.ts (trace windows and back-off), probes.ts (resolution
 * from keyframes), taps.ts (payload taps). This file adopts and forgets streams
 * and wires the modules together.
 */
import { z } from 'zod';
import { DEFAULT_CONSUMER_STATS_EVERY_MS, DEFAULT_SLOW_STATS_EVERY_MS, DEFAULT_TRANSPORT_STATS_EVERY_MS, DEFAULT_WINDOW_STATS_EVERY_MS } from '../config';
import type { Logger } from '../log';
import { isStreamNode, type GraphNode, type Registry, type StreamNode } from '../observe/registry';
import { TypedEmitter } from '../util/typedEmitter';
import { StreamAccumulator, type StreamMeta } from './accumulator';
import { ConsumerCounters, ConsumerFlows } from './consumerCounters';
import { ProfilerMeter, type ProfilerRequestKind, type ProfilerStats } from './meter';
import { ResolutionProber, type KeyframePacket } from './probes';
import { JOIN_FAST_MS, StatsSchedule, TRIGGER_FAST_MS, type FastTrigger, type WorkerRound } from './schedule';
import type { StreamProfile } from './schema';
import { StreamTimers, type ProfiledStream } from './stream';
import { Taps } from './taps';
import { TraceSampler, triggerOpensWindow } from './traces';

export { ConsumerCounters } from './consumerCounters';
export { resolutionOf } from './probes';
export type { FastTrigger, WorkerRound } from './schedule';

export interface ProfilerOptions {
	/** The round period: the fast tier's getStats() period. */
	statsIntervalMs: number;
	traceEveryMs: number;
	traceWindowMs: number;
	tapEveryMs: number;
	tapWindowMs: number;
	resolutionRefreshMs: number;
	probeWaitMs: number;
	/**
	 * A video stream whose framerate per layer held in its last trace window is traced up to
	 * this many times less often (doubling per agreeing window); a window that disagrees (a
	 * layer switched, the encoder dropped frames) returns it to traceEveryMs. 1: fixed duty.
	 */
	traceBackoffMax: number;
	/** Video producers' `sr` traces feed each layer's rate to scene-change detection (see TraceSampler.start); default true. */
	senderReports?: boolean;
	/** Opt-in keyword counting on string data messages (counts only). */
	keywords: readonly string[];
	/** Off: no traces and no taps, getStats() only (for apps that use traces themselves). */
	sampling: boolean;
	/**
	 * Opt-in: the resolution probe may ask senders for keyframes (counted in the profile's
	 * video.keyframesRequested); off, sizes are learned only from keyframes sent anyway (see probes.ts).
	 */
	keyframeProbes: boolean;
	/** The slow tier's getStats() period of producers and data streams (default DEFAULT_SLOW_STATS_EVERY_MS). */
	slowStatsEveryMs?: number;
	/** Period of each consumer's own getStats() (default DEFAULT_CONSUMER_STATS_EVERY_MS; staggered). */
	consumerStatsEveryMs?: number;
	/** The longest period a steady video consumer's own getStats() doubles to (default transportStatsEveryMs; see consumerPeriodMs). */
	consumerStatsMaxEveryMs?: number;
	/** Period of each transport's getStats() for connection profiles (default DEFAULT_TRANSPORT_STATS_EVERY_MS; staggered). */
	transportStatsEveryMs?: number;
	/** Period of each stream's window statistics rebuild (default DEFAULT_WINDOW_STATS_EVERY_MS; staggered). */
	windowStatsEveryMs?: number;
}

export type ProfilerEvents = {
	profiles: [WorkerRound];
};

export class Profiler extends TypedEmitter<ProfilerEvents> {
	private readonly streams = new Map<string, ProfiledStream>();
	private timer: NodeJS.Timeout | undefined;
	private inFlight = false;
	private readonly meter: ProfilerMeter;
	private readonly schedule: StatsSchedule;
	private readonly taps: Taps;
	private readonly prober: ResolutionProber;
	private readonly traces: TraceSampler;
	private readonly onAdded = (node: GraphNode): void => this.adopt(node);
	private readonly onRemoved = (node: GraphNode): void => {
		this.forget(node.id);
		if (node.kind === 'transport') this.schedule.forgetTransport(node);
		else if (node.kind === 'worker') this.schedule.forgetWorker(node.id);
	};

	constructor(
		private readonly registry: Registry,
		private readonly options: ProfilerOptions,
		private readonly log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a profiler event threw'));
		this.meter = new ProfilerMeter(log);
		const consumers = new ConsumerFlows((id) => this.streams.get(id)?.acc);
		this.schedule = new StatsSchedule(
			{
				statsIntervalMs: options.statsIntervalMs,
				slowStatsEveryMs: options.slowStatsEveryMs ?? DEFAULT_SLOW_STATS_EVERY_MS,
				consumerStatsEveryMs: options.consumerStatsEveryMs ?? DEFAULT_CONSUMER_STATS_EVERY_MS,
				transportStatsEveryMs: options.transportStatsEveryMs ?? DEFAULT_TRANSPORT_STATS_EVERY_MS,
				consumerStatsMaxEveryMs: options.consumerStatsMaxEveryMs ?? options.transportStatsEveryMs ?? DEFAULT_TRANSPORT_STATS_EVERY_MS,
				windowStatsEveryMs: options.windowStatsEveryMs ?? DEFAULT_WINDOW_STATS_EVERY_MS,
			},
			this.meter,
			consumers,
			registry,
			(s, trigger) => this.onFast(s, trigger),
		);
		this.taps = new Taps(registry, options, this.meter);
		this.prober = new ResolutionProber(options, this.taps, this.meter);
		// Keyframes seen by the traces: the prober tells induced from unasked ones, and an unasked one is a trigger.
		const keyframes = {
			induced: (s: ProfiledStream, nowMs: number) => this.prober.induced(s, nowMs),
			senderKeyframe: (s: ProfiledStream, packet: KeyframePacket, nowMs: number, unexpected: boolean) => {
				this.prober.senderKeyframe(s, packet, nowMs);
				if (unexpected) this.schedule.trigger(s, 'keyframe');
			},
			keyframeAsked: (s: ProfiledStream, ssrc: number, nowMs: number) => this.prober.keyframeAsked(s, ssrc, nowMs),
		};
		this.traces = new TraceSampler(options, keyframes, this.meter);
	}

	/** What the profiler asks of mediasoup and spends itself (requests and notifications by kind, own CPU). */
	stats(): ProfilerStats {
		return this.meter.stats();
	}

	start(): void {
		if (this.timer) return;
		// Running before adopting: adopt() takes nothing while the profiler is stopped.
		this.timer = setInterval(() => void this.tick().catch((error: unknown) => this.meter.swallowed('round', error, {})), this.options.statsIntervalMs);
		this.timer.unref();
		this.registry.on('added', this.onAdded);
		this.registry.on('removed', this.onRemoved);
		for (const kind of ['transport', 'producer', 'consumer', 'dataProducer', 'dataConsumer'] as const) {
			for (const node of this.registry.all(kind)) this.adopt(node);
		}
	}

	async stop(): Promise<void> {
		clearInterval(this.timer);
		this.timer = undefined;
		this.registry.off('added', this.onAdded);
		this.registry.off('removed', this.onRemoved);
		for (const id of [...this.streams.keys()]) this.forget(id);
		this.schedule.clear();
		await this.taps.closeAll();
	}

	/**
	 * Latest profile of one stream, if it is being profiled: the one its last refresh
	 * produced (computed on demand before the first).
	 */
	profileOf(streamId: string): StreamProfile | undefined {
		const s = this.streams.get(streamId);
		if (!s) return undefined;
		return s.round.latest ?? s.acc.profile(Date.now());
	}

	/**
	 * Every channel request the profiler makes, as it makes it (undefined: none). For the
	 * overhead bench, whose floor phase replays this log without the profiler.
	 */
	logRequests(listener: ((kind: ProfilerRequestKind, entityId: string, detail?: readonly string[]) => void) | undefined): void {
		this.meter.onRequest = listener;
	}

	/**
	 * A worker load sample: a sustained, significant rise of the worker's CPU (see CpuRise) puts
	 * its producers and data streams in the fast tier while it lasts (Foresight passes every sample).
	 */
	observeWorkerLoad(workerId: string, ts: number, cpuPct: number): void {
		this.schedule.workerCpu(workerId, ts, cpuPct);
	}

	/**
	 * Streams that matter now, e.g. the top contributors on a worker predicted hot: each enters
	 * the fast tier (a consumer asks the worker in the next round). Unknown ids are ignored.
	 */
	hurry(streamIds: Iterable<string>, reason: FastTrigger = 'predictedHot'): void {
		for (const id of streamIds) {
			const s = this.streams.get(id);
			if (s) this.schedule.trigger(s, reason);
		}
	}

	/** One stats round over all workers; resolves with what it emitted. */
	async tick(): Promise<WorkerRound[]> {
		if (this.inFlight) return [];
		this.inFlight = true;
		try {
			this.meter.snapshot();
			this.schedule.beginRound();
			const workers = [...this.registry.all('worker')].map((w) => w.id);
			const results = await Promise.all(workers.map((id) => this.schedule.round(id)));
			for (const r of results) this.emit('profiles', r);
			return results;
		} finally {
			this.inFlight = false;
		}
	}

	/** A stream entered the fast tier: its trace or audio tap window opens now (see triggerOpensWindow), unless one did within the fast window. */
	private onFast(s: ProfiledStream, trigger: FastTrigger): void {
		if (!this.options.sampling || s.node.kind !== 'producer' || !triggerOpensWindow(trigger)) return;
		if (s.node.mediaKind === 'video') this.traces.hurry(s, TRIGGER_FAST_MS);
		else this.taps.hurry(s, TRIGGER_FAST_MS);
	}

	private adopt(node: GraphNode): void {
		if (!this.timer) return;
		if (node.kind === 'transport') return this.schedule.adoptTransport(node);
		if (!isStreamNode(node) || this.streams.has(node.id)) return;
		const s: ProfiledStream = {
			node,
			acc: new StreamAccumulator(this.metaOf(node)),
			timers: new StreamTimers(),
			live: true,
			round: { dueRound: -1, fastUntilMs: 0, sampledAtMs: 0, disposers: [], index: -1, askedRound: -Infinity },
			...(node.kind === 'consumer' ? { consumer: new ConsumerCounters() } : {}),
		};
		this.streams.set(node.id, s);
		this.schedule.adopt(s);
		if (!this.options.sampling) return;
		if (node.kind === 'producer') {
			// Random phase so many producers do not switch traces or taps on in the same instant; within
			// the join's fast tier, so a new stream's framerates and codec details come while it is watched closely.
			const phase = Math.random() * Math.min(this.options.traceEveryMs, JOIN_FAST_MS);
			this.traces.start(s, node, phase);
			if (node.mediaKind === 'video') this.prober.start(s, node, phase);
			else s.timers.later(phase, () => void this.taps.startAudio(s, node));
		} else if (node.kind === 'dataProducer') void this.taps.startData(s, node);
	}

	private forget(id: string): void {
		const s = this.streams.get(id);
		if (!s) return;
		this.streams.delete(id);
		s.live = false;
		s.timers.clear();
		this.schedule.forget(s);
		this.traces.release(s);
		this.taps.release(s);
	}

	private metaOf(node: StreamNode): StreamMeta {
		const appData = node.handle.appData as Record<string, unknown>;
		const base = {
			streamId: node.id,
			entity: node.kind,
			workerId: node.workerId,
			routerId: node.routerId,
			transportId: node.transportId,
			appDataSource: appData.source,
			keywords: this.options.keywords,
		};
		if (node.kind === 'dataProducer' || node.kind === 'dataConsumer') {
			return { ...base, kind: 'data', encodings: [], ...(node.kind === 'dataConsumer' ? { producerId: node.dataProducerId } : {}) };
		}
		const rtp = node.handle.rtpParameters;
		const codec = rtp.codecs.find((c) => !/\/(rtx|red|ulpfec)$/i.test(c.mimeType)) ?? rtp.codecs[0];
		const producer = node.kind === 'consumer' ? this.registry.get('producer', node.producerId) : node;
		const producerAppData = (producer?.handle.appData ?? appData) as Record<string, unknown>;
		const resolution = z
			.array(z.object({ width: z.number().positive(), height: z.number().positive() }))
			.safeParse(producerAppData.layers);
		const encodings =
			node.kind === 'consumer' && producer
				? // A consumer's layers are its producer's (its own rtpParameters carry one encoding).
					producer.handle.rtpParameters.encodings ?? []
				: (rtp.encodings ?? []);
		return {
			...base,
			appDataSource: producerAppData.source,
			kind: node.mediaKind,
			...(node.kind === 'consumer' ? { producerId: node.producerId } : {}),
			...(codec ? { mimeType: codec.mimeType, clockRate: codec.clockRate } : {}),
			channels: /\/opus$/i.test(codec?.mimeType ?? '') ? (codec?.parameters?.stereo === 1 ? 2 : 1) : (codec?.channels ?? 1),
			encodings: encodings.map((e) => ({
				...(e.ssrc !== undefined ? { ssrc: e.ssrc } : {}),
				...(e.rid !== undefined ? { rid: e.rid } : {}),
				...scaleOf(e),
				...scalability(e.scalabilityMode),
			})),
			...(resolution.success ? { appDataResolution: resolution.data } : {}),
			...(node.kind === 'consumer' ? { inheritsWindows: true } : {}),
		};
	}
}

/**
 * A browser's encodings carry scaleResolutionDownBy (mediasoup-client copies the app's
 * encodings into the rtpParameters it sends); mediasoup's types leave it out but keep it.
 */
function scaleOf(e: object): { scaleResolutionDownBy?: number } {
	const scale = (e as { scaleResolutionDownBy?: unknown }).scaleResolutionDownBy;
	return typeof scale === 'number' && Number.isFinite(scale) && scale >= 1 ? { scaleResolutionDownBy: scale } : {};
}

/** "L1T3" / "S3T3" / "L3T3_KEY" → layer counts. */
export function scalability(mode: string | undefined): { spatialLayers?: number; temporalLayers?: number } {
	const m = /^[LS](\d+)T(\d+)/.exec(mode ?? '');
	return m ? { spatialLayers: Number(m[1]), temporalLayers: Number(m[2]) } : {};
}

