import { StreamAccumulator, type StreamMeta } from '../../plugin/profile/accumulator';
import { rtpStats } from './rtpStats';

/**
 * Scene changes of a simulcast producer from its sender reports (the `sr` trace), pure: a
 * browser reports each layer's octet count about once a second whatever the getStats() tier,
 * so a cut is placed within a second while the stats rounds come every 5 s (the slow tier).
 */
const meta: StreamMeta = {
	streamId: 'p1',
	entity: 'producer',
	kind: 'video',
	workerId: 'w',
	routerId: 'r',
	transportId: 't',
	mimeType: 'video/VP8',
	clockRate: 90000,
	encodings: [{ rid: 'r0' }, { rid: 'r1' }, { rid: 'r2' }],
};
const SSRCS = [111, 222, 333];
/** Per layer: bits/s of the steady content. */
const BEFORE = [150_000, 500_000, 1_500_000];
/**
 * Two cuts 2.5 s apart, both inside one 5 s stats interval (clips cut every 2–8 s). Each
 * cut's first frame on a layer is a burst of this many bits/s over its first 200 ms.
 */
const CUTS_MS = [40_300, 42_800];
const BURST = [1_500_000, 5_000_000, 15_000_000];
const SLOW_MS = 5000;

/** Octets a layer has sent by t (a small wobble, so the baseline is not flat). */
function octets(layer: number, t: number): number {
	const rate = (u: number): number => (BEFORE[layer]! + (CUTS_MS.some((c) => u >= c && u < c + 200) ? BURST[layer]! : 0)) / 8;
	let sum = 0;
	for (let u = 0; u < t; u += 100) sum += rate(u) * 0.1 * (1 + 0.04 * Math.sin(u / 700 + layer));
	return Math.round(sum);
}

/** Stats rounds every SLOW_MS (they report SSRC and RID, which teaches the layers' SSRCs). */
function feedStats(acc: StreamAccumulator, toMs: number): void {
	for (let t = 0; t <= toMs; t += SLOW_MS) {
		const layers = SSRCS.map((ssrc, i) => ({ ssrc, rid: `r${i}`, byteCount: octets(i, t), packetCount: Math.floor(octets(i, t) / 1000) }));
		acc.addRtpStats(rtpStats(t, layers));
	}
}

/** Every layer's reports, each layer at its own interval (a browser randomises them around 1 s). */
function reports(toMs: number): Array<{ atMs: number; ssrc: number; octets: number }> {
	const out: Array<{ atMs: number; ssrc: number; octets: number }> = [];
	SSRCS.forEach((ssrc, i) => {
		for (let k = 0, t = 50 + 130 * i; t <= toMs; k++, t += 700 + ((k * 37 + i * 101) % 600)) out.push({ atMs: t, ssrc, octets: octets(i, t) });
	});
	return out.sort((a, b) => a.atMs - b.atMs);
}

function withReports(toMs: number): StreamAccumulator {
	const acc = new StreamAccumulator(meta);
	const rs = reports(toMs);
	let next = 0;
	for (let t = 0; t <= toMs; t += SLOW_MS) {
		for (; next < rs.length && rs[next]!.atMs < t; next++) acc.addSenderReport(rs[next]!.atMs, rs[next]!.ssrc, rs[next]!.octets);
		const layers = SSRCS.map((ssrc, i) => ({ ssrc, rid: `r${i}`, byteCount: octets(i, t), packetCount: Math.floor(octets(i, t) / 1000) }));
		acc.addRtpStats(rtpStats(t, layers));
	}
	for (; next < rs.length; next++) acc.addSenderReport(rs[next]!.atMs, rs[next]!.ssrc, rs[next]!.octets);
	return acc;
}

describe('scene changes from sender reports (pure)', () => {
	test('two cuts in one 5 s stats interval are each placed within a second from the reports; from the stats rounds alone they are not', () => {
		const found = (changes: number[]): number => CUTS_MS.filter((cut) => changes.some((t) => Math.abs(t - cut) <= 1000)).length;
		const statsOnly = new StreamAccumulator(meta);
		feedStats(statsOnly, 80_000);
		expect(found(statsOnly.sceneChangesBetween(0, Infinity).map((c) => c.timeMs))).toBeLessThan(2);

		const changes = withReports(80_000).sceneChangesBetween(0, Infinity).map((c) => c.timeMs);
		expect(changes).toHaveLength(2);
		expect(found(changes)).toBe(2);
	});

	test('reports of a layer whose SSRC is not yet known are ignored; an octet count that wraps at 32 bits is a rate, not a drop', () => {
		const acc = new StreamAccumulator(meta);
		// No stats yet: no layer knows its SSRC, so nothing is fed (the count going back would be a burst).
		for (let t = 0; t < 30_000; t += 1000) acc.addSenderReport(t, 333, t === 20_000 ? 0 : 1);
		expect(acc.sceneChangesBetween(0, Infinity)).toEqual([]);

		const wrapped = new StreamAccumulator(meta);
		wrapped.addRtpStats(rtpStats(0, SSRCS.map((ssrc, i) => ({ ssrc, rid: `r${i}`, byteCount: 0, packetCount: 0 }))));
		// 187,500 octets a second on the top layer, the counter passing 2^32 between the reports at
		// 20 s and 21 s, and a cut's burst in the second after: the wrap must not hide it.
		const start = 2 ** 32 - 20.5 * 187_500;
		let sent = start;
		for (let k = 0; k <= 40; k++) {
			if (k > 0) sent += 187_500 + (k % 3) * 2000 + (k === 22 ? 1_500_000 : 0);
			wrapped.addSenderReport(1000 * k, 333, sent % 2 ** 32);
		}
		expect(wrapped.sceneChangesBetween(0, Infinity).map((c) => c.timeMs)).toEqual([21_500]);
	});

	test('while a layer reports, the stats rounds add no evidence of their own for it', () => {
		// Stats rounds that alone would show a change (a 5 s rate 3× the others) change nothing
		// while the reports, which show none, are fresh.
		const acc = new StreamAccumulator(meta);
		let sentByStats = 0;
		for (let t = 0; t <= 60_000; t += 1000) {
			for (let i = 0; i < 3; i++) acc.addSenderReport(t + 10 * i, SSRCS[i]!, Math.round(((t + 10 * i) / 1000) * (BEFORE[i]! / 8)));
			if (t % SLOW_MS === 0) {
				sentByStats += (t === 35_000 ? 3 : 1) * SLOW_MS * (BEFORE[2]! / 8000);
				acc.addRtpStats(rtpStats(t, SSRCS.map((ssrc, i) => ({ ssrc, rid: `r${i}`, byteCount: i === 2 ? sentByStats : (t / 1000) * (BEFORE[i]! / 8), packetCount: t }))));
			}
		}
		expect(acc.sceneChangesBetween(0, Infinity)).toEqual([]);
	});

	test('a burst right after a traced keyframe request is the requested keyframe, known from the time it was sent (a slow-tier round would report it up to 5 s late)', () => {
		const burstAt = (acc: StreamAccumulator, requestMs: number | undefined): number[] => {
			acc.addRtpStats(rtpStats(0, SSRCS.map((ssrc, i) => ({ ssrc, rid: `r${i}`, byteCount: 0, packetCount: 0 }))));
			let sent = 0;
			for (let k = 1; k <= 40; k++) {
				if (requestMs !== undefined && k * 1000 > requestMs && (k - 1) * 1000 <= requestMs) acc.keyframeRequestSent(requestMs);
				sent += 187_500 + (k % 3) * 2000 + (k === 25 ? 1_500_000 : 0);
				acc.addSenderReport(1000 * k, 333, sent);
			}
			return acc.sceneChangesBetween(0, Infinity).map((c) => c.timeMs);
		};
		expect(burstAt(new StreamAccumulator(meta), undefined)).toEqual([24_500]);
		expect(burstAt(new StreamAccumulator(meta), 24_200)).toEqual([]);
	});
});

