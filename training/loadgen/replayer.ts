import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { getSupportedRtpCapabilities, type types } from 'mediasoup';
import { ErrorEpisode, guardSocket, stderrLog, type EpisodeLog } from '../../plugin/util/episode';
import { Rng } from '../../plugin/util/rng';
import type { Recording, RecordedStream } from '../record/format';
import { prepare, type PreparedLayer, type PreparedRecording } from './prepared';

/**
 * Replays recordings of real browser media into mediasoup routers at any scale.
 *
 * Each published copy gets its own PlainTransport (comedia, rtcp-mux) fed over
 * real UDP from its own connected socket, fresh SSRCs and random sequence-number,
 * timestamp and VP8 picture-id offsets, and keeps the recorded inter-packet
 * timing. One timer drives every copy: each tick sends all packets that became
 * due, so the cost is per packet, never per timer. Simulcast layers are produced
 * as separate encodings with their own SSRCs, as mediasoup expects from a plain
 * RTP sender. RTCP sender reports go out once a second per SSRC so that
 * simulcast consumers can switch layers the way they do with browsers.
 *
 * Subscribers consume through PlainTransports with SRTP (the worker encrypts
 * egress as for a browser) into one shared local UDP sink that only counts.
 */

export interface ReplayerOptions {
	/** Timer period; packets due within a tick leave together at its start. */
	tickMs?: number;
	seed?: number;
	listenIp?: string;
	/**
	 * Another process that sends the copies' packets and receives the bots' (SenderProcess):
	 * this process then hosts only the mediasoup side, as an SFU does, so its CPU is the SFU's.
	 */
	sender?: PacketSender;
	/** Where socket errors go, once per episode and copy (default: pino at warn, on stderr). */
	logger?: EpisodeLog;
}

/** One copy for a PacketSender: what it sends as and where to. */
export interface RemoteCopy {
	rewrites: Array<LayerRewrite | undefined>;
	loop: boolean;
	ip: string;
	port: number;
}

export interface PacketSender {
	/** Starts holding a copy (not sending yet); resolves to its id. */
	publish(recording: Recording, copy: RemoteCopy): Promise<number>;
	start(id: number): void;
	unpublish(id: number): void;
	/** The UDP port where bots' transports deliver. */
	sinkPort(): Promise<number>;
}

export interface PublishOptions {
	/** Stream labels to publish (camera, screen, mic…); all by default. */
	labels?: string[];
	/** Publish only the lowest N simulcast layers. */
	maxLayers?: number;
	/** Start over at the end instead of finishing. */
	loop?: boolean;
	/** Begin sending at once (default); otherwise call Replayer.start(publisher), e.g. after consumers exist. */
	autoStart?: boolean;
	/** Replay the recorded data-channel messages through a DirectTransport DataProducer. */
	data?: boolean;
	/**
	 * Answer the worker's key-frame requests (PLI, FIR) as a browser's encoder does: the copy
	 * skips ahead to the recording's next key frame of that track, at most once per
	 * KEYFRAME_ANSWER_MIN_MS. Off by default, so that recorded sessions keep the recording's
	 * own key-frame cadence; clients that stand in for browsers (the demo's bots) turn it on,
	 * or a new subscriber waits for the next recorded key frame (up to a GOP, 4 s in ours).
	 * Not with a sender process (the requests reach its socket, not this one).
	 */
	keyframeOnRequest?: boolean;
	/**
	 * Answer the worker's NACKs as a browser's sender does: a packet sent in the last
	 * RETRANSMIT_HISTORY packets of its layer is sent again (through the same lossy path, see
	 * Replayer.setLoss), and video producers declare generic NACK so that the worker asks.
	 * Off by default, like keyframeOnRequest; not with a sender process.
	 */
	retransmitOnNack?: boolean;
	appData?: Record<string, unknown>;
}

/** Packets per layer a copy can send again: about 1.5 s of the top layer of a 720p camera. */
export const RETRANSMIT_HISTORY = 512;

/**
 * A browser's encoder answers a burst of requests (one per new subscriber) with one key
 * frame, and libwebrtc does not produce them back to back; each answer here also skips
 * recorded media, so a burst must not fast-forward the recording.
 */
export const KEYFRAME_ANSWER_MIN_MS = 500;

/**
 * Calls `each` with every packet of a compound RTCP packet: its type, its FMT (or count)
 * field, its offset and its length; stops at a malformed or truncated one.
 */
function eachRtcpPacket(buf: Buffer, each: (pt: number, fmt: number, o: number, length: number) => void): void {
	for (let o = 0; o + 4 <= buf.length; ) {
		const length = (buf.readUInt16BE(o + 2) + 1) * 4;
		if (buf[o]! >> 6 !== 2 || o + length > buf.length) return;
		each(buf[o + 1]!, buf[o]! & 0x1f, o, length);
		o += length;
	}
}

/** Sequence numbers that a compound RTCP packet's generic NACKs (RFC 4585) ask again, by media SSRC. */
export function nackedSeqs(buf: Buffer): Array<{ ssrc: number; seq: number }> {
	const out: Array<{ ssrc: number; seq: number }> = [];
	eachRtcpPacket(buf, (pt, fmt, o, length) => {
		if (pt !== 205 || fmt !== 1 || length < 16) return;
		const ssrc = buf.readUInt32BE(o + 8);
		// Each FCI entry: a packet id and a bitmask of the 16 that follow it.
		for (let e = o + 12; e + 4 <= o + length; e += 4) {
			const pid = buf.readUInt16BE(e);
			const blp = buf.readUInt16BE(e + 2);
			out.push({ ssrc, seq: pid });
			for (let b = 0; b < 16; b++) if (blp & (1 << b)) out.push({ ssrc, seq: (pid + b + 1) & 0xffff });
		}
	});
	return out;
}

/** Media SSRCs that a compound RTCP packet asks a key frame of (PLI, RFC 4585; FIR, RFC 5104). */
export function keyframeRequestSsrcs(buf: Buffer): number[] {
	const out: number[] = [];
	eachRtcpPacket(buf, (pt, fmt, o, length) => {
		if (pt !== 206) return;
		if (fmt === 1 && length >= 12) out.push(buf.readUInt32BE(o + 8));
		// FIR: one 8-byte entry (SSRC, seq) per requested stream after the common header.
		if (fmt === 4) for (let e = o + 12; e + 8 <= o + length; e += 8) out.push(buf.readUInt32BE(e));
	});
	return out;
}

export interface SubscribeOptions {
	/** SRTP on the consumer transport (default true): the worker pays egress encryption. */
	srtp?: boolean;
	/** For simulcast producers: highest spatial layer to receive. */
	preferredSpatialLayer?: number;
	/** On the consumer transport (e.g. the app's peerId, or `movable: false`). */
	appData?: Record<string, unknown>;
	/**
	 * Bandwidth estimation on the consumer transport (default false). The sink sends no
	 * RTCP feedback, so with estimation on mediasoup's estimate stays at its initial
	 * 600 kbps and a simulcast consumer gets a low layer or none; a browser would send feedback.
	 */
	bwe?: boolean;
	/** Deliver to this address instead of the shared sink: a client in another process or network namespace counts what arrives. */
	sink?: { ip: string; port: number };
}

export interface PublishedLayer {
	label: string;
	spatialIndex: number;
	ssrc: number;
	recordedSsrc: number;
	/** Packets and bytes of this layer in one pass over the recording. */
	packets: number;
	bytes: number;
}

/** What a copy sends as: enough for another process to send the same copy (see SenderProcess). */
export interface LayerRewrite {
	ssrc: number;
	seqAdd: number;
	tsAdd: number;
}

interface LayerState extends LayerRewrite {
	prepared: PreparedLayer;
	sentPackets: number;
	sentOctets: number;
	/** Timestamp (unwrapped by tsAdd) and wall time of the last packet, for SRs. */
	lastTs: number;
	lastSentMs: number;
	/** Added to the recording's VP8 picture ids and TL0PICIDX (see rewriteVp8). */
	pidAdd: number;
	tl0Add: number;
	/** The last picture id and TL0PICIDX given out, or -1. */
	lastPid: number;
	lastTl0: number;
	/** The copy jumped in the recording: the next frame numbers on from the last one. */
	vp8Resync: boolean;
	/** Packets sent, by sequence number modulo RETRANSMIT_HISTORY, with retransmitOnNack. */
	history?: Array<Buffer | undefined>;
}

function layerStates(prepared: PreparedRecording, rewrites: ReadonlyArray<LayerRewrite | undefined>): Array<LayerState | undefined> {
	return prepared.layers.map((l, i) => {
		const r = rewrites[i];
		return r ? { prepared: l, ...r, sentPackets: 0, sentOctets: 0, lastTs: 0, lastSentMs: 0, pidAdd: 0, tl0Add: 0, lastPid: -1, lastTl0: -1, vp8Resync: false } : undefined;
	});
}

/**
 * A UDP socket connected to a transport's port, ready for a Publisher. Its errors
 * stay its own: once the worker behind the port is gone, every datagram comes back
 * as ICMP port unreachable (ECONNREFUSED on the next receive).
 */
async function connectedSocket(localIp: string, port: number, ip: string, log: EpisodeLog): Promise<Socket> {
	const socket = createSocket('udp4');
	guardSocket(socket, new ErrorEpisode(log, 'replay socket', { port }));
	try {
		await new Promise<void>((r) => socket.bind(0, localIp, r));
		socket.setSendBufferSize(4 * 1024 * 1024);
		await new Promise<void>((resolve, reject) => {
			socket.once('error', reject);
			socket.connect(port, ip, () => {
				socket.off('error', reject);
				resolve();
			});
		});
		// RTCP from the worker (RR, NACK, PLI) has nothing to act on in a replay; drain it.
		socket.on('message', () => undefined);
		return socket;
	} catch (err) {
		socket.close();
		throw err;
	}
}

export class Publisher {
	readonly producers = new Map<string, types.Producer>();
	dataProducer: types.DataProducer | undefined;
	/** Resolves when a non-looping replay has sent its last packet. */
	readonly done: Promise<void>;
	packetsSent = 0;
	/** Share of RTP packets dropped before they leave, to emulate a lossy path (this kernel has no netem). */
	lossRate = 0;
	/** RTP packets dropped by lossRate. */
	packetsDropped = 0;
	bytesSent = 0;
	/** Its copy's id in the sender process, when one sends it. */
	remoteId: number | undefined;
	/** The router its transport lives on (undefined in a sender process). */
	router: types.Router | undefined;
	closed = false;
	finished = false;
	private started = false;
	private resolveDone!: () => void;
	/** Per recording layer index; undefined for layers not published. */
	private readonly layerState: Array<LayerState | undefined>;
	private next = 0;
	private loopIndex = 0;
	private startMs = 0;
	private nextSrMs = 0;
	private nextMessage = 0;
	/** A key frame was asked of this recording stream index (see keyframeOnRequest). */
	private keyframeWantedFor: number | undefined;
	private lastKeyframeAnswerMs = -Infinity;
	/** Key-frame requests answered by skipping ahead, and the recorded media skipped for them. */
	keyframesAnswered = 0;
	skippedUs = 0;
	/** Packets of published layers skipped by those answers (never sent, never due). */
	private skippedPackets = 0;
	/** NACKed packets sent again (see PublishOptions.retransmitOnNack), those the lossy path dropped again included. */
	packetsRetransmitted = 0;
	private answersKeyframes = false;
	private answersNacks = false;
	private listening = false;

	constructor(
		readonly recording: PreparedRecording,
		/** Undefined in a sender process, where the mediasoup side lives in the parent. */
		readonly transport: types.PlainTransport | undefined,
		/** Undefined when a sender process sends this copy. */
		private readonly socket: Socket | undefined,
		layerState: Array<LayerState | undefined>,
		private readonly directTransport: types.DirectTransport | undefined,
		private readonly loop: boolean,
		private readonly rng: Rng,
	) {
		this.layerState = layerState;
		// Copies of one recording start at their own ids, so that they look like distinct senders.
		const pidAdd = rng.int(0, 0x7fff);
		const tl0Add = rng.int(0, 0xff);
		for (const s of layerState) if (s) Object.assign(s, { pidAdd, tl0Add });
		this.done = new Promise((r) => (this.resolveDone = r));
	}

	/** Published layers in producer-encoding order, with their replay SSRCs and recorded volume. */
	get layers(): PublishedLayer[] {
		return this.layerState
			.filter((s): s is LayerState => s !== undefined)
			.map((s) => ({ label: s.prepared.stream.label, spatialIndex: s.prepared.spatialIndex, ssrc: s.ssrc, recordedSsrc: s.prepared.ssrc, packets: s.prepared.packets, bytes: s.prepared.bytes }));
	}

	start(nowMs: number): void {
		this.started = true;
		this.startMs = nowMs;
		this.nextSrMs = nowMs;
	}

	/** Packets (of all published layers) the schedule holds up to `nowMs`, for checking that sends keep up. */
	scheduledBy(nowMs: number): number {
		if (!this.started) return 0;
		const rec = this.recording;
		const elapsedUs = (nowMs - this.startMs) * 1000;
		const loops = this.loop ? Math.floor(elapsedUs / rec.durationUs) : 0;
		const withinUs = this.loop ? elapsedUs - loops * rec.durationUs : elapsedUs;
		let lo = 0;
		let hi = rec.arrivalUs.length;
		while (lo < hi) {
			const mid = (lo + hi) >>> 1;
			if (rec.arrivalUs[mid]! <= withinUs) lo = mid + 1;
			else hi = mid;
		}
		let due = 0;
		for (let i = 0; i < rec.data.length; i++) {
			if (this.layerState[rec.layerOf[i]!]) due += i < lo ? loops + 1 : loops;
		}
		return due - this.skippedPackets;
	}

	/**
	 * Stops sending the layers of one track (its producer has closed, e.g. after the track
	 * was published again elsewhere): the worker would only drop them. With a sender
	 * process the copy keeps sending until unpublished.
	 */
	stopTrack(label: string): void {
		for (let i = 0; i < this.layerState.length; i++) if (this.layerState[i]?.prepared.stream.label === label) this.layerState[i] = undefined;
	}

	/** Answers key-frame requests arriving on this copy's socket (see PublishOptions.keyframeOnRequest). */
	answerKeyframeRequests(): void {
		this.answersKeyframes = true;
		this.listen();
	}

	/** Answers NACKs arriving on this copy's socket (see PublishOptions.retransmitOnNack). */
	answerNacks(): void {
		for (const s of this.layerState) if (s) s.history ??= new Array<Buffer | undefined>(RETRANSMIT_HISTORY);
		this.answersNacks = true;
		this.listen();
	}

	private listen(): void {
		if (this.listening) return;
		this.listening = true;
		this.socket?.on('message', (m: Buffer) => this.onRtcp(m));
	}

	/** RTCP from the worker: key-frame requests are answered on the next pump, NACKs at once. */
	private onRtcp(buf: Buffer): void {
		if (this.answersKeyframes) {
			for (const ssrc of keyframeRequestSsrcs(buf)) {
				const state = this.layerState.find((s) => s?.ssrc === ssrc);
				if (state) this.keyframeWantedFor = state.prepared.stream.index;
			}
		}
		const socket = this.socket;
		if (!this.answersNacks || !socket || this.closed) return;
		for (const { ssrc, seq } of nackedSeqs(buf)) {
			const packet = this.layerState.find((s) => s?.ssrc === ssrc)?.history?.[seq % RETRANSMIT_HISTORY];
			// A slot holds the packet asked for only if it is recent enough not to be overwritten.
			if (!packet || packet.readUInt16BE(2) !== seq) continue;
			this.packetsRetransmitted++;
			if (this.lossRate > 0 && this.rng.next() < this.lossRate) continue;
			socket.send(packet);
		}
	}

	/**
	 * Skips to the next recorded key frame of one stream, as if the encoder had made one
	 * now: every published layer's sequence numbers stay contiguous and its timestamps keep
	 * following the wall clock, so the worker sees no loss and no time jump, only a key frame.
	 * Frames already begun are finished first (an encoder never abandons a frame halfway, and
	 * a receiver cannot tell a truncated frame without a sequence gap). Data-channel messages
	 * in the skipped span are dropped with it.
	 */
	private answerKeyframeRequest(socket: Socket, streamIndex: number, nowMs: number): void {
		const rec = this.recording;
		const n = rec.data.length;
		const find = (from: number): number => {
			for (let i = from; i < n; i++) if (rec.keyframeStart[i] && this.layerState[rec.layerOf[i]!]?.prepared.stream.index === streamIndex) return i;
			return -1;
		};
		const positionUs = (nowMs - this.startMs) * 1000 - this.loopIndex * rec.durationUs;
		let target = find(this.next);
		const wraps = target < 0;
		// None left in this pass: the next one is in the next pass (a looping copy only).
		if (wraps) target = this.loop ? find(0) : -1;
		if (target < 0) return;
		const skippedUs = wraps ? rec.durationUs - positionUs + rec.arrivalUs[target]! : rec.arrivalUs[target]! - positionUs;
		// The key frame is already due (this pump runs late): it goes out now, nothing to skip.
		if (skippedUs <= 0) return;
		if (wraps) {
			this.skipPackets(socket, this.next, n, nowMs);
			this.wrap();
			this.skipPackets(socket, 0, target, nowMs);
		} else {
			this.skipPackets(socket, this.next, target, nowMs);
		}
		this.next = target;
		this.startMs -= skippedUs / 1000;
		for (const s of this.layerState) {
			if (!s) continue;
			s.tsAdd = (s.tsAdd - Math.round((skippedUs / 1e6) * s.prepared.clockRate)) >>> 0;
			s.vp8Resync = true;
		}
		const messages = this.recording.recording.header.dataChannel?.messages;
		if (messages) while (this.nextMessage < messages.length && messages[this.nextMessage]!.tMs * 1000 < rec.arrivalUs[target]!) this.nextMessage++;
		this.keyframesAnswered++;
		this.skippedUs += skippedUs;
	}

	/**
	 * Leaves recording packets [from, to) unsent, numbering each layer on without them,
	 * except the rest of a frame a layer has begun, which is sent now.
	 */
	private skipPackets(socket: Socket, from: number, to: number, nowMs: number): void {
		const rec = this.recording;
		const finishing = new Set<LayerState>();
		for (const s of this.layerState) if (s && s.sentPackets > 0) finishing.add(s);
		for (let i = from; i < to; i++) {
			const state = this.layerState[rec.layerOf[i]!];
			if (!state) continue;
			if (finishing.has(state)) {
				if (((rec.data[i]!.readUInt32BE(4) + state.tsAdd) >>> 0) === state.lastTs) {
					this.sendPacket(socket, state, rec.data[i]!, rec.vp8Offset[i]!, nowMs);
					continue;
				}
				// This layer's next frame: the begun one is complete.
				finishing.delete(state);
			}
			state.seqAdd = (state.seqAdd - 1) & 0xffff;
			this.skippedPackets++;
		}
	}

	/** Starts the next pass over the recording, numbering on where the last one ended. */
	private wrap(): void {
		this.next = 0;
		this.nextMessage = 0;
		this.loopIndex++;
		for (const s of this.layerState) {
			if (!s) continue;
			s.seqAdd += s.prepared.seqSpan;
			s.tsAdd += s.prepared.tsSpan;
			s.vp8Resync = true;
		}
	}

	/** Sends everything due by `nowMs`; returns false once finished. */
	pump(nowMs: number): boolean {
		const socket = this.socket;
		if (this.closed || this.finished || !this.started || !socket) return false;
		if (this.keyframeWantedFor !== undefined && nowMs - this.lastKeyframeAnswerMs >= KEYFRAME_ANSWER_MIN_MS) {
			this.answerKeyframeRequest(socket, this.keyframeWantedFor, nowMs);
			this.keyframeWantedFor = undefined;
			this.lastKeyframeAnswerMs = nowMs;
		}
		const rec = this.recording;
		const n = rec.data.length;
		const elapsedUs = (nowMs - this.startMs) * 1000 - this.loopIndex * rec.durationUs;
		while (this.next < n && rec.arrivalUs[this.next]! <= elapsedUs) {
			const i = this.next++;
			const state = this.layerState[rec.layerOf[i]!];
			if (state) this.sendPacket(socket, state, rec.data[i]!, rec.vp8Offset[i]!, nowMs);
		}
		this.pumpMessages(elapsedUs);
		if (nowMs >= this.nextSrMs) {
			this.sendSenderReports(socket, nowMs);
			this.nextSrMs = nowMs + 1000;
		}
		if (this.next >= n && elapsedUs >= rec.durationUs) {
			if (!this.loop) {
				this.finished = true;
				this.resolveDone();
				return false;
			}
			this.wrap();
		}
		return true;
	}

	private sendPacket(socket: Socket, state: LayerState, original: Buffer, vp8Offset: number, nowMs: number): void {
		// The socket keeps the buffer until the datagram leaves, so each send needs its own copy.
		const out = Buffer.allocUnsafe(original.length);
		original.copy(out);
		out.writeUInt16BE((out.readUInt16BE(2) + state.seqAdd) & 0xffff, 2);
		const ts = (out.readUInt32BE(4) + state.tsAdd) >>> 0;
		out.writeUInt32BE(ts, 4);
		out.writeUInt32BE(state.ssrc, 8);
		// Numbered before the path loses it: the encoder numbered it.
		if (vp8Offset >= 0) rewriteVp8(out, vp8Offset, state);
		if (state.history) state.history[out.readUInt16BE(2) % RETRANSMIT_HISTORY] = out;
		if (this.lossRate > 0 && this.rng.next() < this.lossRate) {
			this.packetsDropped++;
			return;
		}
		socket.send(out);
		state.sentPackets++;
		state.sentOctets += out.length;
		state.lastTs = ts;
		state.lastSentMs = nowMs;
		this.packetsSent++;
		this.bytesSent += out.length;
	}

	private sendSenderReports(socket: Socket, nowMs: number): void {
		const wallMs = Date.now();
		const ntpSec = Math.floor(wallMs / 1000) + 2208988800;
		const ntpFrac = Math.floor(((wallMs % 1000) / 1000) * 4294967296);
		for (const s of this.layerState) {
			if (!s || s.sentPackets === 0) continue;
			const sr = Buffer.allocUnsafe(28);
			sr[0] = 0x80;
			sr[1] = 200;
			sr.writeUInt16BE(6, 2);
			sr.writeUInt32BE(s.ssrc, 4);
			sr.writeUInt32BE(ntpSec >>> 0, 8);
			sr.writeUInt32BE(ntpFrac >>> 0, 12);
			sr.writeUInt32BE((s.lastTs + Math.round(((nowMs - s.lastSentMs) / 1000) * s.prepared.clockRate)) >>> 0, 16);
			sr.writeUInt32BE(s.sentPackets >>> 0, 20);
			sr.writeUInt32BE(s.sentOctets >>> 0, 24);
			socket.send(sr);
		}
	}

	private pumpMessages(elapsedUs: number): void {
		const dp = this.dataProducer;
		const messages = this.recording.recording.header.dataChannel?.messages;
		if (!dp || !messages) return;
		while (this.nextMessage < messages.length && messages[this.nextMessage]!.tMs * 1000 <= elapsedUs) {
			const m = messages[this.nextMessage++]!;
			dp.send(m.text, m.ppid);
		}
	}

	close(): void {
		if (this.closed) return;
		this.closed = true;
		this.transport?.close();
		this.directTransport?.close();
		this.socket?.close();
		this.resolveDone();
	}
}

export class Subscriber {
	readonly consumers: types.Consumer[] = [];

	constructor(
		readonly router: types.Router,
		readonly transport: types.PlainTransport,
		private readonly options: SubscribeOptions,
	) {}

	get localPort(): number {
		return this.transport.tuple.localPort;
	}

	/**
	 * Consumes more producers on this bot's transport; `spatialLayer` overrides the
	 * subscriber's preferredSpatialLayer. Only the ids are read: a producer piped here
	 * (or the id Foresight names in a move) is consumed by id.
	 */
	async consume(producers: Iterable<Pick<types.Producer, 'id'>>, options: { spatialLayer?: number; paused?: boolean } = {}): Promise<types.Consumer[]> {
		const added: types.Consumer[] = [];
		const spatialLayer = options.spatialLayer ?? this.options.preferredSpatialLayer;
		for (const p of producers) {
			const consumer = await this.transport.consume({ producerId: p.id, rtpCapabilities: this.router.rtpCapabilities, paused: options.paused ?? false });
			if (spatialLayer !== undefined && consumer.type === 'simulcast') {
				await consumer.setPreferredLayers({ spatialLayer });
			}
			// Consumers close with their producer; keep only live ones.
			consumer.observer.once('close', () => {
				const i = this.consumers.indexOf(consumer);
				if (i >= 0) this.consumers.splice(i, 1);
			});
			this.consumers.push(consumer);
			added.push(consumer);
		}
		return added;
	}

	close(): void {
		this.transport.close();
	}
}

/** One UDP socket receiving what every subscriber's transport sends; counts per source port. */
class CountingSink {
	packets = 0;
	bytes = 0;
	readonly byPort = new Map<number, { packets: number; bytes: number }>();

	private constructor(readonly socket: Socket) {
		socket.on('message', (m, rinfo) => {
			this.packets++;
			this.bytes += m.length;
			const c = this.byPort.get(rinfo.port);
			if (c) {
				c.packets++;
				c.bytes += m.length;
			}
		});
	}

	static async open(ip: string, log: EpisodeLog): Promise<CountingSink> {
		const socket = createSocket('udp4');
		guardSocket(socket, new ErrorEpisode(log, 'replay sink socket'));
		await new Promise<void>((r) => socket.bind(0, ip, r));
		socket.setRecvBufferSize(8 * 1024 * 1024);
		return new CountingSink(socket);
	}

	get port(): number {
		return this.socket.address().port;
	}
}

export interface ReplayerStats {
	publishers: number;
	subscribers: number;
	packetsSent: number;
	bytesSent: number;
	sinkPackets: number;
	sinkBytes: number;
	/** Largest lateness of a tick behind its schedule, ms. */
	maxTickLagMs: number;
}

/**
 * Header extensions this mediasoup can parse: a recording keeps whatever the browser
 * negotiated (e.g. toffset), which mediasoup ≥ 3.32 rejects instead of ignoring.
 */
let supportedExtensionUris: ReadonlySet<string> | undefined;
function isSupportedExtension(uri: string): boolean {
	supportedExtensionUris ??= new Set((getSupportedRtpCapabilities().headerExtensions ?? []).map((h) => h.uri));
	return supportedExtensionUris.has(uri);
}

function toMediasoupRtpParameters(stream: RecordedStream, layers: LayerState[], cname: string, nack: boolean): types.RtpParameters {
	const p = stream.rtpParameters;
	const codecs = p.codecs as types.RtpCodecParameters[];
	return {
		// Recordings keep no generic NACK (a replay could not answer it); a copy that answers declares it.
		codecs: nack && stream.kind === 'video' ? codecs.map((c) => (c.rtcpFeedback?.some((f) => f.type === 'nack' && !f.parameter) ? c : { ...c, rtcpFeedback: [...(c.rtcpFeedback ?? []), { type: 'nack', parameter: '' }] })) : codecs,
		headerExtensions: (p.headerExtensions ?? []).filter((h) => isSupportedExtension(h.uri)) as types.RtpHeaderExtensionParameters[],
		encodings: layers.map((l) => {
			const e = p.encodings[l.prepared.spatialIndex];
			// scaleResolutionDownBy travels as a browser's produce() sends it (mediasoup keeps it untyped).
			return {
				ssrc: l.ssrc,
				...(e?.scalabilityMode ? { scalabilityMode: e.scalabilityMode } : {}),
				...(e?.scaleResolutionDownBy !== undefined ? { scaleResolutionDownBy: e.scaleResolutionDownBy } : {}),
			} as types.RtpEncodingParameters;
		}),
		rtcp: { cname, reducedSize: true },
	};
}

/**
 * Numbers a packet's VP8 picture id and TL0PICIDX on from the layer's last ones, as one
 * encoder does. Where the copy jumps in the recording (a new pass, a key-frame answer),
 * the next frame continues at +1 instead of carrying the recording's jump: a receiver
 * reads a picture id jump of half the 15-bit space or more as going back, and libwebrtc
 * then drops every frame, key frames too, until the ids pass the last one it decoded.
 */
function rewriteVp8(p: Buffer, off: number, s: Pick<LayerState, 'pidAdd' | 'tl0Add' | 'lastPid' | 'lastTl0' | 'vp8Resync'>): void {
	if (off + 1 >= p.length || !(p[off]! & 0x80)) return;
	const x = p[off + 1]!;
	let o = off + 2;
	let pidAt = -1;
	let wide = false;
	if (x & 0x80) {
		pidAt = o;
		wide = (p[o]! & 0x80) !== 0;
		o += wide ? 2 : 1;
	}
	const tl0At = x & 0x40 ? o++ : -1;
	// TID (top two bits of the T/K byte); a frame without one counts as a base-layer frame.
	const tid = x & 0x20 && o < p.length ? p[o]! >> 6 : 0;
	if (o >= p.length) return;
	const recPid = pidAt < 0 ? -1 : wide ? ((p[pidAt]! & 0x7f) << 8) | p[pidAt + 1]! : p[pidAt]! & 0x7f;
	const recTl0 = tl0At < 0 ? -1 : p[tl0At]!;
	if (s.vp8Resync) {
		s.vp8Resync = false;
		if (recPid >= 0 && s.lastPid >= 0) s.pidAdd = (s.lastPid + 1 - recPid) & 0x7fff;
		if (recTl0 >= 0 && s.lastTl0 >= 0) s.tl0Add = (s.lastTl0 + (tid === 0 ? 1 : 0) - recTl0) & 0xff;
	}
	if (recPid >= 0) {
		const pid = (recPid + s.pidAdd) & (wide ? 0x7fff : 0x7f);
		s.lastPid = pid;
		if (wide) {
			p[pidAt] = 0x80 | (pid >> 8);
			p[pidAt + 1] = pid & 0xff;
		} else {
			p[pidAt] = pid;
		}
	}
	if (recTl0 >= 0) {
		const tl0 = (recTl0 + s.tl0Add) & 0xff;
		s.lastTl0 = tl0;
		p[tl0At] = tl0;
	}
}

export class Replayer {
	private readonly tickMs: number;
	private readonly rng: Rng;
	private readonly listenIp: string;
	private readonly sender: PacketSender | undefined;
	private readonly log: EpisodeLog;
	private readonly publishers = new Set<Publisher>();
	private readonly subscribers = new Set<Subscriber>();
	private sink: CountingSink | undefined;
	/** The sink being opened: concurrent first subscribers share it instead of each opening (and leaking) one. */
	private opening: Promise<CountingSink> | undefined;
	private timer: NodeJS.Timeout | undefined;
	private lastTickMs = 0;
	private closedPacketsSent = 0;
	private closedBytesSent = 0;
	private closedSinkPackets = 0;
	private closedSinkBytes = 0;
	maxTickLagMs = 0;
	private lossRate = 0;

	constructor(options: ReplayerOptions = {}) {
		this.tickMs = options.tickMs ?? 2;
		this.rng = new Rng(options.seed ?? 1);
		this.listenIp = options.listenIp ?? '127.0.0.1';
		this.sender = options.sender;
		this.log = options.logger ?? stderrLog('replayer');
	}

	/**
	 * Takes over a copy built elsewhere, e.g. in a sender process from a RemoteCopy
	 * (its packets go to `port` as the copy's rewrites say); call start() to send.
	 */
	async adopt(prepared: PreparedRecording, copy: RemoteCopy): Promise<Publisher> {
		const socket = await connectedSocket(this.listenIp, copy.port, copy.ip, this.log);
		const publisher = new Publisher(prepared, undefined, socket, layerStates(prepared, copy.rewrites), undefined, copy.loop, this.rng);
		publisher.lossRate = this.lossRate;
		this.publishers.add(publisher);
		return publisher;
	}

	/** The UDP port where bots' transports deliver. */
	async sinkPort(): Promise<number> {
		return this.sender ? this.sender.sinkPort() : (await this.ensureSink()).port;
	}

	/** Publishes one copy of a recording into a router; its packets start flowing on the next tick. */
	async publish(router: types.Router, recording: Recording, options: PublishOptions = {}): Promise<Publisher> {
		// Messages go through a DataProducer, which lives here, not in the sender process.
		if (options.data && this.sender) throw new Error('data replay needs the packets sent from this process (no sender process)');
		if ((options.keyframeOnRequest || options.retransmitOnNack) && this.sender) throw new Error('keyframeOnRequest and retransmitOnNack need the packets sent from this process (no sender process)');
		const prepared = prepare(recording);
		const labels = options.labels ?? recording.header.streams.map((s) => s.label);
		const maxLayers = options.maxLayers ?? Number.POSITIVE_INFINITY;
		const usedSsrcs = new Set<number>();
		const freshSsrc = (): number => {
			for (;;) {
				const s = this.rng.int(1, 0xfffffffe);
				if (!usedSsrcs.has(s)) {
					usedSsrcs.add(s);
					return s;
				}
			}
		};
		const rewrites: Array<LayerRewrite | undefined> = prepared.layers.map((l) =>
			labels.includes(l.stream.label) && l.spatialIndex < maxLayers && l.packets > 0
				? { ssrc: freshSsrc(), seqAdd: this.rng.int(0, 0xffff), tsAdd: this.rng.int(0, 0xffffffff) }
				: undefined,
		);
		const layerState = layerStates(prepared, rewrites);
		const transport = await router.createPlainTransport({
			listenInfo: { protocol: 'udp', ip: this.listenIp },
			rtcpMux: true,
			comedia: true,
			appData: { ...options.appData, replay: recording.header.name },
		});
		let socket: Socket | undefined;
		try {
			const ip = transport.tuple.localAddress ?? this.listenIp;
			// With a sender process, the packets leave from its socket, not from here.
			if (!this.sender) socket = await connectedSocket(this.listenIp, transport.tuple.localPort, ip, this.log);
			const cname = randomBytes(8).toString('hex');
			const producers = new Map<string, types.Producer>();
			for (const stream of recording.header.streams) {
				const layers = layerState.filter((s): s is LayerState => s !== undefined && s.prepared.stream.index === stream.index);
				if (layers.length === 0) continue;
				const producer = await transport.produce({
					kind: stream.kind,
					rtpParameters: toMediasoupRtpParameters(stream, layers, cname, options.retransmitOnNack === true),
					appData: { ...options.appData, label: stream.label, replay: recording.header.name },
				});
				producers.set(stream.label, producer);
			}
			let direct: types.DirectTransport | undefined;
			let dataProducer: types.DataProducer | undefined;
			if (options.data && recording.header.dataChannel) {
				direct = await router.createDirectTransport();
				dataProducer = await direct.produceData({ label: recording.header.dataChannel.label, appData: { ...options.appData } });
			}
			const loop = options.loop ?? false;
			const publisher = new Publisher(prepared, transport, socket, layerState, direct, loop, this.rng);
			publisher.lossRate = this.lossRate;
			publisher.router = router;
			if (options.keyframeOnRequest) publisher.answerKeyframeRequests();
			if (options.retransmitOnNack) publisher.answerNacks();
			for (const [label, p] of producers) {
				publisher.producers.set(label, p);
				// A producer closed on its own (Foresight migrated it, or the app closed it): its packets stop, and the copy goes with its last one.
				p.observer.once('close', () => {
					publisher.stopTrack(label);
					const live = [...publisher.producers.values()].some((x) => !x.closed) || (publisher.dataProducer !== undefined && !publisher.dataProducer.closed);
					if (!live) this.unpublish(publisher);
				});
			}
			publisher.dataProducer = dataProducer;
			if (this.sender) publisher.remoteId = await this.sender.publish(recording, { rewrites, loop, ip, port: transport.tuple.localPort });
			this.publishers.add(publisher);
			// Its router closed or its worker died: nothing can receive this copy any more, so it stops sending.
			transport.observer.once('close', () => this.unpublish(publisher));
			if (options.autoStart ?? true) this.start(publisher);
			return publisher;
		} catch (err) {
			transport.close();
			socket?.close();
			throw err;
		}
	}

	/**
	 * Drops this share of every copy's RTP packets (now and for copies published later),
	 * sent from this process: a lossy path between the senders and the worker.
	 */
	setLoss(rate: number): void {
		if (!(rate >= 0 && rate <= 1)) throw new RangeError(`loss rate must be in [0, 1], got ${rate}`);
		this.lossRate = rate;
		for (const p of this.publishers) p.lossRate = rate;
	}

	start(publisher: Publisher): void {
		if (publisher.remoteId !== undefined) {
			this.sender?.start(publisher.remoteId);
			return;
		}
		publisher.start(performance.now());
		this.ensureTimer();
	}

	/** A consumer bot: one PlainTransport (SRTP by default) to the shared sink, consuming the given producers. */
	async subscribe(router: types.Router, producers: types.Producer[], options: SubscribeOptions = {}): Promise<Subscriber> {
		const sink = options.sink ?? { ip: this.listenIp, port: await this.sinkPort() };
		const srtp = options.srtp ?? true;
		const transport = await router.createPlainTransport({
			listenInfo: { protocol: 'udp', ip: this.listenIp },
			rtcpMux: true,
			comedia: false,
			enableBwe: options.bwe ?? false,
			enableSrtp: srtp,
			srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80',
			...(options.appData ? { appData: options.appData } : {}),
		});
		try {
			await transport.connect({
				ip: sink.ip,
				port: sink.port,
				...(srtp ? { srtpParameters: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80' as const, keyBase64: randomBytes(30).toString('base64') } } : {}),
			});
			if (!options.sink) this.sink?.byPort.set(transport.tuple.localPort, { packets: 0, bytes: 0 });
			const sub = new Subscriber(router, transport, options);
			await sub.consume(producers);
			this.subscribers.add(sub);
			return sub;
		} catch (err) {
			transport.close();
			throw err;
		}
	}

	/** Packets and bytes a subscriber's transport has delivered to the sink (the sender process counts its own). */
	received(sub: Subscriber): { packets: number; bytes: number } {
		return this.sink?.byPort.get(sub.localPort) ?? { packets: 0, bytes: 0 };
	}

	unpublish(p: Publisher): void {
		if (!p.closed && p.remoteId !== undefined) this.sender?.unpublish(p.remoteId);
		p.close();
		this.forget(p);
	}

	unsubscribe(s: Subscriber): void {
		s.close();
		this.subscribers.delete(s);
		this.sink?.byPort.delete(s.localPort);
		// The shared sink goes with the last subscriber (the next one opens a new one).
		if (this.subscribers.size === 0) this.closeSink();
	}

	private closeSink(): void {
		if (!this.sink) return;
		this.closedSinkPackets += this.sink.packets;
		this.closedSinkBytes += this.sink.bytes;
		this.sink.socket.close();
		this.sink = undefined;
	}

	/** What this process sent and received; with a sender process, SenderProcess.stats() has the packets. */
	stats(): ReplayerStats {
		let packetsSent = this.closedPacketsSent;
		let bytesSent = this.closedBytesSent;
		for (const p of this.publishers) {
			packetsSent += p.packetsSent;
			bytesSent += p.bytesSent;
		}
		return {
			publishers: this.publishers.size,
			subscribers: this.subscribers.size,
			packetsSent,
			bytesSent,
			sinkPackets: this.closedSinkPackets + (this.sink?.packets ?? 0),
			sinkBytes: this.closedSinkBytes + (this.sink?.bytes ?? 0),
			maxTickLagMs: this.maxTickLagMs,
		};
	}

	close(): void {
		if (this.timer) clearInterval(this.timer);
		this.timer = undefined;
		for (const p of [...this.publishers]) this.unpublish(p);
		for (const s of [...this.subscribers]) this.unsubscribe(s);
		this.closeSink();
	}

	private forget(p: Publisher): void {
		if (!this.publishers.delete(p)) return;
		this.closedPacketsSent += p.packetsSent;
		this.closedBytesSent += p.bytesSent;
		// An idle 2 ms timer costs CPU for nothing and outlives every copy it served.
		if (this.publishers.size === 0 && this.timer) {
			clearInterval(this.timer);
			this.timer = undefined;
		}
	}

	private async ensureSink(): Promise<CountingSink> {
		if (this.sink) return this.sink;
		this.opening ??= CountingSink.open(this.listenIp, this.log).finally(() => (this.opening = undefined));
		this.sink = await this.opening;
		return this.sink;
	}

	private ensureTimer(): void {
		if (this.timer) return;
		this.lastTickMs = performance.now();
		this.timer = setInterval(() => this.tick(), this.tickMs);
	}

	private tick(): void {
		const now = performance.now();
		const lag = now - this.lastTickMs - this.tickMs;
		if (lag > this.maxTickLagMs) this.maxTickLagMs = lag;
		this.lastTickMs = now;
		for (const p of this.publishers) {
			// Finished copies stay listed (their producers live on) but cost nothing.
			p.pump(now);
		}
	}
}
