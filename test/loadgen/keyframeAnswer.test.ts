import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { isVp8KeyframeStart, prepare, rtpPayloadOffset, type PreparedRecording } from '../../training/loadgen/prepared';
import { KEYFRAME_ANSWER_MIN_MS, keyframeRequestSsrcs, nackedSeqs, Replayer, RETRANSMIT_HISTORY, type LayerRewrite, type Publisher } from '../../training/loadgen/replayer';
import { readRecording } from '../../training/record/format';

/**
 * A replayed copy answers the worker's key-frame requests as a browser's encoder does:
 * here the "worker" is a UDP socket that receives the copy's packets and sends it PLIs.
 */

/** An RTCP feedback packet (RFC 4585) from sender SSRC 1 about `mediaSsrc`. */
const feedback = (pt: number, fmt: number, mediaSsrc: number, fci = Buffer.alloc(0)): Buffer => {
	const b = Buffer.alloc(12 + fci.length);
	b[0] = 0x80 | fmt;
	b[1] = pt;
	b.writeUInt16BE(b.length / 4 - 1, 2);
	b.writeUInt32BE(1, 4);
	b.writeUInt32BE(mediaSsrc, 8);
	fci.copy(b, 12);
	return b;
};
const pli = (mediaSsrc: number): Buffer => feedback(206, 1, mediaSsrc);

test('finds the media SSRCs of PLI and FIR in a compound RTCP packet, skipping other reports', () => {
	const rr = Buffer.alloc(8);
	rr[0] = 0x80;
	rr[1] = 201;
	rr.writeUInt16BE(1, 2);
	const fir = Buffer.alloc(28);
	fir[0] = 0x84; // FMT=4
	fir[1] = 206;
	fir.writeUInt16BE(6, 2);
	fir.writeUInt32BE(11, 12);
	fir.writeUInt32BE(22, 20);
	const nack = Buffer.from(pli(99));
	nack[0] = 0x81;
	nack[1] = 205; // RTPFB (a NACK), not a key-frame request
	expect(keyframeRequestSsrcs(Buffer.concat([rr, pli(1234), nack, fir]))).toEqual([1234, 11, 22]);
	// A truncated packet ends the parse instead of reading past the buffer.
	expect(keyframeRequestSsrcs(pli(5).subarray(0, 10))).toEqual([]);
});

/** A generic NACK (RFC 4585) of `pid` and the packets its bitmask `blp` adds. */
const nack = (mediaSsrc: number, pid: number, blp = 0): Buffer => {
	const fci = Buffer.alloc(4);
	fci.writeUInt16BE(pid, 0);
	fci.writeUInt16BE(blp, 2);
	return feedback(205, 1, mediaSsrc, fci);
};

test('finds the sequence numbers a generic NACK asks for, bitmask and wrap included', () => {
	expect(nackedSeqs(Buffer.concat([pli(7), nack(42, 65534, 0b101)]))).toEqual([
		{ ssrc: 42, seq: 65534 },
		{ ssrc: 42, seq: 65535 },
		{ ssrc: 42, seq: 1 },
	]);
	expect(nackedSeqs(nack(42, 10).subarray(0, 14))).toEqual([]);
});

interface Received {
	atMs: number;
	ssrc: number;
	seq: number;
	ts: number;
	keyframe: boolean;
}

describe('a copy with key-frame answers on', () => {
	let worker: Socket;
	let replayer: Replayer;
	let publisher: Publisher;
	let prepared: PreparedRecording;
	const received: Received[] = [];
	let from: RemoteInfo | undefined;

	beforeAll(async () => {
		prepared = prepare(await readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz')));
		worker = createSocket('udp4');
		await new Promise<void>((r) => worker.bind(0, '127.0.0.1', r));
		worker.on('message', (m, rinfo) => {
			if (m[1]! >= 200 && m[1]! <= 206) return;
			from = rinfo;
			const off = rtpPayloadOffset(m);
			received.push({ atMs: performance.now(), ssrc: m.readUInt32BE(8), seq: m.readUInt16BE(2), ts: m.readUInt32BE(4), keyframe: prepared.layers[m.readUInt32BE(8) - 1000]?.stream.kind === 'video' && isVp8KeyframeStart(m, off) });
		});
		replayer = new Replayer({ seed: 3 });
		const rewrites: LayerRewrite[] = prepared.layers.map((_, i) => ({ ssrc: 1000 + i, seqAdd: 65000, tsAdd: 4294960000 }));
		publisher = await replayer.adopt(prepared, { rewrites, loop: true, ip: '127.0.0.1', port: worker.address().port });
		publisher.answerKeyframeRequests();
		replayer.start(publisher);
	});

	afterAll(() => {
		replayer.close();
		worker.close();
	});

	test('sends the next key frame at once, numbering on without a gap or a time jump, at most once per interval', async () => {
		const camera = prepared.layers.findIndex((l) => l.stream.label === 'camera' && l.spatialIndex === 2);
		const ssrc = 1000 + camera;
		// The recording's key frames are 4 s apart: ask 1 s in, well between two of them.
		await new Promise((r) => setTimeout(r, 1000));
		const askedAt = performance.now();
		worker.send(pli(ssrc), from!.port, from!.address);
		await new Promise((r) => setTimeout(r, 300));
		// A burst of requests within the interval gets one more answer, not one each.
		const burstAt = performance.now();
		for (let i = 0; i < 5; i++) worker.send(pli(ssrc), from!.port, from!.address);
		await new Promise((r) => setTimeout(r, KEYFRAME_ANSWER_MIN_MS + 300));

		const keyframesAfter = (t: number, until: number): Received[] => received.filter((p) => p.ssrc === ssrc && p.keyframe && p.atMs >= t && p.atMs < until);
		const first = keyframesAfter(askedAt, burstAt);
		expect(first).toHaveLength(1);
		expect(first[0]!.atMs - askedAt).toBeLessThan(100);
		expect(keyframesAfter(burstAt, performance.now())).toHaveLength(1);
		expect(publisher.keyframesAnswered).toBe(2);
		expect(publisher.skippedUs).toBeGreaterThan(1_000_000);

		// Every layer's sequence numbers stay contiguous (the worker sees no loss), and each
		// step in RTP time stays within 100 ms of the wall time it took (no jump).
		for (const [i, layer] of prepared.layers.entries()) {
			const mine = received.filter((p) => p.ssrc === 1000 + i);
			expect(mine.length).toBeGreaterThan(10);
			for (let k = 1; k < mine.length; k++) {
				expect((mine[k]!.seq - mine[k - 1]!.seq) & 0xffff).toBe(1);
				const rtpMs = (((mine[k]!.ts - mine[k - 1]!.ts) | 0) / layer.clockRate) * 1000;
				expect(Math.abs(rtpMs - (mine[k]!.atMs - mine[k - 1]!.atMs))).toBeLessThan(100);
			}
		}
	});
});

/** 15-bit picture id and TL0PICIDX of a VP8 packet with both (as Chromium sends them). */
function vp8Ids(p: Buffer, off: number): { pid?: number; tl0?: number } {
	if (!(p[off]! & 0x80) || !(p[off + 1]! & 0x80) || !(p[off + 2]! & 0x80) || !(p[off + 1]! & 0x40)) return {};
	return { pid: ((p[off + 2]! & 0x7f) << 8) | p[off + 3]!, tl0: p[off + 4]! };
}

/**
 * The same answers, pumped by hand so that the request meets the two awkward moments
 * exactly: halfway through a frame, and when the pump runs late past a key frame.
 */
describe('a key-frame answer at an awkward moment', () => {
	let worker: Socket;
	let replayer: Replayer;
	let prepared: PreparedRecording;
	let camera: number;
	const received: Array<Received & { marker: boolean; layer: number; pid?: number; tl0?: number; bytes: Buffer }> = [];

	let pumpedMs = 0;
	/**
	 * Pumps the copy up to `nowMs` in 5 ms steps (a burst of seconds of media would overflow
	 * the receiving socket), or in one late step with `late`; with `pli`, the request arrives first.
	 */
	const arrive = async (publisher: Publisher, nowMs: number, options: { pli?: number; late?: boolean } = {}): Promise<void> => {
		if (options.pli !== undefined) {
			const local = await from;
			worker.send(pli(options.pli), local.port, local.address);
			await new Promise((r) => setTimeout(r, 50));
		}
		for (let t = options.late ? nowMs : Math.min(pumpedMs + 5, nowMs); ; t = Math.min(t + 5, nowMs)) {
			publisher.pump(t);
			await new Promise((r) => setImmediate(r));
			if (t >= nowMs) break;
		}
		pumpedMs = nowMs;
		await new Promise((r) => setTimeout(r, 50));
	};
	// Where the copy sends from, for its key-frame requests (each test adopts a new copy).
	let resolveFrom!: (r: RemoteInfo) => void;
	let from!: Promise<RemoteInfo>;

	beforeAll(async () => {
		prepared = prepare(await readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz')));
		camera = prepared.layers.findIndex((l) => l.stream.label === 'camera' && l.spatialIndex === 2);
		worker = createSocket('udp4');
		await new Promise<void>((r) => worker.bind(0, '127.0.0.1', r));
		worker.on('message', (m, rinfo) => {
			if (m[1]! >= 200 && m[1]! <= 206) return;
			resolveFrom(rinfo);
			const layer = m.readUInt32BE(8) - 2000;
			const video = prepared.layers[layer]?.stream.kind === 'video';
			received.push({ atMs: 0, layer, ssrc: m.readUInt32BE(8), seq: m.readUInt16BE(2), ts: m.readUInt32BE(4), marker: (m[1]! & 0x80) !== 0, keyframe: video && isVp8KeyframeStart(m, rtpPayloadOffset(m)), ...(video ? vp8Ids(m, rtpPayloadOffset(m)) : {}), bytes: m });
		});
		replayer = new Replayer({ seed: 4 });
	});

	afterAll(() => {
		replayer.close();
		worker.close();
	});

	const adopt = async (): Promise<Publisher> => {
		received.length = 0;
		from = new Promise<RemoteInfo>((r) => (resolveFrom = r));
		const rewrites: LayerRewrite[] = prepared.layers.map((_, i) => ({ ssrc: 2000 + i, seqAdd: 0, tsAdd: 0 }));
		const publisher = await replayer.adopt(prepared, { rewrites, loop: true, ip: '127.0.0.1', port: worker.address().port });
		publisher.answerKeyframeRequests();
		publisher.start(0);
		pumpedMs = 0;
		return publisher;
	};
	/** Recording indices of the camera's key-frame starts (any of its layers), in order. */
	const keyframes = (): number[] => {
		const out: number[] = [];
		const index = prepared.layers[camera]!.stream.index;
		for (let i = 0; i < prepared.data.length; i++) if (prepared.keyframeStart[i] && prepared.layers[prepared.layerOf[i]!]!.stream.index === index) out.push(i);
		return out;
	};
	const contiguous = (): void => {
		for (let layer = 0; layer < prepared.layers.length; layer++) {
			const mine = received.filter((p) => p.layer === layer);
			for (let k = 1; k < mine.length; k++) expect([layer, (mine[k]!.seq - mine[k - 1]!.seq) & 0xffff]).toEqual([layer, 1]);
		}
	};

	test('halfway through a frame: the begun frame is finished, then the next key frame follows', async () => {
		const publisher = await adopt();
		// A multi-packet frame of the top camera layer, after the first key frame.
		const ks = keyframes();
		const first = ks.find((i) => prepared.arrivalUs[i]! > 1_000_000)!;
		let start = -1;
		for (let i = first + 1; i < prepared.data.length && start < 0; i++) {
			if (prepared.layerOf[i] !== camera) continue;
			const ts = prepared.data[i]!.readUInt32BE(4);
			const rest = [];
			for (let j = i + 1; j < prepared.data.length && rest.length < 2; j++) if (prepared.layerOf[j] === camera && prepared.data[j]!.readUInt32BE(4) === ts) rest.push(j);
			if (rest.length === 2 && prepared.arrivalUs[rest[0]!]! > prepared.arrivalUs[i]!) start = i;
		}
		expect(start).toBeGreaterThan(0);
		const frameTs = prepared.data[start]!.readUInt32BE(4);
		const framePackets = [...prepared.data.keys()].filter((j) => prepared.layerOf[j] === camera && prepared.data[j]!.readUInt32BE(4) === frameTs).length;
		// Sent up to the frame's first packet only.
		await arrive(publisher, prepared.arrivalUs[start]! / 1000);
		await arrive(publisher, prepared.arrivalUs[start]! / 1000 + 0.001, { pli: 2000 + camera, late: true });
		expect(publisher.keyframesAnswered).toBe(1);
		const frame = received.filter((p) => p.layer === camera && p.ts === frameTs);
		expect(frame).toHaveLength(framePackets);
		expect(frame.at(-1)!.marker).toBe(true);
		// Then the key frame, right behind it.
		const after = received.slice(received.indexOf(frame.at(-1)!) + 1).find((p) => prepared.layers[p.layer]!.stream.index === prepared.layers[camera]!.stream.index);
		expect(after?.keyframe).toBe(true);
		contiguous();
		replayer.unpublish(publisher);
	});

	test('picture ids and TL0PICIDX number on by one across a key-frame answer and a new pass, as one encoder does', async () => {
		const publisher = await adopt();
		await arrive(publisher, 1500);
		await arrive(publisher, 1500.001, { pli: 2000 + camera, late: true });
		expect(publisher.keyframesAnswered).toBe(1);
		// Past the end of the recording: the copy starts its second pass.
		await arrive(publisher, prepared.durationUs / 1000 - publisher.skippedUs / 1000 + 1500);
		let checked = 0;
		for (let layer = 0; layer < prepared.layers.length; layer++) {
			if (prepared.layers[layer]!.stream.kind !== 'video') continue;
			const frames = received.filter((p, k, all) => p.layer === layer && p.pid !== undefined && all.findIndex((q) => q.layer === layer && q.ts === p.ts) === k);
			expect(frames.length).toBeGreaterThan(100);
			for (let k = 1; k < frames.length; k++) {
				expect([layer, k, (frames[k]!.pid! - frames[k - 1]!.pid!) & 0x7fff]).toEqual([layer, k, 1]);
				expect([0, 1]).toContain((frames[k]!.tl0! - frames[k - 1]!.tl0!) & 0xff);
			}
			checked++;
		}
		expect(checked).toBe(3);
		contiguous();
		replayer.unpublish(publisher);
	});

	test('a NACK gets the packets it asks for again, byte for byte, while they are in the history', async () => {
		const publisher = await adopt();
		publisher.answerNacks();
		await arrive(publisher, 6000);
		const mine = received.filter((p) => p.layer === camera);
		expect(mine.length).toBeGreaterThan(RETRANSMIT_HISTORY + 10);
		const recent = mine.at(-10)!;
		const old = mine.at(-RETRANSMIT_HISTORY - 5)!;
		const sent = received.length;
		const local = await from;
		// The recent packet and the one two after it (bitmask bit 1); the old one was overwritten since.
		worker.send(Buffer.concat([nack(2000 + camera, recent.seq, 0b10), nack(2000 + camera, old.seq)]), local.port, local.address);
		await new Promise((r) => setTimeout(r, 100));
		const again = received.slice(sent);
		expect(again.map((p) => p.seq)).toEqual([recent.seq, (recent.seq + 2) & 0xffff]);
		expect(again[0]!.bytes.equals(recent.bytes)).toBe(true);
		expect(again[1]!.bytes.equals(mine.find((p) => p.seq === ((recent.seq + 2) & 0xffff))!.bytes)).toBe(true);
		expect(publisher.packetsRetransmitted).toBe(2);
		replayer.unpublish(publisher);
	});

	test('when the pump runs late past a due key frame: it goes out as scheduled, nothing is skipped or numbered twice', async () => {
		const publisher = await adopt();
		const k = keyframes().find((i) => prepared.arrivalUs[i]! > 2_000_000)!;
		const dueMs = prepared.arrivalUs[k]! / 1000;
		await arrive(publisher, dueMs - 50);
		// The request arrives, and the next pump comes 70 ms later, when the key frame is due.
		await arrive(publisher, dueMs + 20, { pli: 2000 + camera, late: true });
		expect(publisher.keyframesAnswered).toBe(0);
		expect(publisher.skippedUs).toBe(0);
		expect(received.filter((p) => p.keyframe && prepared.layers[p.layer]!.stream.index === prepared.layers[camera]!.stream.index).length).toBeGreaterThan(0);
		contiguous();
		replayer.unpublish(publisher);
	});
});
