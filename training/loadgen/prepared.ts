import type { Recording, RecordedStream } from '../record/format';

/**
 * A recording indexed once for replay by any number of copies: every packet's
 * layer, original sequence number and timestamp, and where its VP8 payload
 * descriptor sits, so the per-packet send path does no parsing.
 */
export interface PreparedLayer {
	stream: RecordedStream;
	spatialIndex: number;
	/** SSRC in the recording. */
	ssrc: number;
	firstSeq: number;
	firstTs: number;
	/** Added to seq/ts offsets at each loop so numbering keeps increasing. */
	seqSpan: number;
	tsSpan: number;
	packets: number;
	bytes: number;
	clockRate: number;
}

export interface PreparedRecording {
	recording: Recording;
	layers: PreparedLayer[];
	/** Per packet, in arrival order. */
	layerOf: Int32Array;
	arrivalUs: Float64Array;
	/** Offset of the VP8 payload descriptor, or -1 for non-VP8 packets. */
	vp8Offset: Int32Array;
	/** 1 for the first packet of a VP8 key frame (where a receiver can start decoding). */
	keyframeStart: Uint8Array;
	data: Buffer[];
	durationUs: number;
}

export const VP8_MIME = 'video/vp8';

/**
 * Whether a VP8 packet starts a key frame (RFC 7741): start of partition 0, and the
 * payload header's P bit clear.
 */
export function isVp8KeyframeStart(p: Buffer, descriptorOffset: number): boolean {
	let o = descriptorOffset;
	if (o >= p.length) return false;
	const first = p[o]!;
	if (!(first & 0x10) || (first & 0x07) !== 0) return false;
	o++;
	if (first & 0x80) {
		const x = p[o++]!;
		if (x & 0x80) o += p[o]! & 0x80 ? 2 : 1;
		if (x & 0x40) o++;
		if (x & 0x30) o++;
	}
	return o < p.length && (p[o]! & 0x01) === 0;
}

/** Offset of the RTP payload (after CSRCs and header extensions). */
export function rtpPayloadOffset(p: Buffer): number {
	let off = 12 + (p[0]! & 0x0f) * 4;
	if (p[0]! & 0x10) off += 4 + p.readUInt16BE(off + 2) * 4;
	return off;
}

const cache = new WeakMap<Recording, PreparedRecording>();

export function prepare(recording: Recording): PreparedRecording {
	const cached = cache.get(recording);
	if (cached) return cached;
	const layers: PreparedLayer[] = [];
	const layerBySsrc = new Map<number, number>();
	for (const stream of recording.header.streams) {
		const clockRate = stream.rtpParameters.codecs[0]!.clockRate;
		for (const l of stream.layers) {
			layerBySsrc.set(l.ssrc, layers.length);
			layers.push({ stream, spatialIndex: l.spatialIndex, ssrc: l.ssrc, firstSeq: -1, firstTs: 0, seqSpan: 0, tsSpan: 0, packets: 0, bytes: 0, clockRate });
		}
	}
	const n = recording.packets.length;
	const layerOf = new Int32Array(n);
	const arrivalUs = new Float64Array(n);
	const vp8Offset = new Int32Array(n);
	const keyframeStart = new Uint8Array(n);
	const data: Buffer[] = new Array<Buffer>(n);
	const lastSeq: number[] = layers.map(() => 0);
	const lastTs: number[] = layers.map(() => 0);
	recording.packets.forEach((p, i) => {
		const li = layerBySsrc.get(p.data.readUInt32BE(8));
		if (li === undefined) throw new Error(`packet ${i} has an SSRC no stream declares`);
		const layer = layers[li]!;
		const seq = p.data.readUInt16BE(2);
		const ts = p.data.readUInt32BE(4);
		if (layer.firstSeq < 0) {
			layer.firstSeq = seq;
			layer.firstTs = ts;
		}
		lastSeq[li] = seq;
		lastTs[li] = ts;
		layer.packets++;
		layer.bytes += p.data.length;
		layerOf[i] = li;
		arrivalUs[i] = p.arrivalUs;
		const isVp8 = layer.stream.rtpParameters.codecs[0]!.mimeType.toLowerCase() === VP8_MIME;
		vp8Offset[i] = isVp8 ? rtpPayloadOffset(p.data) : -1;
		keyframeStart[i] = isVp8 && isVp8KeyframeStart(p.data, vp8Offset[i]!) ? 1 : 0;
		data[i] = p.data;
	});
	for (const [i, l] of layers.entries()) {
		if (l.firstSeq < 0) continue;
		l.seqSpan = ((lastSeq[i]! - l.firstSeq) & 0xffff) + 1;
		// One frame (video) or one 20 ms packet (audio) past the last timestamp.
		const step = l.stream.kind === 'video' ? l.clockRate / 30 : l.clockRate / 50;
		l.tsSpan = ((lastTs[i]! - l.firstTs) >>> 0) + step;
	}
	const prepared: PreparedRecording = { recording, layers, layerOf, arrivalUs, vp8Offset, keyframeStart, data, durationUs: recording.header.durationMs * 1000 };
	cache.set(recording, prepared);
	return prepared;
}
