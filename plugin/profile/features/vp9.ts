/**
 * VP9 RTP payload descriptor (RFC 9628 §4.2) including the scalability structure
 * (SS, §4.2.1), plus the keyframe's uncompressed header (VP9 bitstream spec §6.2),
 * which gives the resolution when a sender omits SS (e.g. ffmpeg).
 */
import { BitReader } from './bits';

export interface Vp9SpatialLayerSize {
	width: number;
	height: number;
}

export interface Vp9PictureGroupEntry {
	temporalId: number;
	switchingUp: boolean;
	/** P_DIFF of each reference picture. */
	refs: number[];
}

export interface Vp9ScalabilityStructure {
	/** N_S + 1. */
	spatialLayers: number;
	/** Per spatial layer, lowest first, when the Y bit is set. */
	sizes?: Vp9SpatialLayerSize[];
	pictureGroup?: Vp9PictureGroupEntry[];
	/** Distinct temporal ids in the picture group (1 when no group is described). */
	temporalLayers: number;
}

export interface Vp9Descriptor {
	/** P: inter-picture predicted; a picture with P = 0 on its base spatial layer is a keyframe. */
	interPicturePredicted: boolean;
	/** F: flexible mode. */
	flexible: boolean;
	/** B: first packet of a layer frame. */
	beginningOfFrame: boolean;
	/** E: last packet of a layer frame. */
	endOfFrame: boolean;
	/** Z: not a reference for the upper spatial layer. */
	notUpperReference: boolean;
	pictureId?: number;
	pictureIdBits?: 7 | 15;
	temporalId?: number;
	switchingUp?: boolean;
	spatialId?: number;
	/** D: depends on the lower spatial layer of the same picture. */
	interLayerDependent?: boolean;
	tl0PicIdx?: number;
	/** Flexible-mode reference deltas. */
	refs?: number[];
	ss?: Vp9ScalabilityStructure;
	headerLength: number;
}

export function parseVp9Descriptor(payload: Uint8Array): Vp9Descriptor | undefined {
	const b0 = payload[0];
	if (b0 === undefined) return undefined;
	const hasPictureId = (b0 & 0x80) !== 0;
	const hasLayerIndices = (b0 & 0x20) !== 0;
	const hasSs = (b0 & 0x02) !== 0;
	const descriptor: Vp9Descriptor = {
		interPicturePredicted: (b0 & 0x40) !== 0,
		flexible: (b0 & 0x10) !== 0,
		beginningOfFrame: (b0 & 0x08) !== 0,
		endOfFrame: (b0 & 0x04) !== 0,
		notUpperReference: (b0 & 0x01) !== 0,
		headerLength: 1,
	};
	const r = new BitReader(payload.subarray(1));
	if (hasPictureId) {
		if (r.bit()) {
			descriptor.pictureId = r.bits(15);
			descriptor.pictureIdBits = 15;
		} else {
			descriptor.pictureId = r.bits(7);
			descriptor.pictureIdBits = 7;
		}
	}
	if (hasLayerIndices) {
		descriptor.temporalId = r.bits(3);
		descriptor.switchingUp = r.bit() === 1;
		descriptor.spatialId = r.bits(3);
		descriptor.interLayerDependent = r.bit() === 1;
		if (!descriptor.flexible) descriptor.tl0PicIdx = r.bits(8);
	}
	if (descriptor.flexible && descriptor.interPicturePredicted) {
		// Up to 3 reference deltas, each followed by N ("another one follows").
		const refs: number[] = [];
		let more = 1;
		while (more && refs.length < 3 && !r.overrun) {
			refs.push(r.bits(7));
			more = r.bit();
		}
		if (more) return undefined;
		descriptor.refs = refs;
	}
	if (hasSs) {
		const ss = readScalabilityStructure(r);
		if (!ss) return undefined;
		descriptor.ss = ss;
	}
	if (r.overrun) return undefined;
	descriptor.headerLength = 1 + (payload.length - 1 - r.bitsLeft / 8);
	return descriptor;
}

function readScalabilityStructure(r: BitReader): Vp9ScalabilityStructure | undefined {
	const spatialLayers = r.bits(3) + 1;
	const hasSizes = r.bit() === 1;
	const hasGroup = r.bit() === 1;
	r.skip(3);
	const ss: Vp9ScalabilityStructure = { spatialLayers, temporalLayers: 1 };
	if (hasSizes) {
		ss.sizes = [];
		for (let i = 0; i < spatialLayers; i++) ss.sizes.push({ width: r.bits(16), height: r.bits(16) });
	}
	if (hasGroup) {
		const entries = r.bits(8);
		const group: Vp9PictureGroupEntry[] = [];
		for (let i = 0; i < entries && !r.overrun; i++) {
			const temporalId = r.bits(3);
			const switchingUp = r.bit() === 1;
			const refCount = r.bits(2);
			r.skip(2);
			const refs: number[] = [];
			for (let k = 0; k < refCount; k++) refs.push(r.bits(8));
			group.push({ temporalId, switchingUp, refs });
		}
		ss.pictureGroup = group;
		if (group.length > 0) ss.temporalLayers = new Set(group.map((g) => g.temporalId)).size;
	}
	return r.overrun ? undefined : ss;
}

export interface Vp9FrameHeader {
	profile: number;
	keyframe: boolean;
	showFrame: boolean;
	/** Present for keyframes (intra-only frames can also carry a size; not needed here). */
	width?: number;
	height?: number;
	bitDepth?: number;
}

const VP9_SYNC_CODE = 0x498342;
const CS_RGB = 7;

/** Uncompressed header of the VP9 frame that starts right after the descriptor (only on B = 1 packets). */
export function parseVp9FrameHeader(frame: Uint8Array): Vp9FrameHeader | undefined {
	const r = new BitReader(frame);
	if (r.bits(2) !== 2) return undefined; // frame_marker
	const profile = r.bit() | (r.bit() << 1);
	if (profile === 3) r.skip(1);
	if (r.bit()) {
		// show_existing_frame: a repeat with no new header.
		return r.overrun ? undefined : { profile, keyframe: false, showFrame: true };
	}
	const keyframe = r.bit() === 0;
	const showFrame = r.bit() === 1;
	r.skip(1); // error_resilient_mode
	if (!keyframe) return r.overrun ? undefined : { profile, keyframe, showFrame };
	if (r.bits(24) !== VP9_SYNC_CODE) return undefined;
	let bitDepth = 8;
	if (profile >= 2) bitDepth = r.bit() ? 12 : 10;
	const colorSpace = r.bits(3);
	if (colorSpace !== CS_RGB) {
		r.skip(1); // color_range
		if (profile === 1 || profile === 3) r.skip(3); // subsampling_x, subsampling_y, reserved
	} else if (profile === 1 || profile === 3) {
		r.skip(1);
	}
	const width = r.bits(16) + 1;
	const height = r.bits(16) + 1;
	if (r.overrun) return undefined;
	return { profile, keyframe, showFrame, width, height, bitDepth };
}

export interface Vp9Payload {
	descriptor: Vp9Descriptor;
	/** Set on the first packet of a base-spatial-layer frame. */
	keyframe?: boolean;
	/** Per spatial layer from SS, else the single size from the keyframe header. */
	sizes?: Vp9SpatialLayerSize[];
}

/**
 * Descriptor plus what it implies: keyframe flag and per-layer sizes. P = 0 alone
 * does not make a keyframe (some packetizers, e.g. ffmpeg's, never set P), so an
 * unpredicted base-layer frame is confirmed by its uncompressed header when that
 * parses.
 */
export function parseVp9Payload(payload: Uint8Array): Vp9Payload | undefined {
	const descriptor = parseVp9Descriptor(payload);
	if (!descriptor) return undefined;
	const result: Vp9Payload = { descriptor };
	const baseLayer = (descriptor.spatialId ?? 0) === 0;
	let header: Vp9FrameHeader | undefined;
	if (descriptor.beginningOfFrame && baseLayer) {
		if (descriptor.interPicturePredicted) {
			result.keyframe = false;
		} else {
			header = parseVp9FrameHeader(payload.subarray(descriptor.headerLength));
			result.keyframe = header?.keyframe ?? true;
		}
	}
	if (descriptor.ss?.sizes) {
		result.sizes = descriptor.ss.sizes;
	} else if (header?.width !== undefined && header.height !== undefined) {
		result.sizes = [{ width: header.width, height: header.height }];
	}
	return result;
}
