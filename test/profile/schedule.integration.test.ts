import { createSocket } from 'node:dgram';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { createLogger } from '../../plugin/log';
import { GraphObserver } from '../../plugin/observe/attach';
import { Profiler } from '../../plugin/profile/profiler';
import { OPUS_PT, VP8_PT } from '../../training/media/ffmpegRtp';
import { MEDIA_CODECS, startReceivingPeer, waitFor } from '../../training/media/rig';

/**
 * A sender at a constant rate: a 1000-byte VP8 inter frame every 10 ms and a 100-byte Opus
 * packet every 20 ms. Real encoders vary their rate (a keyframe is a fifth of a looped
 * 3 s capture's bytes), which fires the schedule's rate-change trigger; this one never does.
 */
async function constantSender(router: types.Router, ssrcBase: number) {
	const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
	const video = await transport.produce({
		kind: 'video',
		rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: VP8_PT, clockRate: 90000 }], encodings: [{ ssrc: ssrcBase + 1 }] },
	});
	const audio = await transport.produce({
		kind: 'audio',
		rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: ssrcBase + 2 }] },
	});
	const socket = createSocket('udp4');
	let seqV = 0;
	let seqA = 0;
	let tick = 0;
	const packet = (pt: number, seq: number, ts: number, ssrc: number, payload: Buffer): Buffer => {
		const h = Buffer.alloc(12);
		h[0] = 0x80;
		h[1] = 0x80 | pt;
		h.writeUInt16BE(seq & 0xffff, 2);
		h.writeUInt32BE(ts >>> 0, 4);
		h.writeUInt32BE(ssrc, 8);
		return Buffer.concat([h, payload]);
	};
	// VP8 payload descriptor (S=1, partition 0) and a frame tag with P=1: an inter frame.
	const vp8 = Buffer.concat([Buffer.from([0x10, 0x01]), Buffer.alloc(998, 0x55)]);
	const opus = Buffer.concat([Buffer.from([0x78]), Buffer.alloc(99, 0x33)]);
	// Paced by the clock, not by the timer: a stalled event loop on a busy host sends what it owes
	// when it wakes, so the rate over any few seconds stays the same.
	const start = performance.now();
	const timer = setInterval(() => {
		const due = Math.floor((performance.now() - start) / 10);
		for (; tick < due; tick++) {
			socket.send(packet(VP8_PT, seqV++, tick * 900, ssrcBase + 1, vp8), transport.tuple.localPort, '127.0.0.1');
			if (tick % 2 === 0) socket.send(packet(OPUS_PT, seqA++, tick * 480, ssrcBase + 2, opus), transport.tuple.localPort, '127.0.0.1');
		}
	}, 10);
	return {
		transport,
		video,
		audio,
		sender: {
			stop(): void {
				clearInterval(timer);
				socket.close();
			},
		},
	};
}

/**
 * The tiered schedule on a real worker: a producer is refreshed every round for its first
 * 20 s, then every slowStatsEveryMs; a pause puts it back in the fast tier; the audio
 * producer is refreshed from its consumer's answers without asking itself.
 */
describe('tiered stats schedule on a real worker', () => {
	test('join fast tier, slow tier, a trigger, audio from consumers', async () => {
		const log = createLogger('silent');
		const graph = new GraphObserver(mediasoup, log);
		const profiler = new Profiler(
			graph.registry,
			{
				statsIntervalMs: 500,
				slowStatsEveryMs: 3000,
				consumerStatsEveryMs: 2000,
				transportStatsEveryMs: 5000,
				windowStatsEveryMs: 2000,
				sampling: false,
				traceEveryMs: 30_000,
				traceWindowMs: 1000,
				tapEveryMs: 30_000,
				tapWindowMs: 1000,
				resolutionRefreshMs: 300_000,
				probeWaitMs: 500,
				traceBackoffMax: 4,
				keyframeProbes: false,
				keywords: [],
			},
			log,
		);
		profiler.start();
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		let sender: { stop(): void } | undefined;
		let sink: { close(): void } | undefined;
		try {
			const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
			const send = await constantSender(router, 70_000);
			sender = send.sender;
			const recv = await startReceivingPeer(router, [send.video, send.audio]);
			sink = recv.sink;
			const refreshes = new Map<string, number[]>();
			const connections: number[] = [];
			const roundSizes = new Set<number>();
			profiler.on('profiles', (r) => {
				for (const p of r.refreshed) {
					const at = refreshes.get(p.streamId) ?? [];
					at.push(Date.now());
					refreshes.set(p.streamId, at);
				}
				for (const c of r.refreshedConnections) if (c.transportId === send.transport.id) connections.push(Date.now());
				roundSizes.add(r.streams.length);
			});
			const t0 = Date.now();
			const between = (id: string, from: number, to: number): number => (refreshes.get(id) ?? []).filter((t) => t >= t0 + from && t < t0 + to).length;
			const requests = (): number => profiler.stats().requests.producerStats;

			await new Promise((r) => setTimeout(r, 16_000));
			// Joined: every round (500 ms).
			expect(between(send.video.id, 2000, 16_000)).toBeGreaterThanOrEqual(24);
			await waitFor(() => Date.now() >= t0 + 23_000, 30_000, 'the join window to end');
			const producerTriggers = (): number => {
				const t = profiler.stats().fastTriggers;
				return (t.score ?? 0) + (t.rate ?? 0) + (t.keyframe ?? 0) + (t.pause ?? 0);
			};
			// A window of the slow tier is one in which nothing triggered the producers. On a loaded
			// host the sender's timer stalls now and then, a real rate change for the 15 % rule: then
			// the fast tier runs its 10 s and the next window is judged.
			let slowFrom = 0;
			let slow = 0;
			let requested = 0;
			for (let attempt = 0; attempt < 3; attempt++) {
				slowFrom = Date.now() - t0;
				const triggers0 = producerTriggers();
				const r0 = requests();
				await new Promise((r) => setTimeout(r, 9000));
				slow = between(send.video.id, slowFrom, slowFrom + 9000);
				requested = requests() - r0;
				if (producerTriggers() === triggers0) break;
				await new Promise((r) => setTimeout(r, 10_000));
			}
			if (slow > 4) throw new Error(`no window without triggers: ${slow} refreshes in 9 s; triggers ${JSON.stringify(profiler.stats().fastTriggers)}`);
			// Slow tier: every 3 s.
			expect(slow).toBeGreaterThanOrEqual(2);
			expect(slow).toBeLessThanOrEqual(4);
			// The audio producer is refreshed from its consumer's answers (every 2 s) and asks nothing itself:
			// the video producer's 3 or 4 requests are all there are.
			expect(between(send.audio.id, slowFrom, slowFrom + 9000)).toBeGreaterThanOrEqual(3);
			expect(requested).toBeLessThanOrEqual(4);
			expect(profiler.profileOf(send.audio.id)!.flow.bitrateBps).toBeGreaterThan(10_000);
			// The consumer follows its producer between its own answers.
			expect(between(recv.consumers[0]!.id, slowFrom, slowFrom + 9000)).toBeGreaterThanOrEqual(slow);
			// A transport answers every 5 s (the first right away): about one in five rounds of a 500 ms tick.
			const elapsedS = (Date.now() - t0) / 1000;
			expect(connections.length).toBeGreaterThanOrEqual(Math.floor(elapsedS / 5) - 1);
			expect(connections.length).toBeLessThanOrEqual(Math.ceil(elapsedS / 5) + 2);

			// Every round carries every stream's latest profile, refreshed or not (after the first few).
			expect(roundSizes.has(4)).toBe(true);
			expect(Math.max(...roundSizes)).toBe(4);

			// A pause is a trigger: the fast tier again for 10 s.
			const pausedAt = Date.now() - t0;
			await send.video.pause();
			await new Promise((r) => setTimeout(r, 6000));
			expect(between(send.video.id, pausedAt, pausedAt + 6000)).toBeGreaterThanOrEqual(9);
		} finally {
			sender?.stop();
			sink?.close();
			await profiler.stop();
			graph.detach();
			worker.close();
		}
	}, 120_000);
});
