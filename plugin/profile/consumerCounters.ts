/**
 * Consumers' flow between their own getStats() rounds. A consumer forwards its
 * producer's packets, so most rounds it is not asked: its counters continue at its
 * producer's forwarded rate (ConsumerCounters); the stats rounds ask the worker on
 * its period and when its state changed (ConsumerFlows.stateChanged).
 */
import type { types } from 'mediasoup';
import type { RtpStatsSample, StreamAccumulator } from './accumulator';

/** What a stopped consumer (or one whose producer is not profiled) follows. Frozen: shared by every round. */
const NOTHING_FORWARDED: { readonly bps: number; readonly pps: number } = Object.freeze({ bps: 0, pps: 0 });

/** Bounds the consumer/producer byte ratio: a burst of retransmissions is not a new level. */
const MAX_FORWARD_RATIO = 4;

/**
 * An own round whose byte ratio to its producer moved by at most this share of the previous
 * one found the derived flow right: the temporal layers a consumer forwards and its
 * retransmissions move it by more when they change, a steady forwarder by a few percent.
 */
export const STEADY_RATIO_SHARE = 0.1;

/**
 * Whether an own round found the consumer as the derived rounds had it: its byte ratio to what
 * its producer forwarded was measured in the previous interval too and moved by at most
 * STEADY_RATIO_SHARE, and its receiver reported a full score (mediasoup's score falls with the
 * receiver's loss).
 */
export function steadyOwnRound(previousRatio: number | undefined, ratio: number | undefined, score: number | undefined): boolean {
	if (previousRatio === undefined || ratio === undefined || score !== 10) return false;
	return Math.abs(ratio - previousRatio) <= STEADY_RATIO_SHARE * previousRatio;
}

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
	/**
	 * The consumer's forwarded layers and score as mediasoup holds them, kept from its
	 * `layerschange` and `score` events once `tracked` (the stats rounds set that up) and
	 * re-read at each own round: mediasoup's getters structuredClone their value on every
	 * read, which the derived rounds of every consumer would pay each time their producer is
	 * refreshed. Untracked, the getters are read.
	 */
	readonly live: { tracked: boolean; layers: types.ConsumerLayers | undefined; score: number } = { tracked: false, layers: undefined, score: 0 };
	/** Paused state and forwarded spatial layer at the last own round: a change calls for a fresh one. */
	private pausedAtOwn: boolean | undefined;
	private spatialAtOwn: number | undefined;
	private last: RtpStatsSample | undefined;
	private own: { bytes: number; packets: number } | undefined;
	private forwardedBytes = 0;
	private forwardedPackets = 0;
	private byteRatio = 1;
	private packetRatio = 1;
	/** The byte ratio as the last own round measured it (undefined: not measured: no earlier own round, or nothing forwarded). */
	private measuredRatio: number | undefined;
	/** The last own round found it steady (see steadyOwnRound): its schedule may ask it less often. */
	steady = false;

	/**
	 * Its last own round found it sending nothing of what its producer forwarded (waiting for
	 * a keyframe, a transport not connected yet): nothing can be derived from a zero ratio,
	 * so it asks the worker itself every round until it flows.
	 */
	get stalled(): boolean {
		return this.own !== undefined && this.byteRatio === 0;
	}

	/** That state as text ('' before the first own round). */
	get stateAtOwn(): string {
		return this.pausedAtOwn === undefined ? '' : `${this.pausedAtOwn}:${this.spatialAtOwn}`;
	}

	/** The consumer asked the worker itself in this state. */
	ownState(paused: boolean, spatialLayer: number | undefined): void {
		this.pausedAtOwn = paused;
		this.spatialAtOwn = spatialLayer;
	}

	/** Whether the state differs from the last own round's (always, before the first). */
	stateDiffers(paused: boolean, spatialLayer: number | undefined): boolean {
		return this.pausedAtOwn !== paused || this.spatialAtOwn !== spatialLayer;
	}

	/** Whether derive() at atMs gives a sample (there was an own round, and time moved on since the last sample). */
	canDerive(atMs: number): boolean {
		return this.last !== undefined && atMs > this.last.atMs;
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
		const previousRatio = this.measuredRatio;
		this.measuredRatio = undefined;
		if (this.own) {
			const bytes = own.byteCount - this.own.bytes;
			const packets = own.packetCount - this.own.packets;
			// With nothing forwarded to follow (its producer not profiled, or silent) the derived counters
			// stood still since the last own round: the consumer's own counters are its flow.
			if (this.forwardedBytes > 0) {
				if (bytes >= 0) this.measuredRatio = this.byteRatio = Math.min(MAX_FORWARD_RATIO, bytes / this.forwardedBytes);
			} else if (continued) byteCount += Math.max(0, bytes);
			if (this.forwardedPackets > 0) {
				if (packets >= 0) this.packetRatio = Math.min(MAX_FORWARD_RATIO, packets / this.forwardedPackets);
			} else if (continued) packetCount += Math.max(0, packets);
		}
		this.steady = steadyOwnRound(previousRatio, this.measuredRatio, own.score);
		this.own = { bytes: own.byteCount, packets: own.packetCount };
		this.forwardedBytes = 0;
		this.forwardedPackets = 0;
		this.last = continued ? { ...own, byteCount, packetCount, layers: continued.layers.map((l) => ({ ...l, byteCount, packetCount })) } : own;
		return this.last;
	}
}

/**
 * The consumer-counter subsystem's interface to the stats rounds: whether a consumer
 * asks the worker this round, and its sample for the round either way.
 */
export class ConsumerFlows {
	constructor(
		/** The accumulator of a profiled producer (undefined: not profiled). */
		private readonly producerOf: (producerId: string) => StreamAccumulator | undefined,
	) {}

	/**
	 * The consumer's sample of this round (own or derived), into its accumulator. Producers'
	 * samples of the round come first. Returns whether, without an own answer this round, the
	 * consumer paused, resumed or switched spatial layer since its last own round (the ratio to
	 * its producer changes): then it asks the worker itself. Its events say so first; this
	 * catches one that was missed.
	 */
	feed(acc: StreamAccumulator, counters: ConsumerCounters, consumer: types.Consumer, at: number, own: RtpStatsSample | undefined): boolean {
		const producer = this.producerOf(consumer.producerId);
		const live = counters.live;
		if (own && live.tracked) {
			live.layers = consumer.currentLayers;
			live.score = consumer.score.score;
		}
		const layers = live.tracked ? live.layers : consumer.currentLayers;
		const paused = consumer.paused || consumer.producerPaused;
		const stopped = paused || (consumer.type === 'simulcast' && !layers);
		const forwarded = !producer || stopped ? NOTHING_FORWARDED : producer.forwardedRate(consumer.type === 'simulcast' ? layers?.spatialLayer : undefined);
		if (own) {
			acc.addRtpStats(counters.ownRound(own, forwarded));
			// Temporal switches come and go with the sender's frame pattern (see schedule.ts): paused and spatial layer only.
			counters.ownState(paused, layers?.spatialLayer);
			return false;
		}
		if (counters.canDerive(at)) {
			const state: Pick<RtpStatsSample, 'score' | 'currentLayers'> = { score: live.tracked ? live.score : consumer.score.score };
			if (layers) state.currentLayers = layers;
			acc.addRtpStats(counters.derive(at, forwarded, state)!);
		}
		return counters.stateDiffers(paused, layers?.spatialLayer);
	}
}
