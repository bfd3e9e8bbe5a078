import * as mediasoup from 'mediasoup';
import { attach, connectionProfileSchema, streamProfileSchema, type Foresight, type StreamProfile } from '../../plugin';
import { parseOpusToc } from '../../plugin/profile/features/opus';
import { parseRtp } from '../../plugin/profile/features/rtp';
import { captureRealRtp } from '../../training/media/ffmpegRtp';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';

/**
 * The profiler on a real worker fed with real ffmpeg-encoded VP8 (640×360 at
 * 30 fps) and Opus, plus a data producer: every figure is checked against what
 * the media itself says.
 */
describe('Profiler on a real worker', () => {
	let foresight: Foresight;
	afterEach(async () => foresight?.detach());

	test('profiles video, audio, data and connections from live media', async () => {
		foresight = attach(mediasoup, {
			useEnv: false,
			logLevel: 'silent',
			statsIntervalMs: 500,
			// Transport stats every second (default 5 s): the connection's bitrate is checked a few
			// seconds after media starts, and a 5 s-old reading may predate the video.
			// ffmpeg's RTP ignores PLIs: probes wait for its own keyframes. Window statistics every
			// round: what a tap or trace saw must be in the very next profile.
			profiling: {
				traceEveryMs: 1500,
				traceWindowMs: 1000,
				// The framerate check below counts on a window every 1.5 s.
				traceBackoffMax: 1,
				tapEveryMs: 1500,
				tapWindowMs: 1000,
				probeWaitMs: 2000,
				// The probe asks (opt-in): this checks reading sizes from keyframes, passiveResolution checks when to.
				keyframeProbes: true,
				keywords: ['foresight', 'sfu'],
				transportStatsEveryMs: 1000,
				windowStatsEveryMs: 500,
			},
		});
		const media = await captureRealRtp();
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 60_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		const direct = await router.createDirectTransport();
		const chat = await direct.produceData({ label: 'chat' });
		const messages = ['hello foresight', 'the SFU is fine', 'no keyword here', 'foresight, foresight!'];
		try {
			// The data tap attaches a couple of channel round trips after produceData(), well
			// before a real client's data channel opens; only then do messages start here.
			await new Promise((r) => setTimeout(r, 300));
			for (let round = 0; round < 5; round++) {
				for (const m of messages) chat.send(m);
				chat.send(Buffer.from([1, 2, 3, 4, 5, 6, 7]));
				await new Promise((r) => setTimeout(r, 400));
			}
			// Ground truth from the captured packets themselves.
			const tocs = media.opus.packets.map((p) => parseOpusToc(parseRtp(p)!.payload)!);
			const stereoShare = tocs.filter((t) => t.stereo).length / tocs.length;

			let video: StreamProfile | undefined;
			await waitFor(
				() => {
					video = foresight.profileOf(send.video.id);
					return video?.layers[0]?.width !== undefined && video.video?.fps !== undefined;
				},
				15_000,
				'video resolution and fps',
			);
			await new Promise((r) => setTimeout(r, 1000));
			const rounds = await foresight.sampleProfiles();
			const round = rounds.find((r) => r.workerId === String(worker.pid))!;
			for (const p of round.streams) expect(streamProfileSchema.safeParse(p).error).toBeUndefined();
			for (const c of round.connections) expect(connectionProfileSchema.safeParse(c).error).toBeUndefined();
			const byId = new Map(round.streams.map((p) => [p.streamId, p]));

			video = byId.get(send.video.id)!;
			expect(video).toMatchObject({ entity: 'producer', kind: 'video', dataType: 'video', mimeType: 'video/VP8' });
			expect(video.layers[0]).toMatchObject({ width: 640, height: 360, active: true });
			expect(video.flow.bitrateBps).toBeGreaterThan(200_000);
			expect(video.complexity).toBeGreaterThan(0);

			const audio = byId.get(send.audio.id)!;
			expect(audio).toMatchObject({ kind: 'audio', dataType: 'audio', mimeType: 'audio/opus' });
			expect(audio.audio).toMatchObject({
				clockRate: 48000,
				channels: stereoShare >= 0.5 ? 2 : 1,
				opusBandwidth: tocs[tocs.length >> 1]!.bandwidth,
				opusMode: tocs[tocs.length >> 1]!.mode,
				frameMs: tocs[tocs.length >> 1]!.frameMs,
			});

			const consumer = byId.get(recv.consumers[0]!.id)!;
			expect(consumer).toMatchObject({ entity: 'consumer', producerId: send.video.id, transportId: recv.transport.id });
			expect(consumer.flow.bitrateBps).toBeGreaterThan(100_000);
			// What the consumer forwards is its producer's layer.
			expect(consumer.video).toMatchObject({ width: 640, height: 360 });

			const data = byId.get(chat.id)!;
			expect(data).toMatchObject({ entity: 'dataProducer', kind: 'data', dataType: 'text' });
			expect(data.data!.keywordCounts).toEqual({ foresight: 5 * 3, sfu: 5 * 1 });
			expect(data.data!.stringShare).toBeCloseTo(4 / 5, 5);
			const sizes = [...messages.map((m) => Buffer.byteLength(m)), 7];
			expect(data.data!.meanBytes).toBeCloseTo(sizes.reduce((a, b) => a + b) / sizes.length, 5);

			// The live predictor sees the same streams and attributes the worker's load to them.
			await foresight.sampleLoad();
			await foresight.sampleLoad();
			const prediction = foresight.predictNow().find((p) => p.workerId === String(worker.pid))!;
			expect(Object.keys(prediction.horizons).sort()).toEqual(['15', '30', '5']);
			for (const h of [5, 15, 30] as const) {
				const { base, total } = prediction.horizons[h];
				const attributed = prediction.streams.reduce((a, st) => a + st.cost[h].cpuPct, 0);
				expect(total.cpuPct.mean).toBeCloseTo(base.cpuPct + attributed, 6);
				expect(total.cpuPct.p95).toBeGreaterThanOrEqual(total.cpuPct.mean);
			}
			const costOf = (id: string): number => prediction.streams.find((st) => st.streamId === id)!.cost[15].cpuPct;
			expect(costOf(send.video.id)).toBeGreaterThan(costOf(send.audio.id));

			// What it cost is counted: the stats requests it made and the trace events it asked for.
			const cost = foresight.profilerStats();
			expect(cost.requests.producerStats).toBeGreaterThan(0);
			expect(cost.requests.consumerStats).toBeGreaterThan(0);
			expect(cost.requests.traceSwitch).toBeGreaterThan(0);
			expect(cost.notifications.traceRtp).toBeGreaterThan(0);
			expect(cost.notifications.tapData).toBe(25);
			expect(cost.ownCpuMs).toBeGreaterThan(0);
			expect(cost.requestsPerS.producerStats).toBeGreaterThan(0);

			const sending = round.connections.find((c) => c.transportId === send.transport.id)!;
			expect(sending.recvBitrateBps).toBeGreaterThan(200_000);
			expect(sending.distribution.video! + sending.distribution.audio!).toBeCloseTo(1, 5);
			expect(sending.distribution.video!).toBeGreaterThan(sending.distribution.audio!);

			// Framerate is counted in 1 s trace windows stamped on arrival in Node: over the three or
			// four windows seen so far, one stalled event loop on a busy machine moves a frame in ~90,
			// i.e. the whole 2 % budget (CI once read 29.31). It is judged after eight more windows.
			await new Promise((r) => setTimeout(r, 12_000));
			const fps = foresight.profileOf(send.video.id)!.video!.fps!;
			expect(fps).toBeGreaterThan(30 * 0.98);
			expect(fps).toBeLessThan(30 * 1.02);
		} finally {
			send.sender.stop();
			recv.sink.close();
			worker.close();
		}
	});
	test('rebuilds window statistics every windowStatsEveryMs and the flow every round', async () => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', statsIntervalMs: 250, profiling: { sampling: false, windowStatsEveryMs: 2000 } });
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 20_000);
		try {
			const seen: StreamProfile[] = [];
			foresight.on('profiles', (r) => {
				const p = r.streams.find((x) => x.streamId === send.video.id);
				if (p) seen.push(p);
			});
			await waitFor(() => seen.length >= 28, 15_000, '28 rounds');
			// A rebuild makes a new variance summary; a flow update carries its full profile's.
			const rebuilds = seen.filter((p, i) => i === 0 || p.variance !== seen[i - 1]!.variance).length;
			// Rounds that carried the previous full profile with a new flow.
			const flowUpdates = seen.filter((p, i) => i > 0 && p.variance === seen[i - 1]!.variance && p.flow.bitrateBps !== seen[i - 1]!.flow.bitrateBps).length;
			// 28 rounds of 250 ms = 7 s: the first round, then one rebuild per 2 s after a random phase.
			expect(rebuilds).toBeGreaterThanOrEqual(3);
			expect(rebuilds).toBeLessThanOrEqual(5);
			expect(flowUpdates).toBeGreaterThanOrEqual(15);
			for (const p of seen) expect(streamProfileSchema.safeParse(p).error).toBeUndefined();
		} finally {
			send.sender.stop();
			worker.close();
		}
	});
	test('traces a stream whose framerate holds less and less often, up to traceBackoffMax', async () => {
		foresight = attach(mediasoup, {
			useEnv: false,
			logLevel: 'silent',
			statsIntervalMs: 500,
			profiling: { traceEveryMs: 400, traceWindowMs: 300, traceBackoffMax: 4, tapEveryMs: 600_000 },
		});
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 20_000);
		try {
			// Trace windows, as the worker delivers them: `rtp` events more than 50 ms apart start a new one,
			// unless the current window began less than a period ago — a stall of the sender or of this event
			// loop inside one 300 ms window is a gap too, and windows cannot start closer than traceEveryMs.
			const windowStarts: number[] = [];
			let lastRtpMs = -Infinity;
			send.video.observer.on('trace', (t) => {
				if (t.type !== 'rtp') return;
				const now = Date.now();
				const sinceStart = now - (windowStarts.at(-1) ?? -Infinity);
				if (now - lastRtpMs > 50 && sinceStart >= 400 - 50) windowStarts.push(now);
				lastRtpMs = now;
			});
			await new Promise((r) => setTimeout(r, 12_000));
			// A fixed duty would give 30 windows in 12 s; doubling from the third one to 4 × 400 ms gives about 10.
			expect(windowStarts.length).toBeGreaterThanOrEqual(5);
			expect(windowStarts.length).toBeLessThanOrEqual(14);
			const gaps = windowStarts.slice(1).map((t, i) => t - windowStarts[i]!);
			expect(Math.max(...gaps)).toBeGreaterThan(1200);
			expect(Math.max(...gaps)).toBeLessThan(2400);
			// The framerate survives the sparser windows (the horizon grows with the period).
			const fps = foresight.profileOf(send.video.id)!.video!.fps!;
			expect(fps).toBeGreaterThan(25);
			expect(fps).toBeLessThan(35);
		} finally {
			send.sender.stop();
			worker.close();
		}
	});
});


