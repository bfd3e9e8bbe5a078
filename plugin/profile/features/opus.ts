/**
 * Opus TOC byte (RFC 6716 §3.1) and frame count (§3.2): mode, audio bandwidth,
 * frame duration, stereo flag — the spectral proxy the profile reports — and DTX.
 */
import type { AudioProfile } from '../schema';

export type OpusMode = 'SILK' | 'HYBRID' | 'CELT';
export type OpusBandwidth = 'NB' | 'MB' | 'WB' | 'SWB' | 'FB';

/**
 * A packet this small carries no coded audio: libopus emits a 1-byte (TOC only)
 * packet for a DTX frame and WebRTC treats payloads ≤ 2 bytes as DTX/comfort
 * noise. Ordinary SILK frames, even of digital silence, are ≥ 3 bytes.
 */
export const OPUS_DTX_MAX_BYTES = 2;

/** Audio bandwidth in Hz per RFC 6716 §2 (used by the complexity metric). */
export const OPUS_BANDWIDTH_HZ: Record<OpusBandwidth, number> = { NB: 4000, MB: 6000, WB: 8000, SWB: 12000, FB: 20000 };

export interface OpusToc {
	config: number;
	mode: OpusMode;
	bandwidth: OpusBandwidth;
	frameMs: number;
	stereo: boolean;
	/** The c field: 0 = one frame, 1 = two equal, 2 = two different, 3 = arbitrary count. */
	frameCode: number;
	frameCount: number;
	/** frameCount × frameMs. */
	packetMs: number;
	dtx: boolean;
}

function configShape(config: number): { mode: OpusMode; bandwidth: OpusBandwidth; frameMs: number } {
	if (config < 12) {
		const bandwidths: OpusBandwidth[] = ['NB', 'MB', 'WB'];
		return { mode: 'SILK', bandwidth: bandwidths[config >> 2] as OpusBandwidth, frameMs: [10, 20, 40, 60][config & 3] as number };
	}
	if (config < 16) {
		return { mode: 'HYBRID', bandwidth: config < 14 ? 'SWB' : 'FB', frameMs: (config & 1) === 0 ? 10 : 20 };
	}
	const bandwidths: OpusBandwidth[] = ['NB', 'WB', 'SWB', 'FB'];
	return { mode: 'CELT', bandwidth: bandwidths[(config - 16) >> 2] as OpusBandwidth, frameMs: [2.5, 5, 10, 20][config & 3] as number };
}

/** Longest packet RFC 6716 §3.2.5 allows. */
const MAX_PACKET_MS = 120;

export function parseOpusToc(payload: Uint8Array): OpusToc | undefined {
	const toc = payload[0];
	if (toc === undefined) return undefined;
	const config = toc >> 3;
	const { mode, bandwidth, frameMs } = configShape(config);
	const frameCode = toc & 0x03;
	let frameCount = frameCode === 0 ? 1 : 2;
	if (frameCode === 3) {
		const countByte = payload[1];
		if (countByte === undefined) return undefined;
		frameCount = countByte & 0x3f;
		if (frameCount === 0 || frameCount * frameMs > MAX_PACKET_MS) return undefined;
	}
	return {
		config,
		mode,
		bandwidth,
		frameMs,
		stereo: (toc & 0x04) !== 0,
		frameCode,
		frameCount,
		packetMs: frameCount * frameMs,
		dtx: payload.length <= OPUS_DTX_MAX_BYTES,
	};
}

/**
 * Accumulates sampled Opus payloads into the audio profile's Opus fields. Mode,
 * bandwidth and frame duration are the most frequent values among non-DTX packets
 * (the encoder switches them adaptively; the mode is what the stream mostly is).
 */
export class OpusSummary {
	private readonly modes = new Map<OpusMode, number>();
	private readonly bandwidths = new Map<OpusBandwidth, number>();
	private readonly frameDurations = new Map<number, number>();
	private stereoPackets = 0;
	private audioPackets = 0;
	private dtxPackets = 0;
	private invalidPackets = 0;

	/** Returns the parsed TOC, or undefined if the payload is not valid Opus. */
	add(payload: Uint8Array): OpusToc | undefined {
		const toc = parseOpusToc(payload);
		if (!toc) {
			this.invalidPackets++;
			return undefined;
		}
		if (toc.dtx) {
			this.dtxPackets++;
			return toc;
		}
		this.audioPackets++;
		if (toc.stereo) this.stereoPackets++;
		increment(this.modes, toc.mode);
		increment(this.bandwidths, toc.bandwidth);
		increment(this.frameDurations, toc.frameMs);
		return toc;
	}

	get packets(): number {
		return this.audioPackets + this.dtxPackets;
	}

	get invalid(): number {
		return this.invalidPackets;
	}

	/** Share of valid packets that were DTX. */
	get dtxShare(): number {
		return this.packets === 0 ? 0 : this.dtxPackets / this.packets;
	}

	/** Share of audio packets coded stereo (the TOC s bit). */
	get stereoShare(): number {
		return this.audioPackets === 0 ? 0 : this.stereoPackets / this.audioPackets;
	}

	summary(): Pick<AudioProfile, 'opusBandwidth' | 'opusMode' | 'frameMs' | 'dtx'> {
		return {
			opusMode: mostFrequent(this.modes),
			opusBandwidth: mostFrequent(this.bandwidths),
			frameMs: mostFrequent(this.frameDurations),
			dtx: this.packets === 0 ? undefined : this.dtxPackets > 0,
		};
	}

	reset(): void {
		this.modes.clear();
		this.bandwidths.clear();
		this.frameDurations.clear();
		this.stereoPackets = this.audioPackets = this.dtxPackets = this.invalidPackets = 0;
	}
}

function increment<K>(counts: Map<K, number>, key: K): void {
	counts.set(key, (counts.get(key) ?? 0) + 1);
}

function mostFrequent<K>(counts: Map<K, number>): K | undefined {
	let best: K | undefined;
	let bestCount = 0;
	for (const [key, count] of counts) {
		if (count > bestCount) {
			best = key;
			bestCount = count;
		}
	}
	return best;
}
