import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { isVp8KeyframeStart, prepare, rtpPayloadOffset, type PreparedRecording } from '../../training/loadgen/prepared';
import { KEYFRAME_ANSWER_MIN_MS, keyframeRequestSsrcs, Replayer, type LayerRewrite, type Publisher } from '../../training/loadgen/replayer';
import { readRecording } from '../../training/record/format';

/**
 * A replayed copy answers the worker's key-frame requests as a browser's encoder does:
 * here the "worker" is a UDP socket that receives the copy's packets and sends it PLIs.
 */

const pli = (mediaSsrc: number): Buffer => {
	const b = Buffer.alloc(12);
	b[0] = 0x81; // V=2, FMT=1
	b[1] = 206;
	b.writeUInt16BE(2, 2);
	b.writeUInt32BE(1, 4);
	b.writeUInt32BE(mediaSsrc, 8);
	return b;
};

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
