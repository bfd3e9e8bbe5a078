import type { RtpStatsSample } from '../../plugin/profile/accumulator';

/** A stats round of the given layers' counters, totals summed, no loss, jitter or feedback unless `extra` says so. */
export function rtpStats(atMs: number, layers: RtpStatsSample['layers'], extra: Partial<RtpStatsSample> = {}): RtpStatsSample {
	return {
		atMs,
		byteCount: layers.reduce((a, l) => a + l.byteCount, 0),
		packetCount: layers.reduce((a, l) => a + l.packetCount, 0),
		layers,
		fractionLost: 0,
		jitter: 0,
		nackCount: 0,
		pliCount: 0,
		firCount: 0,
		...extra,
	};
}
