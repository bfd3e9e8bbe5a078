/**
 * VP8 RTP payload (RFC 7741 §4.2 descriptor) and the keyframe header of the VP8
 * bitstream (RFC 6386 §9.1), which carries the only in-band resolution.
 */

export interface Vp8Descriptor {
	/** N: the frame can be discarded without affecting others. */
	nonReference: boolean;
	/** S: first packet of a partition. */
	startOfPartition: boolean;
	partitionIndex: number;
	/** 7- or 15-bit picture id when I is set. */
	pictureId?: number;
	pictureIdBits?: 7 | 15;
	tl0PicIdx?: number;
	temporalId?: number;
	/** Y: layer sync, only meaningful with temporalId. */
	layerSync?: boolean;
	keyIdx?: number;
	/** Bytes of descriptor before the VP8 payload header. */
	headerLength: number;
}

export interface Vp8Resolution {
	width: number;
	height: number;
	/** RFC 6386 §9.1 upscaling the decoder applies: 0 = none, 1 = 5/4, 2 = 5/3, 3 = 2. */
	horizontalScale: number;
	verticalScale: number;
}

export interface Vp8Payload {
	descriptor: Vp8Descriptor;
	/** Known only on the first packet of a frame (S = 1, partition 0); undefined elsewhere. */
	keyframe?: boolean;
	/** Present on the first packet of a keyframe. */
	resolution?: Vp8Resolution;
}

export function parseVp8Descriptor(payload: Uint8Array): Vp8Descriptor | undefined {
	const b0 = payload[0];
	if (b0 === undefined) return undefined;
	const descriptor: Vp8Descriptor = {
		nonReference: (b0 & 0x20) !== 0,
		startOfPartition: (b0 & 0x10) !== 0,
		partitionIndex: b0 & 0x07,
		headerLength: 1,
	};
	if ((b0 & 0x80) === 0) return descriptor;

	const x = payload[1];
	if (x === undefined) return undefined;
	let i = 2;
	if (x & 0x80) {
		const p0 = payload[i];
		if (p0 === undefined) return undefined;
		if (p0 & 0x80) {
			const p1 = payload[i + 1];
			if (p1 === undefined) return undefined;
			descriptor.pictureId = ((p0 & 0x7f) << 8) | p1;
			descriptor.pictureIdBits = 15;
			i += 2;
		} else {
			descriptor.pictureId = p0;
			descriptor.pictureIdBits = 7;
			i += 1;
		}
	}
	if (x & 0x40) {
		const tl0 = payload[i];
		if (tl0 === undefined) return undefined;
		descriptor.tl0PicIdx = tl0;
		i += 1;
	}
	const hasTid = (x & 0x20) !== 0;
	const hasKeyIdx = (x & 0x10) !== 0;
	if (hasTid || hasKeyIdx) {
		const tk = payload[i];
		if (tk === undefined) return undefined;
		if (hasTid) {
			descriptor.temporalId = tk >> 6;
			descriptor.layerSync = (tk & 0x20) !== 0;
		}
		if (hasKeyIdx) descriptor.keyIdx = tk & 0x1f;
		i += 1;
	}
	descriptor.headerLength = i;
	return descriptor;
}

const KEYFRAME_START_CODE = [0x9d, 0x01, 0x2a] as const;

export function parseVp8Payload(payload: Uint8Array): Vp8Payload | undefined {
	const descriptor = parseVp8Descriptor(payload);
	if (!descriptor) return undefined;
	if (!descriptor.startOfPartition || descriptor.partitionIndex !== 0) return { descriptor };
	const frame = payload.subarray(descriptor.headerLength);
	const tag = frame[0];
	if (tag === undefined) return { descriptor };
	// RFC 6386 §9.1: bit 0 of the frame tag is 0 for key frames.
	const keyframe = (tag & 0x01) === 0;
	if (!keyframe) return { descriptor, keyframe };
	if (frame.length < 10) return { descriptor, keyframe };
	if (KEYFRAME_START_CODE.some((byte, k) => frame[3 + k] !== byte)) return undefined;
	const w = (frame[6] as number) | ((frame[7] as number) << 8);
	const h = (frame[8] as number) | ((frame[9] as number) << 8);
	const resolution: Vp8Resolution = {
		width: w & 0x3fff,
		height: h & 0x3fff,
		horizontalScale: w >> 14,
		verticalScale: h >> 14,
	};
	if (resolution.width === 0 || resolution.height === 0) return undefined;
	return { descriptor, keyframe, resolution };
}
