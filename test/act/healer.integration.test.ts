import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, type Foresight, type HealingEvent, type MigrationHooks, type RejoinPeersRequest } from '../../plugin';
import { captureRealRtp, OPUS_PT, RtpSender, VP8_PT } from '../../training/media/ffmpegRtp';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * Healing on real workers: a worker is killed with SIGKILL while a peer sends real
 * VP8 and Opus through it and a peer on another worker receives them. Foresight asks
 * the app for a replacement, re-places the lost peer through its admission and the
 * app's rejoinPeers hook re-publishes it on the router it was given; media flows again.
 */
describe('healing after a worker is killed', () => {
	const unhandled: unknown[] = [];
	const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
	let foresight: Foresight;
	const workers: types.Worker[] = [];
	const senders: RtpSender[] = [];

	/** A peer that publishes real VP8 + Opus on `router` from a PlainTransport tagged with its id. */
	async function publish(router: types.Router, peerId: string, ssrcBase: number) {
		const media = await captureRealRtp();
		const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true, appData: { peerId, priority: 200 } });
		const video = await transport.produce({ kind: 'video', rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: VP8_PT, clockRate: 90000 }], encodings: [{ ssrc: ssrcBase + 1 }] } });
		const audio = await transport.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: ssrcBase + 2 }] } });
		const sender = new RtpSender({ ip: '127.0.0.1', port: transport.tuple.localPort }, [
			{ stream: media.vp8, ssrc: ssrcBase + 1 },
			{ stream: media.opus, ssrc: ssrcBase + 2 },
		]);
		sender.start();
		senders.push(sender);
		return { transport, video, audio, sender };
	}

	beforeAll(() => process.on('unhandledRejection', onUnhandled));
	afterAll(async () => {
		for (const s of senders) s.stop();
		for (const w of workers) w.close();
		process.off('unhandledRejection', onUnhandled);
	});

	test('replacement worker, re-placement through admission, re-join by the app, media again; every step audited', async () => {
		const requests: RejoinPeersRequest[] = [];
		let alice: Awaited<ReturnType<typeof publish>> | undefined;
		const hooks: MigrationHooks = {
			migrateProducer: () => Promise.reject(new Error('not in this test')),
			moveConsumers: () => Promise.reject(new Error('not in this test')),
			producerMigrated: () => undefined,
			consumerDropped: () => undefined,
			routerFor: (roomId, worker) => worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId } }),
			async replaceWorker({ slot }) {
				const w = await mediasoup.createWorker({ logLevel: 'error', appData: { slot } });
				workers.push(w);
				return w;
			},
			async rejoinPeers(request) {
				requests.push(request);
				return Promise.all(
					request.peers.map(async (p) => {
						alice = await publish(p.router, p.peerId, 70_000);
						await waitFor(async () => (await alice!.video.getStats()).some((s) => s.packetCount > 0), 5000, 'media on the re-published producer');
						return { peerId: p.peerId, rejoined: true };
					}),
				);
			},
		};
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 250, hooks });
		const events: HealingEvent[] = [];
		foresight.on('healing', (e) => events.push(e));
		try {
			for (let i = 0; i < 2; i++) workers.push(await mediasoup.createWorker({ logLevel: 'error' }));
			const [w1, w2] = workers as [types.Worker, types.Worker];
			const r1 = await w1.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'room' } });
			const r2 = await w2.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'room' } });
			alice = await publish(r1, 'alice', 60_000);
			const lost = [alice.video.id, alice.audio.id];
			// Bob, on the other worker, receives Alice's video through a pipe.
			await r1.pipeToRouter({ producerId: alice.video.id, router: r2 });
			const bobTransport = await r2.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false, appData: { peerId: 'bob' } });
			await bobTransport.connect({ ip: '127.0.0.1', port: 9 });
			const bobConsumer = await bobTransport.consume({ producerId: alice.video.id, rtpCapabilities: r2.rtpCapabilities });
			await waitFor(async () => (await bobConsumer.getStats()).some((s) => s.type === 'outbound-rtp' && s.packetCount > 0), 10_000, 'bob receiving');

			const t0 = Date.now();
			process.kill(w1.pid, 'SIGKILL');
			await waitFor(() => events.some((e) => e.type === 'healed'), 20_000, 'healing to end');
			const healedMs = Date.now() - t0;
			process.stderr.write(`healer.integration: healed ${healedMs} ms after SIGKILL\n`);

			expect(events.map((e) => e.type)).toEqual(['workerDied', 'workerReplaced', 'peersPlaced', 'peersRejoined', 'healed']);
			expect(events[0]).toMatchObject({ workerId: String(w1.pid), peerIds: ['alice'] });
			const replacement = workers[2]!;
			expect(events[1]).toMatchObject({ type: 'workerReplaced', newWorkerId: String(replacement.pid) });
			// The replacement took the dead worker's slot (its label on metrics and dashboards).
			const deadSlot = events[0]!.type === 'workerDied' ? events[0]!.slot : undefined;
			expect(deadSlot).toBeDefined();
			expect(foresight.registry.slotOf(String(replacement.pid))).toBe(deadSlot);
			// The lost peer went through admission and was handed to the app with what it lost.
			expect(requests).toHaveLength(1);
			const [req] = requests[0]!.peers;
			expect(req).toMatchObject({ peerId: 'alice', roomId: 'room', mode: 'full', priority: 200, lostTransportIds: [expect.any(String)] });
			expect(req!.lostProducerIds.sort()).toEqual([...lost].sort());
			expect([String(w2.pid), String(replacement.pid)]).toContain(req!.workerId);
			expect(req!.router.closed).toBe(false);
			expect(events.at(-1)).toMatchObject({ type: 'healed', rejoined: 1, degraded: 0, refused: 0, failed: 0 });
			expect(foresight.registry.get('producer', alice.video.id)?.workerId).toBe(req!.workerId);
			const audit = await foresight.store.actionHistory(t0 - 1, Date.now() + 1);
			expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['place', 'heal-workerDied', 'heal-workerReplaced', 'heal-peersRejoined-full', 'heal-healed']));
			// Nothing of the dead worker is left in the registry.
			expect(foresight.registry.get('worker', String(w1.pid))).toBeUndefined();
			expect(foresight.registry.get('router', r1.id)).toBeUndefined();
		} finally {
			await foresight.detach();
		}
		expect(unhandled).toEqual([]);
	}, 60_000);
});
