import { StreamAccumulator, type RtpStatsSample } from '../../plugin/profile/accumulator';
import type { types } from 'mediasoup';
import { ConsumerFlows, steadyOwnRound } from '../../plugin/profile/consumerCounters';
import { ConsumerCounters } from '../../plugin/profile/profiler';
import { rtpStats } from './rtpStats';

const SSRC = 4242;
/** What the producer forwards: 800 kbit/s = 100 kB/s in 100 packets/s. */
const FORWARDED = { bps: 800_000, pps: 100 };
const NOTHING = { bps: 0, pps: 0 };
const LIVE = { score: 9, currentLayers: { spatialLayer: 1, temporalLayer: 2 } };

/** A consumer's own getStats() round (one outbound-rtp stream). */
function own(atMs: number, byteCount: number, packetCount: number, extra: Partial<RtpStatsSample> = {}): RtpStatsSample {
	return rtpStats(atMs, [{ ssrc: SSRC, byteCount, packetCount }], extra);
}

/** Derived rounds every second from `fromMs` (exclusive) to `toMs` (exclusive). */
function deriveEverySecond(counters: ConsumerCounters, fromMs: number, toMs: number, forwarded = FORWARDED): RtpStatsSample[] {
	const out: RtpStatsSample[] = [];
	for (let t = fromMs + 1000; t < toMs; t += 1000) out.push(counters.derive(t, forwarded, LIVE)!);
	return out;
}

describe('steadyOwnRound', () => {
	test('steady: the byte ratio measured twice, moved by at most 10 %, and a full score', () => {
		expect(steadyOwnRound(1, 1.08, 10)).toBe(true);
		expect(steadyOwnRound(0.5, 0.56, 10)).toBe(false);
		expect(steadyOwnRound(1, 1, 9)).toBe(false);
		expect(steadyOwnRound(undefined, 1, 10)).toBe(false);
		expect(steadyOwnRound(1, undefined, 10)).toBe(false);
	});
});

describe('ConsumerCounters (pure)', () => {
	test('steady after the second own round that measures the same share of what its producer forwards', () => {
		const counters = new ConsumerCounters();
		const full = { score: 10 };
		// It sends all of what is forwarded: 100 kB/s.
		counters.ownRound(own(10_000, 0, 0, full), FORWARDED);
		expect(counters.steady).toBe(false);
		deriveEverySecond(counters, 10_000, 20_000);
		counters.ownRound(own(20_000, 1_000_000, 1000, full), FORWARDED);
		// One ratio measured: nothing to compare it with yet.
		expect(counters.steady).toBe(false);
		deriveEverySecond(counters, 20_000, 30_000);
		counters.ownRound(own(30_000, 2_000_000, 2000, full), FORWARDED);
		expect(counters.steady).toBe(true);
		// Half of it now (a temporal layer dropped): not steady.
		deriveEverySecond(counters, 30_000, 40_000);
		counters.ownRound(own(40_000, 2_500_000, 2500, full), FORWARDED);
		expect(counters.steady).toBe(false);
		// The same share again, but the receiver reports loss.
		deriveEverySecond(counters, 40_000, 50_000);
		counters.ownRound(own(50_000, 3_000_000, 3000, { score: 8 }), FORWARDED);
		expect(counters.steady).toBe(false);
	});

	test('before its first own round a consumer has nothing to continue; the profiler sees a fresh one', () => {
		const counters = new ConsumerCounters();
		expect(counters.derive(1000, FORWARDED, LIVE)).toBeUndefined();
		expect(counters.derive(2000, FORWARDED, LIVE)).toBeUndefined();
		// The schedule asks a new consumer right away; the empty state tells it has had no own round.
		expect(counters.stateAtOwn).toBe('');
	});

	test('a consumer that sent nothing of what its producer forwarded is stalled until an own round sees it flow', () => {
		const counters = new ConsumerCounters();
		counters.ownRound(own(10_000, 0, 0), FORWARDED);
		expect(counters.stalled).toBe(false);
		deriveEverySecond(counters, 10_000, 15_000);
		// Still waiting for a keyframe: 4 s of forwarded media, none of it sent.
		const stalled = counters.ownRound(own(15_000, 0, 0), FORWARDED);
		expect(counters.stalled).toBe(true);
		// Derived at a zero ratio, its counters stand still: the profiler asks the worker instead.
		expect(counters.derive(16_000, FORWARDED, LIVE)!.byteCount).toBe(stalled.byteCount);
		const flowing = counters.ownRound(own(17_000, 25_000, 25), FORWARDED);
		expect(counters.stalled).toBe(false);
		expect(counters.derive(18_000, FORWARDED, LIVE)!.byteCount).toBeGreaterThan(flowing.byteCount);
	});

	test('the first own round is taken as is; derived counters then grow by the forwarded rate × elapsed time', () => {
		const counters = new ConsumerCounters();
		const first = own(10_000, 5000, 10);
		expect(counters.ownRound(first, FORWARDED)).toEqual(first);
		const a = counters.derive(11_000, FORWARDED, LIVE)!;
		expect(a.byteCount).toBeCloseTo(5000 + FORWARDED.bps / 8);
		expect(a.packetCount).toBeCloseTo(10 + FORWARDED.pps);
		const b = counters.derive(11_500, { bps: 400_000, pps: 40 }, LIVE)!;
		expect(b.byteCount - a.byteCount).toBeCloseTo(400_000 / 8 / 2);
		expect(b.packetCount - a.packetCount).toBeCloseTo(20);
		expect(b.layers).toEqual([{ ssrc: SSRC, byteCount: b.byteCount, packetCount: b.packetCount }]);
	});

	test('a derived round keeps the last own round’s loss, jitter, RTCP counts and RTT, and takes the live score and layers', () => {
		const counters = new ConsumerCounters();
		counters.ownRound(own(0, 0, 0, { fractionLost: 12, jitter: 300, nackCount: 7, pliCount: 2, firCount: 1, roundTripTimeMs: 42, score: 4, currentLayers: { spatialLayer: 0 } }), FORWARDED);
		const next = counters.derive(1000, FORWARDED, LIVE)!;
		expect(next).toMatchObject({ atMs: 1000, fractionLost: 12, jitter: 300, nackCount: 7, pliCount: 2, firCount: 1, roundTripTimeMs: 42, score: 9, currentLayers: LIVE.currentLayers });
		const noLive = counters.derive(2000, FORWARDED, {})!;
		expect(noLive.score).toBeUndefined();
		expect(noLive.currentLayers).toBeUndefined();
		expect(noLive.roundTripTimeMs).toBe(42);
	});

	test('an own round learns what share of the forwarded flow the consumer gets, and keeps the series continuous', () => {
		// The consumer receives a lower temporal layer: half of what the producer forwards.
		const counters = new ConsumerCounters();
		counters.ownRound(own(0, 0, 0), FORWARDED);
		const derived = deriveEverySecond(counters, 0, 5000);
		expect(derived.at(-1)!.byteCount).toBeCloseTo(4 * 100_000);
		const second = counters.ownRound(own(5000, 250_000, 250, { fractionLost: 3, score: 7 }), FORWARDED);
		// Continued at the old ratio up to this round: the accumulator takes deltas, and a jump would be a false burst.
		expect(second.byteCount).toBeCloseTo(5 * 100_000);
		expect(second.packetCount).toBeCloseTo(5 * 100);
		expect(second.layers).toEqual([{ ssrc: SSRC, byteCount: second.byteCount, packetCount: second.packetCount }]);
		// The rest comes from the consumer's own stats.
		expect(second).toMatchObject({ atMs: 5000, fractionLost: 3, score: 7 });
		// From now on it follows the producer at the learned share.
		const after = counters.derive(6000, FORWARDED, LIVE)!;
		expect(after.byteCount - second.byteCount).toBeCloseTo(0.5 * 100_000);
		expect(after.packetCount - second.packetCount).toBeCloseTo(0.5 * 100);
		// A later own round re-measures the share: now it gets the whole layer again.
		deriveEverySecond(counters, 6000, 10_000);
		const whole = counters.ownRound(own(10_000, 250_000 + 500_000, 250 + 500), FORWARDED);
		const last = counters.derive(11_000, FORWARDED, LIVE)!;
		expect(last.byteCount - whole.byteCount).toBeCloseTo(100_000);
	});

	test('time that does not advance gives no derived round and adds nothing to the forwarded total', () => {
		const counters = new ConsumerCounters();
		counters.ownRound(own(1000, 0, 0), FORWARDED);
		expect(counters.derive(1000, FORWARDED, LIVE)).toBeUndefined();
		expect(counters.derive(500, FORWARDED, LIVE)).toBeUndefined();
		const a = counters.derive(2000, FORWARDED, LIVE)!;
		expect(counters.derive(2000, { bps: 80_000_000, pps: 10_000 }, LIVE)).toBeUndefined();
		expect(counters.derive(1500, { bps: 80_000_000, pps: 10_000 }, LIVE)).toBeUndefined();
		// The consumer got exactly what was forwarded over the two seconds that counted: the share stays 1.
		counters.ownRound(own(3000, 200_000, 200), FORWARDED);
		const b = counters.derive(4000, FORWARDED, LIVE)!;
		expect(a.byteCount).toBeCloseTo(100_000);
		expect(b.byteCount - a.byteCount).toBeCloseTo(2 * 100_000);
	});

	test('a burst beyond four times the forwarded flow (retransmissions) is not learned as a new level', () => {
		const counters = new ConsumerCounters();
		counters.ownRound(own(0, 0, 0), FORWARDED);
		const before = counters.ownRound(own(1000, 10 * 100_000, 10 * 100), FORWARDED);
		const next = counters.derive(2000, FORWARDED, LIVE)!;
		expect(next.byteCount - before.byteCount).toBeCloseTo(4 * 100_000);
		expect(next.packetCount - before.packetCount).toBeCloseTo(4 * 100);
	});

	test('counters that went backwards or an interval with nothing forwarded leave the learned share alone', () => {
		const counters = new ConsumerCounters();
		counters.ownRound(own(0, 1_000_000, 1000), FORWARDED);
		// Half of what was forwarded.
		counters.ownRound(own(1000, 1_050_000, 1050), FORWARDED);
		// Counters that went backwards say nothing about the share.
		const backwards = counters.ownRound(own(2000, 10, 1), FORWARDED);
		// Nothing forwarded over the interval (the producer paused): no ratio to take either.
		const silent = counters.ownRound(own(3000, 20, 2), NOTHING);
		expect(silent.byteCount).toBeGreaterThanOrEqual(backwards.byteCount);
		const prev = counters.derive(4000, FORWARDED, LIVE)!;
		const next = counters.derive(5000, FORWARDED, LIVE)!;
		expect(next.byteCount - prev.byteCount).toBeCloseTo(0.5 * 100_000);
		expect(next.packetCount - prev.packetCount).toBeCloseTo(0.5 * 100);
	});

	test('a derived round keeps a layer without ssrc when the own round had none', () => {
		const counters = new ConsumerCounters();
		counters.ownRound({ ...own(0, 0, 0), layers: [] }, FORWARDED);
		const next = counters.derive(1000, FORWARDED, LIVE)!;
		expect(next.layers).toEqual([{ byteCount: next.byteCount, packetCount: next.packetCount }]);
	});

	test('with nothing forwarded to follow (its producer not profiled), own rounds every tick still show the consumer’s flow', () => {
		// The profiler asks such a consumer itself every round and feeds its rounds to the accumulator.
		const acc = new StreamAccumulator({ streamId: 'c1', entity: 'consumer', kind: 'video', workerId: 'w', routerId: 'r', transportId: 't', producerId: 'p1', encodings: [{ ssrc: SSRC }] });
		const counters = new ConsumerCounters();
		const truth: Array<[number, number]> = [];
		for (let i = 0; i <= 5; i++) {
			const sample = counters.ownRound(own(i * 1000, i * 60_000, i * 60), NOTHING);
			acc.addRtpStats(sample);
			truth.push([sample.byteCount, sample.packetCount]);
		}
		expect(truth.at(-1)).toEqual([5 * 60_000, 5 * 60]);
		expect(acc.currentBitrateBps).toBeCloseTo(8 * 60_000);
		// Once the producer's rate is known the consumer follows it (at the full rate: no share was measurable yet).
		const next = counters.derive(6000, FORWARDED, LIVE)!;
		expect(next.byteCount - 5 * 60_000).toBeCloseTo(100_000);
	});

	test('ConsumerFlows: a tracked consumer’s derived rounds use the layers and score its events kept (mediasoup’s getters are read only at own rounds); untracked, the getters are read', () => {
		const reads = { layers: 0, score: 0 };
		const state = { layers: { spatialLayer: 2, temporalLayer: 1 } as types.ConsumerLayers | undefined, score: 8, paused: false };
		const consumer = {
			producerId: 'p1',
			type: 'simulcast',
			get paused() {
				return state.paused;
			},
			producerPaused: false,
			get currentLayers() {
				reads.layers++;
				return state.layers && { ...state.layers };
			},
			get score() {
				reads.score++;
				return { score: state.score, producerScore: 10, producerScores: [10, 10, 10] };
			},
		} as unknown as types.Consumer;
		const producer = { forwardedRate: (layer?: number) => (layer === 2 ? FORWARDED : NOTHING) };
		const flows = new ConsumerFlows(() => producer as unknown as StreamAccumulator);
		const meta = { streamId: 'c1', entity: 'consumer' as const, kind: 'video' as const, workerId: 'w', routerId: 'r', transportId: 't', producerId: 'p1', encodings: [{ ssrc: SSRC }] };

		// Untracked: the getters every round, as the truth.
		const plain = new ConsumerCounters();
		const plainAcc = new StreamAccumulator(meta);
		expect(flows.feed(plainAcc, plain, consumer, 0, own(0, 0, 0))).toBe(false);
		expect(flows.feed(plainAcc, plain, consumer, 1000, undefined)).toBe(false);
		expect(reads).toEqual({ layers: 2, score: 1 });

		// Tracked: what the events said; the own round re-reads (and so corrects a missed event).
		const counters = new ConsumerCounters();
		counters.live.tracked = true;
		counters.live.layers = state.layers;
		counters.live.score = state.score;
		const acc = new StreamAccumulator(meta);
		reads.layers = reads.score = 0;
		expect(flows.feed(acc, counters, consumer, 0, own(0, 0, 0))).toBe(false);
		expect(reads).toEqual({ layers: 1, score: 1 });
		expect(flows.feed(acc, counters, consumer, 1000, undefined)).toBe(false);
		expect(flows.feed(acc, counters, consumer, 2000, undefined)).toBe(false);
		expect(reads).toEqual({ layers: 1, score: 1 });
		// Same flow as the untracked consumer's: it forwards the top layer at the producer's rate.
		expect(acc.currentBitrateBps).toBeCloseTo(plainAcc.currentBitrateBps);
		expect(acc.currentBitrateBps).toBeCloseTo(FORWARDED.bps);
		// A layer switch the events reported: the state differs from the own round's, so it asks next round.
		counters.live.layers = { spatialLayer: 1, temporalLayer: 1 };
		counters.live.score = 5;
		expect(flows.feed(acc, counters, consumer, 3000, undefined)).toBe(true);
		expect(acc.currentBitrateBps).toBe(0);
		expect(acc.profileFrom(acc.profile(3000), 3000).flow.score).toBe(5);
		// An own round re-reads mediasoup's state: the event's figures give way to the truth.
		expect(flows.feed(acc, counters, consumer, 4000, own(4000, 10_000, 10))).toBe(false);
		expect(counters.live.layers).toEqual(state.layers);
		expect(counters.live.score).toBe(8);
		expect(reads).toEqual({ layers: 2, score: 2 });
	});
});
