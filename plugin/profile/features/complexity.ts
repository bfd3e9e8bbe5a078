/**
 * One dimensionless complexity number per stream, comparable across kinds. The
 * scale is anchored so that one unit is roughly the work of ~128 kbps of media
 * through an SFU:
 *
 *   video  C = Σ_layers (width · height · fps) / 2.7648e6 · codecFactor · (1 + sceneChangesPerMin / 10)
 *            (720p30 VP8 without cuts = 10; 2.7648e6 = 1280·720·30 / 10)
 *            codecFactor = bits per pixel the codec needs at equal quality,
 *            relative to VP8 (VP8 = H.264 = 1, VP9 0.7, AV1 0.6): the SFU's work
 *            follows bytes and packets, not pixels.
 *            Scene changes add keyframe-sized bursts: 10 cuts/min doubles C.
 *            Without a known resolution: C = bitrate / 150 kbps (720p30 VP8 ≈ 1.5 Mbps).
 *   audio  C = (audio bandwidth / 20 kHz) · channels / 2
 *            (Opus FB stereo = 1, FB mono = 0.5, WB mono = 0.2); the bandwidth is
 *            Opus's coded bandwidth when known, else clockRate / 2 capped at 20 kHz.
 *   data   C = bytes/s · 8 / 128 kbps.
 */
import { OPUS_BANDWIDTH_HZ, type OpusBandwidth } from './opus';

export const REFERENCE_PIXEL_RATE = (1280 * 720 * 30) / 10;
export const VIDEO_BPS_PER_UNIT = 150_000;
export const DATA_BPS_PER_UNIT = 128_000;
export const SCENE_CHANGES_PER_MIN_DOUBLING = 10;
const FULLBAND_HZ = 20_000;

export const VIDEO_CODEC_FACTORS: Readonly<Record<string, number>> = { vp8: 1, h264: 1, vp9: 0.7, av1: 0.6, h265: 0.7 };

/** "video/VP8" → 1; unknown codecs count as VP8. */
export function codecFactor(mimeType: string | undefined): number {
	const codec = mimeType?.split('/').pop()?.toLowerCase() ?? '';
	return VIDEO_CODEC_FACTORS[codec] ?? 1;
}

export interface VideoComplexityInput {
	mimeType?: string;
	/** Active layers with known size and rate; others are ignored. */
	layers: ReadonlyArray<{ width?: number; height?: number; fps?: number; active?: boolean }>;
	sceneChangesPerMin?: number;
	/** Used only when no layer has width, height and fps. */
	bitrateBps?: number;
}

export function videoComplexity(input: VideoComplexityInput): number {
	let pixelRate = 0;
	for (const layer of input.layers) {
		if (layer.active === false) continue;
		const { width, height, fps } = layer;
		if (width !== undefined && height !== undefined && fps !== undefined) pixelRate += width * height * fps;
	}
	const cuts = Math.max(0, input.sceneChangesPerMin ?? 0);
	const base = pixelRate > 0 ? (pixelRate / REFERENCE_PIXEL_RATE) * codecFactor(input.mimeType) : Math.max(0, input.bitrateBps ?? 0) / VIDEO_BPS_PER_UNIT;
	return finiteOrZero(base * (1 + cuts / SCENE_CHANGES_PER_MIN_DOUBLING));
}

export interface AudioComplexityInput {
	channels: number;
	clockRate?: number;
	opusBandwidth?: OpusBandwidth;
}

export function audioComplexity(input: AudioComplexityInput): number {
	const bandwidthHz = input.opusBandwidth ? OPUS_BANDWIDTH_HZ[input.opusBandwidth] : Math.min((input.clockRate ?? 2 * FULLBAND_HZ) / 2, FULLBAND_HZ);
	return finiteOrZero(((bandwidthHz / FULLBAND_HZ) * Math.max(0, input.channels)) / 2);
}

export function dataComplexity(bytesPerS: number): number {
	return finiteOrZero((Math.max(0, bytesPerS) * 8) / DATA_BPS_PER_UNIT);
}

function finiteOrZero(value: number): number {
	return Number.isFinite(value) ? value : 0;
}
