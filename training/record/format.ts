import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { z } from 'zod';

/**
 * Recording file format (see FORMAT.md): gzip of
 *   "MSR1" | u32be headerLength | header JSON (UTF-8) | packet records…
 * and each packet record is
 *   u8 streamIndex | u32be arrivalUs | u16be length | RTP bytes.
 * The header is small (parameters, stats, chat) so it is plain JSON; packets are
 * the bulk, so they are binary with a 7-byte overhead each.
 */

export const MAGIC = 'MSR1';
export const FORMAT_VERSION = 1;
const RECORD_OVERHEAD = 7;

const rtpCodec = z.object({
	mimeType: z.string(),
	payloadType: z.int(),
	clockRate: z.int(),
	channels: z.int().optional(),
	parameters: z.record(z.string(), z.unknown()).optional(),
	rtcpFeedback: z.array(z.object({ type: z.string(), parameter: z.string().optional() })).optional(),
});

const rtpHeaderExtension = z.object({
	uri: z.string(),
	id: z.int(),
	encrypt: z.boolean().optional(),
	parameters: z.record(z.string(), z.unknown()).optional(),
});

const rtpEncoding = z.object({
	ssrc: z.int().optional(),
	rid: z.string().optional(),
	scalabilityMode: z.string().optional(),
	/** The browser's scale of this simulcast layer (mediasoup-client sends the app's encodings). */
	scaleResolutionDownBy: z.number().optional(),
	maxBitrate: z.number().optional(),
	dtx: z.boolean().optional(),
});

export const rtpParametersSchema = z.object({
	mid: z.string().optional(),
	codecs: z.array(rtpCodec).min(1),
	headerExtensions: z.array(rtpHeaderExtension).optional(),
	encodings: z.array(rtpEncoding).min(1),
	rtcp: z.object({ cname: z.string().optional(), reducedSize: z.boolean().optional() }).optional(),
});
export type RecordedRtpParameters = z.infer<typeof rtpParametersSchema>;

const layerSchema = z.object({
	/** SSRC the layer's packets carry in this file. */
	ssrc: z.int(),
	/** Encoding index in the producer (0 = lowest resolution). */
	spatialIndex: z.int(),
	rid: z.string().optional(),
});
export type RecordedLayer = z.infer<typeof layerSchema>;

export const streamSchema = z.object({
	index: z.int(),
	kind: z.enum(['audio', 'video']),
	/** What the browser produced: camera, screen, mic. */
	label: z.string(),
	/** Parameters of the packets as stored (the tap consumer's), not the browser's. */
	rtpParameters: rtpParametersSchema,
	/** What the browser sent to the SFU (rids, its own SSRC space). */
	producerRtpParameters: rtpParametersSchema,
	layers: z.array(layerSchema).min(1),
	/** For Opus: whether the SFU negotiated stereo (the TOC stereo bit is the packet-level truth). */
	opusStereo: z.boolean().optional(),
});
export type RecordedStream = z.infer<typeof streamSchema>;

const outboundStat = z.object({
	kind: z.enum(['audio', 'video']),
	ssrc: z.number(),
	rid: z.string().optional(),
	bytesSent: z.number().optional(),
	packetsSent: z.number().optional(),
	frameWidth: z.number().optional(),
	frameHeight: z.number().optional(),
	framesPerSecond: z.number().optional(),
	framesEncoded: z.number().optional(),
	keyFramesEncoded: z.number().optional(),
	qualityLimitationReason: z.string().optional(),
	targetBitrate: z.number().optional(),
	encoderImplementation: z.string().optional(),
	active: z.boolean().optional(),
});
export type BrowserOutboundStat = z.infer<typeof outboundStat>;

export const browserStatsSampleSchema = z.object({
	/** ms since the recording's t0 (negative: sampled before the tap opened). */
	tMs: z.number(),
	label: z.string(),
	outbound: z.array(outboundStat),
	/** media-source audioLevel (0..1) for audio producers. */
	audioLevel: z.number().optional(),
	totalAudioEnergy: z.number().optional(),
});
export type BrowserStatsSample = z.infer<typeof browserStatsSampleSchema>;

export const dataMessageSchema = z.object({ tMs: z.number(), ppid: z.int(), text: z.string() });
export type DataMessage = z.infer<typeof dataMessageSchema>;

export const headerSchema = z.object({
	format: z.literal(MAGIC),
	version: z.literal(FORMAT_VERSION),
	name: z.string(),
	createdAt: z.string(),
	durationMs: z.number(),
	recorder: z.object({ browser: z.string(), mediasoup: z.string(), mediasoupClientHandler: z.string().optional() }),
	streams: z.array(streamSchema),
	browserStats: z.array(browserStatsSampleSchema),
	dataChannel: z.object({ label: z.string(), ordered: z.boolean(), messages: z.array(dataMessageSchema) }).optional(),
	/**
	 * Ground truth of the sources. captureStartMs is when the browser's capture
	 * (and so frame 0 of the looping source) started, in recording time; a cut at
	 * source time c appears near captureStartMs + k·loopS·1000 + c·1000.
	 */
	groundTruth: z.object({
		captureStartMs: z.number(),
		/** When the recorder asked every video layer for a key frame (as joining receivers do), ms. */
		keyFrameRequestsMs: z.array(z.number()).optional(),
		video: z.record(z.string(), z.unknown()).optional(),
		audio: z.record(z.string(), z.unknown()).optional(),
	}),
	packetCount: z.int(),
});
export type RecordingHeader = z.infer<typeof headerSchema>;

export interface RecordedPacket {
	stream: number;
	/** Arrival at the tap, µs since the recording's t0. */
	arrivalUs: number;
	data: Buffer;
}

export interface Recording {
	header: RecordingHeader;
	packets: RecordedPacket[];
}

export function encodeRecording(rec: Recording): Buffer {
	const header = Buffer.from(JSON.stringify({ ...rec.header, packetCount: rec.packets.length }), 'utf8');
	let size = 4 + 4 + header.length;
	for (const p of rec.packets) size += RECORD_OVERHEAD + p.data.length;
	const out = Buffer.allocUnsafe(size);
	out.write(MAGIC, 0, 'latin1');
	out.writeUInt32BE(header.length, 4);
	header.copy(out, 8);
	let o = 8 + header.length;
	let lastUs = 0;
	for (const p of rec.packets) {
		if (p.arrivalUs < lastUs) throw new Error('packets must be in arrival order');
		lastUs = p.arrivalUs;
		out.writeUInt8(p.stream, o);
		out.writeUInt32BE(Math.round(p.arrivalUs), o + 1);
		out.writeUInt16BE(p.data.length, o + 5);
		p.data.copy(out, o + RECORD_OVERHEAD);
		o += RECORD_OVERHEAD + p.data.length;
	}
	return gzipSync(out, { level: zlibConstants.Z_BEST_COMPRESSION });
}

export function decodeRecording(file: Buffer): Recording {
	const raw = gunzipSync(file);
	if (raw.toString('latin1', 0, 4) !== MAGIC) throw new Error('not a recording (bad magic)');
	const headerLength = raw.readUInt32BE(4);
	const parsed = headerSchema.safeParse(JSON.parse(raw.toString('utf8', 8, 8 + headerLength)));
	if (!parsed.success) throw new Error(`invalid recording header: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
	const header = parsed.data;
	const packets: RecordedPacket[] = [];
	let o = 8 + headerLength;
	while (o < raw.length) {
		if (o + RECORD_OVERHEAD > raw.length) throw new Error('truncated packet record');
		const len = raw.readUInt16BE(o + 5);
		if (o + RECORD_OVERHEAD + len > raw.length) throw new Error('truncated packet record');
		const stream = raw.readUInt8(o);
		if (stream >= header.streams.length) throw new Error(`packet refers to unknown stream ${stream}`);
		// subarray: the packets share the decompressed buffer instead of copying it.
		packets.push({ stream, arrivalUs: raw.readUInt32BE(o + 1), data: raw.subarray(o + RECORD_OVERHEAD, o + RECORD_OVERHEAD + len) });
		o += RECORD_OVERHEAD + len;
	}
	if (packets.length !== header.packetCount) throw new Error(`expected ${header.packetCount} packets, found ${packets.length}`);
	return { header, packets };
}

export function writeRecording(path: string, rec: Recording): void {
	writeFileSync(path, encodeRecording(rec));
}

export function readRecording(path: string): Recording {
	return decodeRecording(readFileSync(path));
}

/** Layer of a packet, found by its SSRC. */
export function layerIndexOf(stream: RecordedStream, ssrc: number): number {
	return stream.layers.findIndex((l) => l.ssrc === ssrc);
}

export function rtpSsrc(data: Buffer): number {
	return data.readUInt32BE(8);
}

/** Bytes and packets per (stream, layer) over the whole recording. */
export function byteRates(rec: Recording): Array<{ stream: number; layer: number; ssrc: number; packets: number; bytes: number; bitsPerSecond: number }> {
	const durationS = rec.header.durationMs / 1000;
	return rec.header.streams.flatMap((s) =>
		s.layers.map((l, layer) => {
			let packets = 0;
			let bytes = 0;
			for (const p of rec.packets) {
				if (p.stream === s.index && rtpSsrc(p.data) === l.ssrc) {
					packets++;
					bytes += p.data.length;
				}
			}
			return { stream: s.index, layer, ssrc: l.ssrc, packets, bytes, bitsPerSecond: (bytes * 8) / durationS };
		}),
	);
}
