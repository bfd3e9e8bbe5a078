/**
 * Stats rounds: one round of getStats() requests per worker per tick, all of a
 * worker's requests sent together (one round trip), then one profile per stream and
 * one connection profile per transport that has rates.
 *
 * Channel round trips dominate the profiler's own CPU (each getStats() is one
 * request and one decoded response in Node), so only producers and data streams
 * are asked every round; consumers follow ConsumerFlows, transports are asked every
 * transportStatsEveryMs, and a stream's window statistics (variance, entropy, scene
 * changes) are rebuilt every windowStatsEveryMs, its flow every round.
 */
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { types } from 'mediasoup';
import type { Registry, TransportNode } from '../observe/registry';
import { nextDueMs } from '../util/stagger';
import type { RtpStatsSample } from './accumulator';
import type { ConsumerFlows } from './consumerCounters';
import { dataTypeDistribution } from './features/classify';
import type { ProfilerMeter } from './meter';
import { PROFILE_SCHEMA_VERSION, type ConnectionProfile, type LayerProfile, type StreamProfile } from './schema';
import type { ProfiledStream } from './stream';

export interface ScheduleOptions {
	consumerStatsEveryMs: number;
	transportStatsEveryMs: number;
	windowStatsEveryMs: number;
}

export interface RoundState {
	/** What the last stats round computed (profiles are built once per round). */
	latest?: StreamProfile;
	/** When latest's window statistics are next rebuilt (a full profile()); until then each round only updates its flow. */
	windowStatsDueMs?: number;
}

export interface WorkerRound {
	workerId: string;
	streams: StreamProfile[];
	connections: ConnectionProfile[];
}

/** Transport.getStats() is typed unknown[] on the base class; take only what we use. */
const transportRates = z.object({ recvBitrate: z.number(), sendBitrate: z.number() });
type TransportRates = z.infer<typeof transportRates>;

export class StatsSchedule {
	/** Latest rates of each transport and when they are next asked for. */
	private readonly transportStats = new Map<string, { dueMs: number; rates?: TransportRates }>();

	constructor(
		private readonly registry: Registry,
		private readonly options: ScheduleOptions,
		private readonly meter: ProfilerMeter,
		private readonly consumers: ConsumerFlows,
		/** The profiled streams of one worker. */
		private readonly streamsOf: (workerId: string) => ProfiledStream[],
		/** The latest profile of any profiled stream (a consumer's producer may be on another worker). */
		private readonly profileOf: (streamId: string) => StreamProfile | undefined,
	) {}

	/** The transport is gone: its rates with it. */
	forgetTransport(id: string): void {
		this.transportStats.delete(id);
	}

	clear(): void {
		this.transportStats.clear();
	}

	/** One round of one worker: its requests together, then its profiles. */
	async round(workerId: string): Promise<WorkerRound> {
		const mine = this.streamsOf(workerId);
		const transports = [...this.registry.all('transport')].filter((t) => t.workerId === workerId);
		const at = Date.now();
		const ownConsumerStats = new Map<ProfiledStream, RtpStatsSample>();
		// All of this worker's requests go out together: one round trip per tick.
		await Promise.all([...mine.map((s) => this.collect(s, at, ownConsumerStats)), ...transports.map((t) => this.collectTransport(t.id, t.handle, at))]);
		const t0 = performance.now();
		try {
			return this.finish(workerId, mine, transports, at, ownConsumerStats);
		} finally {
			this.meter.ownSince(t0);
		}
	}

	private finish(workerId: string, mine: ProfiledStream[], transports: TransportNode[], at: number, ownConsumerStats: Map<ProfiledStream, RtpStatsSample>): WorkerRound {
		const now = Date.now();
		const live = mine.filter((s) => s.live);
		// Consumers after producers: they continue at their producer's rate of this round.
		for (const s of live) if (s.consumer && s.node.kind === 'consumer') this.consumers.feed(s.acc, s.consumer, s.node.handle, at, ownConsumerStats.get(s));
		const streams = live.map((s) => this.profileRound(s, now));
		inheritProducerVideo(streams, this.profileOf);
		live.forEach((s, i) => (s.round.latest = streams[i]));
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
	private profileRound(s: ProfiledStream, now: number): StreamProfile {
		const r = s.round;
		if (r.latest && s.acc.meta.kind !== 'data' && r.windowStatsDueMs !== undefined && now < r.windowStatsDueMs) {
			return s.acc.withCurrentFlow(r.latest, now);
		}
		r.windowStatsDueMs = nextDueMs(now, this.options.windowStatsEveryMs, r.windowStatsDueMs === undefined);
		return s.acc.profile(now);
	}

	/** A transport's rates, when due (the first right away, then staggered over the period). */
	private async collectTransport(id: string, transport: types.Transport, at: number): Promise<void> {
		const entry = this.transportStats.get(id);
		if (entry && at < entry.dueMs) return;
		const next = { dueMs: nextDueMs(at, this.options.transportStatsEveryMs, !entry), ...(entry?.rates ? { rates: entry.rates } : {}) };
		this.transportStats.set(id, next);
		this.meter.request('transportStats', id);
		let answer: unknown[];
		try {
			answer = await transport.getStats();
		} catch (error) {
			// Closed while the request was in flight: its removal is already under way.
			return void this.meter.swallowed('transportStats', error, { transportId: id }, transport.closed);
		}
		const rates = transportRates.safeParse(answer[0]);
		if (!rates.success) return void this.meter.swallowed('transportStatsShape', rates.error, { transportId: id });
		if (this.transportStats.get(id) === next) next.rates = rates.data;
	}

	private async collect(s: ProfiledStream, at: number, ownConsumerStats: Map<ProfiledStream, RtpStatsSample>): Promise<void> {
		try {
			switch (s.node.kind) {
				case 'producer': {
					this.meter.request('producerStats', s.node.id);
					const stats = await s.node.handle.getStats();
					s.acc.addRtpStats(rtpSample(at, stats));
					break;
				}
				case 'consumer': {
					if (s.consumer && !this.consumers.ownDue(s.consumer, s.node.handle, at)) break;
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

export function rtpSample(atMs: number, stats: ReadonlyArray<types.RtpStreamRecvStats | types.RtpStreamSendStats>): RtpStatsSample {
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
