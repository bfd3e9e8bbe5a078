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
 * Channel round trips dominate the profiler's own CPU (each getStats() is one
 * request and one decoded response in Node), so only producers and data
 * streams are asked every statsIntervalMs. A consumer forwards its producer's
 * packets: its own getStats() runs every consumerStatsEveryMs (and the round
 * after it switches layers or pauses), and in between its flow follows the
 * producer's (see ConsumerCounters); its window statistics (variance,
 * entropy, scene changes) are rebuilt with its own stats, its flow and layer
 * rates every round. Transports, whose rates only feed connection profiles,
 * are asked every transportStatsEveryMs.
 */
import { z } from 'zod';
import type { types } from 'mediasoup';
import { nextDueMs } from '../util/stagger';
import { DEFAULT_CONSUMER_STATS_EVERY_MS, DEFAULT_TRANSPORT_STATS_EVERY_MS, DEFAULT_WINDOW_STATS_EVERY_MS } from '../config';
import type { Logger } from '../log';
import { performance } from 'node:perf_hooks';
import { isStreamNode, type DataProducerNode, type GraphNode, type ProducerNode, type Registry, type StreamNode, type TransportNode } from '../observe/registry';
import { INTERNAL_APPDATA } from '../observe/internal';
import { TypedEmitter } from '../util/typedEmitter';
import { StreamAccumulator, type RtpStatsSample, type StreamMeta } from './accumulator';
import { ProfilerMeter, type ProfilerStats } from './meter';
import { SharedTraceTypes } from './traceTypes';
import { dataTypeDistribution } from './features/classify';
import { isStringPpid } from './features/dataMessages';
import { parseRtp } from './features/rtp';
import { parseVp8Payload } from './features/vp8';
import { parseVp9Payload } from './features/vp9';
import { findSps, parseSps } from './features/h264';
import { PROFILE_SCHEMA_VERSION, type ConnectionProfile, type LayerProfile, type StreamProfile } from './schema';

export interface ProfilerOptions {
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
	/** Opt-in keyword counting on string data messages (counts only). */
	keywords: readonly string[];
	/** Off: no traces and no taps, getStats() only (for apps that use traces themselves). */
	sampling: boolean;
	/** Period of each consumer's own getStats() (default DEFAULT_CONSUMER_STATS_EVERY_MS; staggered). */
	consumerStatsEveryMs?: number;
	/** Period of each transport's getStats() for connection profiles (default DEFAULT_TRANSPORT_STATS_EVERY_MS; staggered). */
	transportStatsEveryMs?: number;
	/** Period of each stream's window statistics rebuild (default DEFAULT_WINDOW_STATS_EVERY_MS; staggered). */
	windowStatsEveryMs?: number;
}

/** Bounds the consumer/producer byte ratio: a burst of retransmissions is not a new level. */
const MAX_FORWARD_RATIO = 4;


export type ProfilerEvents = {
	profiles: [{ workerId: string; streams: StreamProfile[]; connections: ConnectionProfile[] }];
};

const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
/** Passes over the layers a resolution probe makes before waiting for the next refresh. */
const PROBE_PASSES = 3;
const FIRST_PROBE_DELAY_MS = 3000;
const UNRESOLVED_LAYER_RETRY_MS = 5000;
/** Least time between two size re-reads of one stream triggered by keyframes its sender sent unasked (each read costs a keyframe). */
const KEYFRAME_REPROBE_MIN_INTERVAL_MS = 15_000;
/** How long after the keyframe a probe read its other layers' keyframes (same request) still count as induced. */
const INDUCED_KEYFRAME_BURST_MS = 500;
/**
 * A trace window agrees with the earlier ones when every layer's framerate is within this
 * fraction: a 1 s window counts whole frames (±3 % at 30 fps), an encoder that drops frames
 * under load halves them.
 */
const TRACE_AGREEMENT = 0.1;

/** The part of a producer trace's `info` (mediasoup's RtpPacketDump) the profiler reads. */
interface TracedPacket {
	timestamp: number;
	marker: boolean;
	ssrc: number;
	isKeyFrame: boolean;
	payloadSize: bigint | number;
	rid?: string | null;
}

/**
 * Trace info comes from our own peer dependency, not from outside, and arrives
 * at packet rate while a trace window is open: a structural check, not zod.
 */
function tracedPacket(info: Record<string, unknown> | undefined): TracedPacket | undefined {
	if (!info || info.isRtx === true) return undefined;
	const p = info.rtpPacket as Partial<TracedPacket> | undefined;
	if (!p || typeof p.timestamp !== 'number' || typeof p.ssrc !== 'number') return undefined;
	return p as TracedPacket;
}

/** Transport.getStats() is typed unknown[] on the base class; take only what we use. */
const transportRates = z.object({ recvBitrate: z.number(), sendBitrate: z.number() });
type TransportRates = z.infer<typeof transportRates>;

/**
 * A consumer's counters between its own getStats() rounds. A consumer forwards
 * its producer's packets, so its byte and packet counters are continued at the
 * producer's rate for what it forwards, scaled by what its own counters showed
 * against that rate over its last own interval (temporal layers it drops,
 * retransmissions, stalls). The accumulator sees one continuous counter series;
 * loss, jitter, RTT and RTCP counts are those of the last own round, the score
 * is the live one mediasoup keeps from the worker's score events.
 */
export class ConsumerCounters {
	/** When the consumer's own getStats() is next due. */
	nextOwnMs = 0;
	/** Paused state and forwarded layers at the last own round: a change calls for a fresh one. */
	stateAtOwn = '';
	private last: RtpStatsSample | undefined;
	private own: { bytes: number; packets: number } | undefined;
	private forwardedBytes = 0;
	private forwardedPackets = 0;
	private byteRatio = 1;
	private packetRatio = 1;

	/**
	 * Its last own round found it sending nothing of what its producer forwarded (waiting for
	 * a keyframe, a transport not connected yet): nothing can be derived from a zero ratio,
	 * so it asks the worker itself every round until it flows.
	 */
	get stalled(): boolean {
		return this.own !== undefined && this.byteRatio === 0;
	}

	/** A round without own stats: undefined before the first own round. */
	derive(atMs: number, forwarded: { bps: number; pps: number }, live: Pick<RtpStatsSample, 'score' | 'currentLayers'>): RtpStatsSample | undefined {
		const last = this.last;
		if (!last || !(atMs > last.atMs)) return undefined;
		const dt = (atMs - last.atMs) / 1000;
		const bytes = (forwarded.bps / 8) * dt;
		const packets = forwarded.pps * dt;
		this.forwardedBytes += bytes;
		this.forwardedPackets += packets;
		const byteCount = last.byteCount + bytes * this.byteRatio;
		const packetCount = last.packetCount + packets * this.packetRatio;
		const ssrc = last.layers[0]?.ssrc;
		const next: RtpStatsSample = {
			atMs,
			byteCount,
			packetCount,
			layers: [ssrc !== undefined ? { ssrc, byteCount, packetCount } : { byteCount, packetCount }],
			fractionLost: last.fractionLost,
			jitter: last.jitter,
			nackCount: last.nackCount,
			pliCount: last.pliCount,
			firCount: last.firCount,
		};
		if (live.score !== undefined) next.score = live.score;
		if (last.roundTripTimeMs !== undefined) next.roundTripTimeMs = last.roundTripTimeMs;
		if (live.currentLayers) next.currentLayers = live.currentLayers;
		this.last = next;
		return next;
	}

	/** The consumer's own round: re-measures the ratios and keeps the counters the accumulator sees continuous. */
	ownRound(own: RtpStatsSample, forwarded: { bps: number; pps: number }): RtpStatsSample {
		const continued = this.derive(own.atMs, forwarded, own);
		let byteCount = continued?.byteCount ?? own.byteCount;
		let packetCount = continued?.packetCount ?? own.packetCount;
		if (this.own) {
			const bytes = own.byteCount - this.own.bytes;
			const packets = own.packetCount - this.own.packets;
			// With nothing forwarded to follow (its producer not profiled, or silent) the derived counters
			// stood still since the last own round: the consumer's own counters are its flow.
			if (this.forwardedBytes > 0) {
				if (bytes >= 0) this.byteRatio = Math.min(MAX_FORWARD_RATIO, bytes / this.forwardedBytes);
			} else if (continued) byteCount += Math.max(0, bytes);
			if (this.forwardedPackets > 0) {
				if (packets >= 0) this.packetRatio = Math.min(MAX_FORWARD_RATIO, packets / this.forwardedPackets);
			} else if (continued) packetCount += Math.max(0, packets);
		}
		this.own = { bytes: own.byteCount, packets: own.packetCount };
		this.forwardedBytes = 0;
		this.forwardedPackets = 0;
		this.last = continued ? { ...own, byteCount, packetCount, layers: continued.layers.map((l) => ({ ...l, byteCount, packetCount })) } : own;
		return this.last;
	}
}

interface StreamState {
	acc: StreamAccumulator;
	node: StreamNode;
	timers: NodeJS.Timeout[];
	tap?: types.Consumer | types.DataConsumer;
	/** Keyframes until this time were caused by our own tap. */
	inducedUntilMs: number;
	traceSsrc?: number;
	/** Whether traceSsrc is the top layer's (else a lower one stands in until the top flows). */
	traceOnTop?: boolean;
	/** What the last stats round computed (profiles are built once per round). */
	latest?: StreamProfile;
	/** Multiple of traceEveryMs between this stream's trace windows (see ProfilerOptions.traceBackoffMax). */
	traceBackoff: number;
	/** When latest's window statistics are next rebuilt (a full profile()); until then each round only updates its flow. */
	windowStatsDueMs?: number;
	/** Counts rtp trace windows, so frames of different windows never join one segment. */
	traceWindow: number;
	/** Undo actions for listeners added to the app's entities. */
	disposers: Array<() => void>;
	/** Where tapped RTP packets go (set by the audio tap or the resolution probe). */
	onTapPacket?: (rtp: NonNullable<ReturnType<typeof parseRtp>>) => void;
	/** Wait before re-probing a flowing layer of unknown size; doubles while probes find nothing. */
	unresolvedRetryMs: number;
	/** A resolution probe is running: another must not interleave its layer switches. */
	probing?: boolean;
	/** Identifies the current chain of scheduled probes: a new chain retires the older one. */
	probeChain?: number;
	/** A keyframe the sender sent unasked re-reads its layer's size, not before this time. */
	keyframeReprobeAfterMs?: number;
	/** Layers (−1: all) with an unasked keyframe whose size is still to be re-read → that keyframe's time. */
	keyframeReprobes?: Map<number, number>;
	/** When each layer's size was last read from a keyframe. */
	sizeReadAtMs?: Map<number, number>;
	/** Consumers only: their counters between own getStats() rounds. */
	consumer?: ConsumerCounters;
	/** Producers the profiler traces: their trace types, merged with the app's. */
	traceTypes?: SharedTraceTypes;
}

export class Profiler extends TypedEmitter<ProfilerEvents> {
	private readonly streams = new Map<string, StreamState>();
	private readonly taps = new Map<string, Promise<types.DirectTransport | undefined>>();
	/** Latest rates of each transport and when they are next asked for. */
	private readonly transportStats = new Map<string, { dueMs: number; rates?: TransportRates }>();
	private timer: NodeJS.Timeout | undefined;
	private inFlight = false;
	private readonly meter: ProfilerMeter;
	private readonly onAdded = (node: GraphNode): void => this.adopt(node);
	private readonly onRemoved = (node: GraphNode): void => {
		this.forget(node.id);
		this.transportStats.delete(node.id);
	};

	constructor(
		private readonly registry: Registry,
		private readonly options: ProfilerOptions,
		private readonly log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a profiler event threw'));
		this.meter = new ProfilerMeter(log);
	}

	/** What the profiler asks of mediasoup and spends itself (requests and notifications by kind, own CPU). */
	stats(): ProfilerStats {
		return this.meter.stats();
	}

	start(): void {
		if (this.timer) return;
		this.registry.on('added', this.onAdded);
		this.registry.on('removed', this.onRemoved);
		for (const kind of ['producer', 'consumer', 'dataProducer', 'dataConsumer'] as const) {
			for (const node of this.registry.all(kind)) this.adopt(node);
		}
		this.timer = setInterval(() => void this.tick(), this.options.statsIntervalMs);
		this.timer.unref();
	}

	async stop(): Promise<void> {
		clearInterval(this.timer);
		this.timer = undefined;
		this.registry.off('added', this.onAdded);
		this.registry.off('removed', this.onRemoved);
		for (const id of [...this.streams.keys()]) this.forget(id);
		this.transportStats.clear();
		const transports = await Promise.all(this.taps.values());
		this.taps.clear();
		for (const t of transports) if (t && !t.closed) t.close();
	}

	/**
	 * Latest profile of one stream, if it is being profiled: the one its worker's last
	 * stats round produced (computed on demand before the first round).
	 */
	profileOf(streamId: string): StreamProfile | undefined {
		const s = this.streams.get(streamId);
		if (!s) return undefined;
		return s.latest ?? s.acc.profile(Date.now());
	}

	/** One stats round over all workers; resolves with what it emitted. */
	async tick(): Promise<Array<ProfilerEvents['profiles'][0]>> {
		if (this.inFlight) return [];
		this.inFlight = true;
		try {
			this.meter.snapshot();
			const workers = [...this.registry.all('worker')].map((w) => w.id);
			const results = await Promise.all(workers.map((id) => this.tickWorker(id)));
			for (const r of results) this.emit('profiles', r);
			return results;
		} finally {
			this.inFlight = false;
		}
	}

	private async tickWorker(workerId: string): Promise<ProfilerEvents['profiles'][0]> {
		const mine = [...this.streams.values()].filter((s) => s.node.workerId === workerId);
		const transports = [...this.registry.all('transport')].filter((t) => t.workerId === workerId);
		const at = Date.now();
		const ownConsumerStats = new Map<StreamState, RtpStatsSample>();
		// All of this worker's requests go out together: one round trip per tick.
		await Promise.all([
			...mine.map((s) => this.collect(s, at, ownConsumerStats)),
			...transports.map((t) => this.collectTransport(t.id, t.handle, at)),
		]);
		const t0 = performance.now();
		try {
			return this.finishRound(workerId, mine, transports, at, ownConsumerStats);
		} finally {
			this.meter.ownSince(t0);
		}
	}

	private finishRound(workerId: string, mine: StreamState[], transports: TransportNode[], at: number, ownConsumerStats: Map<StreamState, RtpStatsSample>): ProfilerEvents['profiles'][0] {
		const now = Date.now();
		const live = mine.filter((s) => this.streams.has(s.node.id));
		// Consumers after producers: they continue at their producer's rate of this round.
		for (const s of live) if (s.consumer) this.feedConsumer(s, s.consumer, at, ownConsumerStats.get(s));
		const streams = live.map((s) => this.profileRound(s, now));
		inheritProducerVideo(streams, (id) => this.profileOf(id));
		live.forEach((s, i) => (s.latest = streams[i]));
		const byTransport = new Map<string, StreamProfile[]>();
		for (const p of streams) {
			const group = byTransport.get(p.transportId);
			if (group) group.push(p);
			else byTransport.set(p.transportId, [p]);
		}
		const connections: ConnectionProfile[] = [];
		for (const t of transports) {
			const stats = this.transportStats.get(t.id)?.rates;
			if (!stats || !this.registry.has(t.id)) continue;
			const own = byTransport.get(t.id) ?? [];
			connections.push({
				schemaVersion: PROFILE_SCHEMA_VERSION,
				ts: now,
				transportId: t.id,
				workerId,
				routerId: t.routerId,
				transportType: t.transportType,
				recvBitrateBps: stats.recvBitrate,
				sendBitrateBps: stats.sendBitrate,
				distribution: dataTypeDistribution(own.map((p) => ({ dataType: p.dataType, bytes: p.flow.bitrateBps }))),
				streamIds: own.map((p) => p.streamId),
			});
		}
		return { workerId, streams, connections };
	}

	/**
	 * This round's profile of a stream: a full profile() when its window statistics are due
	 * (the first one right away, the next at a random phase so streams spread over the period),
	 * else the last full one with this round's flow. Data streams' flow is their message
	 * counters, which withCurrentFlow does not carry: they are few and always rebuilt.
	 */
	private profileRound(s: StreamState, now: number): StreamProfile {
		if (s.latest && s.acc.meta.kind !== 'data' && s.windowStatsDueMs !== undefined && now < s.windowStatsDueMs) {
			return s.acc.withCurrentFlow(s.latest, now);
		}
		const everyMs = this.options.windowStatsEveryMs ?? DEFAULT_WINDOW_STATS_EVERY_MS;
		s.windowStatsDueMs = nextDueMs(now, everyMs, s.windowStatsDueMs === undefined);
		return s.acc.profile(now);
	}

	/** A transport's rates, when due (the first right away, then staggered over the period). */
	private async collectTransport(id: string, transport: types.Transport, at: number): Promise<void> {
		const everyMs = this.options.transportStatsEveryMs ?? DEFAULT_TRANSPORT_STATS_EVERY_MS;
		const entry = this.transportStats.get(id);
		if (entry && at < entry.dueMs) return;
		const next = { dueMs: nextDueMs(at, everyMs, !entry), ...(entry?.rates ? { rates: entry.rates } : {}) };
		this.transportStats.set(id, next);
		this.meter.request('transportStats', id);
		const rates = await transport.getStats().then((r) => transportRates.safeParse(r[0]).data, () => undefined);
		if (rates && this.transportStats.get(id) === next) next.rates = rates;
	}

	private async collect(s: StreamState, at: number, ownConsumerStats: Map<StreamState, RtpStatsSample>): Promise<void> {
		try {
			switch (s.node.kind) {
				case 'producer': {
					this.meter.request('producerStats', s.node.id);
					const stats = await s.node.handle.getStats();
					s.acc.addRtpStats(rtpSample(at, stats));
					break;
				}
				case 'consumer': {
					if (!this.ownStatsDue(s, s.node.handle, at)) break;
					this.meter.request('consumerStats', s.node.id);
					const stats = await s.node.handle.getStats();
					const out = stats.filter((x) => x.type === 'outbound-rtp');
					const current = s.node.handle.currentLayers;
					ownConsumerStats.set(s, { ...rtpSample(at, out), ...(current ? { currentLayers: current } : {}) });
					break;
				}
				case 'dataProducer': {
					this.meter.request('dataProducerStats', s.node.id);
					const [st] = await s.node.handle.getStats();
					if (st) s.acc.addDataStats({ atMs: at, messageCount: st.messagesReceived, byteCount: st.bytesReceived });
					break;
				}
				case 'dataConsumer': {
					this.meter.request('dataConsumerStats', s.node.id);
					const [st] = await s.node.handle.getStats();
					if (st) s.acc.addDataStats({ atMs: at, messageCount: st.messagesSent, byteCount: st.bytesSent });
					break;
				}
			}
		} catch (error) {
			// Closed while the request was in flight: its removal is already under way.
			this.meter.swallowed(`${s.node.kind}Stats`, error, { streamId: s.node.id }, s.node.handle.closed);
		}
	}

	/**
	 * Whether a consumer asks the worker itself this round: when its period is up,
	 * when it paused, resumed or switched layers since its last own round (the
	 * ratio to its producer changes), while it is stalled, and always while its
	 * producer is not profiled.
	 */
	private ownStatsDue(s: StreamState, consumer: types.Consumer, at: number): boolean {
		const counters = s.consumer;
		if (!counters) return true;
		const layers = consumer.currentLayers;
		const state = `${consumer.paused || consumer.producerPaused}:${layers?.spatialLayer}:${layers?.temporalLayer}`;
		const producerKnown = this.streams.has(consumer.producerId);
		if (producerKnown && at < counters.nextOwnMs && state === counters.stateAtOwn && !counters.stalled) return false;
		const everyMs = this.options.consumerStatsEveryMs ?? DEFAULT_CONSUMER_STATS_EVERY_MS;
		// The first own round right away, the next at a random phase so consumers spread over the period.
		counters.nextOwnMs = nextDueMs(at, everyMs, counters.stateAtOwn === '');
		counters.stateAtOwn = state;
		return true;
	}

	private feedConsumer(s: StreamState, counters: ConsumerCounters, at: number, own: RtpStatsSample | undefined): void {
		if (s.node.kind !== 'consumer') return;
		const consumer = s.node.handle;
		const producer = this.streams.get(consumer.producerId)?.acc;
		const layers = consumer.currentLayers;
		const stopped = consumer.paused || consumer.producerPaused || (consumer.type === 'simulcast' && !layers);
		const forwarded = !producer || stopped ? { bps: 0, pps: 0 } : producer.forwardedRate(consumer.type === 'simulcast' ? layers?.spatialLayer : undefined);
		const sample = own
			? counters.ownRound(own, forwarded)
			: counters.derive(at, forwarded, { score: consumer.score.score, ...(layers ? { currentLayers: layers } : {}) });
		if (sample) s.acc.addRtpStats(sample);
	}

	private adopt(node: GraphNode): void {
		if (!isStreamNode(node)) return;
		if (this.streams.has(node.id) || !this.timer) return;
		const state: StreamState = { acc: new StreamAccumulator(this.metaOf(node)), node, timers: [], inducedUntilMs: 0, traceWindow: 0, disposers: [], unresolvedRetryMs: UNRESOLVED_LAYER_RETRY_MS, traceBackoff: 1 };
		if (node.kind === 'consumer') state.consumer = new ConsumerCounters();
		this.streams.set(node.id, state);
		if (this.options.sampling && node.kind === 'producer') this.startSampling(state, node);
		if (this.options.sampling && node.kind === 'dataProducer') void this.tapData(state, node);
	}

	private forget(id: string): void {
		const s = this.streams.get(id);
		if (!s) return;
		this.streams.delete(id);
		for (const t of s.timers) clearTimeout(t);
		for (const dispose of s.disposers.splice(0)) dispose();
		if (s.tap && !s.tap.closed) s.tap.close();
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
				...scalability(e.scalabilityMode),
			})),
			...(resolution.success ? { appDataResolution: resolution.data } : {}),
		};
	}

	// ------------------------------------------------------------ sampling

	private startSampling(s: StreamState, node: ProducerNode): void {
		const producer = node.handle;
		const video = node.mediaKind === 'video';
		const baseTypes: types.ProducerTraceEventType[] = video ? ['keyframe'] : [];
		const onTrace = (trace: types.ProducerTraceEventData): void => this.onTrace(s, trace);
		producer.observer.on('trace', onTrace);
		s.disposers.push(() => producer.observer.off('trace', onTrace));
		const traceTypes = new SharedTraceTypes(producer, () => this.meter.request('traceSwitch', node.id));
		s.traceTypes = traceTypes;
		s.disposers.push(() => void traceTypes.release().catch((error: unknown) => this.meter.swallowed('traceSwitch', error, { producerId: node.id }, producer.closed)));
		const setTraceTypes = (wanted: types.ProducerTraceEventType[]): void =>
			void traceTypes.set(wanted).catch((error: unknown) => this.meter.swallowed('traceSwitch', error, { producerId: node.id }, producer.closed));
		if (video) setTraceTypes(baseTypes);

		// Random phase so many producers do not switch traces on in the same instant.
		const phase = Math.random() * this.options.traceEveryMs;
		const traceCycle = (): void => {
			if (!this.streams.has(node.id) || producer.closed) return;
			// The previous window (closed long since) says whether the stream's framerates held.
			s.traceBackoff = s.acc.traceWindowAgreed(TRACE_AGREEMENT) ? Math.min(2 * s.traceBackoff, this.options.traceBackoffMax) : 1;
			const periodMs = this.options.traceEveryMs * s.traceBackoff;
			s.acc.traceWindowsEvery(periodMs);
			s.traceWindow++;
			s.acc.rtpTraceSwitched(Date.now(), true);
			setTraceTypes([...baseTypes, 'rtp']);
			this.later(s, this.options.traceWindowMs, () => {
				s.acc.rtpTraceSwitched(Date.now(), false);
				if (!producer.closed) setTraceTypes(baseTypes);
			});
			this.later(s, periodMs, traceCycle);
		};
		if (video) this.later(s, phase, traceCycle);
		else this.later(s, phase, () => void this.tapAudio(s, node));
		// First probe once the sender has had time to switch its layers on (mediasoup forwards
		// a simulcast layer only after it has a score).
		if (video && !s.acc.meta.appDataResolution) this.later(s, FIRST_PROBE_DELAY_MS + phase / 10, () => void this.probeResolution(s, node));
	}

	private later(s: StreamState, ms: number, fn: () => void): void {
		const t = setTimeout(() => {
			s.timers.splice(s.timers.indexOf(t), 1);
			fn();
		}, ms);
		t.unref();
		s.timers.push(t);
	}

	private onTrace(s: StreamState, trace: types.ProducerTraceEventData): void {
		const t0 = performance.now();
		this.meter.notification(trace.type === 'rtp' ? 'traceRtp' : trace.type === 'keyframe' ? 'traceKeyframe' : trace.type === 'sr' ? 'traceSr' : 'traceRequest');
		try {
			this.handleTrace(s, trace);
		} finally {
			this.meter.ownSince(t0);
		}
	}

	private handleTrace(s: StreamState, trace: types.ProducerTraceEventData): void {
		const p = tracedPacket(trace.info);
		if (!p) return;
		const now = Date.now();
		if (trace.type !== 'rtp' && trace.type !== 'keyframe') return;
		// With both traces on, the worker reports a keyframe's first packet as `keyframe` only;
		// the framerate needs it (a one-packet keyframe is a whole frame), outside a window it is dropped.
		s.acc.addLayerRtpEvent(now, p.ssrc, p.rid || undefined, p.timestamp, p.marker);
		if (trace.type === 'keyframe') {
			const induced = now <= s.inducedUntilMs;
			s.acc.addKeyframe(now, induced);
			if (!induced) this.reprobeOnSenderKeyframe(s, p, now);
			return;
		}
		// Frame sizes of one layer only: the top encoding's when it flows, else the first seen.
		// Through layerOfPacket, which also knows the SSRCs of rid-only layers (browsers).
		if (p.ssrc !== s.traceSsrc) {
			const onTop = s.acc.layerOfPacket(p.ssrc, p.rid ?? undefined) === Math.max(0, s.acc.meta.encodings.length - 1);
			if (s.traceSsrc !== undefined && (s.traceOnTop || !onTop)) return;
			s.traceSsrc = p.ssrc;
			s.traceOnTop = onTop;
		}
		s.acc.addRtpEvent({
			arrivalMs: now,
			rtpTimestamp: p.timestamp,
			marker: p.marker,
			bytes: Number(p.payloadSize),
			isKeyframe: p.isKeyFrame,
			segment: s.traceWindow,
		});
	}

	private tapTransport(routerId: string): Promise<types.DirectTransport | undefined> {
		let t = this.taps.get(routerId);
		if (!t) {
			const router = this.registry.get('router', routerId)?.handle;
			t = router
				? (this.meter.request('tap', routerId), router.createDirectTransport({ maxSendMessageSize: 262_144, maxReceiveMessageSize: 262_144, appData: INTERNAL_APPDATA }).catch((error: unknown) => (this.meter.swallowed('tapTransport', error, { routerId }, router.closed), undefined)))
				: Promise.resolve(undefined);
			this.taps.set(routerId, t);
		}
		return t;
	}

	private async tapConsumer(s: StreamState, node: ProducerNode): Promise<types.Consumer | undefined> {
		if (s.tap) return s.tap as types.Consumer;
		const transport = await this.tapTransport(node.routerId);
		const router = this.registry.get('router', node.routerId)?.handle;
		if (!transport || !router || transport.closed || node.handle.closed) return undefined;
		try {
			this.meter.request('tap', node.id);
			const consumer = await transport.consume({
				producerId: node.id,
				rtpCapabilities: router.rtpCapabilities,
				paused: true,
				appData: INTERNAL_APPDATA,
			});
			if (!this.streams.has(node.id)) {
				consumer.close();
				return undefined;
			}
			s.tap = consumer;
			consumer.on('rtp', (packet: Buffer) => {
				const t0 = performance.now();
				this.meter.notification('tapRtp');
				const rtp = s.onTapPacket && parseRtp(packet);
				if (rtp) s.onTapPacket?.(rtp);
				this.meter.ownSince(t0);
			});
			return consumer;
		} catch (error) {
			this.meter.swallowed('tapConsume', error, { producerId: node.id }, node.handle.closed);
			return undefined;
		}
	}

	/** Audio: resume the tap for tapWindowMs every tapEveryMs; Opus TOC and audio levels. */
	private async tapAudio(s: StreamState, node: ProducerNode): Promise<void> {
		const consumer = await this.tapConsumer(s, node);
		if (!consumer) return;
		const levelId = consumer.rtpParameters.headerExtensions?.find((h) => h.uri === AUDIO_LEVEL_URI)?.id;
		s.onTapPacket = (rtp) =>
			s.acc.addAudioPacket(Date.now(), rtp.payload, levelId !== undefined ? rtp.extensions.get(levelId) : undefined);
		const cycle = (): void => {
			if (consumer.closed) return;
			this.meter.request('tap', node.id);
			void consumer.resume().catch((error: unknown) => this.meter.swallowed('tapSwitch', error, { producerId: node.id }, consumer.closed));
			this.later(s, this.options.tapWindowMs, () => {
				this.meter.request('tap', node.id);
				void consumer.pause().catch((error: unknown) => this.meter.swallowed('tapSwitch', error, { producerId: node.id }, consumer.closed));
			});
			this.later(s, this.options.tapEveryMs, cycle);
		};
		cycle();
	}

	/**
	 * Video resolution per layer from keyframe headers: resume the tap on each
	 * spatial layer in turn until a keyframe arrives, then pause. The keyframes
	 * this causes are marked as induced, so they never count as scene changes.
	 */
	private async probeResolution(s: StreamState, node: ProducerNode, onlyLayers?: readonly number[]): Promise<void> {
		if (s.probing) return;
		s.probing = true;
		try {
			await this.probeLayers(s, node, onlyLayers);
		} finally {
			s.probing = false;
		}
	}

	/**
	 * Senders change a layer's size with a keyframe on it (Chromium scales a layer down
	 * under CPU or bandwidth pressure and back up when it eases), and keyframes are
	 * traced all the time: one the sender sent unasked has that layer's size re-read
	 * soon rather than at the next full refresh. Keyframes also answer other receivers'
	 * requests, and each read costs the sender one more, so a stream is re-read at most
	 * once per KEYFRAME_REPROBE_MIN_INTERVAL_MS; keyframes in between are kept and
	 * answered by one read when the interval is over, unless a probe read those layers since.
	 */
	private reprobeOnSenderKeyframe(s: StreamState, packet: { ssrc: number; rid?: string | null }, nowMs: number): void {
		if (s.node.kind !== 'producer' || s.acc.meta.appDataResolution) return;
		// Simulcast: the keyframe's own layer. One encoding (SVC or plain): every spatial layer it carries.
		const simulcast = s.acc.meta.encodings.length > 1;
		const layer = simulcast ? s.acc.layerOfPacket(packet.ssrc, packet.rid ?? undefined) : -1;
		if (simulcast && layer < 0) return;
		const pending = (s.keyframeReprobes ??= new Map());
		const scheduled = pending.size > 0;
		pending.set(layer, nowMs);
		if (!scheduled) this.later(s, Math.max(0, (s.keyframeReprobeAfterMs ?? 0) - nowMs), () => this.keyframeReprobe(s, s.node as ProducerNode));
	}

	private keyframeReprobe(s: StreamState, node: ProducerNode): void {
		if (!this.streams.has(node.id)) return;
		if (s.probing) return void this.later(s, 1000, () => this.keyframeReprobe(s, node));
		const readAt = (l: number): number => s.sizeReadAtMs?.get(l) ?? 0;
		const layerCount = Math.max(1, s.acc.meta.encodings.length, s.acc.meta.encodings[0]?.spatialLayers ?? 1);
		const stale = new Set<number>();
		for (const [layer, keyframeAt] of s.keyframeReprobes ?? []) {
			for (const l of layer < 0 ? [...Array(layerCount).keys()] : [layer]) if (readAt(l) < keyframeAt) stale.add(l);
		}
		s.keyframeReprobes?.clear();
		if (stale.size === 0) return;
		s.keyframeReprobeAfterMs = Date.now() + KEYFRAME_REPROBE_MIN_INTERVAL_MS;
		void this.probeResolution(s, node, [...stale]);
	}

	private async probeLayers(s: StreamState, node: ProducerNode, onlyLayers?: readonly number[]): Promise<void> {
		const consumer = await this.tapConsumer(s, node);
		if (!consumer) return;
		const mime = s.acc.meta.mimeType?.toLowerCase() ?? '';
		const layers = Math.max(1, s.acc.meta.encodings.length, s.acc.meta.encodings[0]?.spatialLayers ?? 1);
		let wanted = -1;
		let done: (() => void) | undefined;
		s.onTapPacket = (rtp) => {
			// A simulcast consumer switches layer only at a keyframe of the new layer; until
			// then it forwards the old one, whose keyframes must not be taken for the new.
			if (layers > 1 && consumer.currentLayers?.spatialLayer !== wanted) return;
			const size = wanted >= 0 ? resolutionOf(mime, rtp.payload) : undefined;
			if (!size) return;
			s.acc.setResolution(wanted, size.width, size.height);
			(s.sizeReadAtMs ??= new Map()).set(wanted, Date.now());
			// The keyframes this probe caused have arrived (a sender answers one request on all its
			// layers within tens of ms): a keyframe after that burst is the sender's own again, e.g.
			// a rescale, and must not be taken for induced until the window would have ended.
			s.inducedUntilMs = Math.min(s.inducedUntilMs, Date.now() + INDUCED_KEYFRAME_BURST_MS);
			done?.();
		};
		const seen = new Set<number>(onlyLayers ? [...Array(layers).keys()].filter((l) => !onlyLayers.includes(l)) : []);
		// A layer the sender has not switched on yet is retried on the next pass.
		for (let pass = 0; pass < PROBE_PASSES && seen.size < layers && !consumer.closed; pass++) {
			for (let layer = layers - 1; layer >= 0 && !consumer.closed; layer--) {
				if (seen.has(layer)) continue;
				wanted = layer;
				s.inducedUntilMs = Date.now() + this.options.probeWaitMs + 1000;
				try {
					if (layers > 1) {
						this.meter.request('tap', node.id);
						await consumer.setPreferredLayers({ spatialLayer: layer });
					}
					this.meter.request('tap', node.id);
					await consumer.resume();
					const found = await new Promise<boolean>((resolve) => {
						done = () => resolve(true);
						this.later(s, this.options.probeWaitMs, () => resolve(false));
					});
					if (found) seen.add(layer);
					this.meter.request('tap', node.id);
					await consumer.pause();
				} catch (error) {
					this.meter.swallowed('probe', error, { producerId: node.id }, consumer.closed);
					pass = PROBE_PASSES;
					break;
				}
			}
		}
		wanted = -1;
		s.onTapPacket = undefined;
		// Each probe costs the sender a keyframe: a layer whose size cannot be read is not asked every few seconds.
		const newlySeen = [...seen].some((l) => onlyLayers?.includes(l));
		s.unresolvedRetryMs = onlyLayers && !newlySeen ? Math.min(2 * s.unresolvedRetryMs, this.options.resolutionRefreshMs) : UNRESOLVED_LAYER_RETRY_MS;
		if (this.streams.has(node.id)) this.scheduleResolutionProbe(s, node, this.options.resolutionRefreshMs);
	}

	/**
	 * Senders switch simulcast layers on as their bandwidth estimate ramps up, often
	 * after the probe gave up on them: a layer that is flowing with no known size is
	 * probed within seconds, not at the next full refresh.
	 */
	private scheduleResolutionProbe(s: StreamState, node: ProducerNode, refreshInMs: number): void {
		const refreshAt = Date.now() + refreshInMs;
		const chain = (s.probeChain ?? 0) + 1;
		s.probeChain = chain;
		const check = (): void => {
			if (!this.streams.has(node.id) || s.probeChain !== chain) return;
			if (Date.now() >= refreshAt) return void this.probeResolution(s, node);
			const missing = s.acc.unresolvedActiveLayers();
			if (missing.length > 0) return void this.probeResolution(s, node, missing);
			this.later(s, Math.min(s.unresolvedRetryMs, refreshAt - Date.now()), check);
		};
		this.later(s, Math.min(s.unresolvedRetryMs, refreshInMs), check);
	}

	/** Data producers: a direct data consumer sees every message (sizes, string share, keywords). */
	private async tapData(s: StreamState, node: DataProducerNode): Promise<void> {
		const transport = await this.tapTransport(node.routerId);
		if (!transport || transport.closed || node.handle.closed) return;
		try {
			this.meter.request('tap', node.id);
			const dc = await transport.consumeData({ dataProducerId: node.id, appData: INTERNAL_APPDATA });
			if (!this.streams.has(node.id)) {
				dc.close();
				return;
			}
			s.tap = dc;
			dc.on('message', (message: Buffer, ppid: number) => {
				// PPIDs 56/57 are WebRTC's empty string/binary messages (one placeholder byte on the wire).
				const t0 = performance.now();
				this.meter.notification('tapData');
				const empty = ppid === 56 || ppid === 57;
				const text = isStringPpid(ppid) ? (empty ? '' : message.toString('utf8')) : undefined;
				s.acc.addDataMessage(Date.now(), empty ? 0 : message.length, text);
				this.meter.ownSince(t0);
			});
		} catch (error) {
			this.meter.swallowed('tapConsumeData', error, { dataProducerId: node.id }, node.handle.closed);
		}
	}
}

/**
 * A consumer forwards its producer's layers: it has no payload tap of its own,
 * so its layers' resolution and framerate, and its video size (that of the top
 * layer it receives), come from the producer's profile.
 */
function inheritProducerVideo(round: StreamProfile[], producerProfile: (id: string) => StreamProfile | undefined): void {
	let roundById: Map<string, StreamProfile> | undefined;
	for (const p of round) {
		if (p.entity !== 'consumer' || p.kind !== 'video' || !p.producerId || !p.video) continue;
		roundById ??= new Map(round.map((x) => [x.streamId, x]));
		const producer = roundById.get(p.producerId) ?? producerProfile(p.producerId);
		if (!producer) continue;
		// A flow update carries what its full profile inherited: most rounds have nothing to add.
		const lacking = p.layers.some((l) => {
			const src = producer.layers[l.spatialLayer];
			return src !== undefined && ((l.width === undefined && src.width !== undefined) || (l.fps === undefined && src.fps !== undefined));
		});
		if (lacking) {
			p.layers = p.layers.map((l) => {
				const src = producer.layers[l.spatialLayer];
				return src ? { ...(src.width !== undefined ? { width: src.width, height: src.height } : {}), ...(src.fps !== undefined ? { fps: src.fps } : {}), ...l } : l;
			});
		}
		if (p.video.width === undefined) {
			const top = topLayerWithSize(p.layers);
			if (top) p.video = { ...p.video, width: top.width, height: top.height };
		}
		if (p.video.fps === undefined && producer.video?.fps !== undefined) p.video = { ...p.video, fps: producer.video.fps };
	}
}

function topLayerWithSize(layers: readonly LayerProfile[]): LayerProfile | undefined {
	for (let i = layers.length - 1; i >= 0; i--) if (layers[i]!.active && layers[i]!.width !== undefined) return layers[i];
	return undefined;
}

function rtpSample(atMs: number, stats: ReadonlyArray<types.RtpStreamRecvStats | types.RtpStreamSendStats>): RtpStatsSample {
	let bytes = 0;
	let packets = 0;
	let fractionLost = 0;
	let jitter = 0;
	let nack = 0;
	let pli = 0;
	let fir = 0;
	let score: number | undefined;
	let rtt: number | undefined;
	for (const st of stats) {
		bytes += st.byteCount;
		packets += st.packetCount;
		fractionLost = Math.max(fractionLost, st.fractionLost);
		if ('jitter' in st) jitter = Math.max(jitter, st.jitter);
		nack += st.nackCount;
		pli += st.pliCount;
		fir += st.firCount;
		score = score === undefined ? st.score : Math.min(score, st.score);
		if (st.roundTripTime !== undefined) rtt = Math.max(rtt ?? 0, st.roundTripTime);
	}
	return {
		atMs,
		byteCount: bytes,
		packetCount: packets,
		layers: stats.map((st) => ({
			ssrc: st.ssrc,
			...(st.rid ? { rid: st.rid } : {}),
			byteCount: st.byteCount,
			packetCount: st.packetCount,
		})),
		fractionLost,
		jitter,
		nackCount: nack,
		pliCount: pli,
		firCount: fir,
		...(score !== undefined ? { score } : {}),
		...(rtt !== undefined ? { roundTripTimeMs: rtt } : {}),
	};
}

/** "L1T3" / "S3T3" / "L3T3_KEY" → layer counts. */
export function scalability(mode: string | undefined): { spatialLayers?: number; temporalLayers?: number } {
	const m = /^[LS](\d+)T(\d+)/.exec(mode ?? '');
	return m ? { spatialLayers: Number(m[1]), temporalLayers: Number(m[2]) } : {};
}

export function resolutionOf(mimeType: string, payload: Uint8Array): { width: number; height: number } | undefined {
	if (mimeType.endsWith('/vp8')) {
		const r = parseVp8Payload(payload)?.resolution;
		return r ? { width: r.width, height: r.height } : undefined;
	}
	if (mimeType.endsWith('/vp9')) {
		const v = parseVp9Payload(payload);
		const size = v?.descriptor.ss?.sizes?.at(-1);
		return size ? { width: size.width, height: size.height } : undefined;
	}
	if (mimeType.endsWith('/h264')) {
		const sps = findSps(payload);
		const parsed = sps ? parseSps(sps) : undefined;
		return parsed ? { width: parsed.width, height: parsed.height } : undefined;
	}
	return undefined;
}
