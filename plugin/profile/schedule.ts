/**
 * Stats rounds, tiered and event-driven: each stream is asked only as often as its
 * forecast needs, and a round touches only what is due.
 *
 *  - Producers and data streams: every round (the fast tier, statsIntervalMs) for
 *    JOIN_FAST_MS after they join and TRIGGER_FAST_MS after a trigger, else every
 *    slowStatsEveryMs. Triggers: a score event, a pause or resume, a keyframe the
 *    sender sent unasked, a rate change of more than RATE_CHANGE_SHARE against the
 *    stream's moving average, a sustained rise of its worker's CPU (CpuRise), and the stream being a
 *    top contributor on a worker predicted hot (the last two come from Foresight).
 *  - Audio producers are refreshed from their consumers' answers (a consumer's
 *    getStats() carries its producer's stream); they ask the worker themselves only
 *    when no consumer answers in the round they are due and none answered within their
 *    staleness cap (see audioProducerAsks): in the slow tier that is a consumer's period,
 *    since consumers spread over it answer at least that often; in the fast tier its period.
 *  - Consumers ask the worker every consumerStatsEveryMs, the second time at a random
 *    phase within it (a room's consumers join together; spread, each audio producer's
 *    consumers answer for it at different times), and right after a score, layerschange,
 *    pause or resume; in between their flow follows their producer's each time the
 *    producer is refreshed (ConsumerFlows). A video consumer whose own answer found its flow
 *    as derived (ConsumerCounters.steady) asks half as often each time, down to
 *    consumerStatsMaxEveryMs, by default a transport's period (see consumerPeriodMs); audio consumers keep theirs, since their
 *    answers refresh their producer.
 *  - Transports every transportStatsEveryMs; a connection profile is built only when its
 *    transport answers (between answers the worker's network is the sum of its streams'
 *    flows, which is what the predictor reads).
 *
 * Entities wait in per-worker buckets keyed by the round they are due in, so a round
 * takes what is due and never walks the rest. A round's requests go out together (one
 * round trip per worker), then the refreshed streams get their profiles.
 */
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { types } from 'mediasoup';
import type { Registry, TransportNode } from '../observe/registry';
import { nextDueMs } from '../util/stagger';
import type { RtpStatsSample } from './accumulator';
import type { ConsumerFlows } from './consumerCounters';
import { CpuRise } from './cpuRise';
import { SCORE_STEP, ScoreEpisodes } from './scoreEpisodes';
import { dataTypeDistribution } from './features/classify';
import type { ProfilerMeter } from './meter';
import { PROFILE_SCHEMA_VERSION, type ConnectionProfile, type LayerProfile, type StreamProfile } from './schema';
import type { ProfiledStream } from './stream';

/** The fast-tier windows: long enough to see a new sender ramp its layers up, and a change settle. */
export const JOIN_FAST_MS = 20_000;
export const TRIGGER_FAST_MS = 10_000;
/**
 * A slow-tier rate that departs from the stream's moving average by more than this share
 * is a change worth watching closely (a camera's 5 s rates vary by a few percent).
 */
const RATE_CHANGE_SHARE = 0.15;
/** Time constant of that moving average: long enough that a change shows against it for a few slow rounds. */
const RATE_AVERAGE_TAU_MS = 30_000;
/** Below this the average is mostly silence (DTX, a paused sender): changes are measured against this floor instead. */
const RATE_FLOOR_BPS = 16_000;
/**
 * A consumer's triggered own round comes at least this long after its previous one: a
 * burst of events (a layer switch with its score changes) is one change, asked about once.
 */
const CONSUMER_TRIGGER_GAP_MS = 2000;

export type FastTrigger = 'join' | 'score' | 'layers' | 'pause' | 'keyframe' | 'rate' | 'cpuRising' | 'predictedHot';

export interface ScheduleOptions {
	/** The round period, and the fast tier's. */
	statsIntervalMs: number;
	slowStatsEveryMs: number;
	consumerStatsEveryMs: number;
	transportStatsEveryMs: number;
	/** The longest period a steady video consumer's own rounds reach (see consumerPeriodMs). */
	consumerStatsMaxEveryMs: number;
	windowStatsEveryMs: number;
}

export interface RoundState {
	/** What the stream's last refresh computed. */
	latest?: StreamProfile;
	/** When latest's window statistics are next rebuilt (a full profile()); until then a refresh only updates its flow. */
	windowStatsDueMs?: number;
	/** The round this stream waits for in its worker's buckets (−1: none). */
	dueRound: number;
	/** The fast tier holds until then. */
	fastUntilMs: number;
	/** When its accumulator last got a sample (own answer, or a consumer's for audio producers). */
	sampledAtMs: number;
	/** Audio producers: when a consumer's answer last carried their stream (undefined: never). */
	consumerSampledAtMs?: number;
	/** Consumers: their periodic own rounds have been put at a random phase (see the header). */
	spread?: boolean;
	/** Consumers: the period of their own rounds (undefined: consumerStatsEveryMs; see consumerPeriodMs). */
	consumerPeriodMs?: number;
	/** Moving average of its rate, for the rate-change trigger. */
	rate?: RateAverage;
	/** Listeners on the app's entity. */
	disposers: Array<() => void>;
	/** Position in its worker's profile list. */
	index: number;
	/** The round of its last own request (consumers' triggers keep a gap after it). */
	askedRound: number;
}

interface TransportState {
	node: TransportNode;
	dueRound: number;
	first: boolean;
	latest?: ConnectionProfile;
}

/** One worker's entities: streams and transports in due-round buckets, profiles in a list updated in place. */
class WorkerEntities {
	readonly streams: ProfiledStream[] = [];
	readonly profiles: Array<StreamProfile | undefined> = [];
	readonly transports = new Map<string, TransportState>();
	readonly buckets = new Map<number, ProfiledStream[]>();
	readonly transportBuckets = new Map<number, TransportState[]>();
	/** Renewed halfway through a trigger's fast window, so a going rise leaves no slow round between renewals. */
	readonly cpuRise = new CpuRise(TRIGGER_FAST_MS / 2);
}

export interface WorkerRound {
	workerId: string;
	/** The latest profile of every stream of the worker (those not refreshed this round unchanged). */
	streams: StreamProfile[];
	/** The latest connection profile of every transport of the worker that has answered. */
	connections: ConnectionProfile[];
	/** The stream profiles built this round: what a store writes. */
	refreshed: StreamProfile[];
	/** The connection profiles built this round. */
	refreshedConnections: ConnectionProfile[];
}

/** Transport.getStats() is typed unknown[] on the base class; take only what we use. */
const transportRates = z.object({ recvBitrate: z.number(), sendBitrate: z.number() });

function push<T>(buckets: Map<number, T[]>, round: number, item: T): void {
	const b = buckets.get(round);
	if (b) b.push(item);
	else buckets.set(round, [item]);
}

export class StatsSchedule {
	private readonly workers = new Map<string, WorkerEntities>();
	/** Consumers of each producer, for derived updates when the producer is refreshed. */
	private readonly consumersOf = new Map<string, Set<ProfiledStream>>();
	private readonly producers = new Map<string, ProfiledStream>();
	private roundNo = 0;

	constructor(
		private readonly options: ScheduleOptions,
		private readonly meter: ProfilerMeter,
		private readonly consumers: ConsumerFlows,
		private readonly registry: Registry,
		/** A stream enters the fast tier from the slow one: its trace and tap windows follow. */
		private readonly onFast: (s: ProfiledStream, trigger: FastTrigger) => void,
	) {}

	private worker(id: string): WorkerEntities {
		let w = this.workers.get(id);
		if (!w) this.workers.set(id, (w = new WorkerEntities()));
		return w;
	}

	/** Rounds from now until atMs (at least the next one). */
	private roundsUntil(delayMs: number): number {
		return this.roundNo + Math.max(1, Math.round(delayMs / this.options.statsIntervalMs));
	}

	private scheduleStream(w: WorkerEntities, s: ProfiledStream, round: number): void {
		if (s.round.dueRound !== -1 && s.round.dueRound <= round) return;
		s.round.dueRound = round;
		push(w.buckets, round, s);
	}

	adopt(s: ProfiledStream): void {
		const w = this.worker(s.node.workerId);
		s.round.index = w.streams.length;
		w.streams.push(s);
		w.profiles.push(undefined);
		const now = Date.now();
		const node = s.node;
		if (node.kind === 'consumer') {
			let set = this.consumersOf.get(node.producerId);
			if (!set) this.consumersOf.set(node.producerId, (set = new Set()));
			set.add(s);
			// What changes the consumer's share of its producer's flow or its own quality: a switch of
			// spatial layer (temporal switches come and go with the sender's frame pattern and are
			// re-measured at the next own round), a pause or resume, a score that moved by
			// SCORE_STEP (mediasoup reports every one-point wobble).
			const consumer = node.handle;
			const observer = consumer.observer;
			const current = consumer.currentLayers;
			let spatial = current?.spatialLayer;
			let score = consumer.score.score;
			// What mediasoup holds, kept from its events for the rounds (see ConsumerCounters.live).
			const live = s.consumer?.live;
			if (live) {
				live.tracked = true;
				live.layers = current;
				live.score = score;
			}
			const onLive = {
				layers: (layers?: types.ConsumerLayers): void => void (live && (live.layers = layers)),
				score: (next: types.ConsumerScore): void => void (live && (live.score = next.score)),
			};
			// First among the observer's listeners, so one of the app's that throws cannot hide a change from it.
			observer.prependListener('layerschange', onLive.layers);
			observer.prependListener('score', onLive.score);
			const onLayers = (layers?: types.ConsumerLayers): void => {
				if (layers?.spatialLayer === spatial) return;
				spatial = layers?.spatialLayer;
				this.trigger(s, 'layers');
			};
			const onScore = (next: types.ConsumerScore): void => {
				if (Math.abs(next.score - score) < SCORE_STEP) return;
				score = next.score;
				this.trigger(s, 'score');
			};
			const onPause = (): void => this.trigger(s, 'pause');
			observer.on('layerschange', onLayers);
			observer.on('score', onScore);
			observer.on('pause', onPause);
			observer.on('resume', onPause);
			s.round.disposers.push(() => {
				observer.off('layerschange', onLive.layers);
				observer.off('score', onLive.score);
				observer.off('layerschange', onLayers);
				observer.off('score', onScore);
				observer.off('pause', onPause);
				observer.off('resume', onPause);
			});
		} else {
			this.producers.set(node.id, s);
			s.round.fastUntilMs = now + JOIN_FAST_MS;
			if (node.kind === 'producer') {
				const observer = node.handle.observer;
				// A change of the sender's quality, not its usual wobble (see ScoreEpisodes).
				const episodes = new ScoreEpisodes(node.handle.score, now);
				const onScore = (scores: types.ProducerScore[]): void => {
					if (episodes.observe(Date.now(), scores)) this.trigger(s, 'score');
				};
				const onPause = (): void => this.trigger(s, 'pause');
				observer.on('score', onScore);
				observer.on('pause', onPause);
				observer.on('resume', onPause);
				s.round.disposers.push(() => {
					observer.off('score', onScore);
					observer.off('pause', onPause);
					observer.off('resume', onPause);
				});
			}
		}
		// Due in the next round: a new stream has no profile yet.
		this.scheduleStream(w, s, this.roundNo + 1);
	}

	forget(s: ProfiledStream): void {
		const w = this.workers.get(s.node.workerId);
		for (const dispose of s.round.disposers.splice(0)) dispose();
		s.round.dueRound = -1;
		if (s.node.kind === 'consumer') {
			const set = this.consumersOf.get(s.node.producerId);
			set?.delete(s);
			if (set?.size === 0) this.consumersOf.delete(s.node.producerId);
		} else if (this.producers.get(s.node.id) === s) this.producers.delete(s.node.id);
		if (!w) return;
		// Swap-remove: the last stream takes the forgotten one's place.
		const i = s.round.index;
		const last = w.streams.pop()!;
		const lastProfile = w.profiles.pop();
		if (last !== s) {
			w.streams[i] = last;
			w.profiles[i] = lastProfile;
			last.round.index = i;
		}
	}

	adoptTransport(node: TransportNode): void {
		const w = this.worker(node.workerId);
		if (w.transports.has(node.id)) return;
		const t: TransportState = { node, dueRound: this.roundNo + 1, first: true };
		w.transports.set(node.id, t);
		push(w.transportBuckets, t.dueRound, t);
	}

	forgetTransport(node: { id: string; workerId: string }): void {
		const t = this.workers.get(node.workerId)?.transports.get(node.id);
		if (!t) return;
		t.dueRound = -1;
		this.workers.get(node.workerId)?.transports.delete(node.id);
	}

	forgetWorker(workerId: string): void {
		this.workers.delete(workerId);
	}

	clear(): void {
		this.workers.clear();
		this.consumersOf.clear();
		this.producers.clear();
	}

	/**
	 * Something says the stream is changing: producers and data streams enter the fast tier
	 * for TRIGGER_FAST_MS, consumers ask the worker in the next round. Either way it is due next round.
	 */
	trigger(s: ProfiledStream, reason: FastTrigger): void {
		if (!s.live) return;
		const w = this.workers.get(s.node.workerId);
		if (!w) return;
		// A consumer that matters to a hot worker is watched through its producer: the producer's
		// fast tier refreshes the consumer's derived flow every round without a request of its own.
		if (s.node.kind === 'consumer' && (reason === 'predictedHot' || reason === 'cpuRising')) {
			const producer = this.producers.get(s.node.producerId);
			if (producer) this.trigger(producer, reason);
			return;
		}
		// Counted apart: a consumer's trigger asks one request, a producer's holds the fast tier.
		this.meter.fastTrigger(s.node.kind === 'consumer' ? `consumer.${reason}` : reason);
		if (s.node.kind !== 'consumer') {
			const now = Date.now();
			const wasFast = now < s.round.fastUntilMs;
			s.round.fastUntilMs = Math.max(s.round.fastUntilMs, now + TRIGGER_FAST_MS);
			if (!wasFast) this.onFast(s, reason);
			this.scheduleStream(w, s, this.roundNo + 1);
			return;
		}
		// A change: its own rounds go back to their base period.
		s.round.consumerPeriodMs = undefined;
		const gapRounds = Math.ceil(CONSUMER_TRIGGER_GAP_MS / this.options.statsIntervalMs);
		this.scheduleStream(w, s, Math.max(this.roundNo + 1, s.round.askedRound + gapRounds));
	}

	/** A worker load sample (from Foresight): a real rise of its CPU puts the worker's producers in the fast tier (see CpuRise). */
	workerCpu(workerId: string, ts: number, cpuPct: number): void {
		const w = this.workers.get(workerId);
		const signal = w?.cpuRise.observe(ts, cpuPct);
		if (!w || !signal) return;
		// Per worker, beside the per-stream cpuRising count: how many rises, and how long they went on.
		this.meter.fastTrigger(`worker.cpuRise.${signal}`);
		for (const s of w.streams) if (s.node.kind !== 'consumer') this.trigger(s, 'cpuRising');
	}

	/** Starts a round (all workers' rounds of one tick share its number). */
	beginRound(): void {
		this.roundNo++;
	}

	/** One round of one worker: what is due asks together, then the refreshed streams' profiles. */
	async round(workerId: string): Promise<WorkerRound> {
		const w = this.workers.get(workerId);
		if (!w) return { workerId, streams: [], connections: [], refreshed: [], refreshedConnections: [] };
		const due = takeDue(w.buckets, this.roundNo, (s) => s.round.dueRound, (s) => (s.round.dueRound = -1));
		const dueTransports = takeDue(w.transportBuckets, this.roundNo, (t) => t.dueRound, (t) => (t.dueRound = -1));
		const at = Date.now();
		const answers: Array<Promise<void>> = [];
		const own = new Map<ProfiledStream, RtpStatsSample>();
		const refreshed = new Set<ProfiledStream>();
		// Audio producers one of whose consumers asks this round: its answer carries their stream.
		let answeredFor: Set<string> | undefined;
		for (const s of due) {
			if (!s.live || s.node.kind !== 'consumer') continue;
			const producer = this.producers.get(s.node.producerId);
			if (producer?.node.kind === 'producer' && producer.node.mediaKind === 'audio') (answeredFor ??= new Set()).add(producer.node.id);
		}
		for (const s of due) {
			if (!s.live) continue;
			if (s.node.kind === 'producer' && s.node.mediaKind === 'audio') {
				const asks = audioProducerAsks({
					nowMs: at,
					fast: at < s.round.fastUntilMs,
					periodMs: this.periodOf(s, at),
					consumerEveryMs: this.options.consumerStatsEveryMs + this.options.statsIntervalMs,
					consumerSampledAtMs: s.round.consumerSampledAtMs,
					consumerAnswersNow: answeredFor?.has(s.node.id) ?? false,
				});
				if (!asks) continue;
			}
			answers.push(this.collect(s, at, own, refreshed));
		}
		const connectionsDue = dueTransports.filter((t) => this.registry.has(t.node.id));
		const rates = new Map<TransportState, { recvBitrate: number; sendBitrate: number }>();
		for (const t of connectionsDue) answers.push(this.collectTransport(t, rates));
		// All of this worker's requests go out together: one round trip per round.
		await Promise.all(answers);
		const t0 = performance.now();
		try {
			return this.finish(w, workerId, due, at, own, refreshed, connectionsDue, rates);
		} finally {
			this.meter.ownSince(t0);
		}
	}

	private periodOf(s: ProfiledStream, nowMs: number): number {
		if (s.node.kind === 'consumer') return s.consumer?.stalled ? this.options.statsIntervalMs : (s.round.consumerPeriodMs ?? this.options.consumerStatsEveryMs);
		return nowMs < s.round.fastUntilMs ? this.options.statsIntervalMs : this.options.slowStatsEveryMs;
	}

	private finish(
		w: WorkerEntities,
		workerId: string,
		due: ProfiledStream[],
		at: number,
		own: Map<ProfiledStream, RtpStatsSample>,
		refreshed: Set<ProfiledStream>,
		transports: TransportState[],
		rates: Map<TransportState, { recvBitrate: number; sendBitrate: number }>,
	): WorkerRound {
		const now = Date.now();
		// Producers refreshed this round carry their consumers along (derived, no request); consumers
		// that asked themselves take their own answer. Producers first: consumers follow their rate.
		const consumersToFeed = new Set<ProfiledStream>();
		for (const s of refreshed) {
			if (s.node.kind === 'consumer') consumersToFeed.add(s);
			else {
				this.rateTrigger(s, at);
				const consumers = this.consumersOf.get(s.node.id);
				if (consumers) for (const c of consumers) if (c.live && c.node.workerId === workerId) consumersToFeed.add(c);
			}
		}
		for (const c of own.keys()) if (c.live) consumersToFeed.add(c);
		for (const c of consumersToFeed) {
			if (c.node.kind !== 'consumer' || !c.consumer) continue;
			// A missed event (a layer switch, a pause) still shows as a changed state: it asks next round.
			if (this.consumers.feed(c.acc, c.consumer, c.node.handle, at, own.get(c))) this.trigger(c, 'layers');
			refreshed.add(c);
		}
		const built: StreamProfile[] = [];
		// Producers before consumers, so consumers inherit this round's producer profiles.
		for (const pass of [false, true]) {
			for (const s of refreshed) {
				if (!s.live || (s.node.kind === 'consumer') !== pass) continue;
				const producer = pass ? this.producers.get((s.node as { producerId: string }).producerId)?.round.latest : undefined;
				const p = this.profileRound(s, now, producer);
				if (producer) inheritProducerVideo(p, producer);
				s.round.latest = p;
				w.profiles[s.round.index] = p;
				built.push(p);
			}
		}
		// Every due stream waits for its next round, refreshed or not (an audio producer whose consumers answered).
		for (const s of due) {
			if (!s.live) continue;
			const spreads = s.node.kind === 'consumer' && own.has(s) && !s.round.spread;
			if (spreads) s.round.spread = true;
			if (s.node.kind === 'consumer' && own.has(s)) {
				s.round.consumerPeriodMs = consumerPeriodMs({
					baseMs: this.options.consumerStatsEveryMs,
					capMs: this.options.consumerStatsMaxEveryMs,
					previousMs: s.round.consumerPeriodMs,
					steady: s.consumer?.steady ?? false,
					audio: s.acc.meta.kind === 'audio',
				});
			}
			this.scheduleStream(w, s, this.roundsUntil(nextRoundDelayMs(this.periodOf(s, now), spreads)));
		}
		const refreshedConnections: ConnectionProfile[] = [];
		if (transports.length > 0) {
			// Only the answering transports' streams are grouped: a round has a few of them among hundreds.
			const byTransport = new Map<string, StreamProfile[]>();
			for (const t of transports) if (rates.has(t)) byTransport.set(t.node.id, []);
			for (const p of w.profiles) if (p) byTransport.get(p.transportId)?.push(p);
			for (const t of transports) {
				const r = rates.get(t);
				if (w.transports.get(t.node.id) !== t) continue;
				if (r) {
					const mine = byTransport.get(t.node.id) ?? [];
					t.latest = {
						schemaVersion: PROFILE_SCHEMA_VERSION,
						ts: now,
						transportId: t.node.id,
						workerId,
						routerId: t.node.routerId,
						transportType: t.node.transportType,
						recvBitrateBps: r.recvBitrate,
						sendBitrateBps: r.sendBitrate,
						distribution: dataTypeDistribution(mine.map((p) => ({ dataType: p.dataType, bytes: p.flow.bitrateBps }))),
						streamIds: mine.map((p) => p.streamId),
					};
					refreshedConnections.push(t.latest);
				}
				// The first answer right away, the next at a random phase so transports spread over the period.
				t.dueRound = this.roundsUntil(nextDueMs(0, this.options.transportStatsEveryMs, t.first));
				t.first = false;
				push(w.transportBuckets, t.dueRound, t);
			}
		}
		const streams: StreamProfile[] = [];
		for (const p of w.profiles) if (p) streams.push(p);
		const connections: ConnectionProfile[] = [];
		for (const t of w.transports.values()) if (t.latest) connections.push(t.latest);
		return { workerId, streams, connections, refreshed: built, refreshedConnections };
	}

	/** A slow-tier rate far from the stream's moving average puts it in the fast tier. */
	private rateTrigger(s: ProfiledStream, at: number): void {
		// Audio is left out: DTX moves a talker's rate by far more than the share at every pause in
		// speech, which would hold every talker in the fast tier, and audio's load is small beside video's.
		if (s.acc.meta.kind === 'audio') return;
		const r = s.round;
		r.rate ??= new RateAverage();
		const slow = at >= r.fastUntilMs;
		if (r.rate.update(at, s.acc.currentBitrateBps, slow, this.options.slowStatsEveryMs)) this.trigger(s, 'rate');
	}

	/**
	 * This refresh's profile of a stream: a full profile when its window statistics are due
	 * (the first one right away, the next at a random phase so streams spread over the period),
	 * else the last full one with this refresh's flow. Data streams' flow is their message
	 * counters, which withCurrentFlow does not carry: they are few and always rebuilt.
	 */
	private profileRound(s: ProfiledStream, now: number, producer: StreamProfile | undefined): StreamProfile {
		const r = s.round;
		if (r.latest && s.acc.meta.kind !== 'data' && r.windowStatsDueMs !== undefined && now < r.windowStatsDueMs) {
			return s.acc.withCurrentFlow(r.latest, now);
		}
		r.windowStatsDueMs = nextDueMs(now, this.options.windowStatsEveryMs, r.windowStatsDueMs === undefined);
		// A consumer takes its producer's window statistics (see StreamAccumulator.profileFrom).
		return producer && s.acc.meta.inheritsWindows ? s.acc.profileFrom(producer, now) : s.acc.profile(now);
	}

	private async collectTransport(t: TransportState, out: Map<TransportState, { recvBitrate: number; sendBitrate: number }>): Promise<void> {
		const transport = t.node.handle;
		this.meter.request('transportStats', t.node.id);
		let answer: unknown[];
		try {
			answer = await transport.getStats();
		} catch (error) {
			// Closed while the request was in flight: its removal is already under way.
			return void this.meter.swallowed('transportStats', error, { transportId: t.node.id }, transport.closed);
		}
		const rates = transportRates.safeParse(answer[0]);
		if (!rates.success) return void this.meter.swallowed('transportStatsShape', rates.error, { transportId: t.node.id });
		out.set(t, rates.data);
	}

	/**
	 * One stream's request. A sample is stamped when its answer arrives, not when the round
	 * began: on a busy host a worker answers hundreds of ms late now and then, and a rate over a
	 * slow-tier interval stamped at the round's start would be off by that share.
	 */
	private async collect(s: ProfiledStream, at: number, own: Map<ProfiledStream, RtpStatsSample>, refreshed: Set<ProfiledStream>): Promise<void> {
		try {
			switch (s.node.kind) {
				case 'producer': {
					this.meter.request('producerStats', s.node.id);
					const stats = await s.node.handle.getStats();
					s.acc.addRtpStats(rtpSample(Date.now(), stats));
					break;
				}
				case 'consumer': {
					this.meter.request('consumerStats', s.node.id);
					s.round.askedRound = this.roundNo;
					const stats = await s.node.handle.getStats();
					const out: types.RtpStreamSendStats[] = [];
					let inbound: types.RtpStreamRecvStats | undefined;
					for (const x of stats) {
						if (x.type === 'outbound-rtp') out.push(x as types.RtpStreamSendStats);
						else if (x.type === 'inbound-rtp') inbound = x as types.RtpStreamRecvStats; // mediasoup types `type` as string: no narrowing
					}
					const current = s.node.handle.currentLayers;
					const answeredAt = Date.now();
					const sample = rtpSample(answeredAt, out);
					if (current) sample.currentLayers = current;
					own.set(s, sample);
					// The answer carries the producer's stream: an audio producer's whole flow (one stream),
					// so it need not ask the worker itself this period.
					const producer = this.producers.get(s.node.producerId);
					if (inbound && producer?.live && producer.node.kind === 'producer' && producer.node.mediaKind === 'audio' && producer.round.sampledAtMs < at) {
						producer.acc.addRtpStats(rtpSample(answeredAt, [inbound]));
						producer.round.sampledAtMs = at;
						producer.round.consumerSampledAtMs = at;
						if (producer.node.workerId === s.node.workerId) refreshed.add(producer);
					}
					break;
				}
				case 'dataProducer': {
					this.meter.request('dataProducerStats', s.node.id);
					const [st] = await s.node.handle.getStats();
					if (st) s.acc.addDataStats({ atMs: Date.now(), messageCount: st.messagesReceived, byteCount: st.bytesReceived });
					break;
				}
				case 'dataConsumer': {
					this.meter.request('dataConsumerStats', s.node.id);
					const [st] = await s.node.handle.getStats();
					if (st) s.acc.addDataStats({ atMs: Date.now(), messageCount: st.messagesSent, byteCount: st.bytesSent });
					break;
				}
			}
			s.round.sampledAtMs = at;
			refreshed.add(s);
		} catch (error) {
			// Closed while the request was in flight: its removal is already under way.
			this.meter.swallowed(`${s.node.kind}Stats`, error, { streamId: s.node.id }, s.node.handle.closed);
		}
	}
}

/**
 * Whether an audio producer due this round asks the worker for its stats itself. Not when
 * one of its consumers asks this round (that answer carries the producer's stream), nor
 * when a consumer's answer carried it within its staleness cap: its period in the fast tier;
 * in the slow tier the longer of its period and a consumer's (`consumerEveryMs`), since each
 * consumer answers at least that often and several, spread over the period, answer more
 * often. With no consumer answering for it, it asks every period.
 */
export function audioProducerAsks(a: {
	nowMs: number;
	fast: boolean;
	periodMs: number;
	consumerEveryMs: number;
	consumerSampledAtMs: number | undefined;
	consumerAnswersNow: boolean;
}): boolean {
	if (a.consumerAnswersNow) return false;
	if (a.consumerSampledAtMs === undefined) return true;
	const capMs = a.fast ? a.periodMs : Math.max(a.periodMs, a.consumerEveryMs);
	return a.nowMs - a.consumerSampledAtMs >= capMs;
}

/**
 * The period of a consumer's own rounds after an own answer. Its flow between answers is
 * derived from its producer's at every producer refresh; an answer re-measures its share of
 * that flow and its receiver's quality, whose changes its events (score, layerschange, pause,
 * resume) report as they happen and which bring it back to `baseMs` (consumerStatsEveryMs). So a
 * video consumer whose answer found it steady (ConsumerCounters.steady) doubles its period, up
 * to `capMs` (consumerStatsMaxEveryMs, by default transportStatsEveryMs: no staler than a
 * transport's rates, which between answers are also sums of derived flows); any other answer puts it back at `baseMs`. Audio consumers
 * keep `baseMs`: their answers are also their producer's refresh (audioProducerAsks).
 */
export function consumerPeriodMs(a: { baseMs: number; capMs: number; previousMs: number | undefined; steady: boolean; audio: boolean }): number {
	if (a.audio || !a.steady) return a.baseMs;
	return Math.max(a.baseMs, Math.min(a.capMs, 2 * (a.previousMs ?? a.baseMs)));
}

/**
 * How long until a stream's next round: its period, or when `spread` (a consumer's first own
 * answer) a random phase within it, so consumers that joined together ask in different rounds.
 */
export function nextRoundDelayMs(periodMs: number, spread: boolean): number {
	return nextDueMs(0, periodMs, spread);
}

/**
 * A stream's moving average of its rate, and whether its slow-tier rate departs from it by
 * more than RATE_CHANGE_SHARE in two judged rates in a row, on the same side. One departing
 * rate is a stream's usual wobble as often as a change: a 5 s rate holds one or two of a
 * camera's keyframes, and on a busy host a sender's stall moves bytes from one interval to
 * the next; a change (a layer switched, a screen share, a new resolution) stays. Time-weighted: the plain mean of everything since the first
 * rate until RATE_AVERAGE_TAU_MS has passed, an exponential average after (a stream's first
 * refresh has no rate, and an average started at 0 would call every later rate a change).
 */
export class RateAverage {
	private avgBps = 0;
	private sinceMs: number | undefined;
	private lastAtMs: number | undefined;
	private prevSlow = false;
	/** Side of the last judged rate's departure (+1 above, −1 below, 0: none). */
	private departed = 0;

	/** A refresh at `atMs` with the rate since the previous one; `slow`: the stream is in the slow tier. */
	update(atMs: number, bps: number, slow: boolean, slowEveryMs: number): boolean {
		const last = this.lastAtMs;
		this.lastAtMs = atMs;
		// The first refresh has one counter reading and no rate.
		if (last === undefined) return false;
		const dt = Math.max(0, atMs - last);
		if (this.sinceMs === undefined) {
			this.sinceMs = last;
			this.avgBps = bps;
			return false;
		}
		// Fast-tier rates (1 s) swing with every keyframe: only a slow-tier rate whose previous rate
		// was one too is judged (the first after a fast period straddles it), so a stream's own noise
		// never keeps it fast.
		const slowSample = slow && dt >= 0.8 * slowEveryMs;
		const judged = slowSample && this.prevSlow;
		this.prevSlow = slowSample;
		const departs = judged && Math.abs(bps - this.avgBps) > RATE_CHANGE_SHARE * Math.max(this.avgBps, RATE_FLOOR_BPS);
		const side = departs ? Math.sign(bps - this.avgBps) : 0;
		const changed = departs && side === this.departed;
		// A change triggers once; the next departure on that side starts a new pair.
		this.departed = changed ? 0 : side;
		const alpha = Math.max(1 - Math.exp(-dt / RATE_AVERAGE_TAU_MS), dt / Math.max(dt, atMs - this.sinceMs));
		this.avgBps += alpha * (bps - this.avgBps);
		return changed;
	}
}

/** Items of every bucket up to `round`, each once (a rescheduled item's older entries are skipped). */
export function takeDue<T>(buckets: Map<number, T[]>, round: number, dueOf: (item: T) => number, taken: (item: T) => void): T[] {
	const out: T[] = [];
	for (const [r, items] of buckets) {
		if (r > round) continue;
		buckets.delete(r);
		for (const item of items) {
			if (dueOf(item) !== r) continue;
			taken(item);
			out.push(item);
		}
	}
	return out;
}

/**
 * A consumer forwards its producer's layers: it has no payload tap of its own,
 * so its layers' resolution and framerate, and its video size (that of the top
 * layer it receives), come from the producer's profile.
 */
function inheritProducerVideo(p: StreamProfile, producer: StreamProfile | undefined): void {
	if (p.entity !== 'consumer' || p.kind !== 'video' || !p.video || !producer) return;
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
	const layers: RtpStatsSample['layers'] = [];
	for (const st of stats) {
		// Assigned, not spread: this runs for every stats answer.
		const layer: RtpStatsSample['layers'][number] = { ssrc: st.ssrc, byteCount: st.byteCount, packetCount: st.packetCount };
		if (st.rid) layer.rid = st.rid;
		layers.push(layer);
	}
	const sample: RtpStatsSample = {
		atMs,
		byteCount: bytes,
		packetCount: packets,
		layers,
		fractionLost,
		jitter,
		nackCount: nack,
		pliCount: pli,
		firCount: fir,
	};
	if (score !== undefined) sample.score = score;
	if (rtt !== undefined) sample.roundTripTimeMs = rtt;
	return sample;
}
