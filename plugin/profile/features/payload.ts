/**
 * One entry point for the tap: what a video RTP payload says about its frame,
 * whatever the codec. H.264 gives a size only with an SPS (sent before IDRs).
 */
import { findSps, isH264Keyframe, parseSps } from './h264';
import { parseVp8Payload } from './vp8';
import { parseVp9Payload } from './vp9';

export type VideoCodec = 'vp8' | 'vp9' | 'h264';

export interface VideoPayloadInfo {
	codec: VideoCodec;
	/** undefined when this packet cannot tell (not the first packet of a frame). */
	keyframe?: boolean;
	/** Sizes per spatial layer, lowest first, when the packet carries them. */
	sizes?: Array<{ width: number; height: number }>;
	temporalId?: number;
	spatialId?: number;
}

/** "video/VP8" → 'vp8'; undefined for codecs without a parser. */
export function videoCodecOf(mimeType: string): VideoCodec | undefined {
	const codec = mimeType.toLowerCase().split('/').pop();
	return codec === 'vp8' || codec === 'vp9' || codec === 'h264' ? codec : undefined;
}

/** Never throws; undefined for unknown codecs and malformed payloads. */
export function inspectVideoPayload(mimeType: string, payload: Uint8Array): VideoPayloadInfo | undefined {
	const codec = videoCodecOf(mimeType);
	switch (codec) {
		case 'vp8': {
			const v = parseVp8Payload(payload);
			if (!v) return undefined;
			return { codec, keyframe: v.keyframe, sizes: v.resolution && [{ width: v.resolution.width, height: v.resolution.height }], temporalId: v.descriptor.temporalId };
		}
		case 'vp9': {
			const v = parseVp9Payload(payload);
			if (!v) return undefined;
			return { codec, keyframe: v.keyframe, sizes: v.sizes, temporalId: v.descriptor.temporalId, spatialId: v.descriptor.spatialId };
		}
		case 'h264': {
			if (payload.length === 0) return undefined;
			const sps = findSps(payload);
			const parsed = sps && parseSps(sps);
			return { codec, keyframe: isH264Keyframe(payload), sizes: parsed ? [{ width: parsed.width, height: parsed.height }] : undefined };
		}
		default:
			return undefined;
	}
}
