import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import pino from 'pino';
import { demoConfigFromEnv } from '../../demo/config';
import { CapError, Peer, PEER_CAPS, Room } from '../../demo/room';
import { MEDIA_CODECS } from '../../demo/server';

/** The demo's per-peer caps on a real worker: a peer cannot pile up consumers or transports. */
describe('demo per-peer caps', () => {
	let worker: types.Worker;
	let room: Room;
	let peer: Peer;
	const producers: types.Producer[] = [];

	beforeAll(async () => {
		worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const config = demoConfigFromEnv({}, { rtcIp: '127.0.0.1' });
		room = new Room('caps', new Map([[String(worker.pid), worker]]), MEDIA_CODECS, config, pino({ level: 'silent' }));
		const router = await room.anyRouter;
		const source = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
		for (let i = 0; i < 2; i++) {
			const producer = await source.produce({
				kind: 'audio',
				rtpParameters: { codecs: [{ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }], encodings: [{ ssrc: 1000 + i }] },
			});
			producers.push(producer);
			room.addBotProducer(producer, router, `bot${i}`, `bot ${i}`);
		}
		peer = new Peer('p1', () => {});
		peer.router = router;
		peer.rtpCapabilities = router.rtpCapabilities;
		peer.joined = true;
		room.peers.set(peer.id, peer);
	});
	afterAll(() => worker.close());

	test(`at most ${PEER_CAPS.consumersPerProducer} consumers of one producer, and ${PEER_CAPS.transports} transports`, async () => {
		await room.createWebRtcTransport(peer, 'recv', false);
		for (let i = 0; i < PEER_CAPS.consumersPerProducer; i++) await room.consume(peer, producers[0]!.id);
		const refused = await room.consume(peer, producers[0]!.id).catch((e: unknown) => e);
		expect(refused).toBeInstanceOf(CapError);
		expect((refused as CapError).cap).toBe('consumersPerProducer');
		expect((refused as Error).message).toBe('too many consumers of this producer for one peer (at most 4)');
		// Another producer is still fine.
		await expect(room.consume(peer, producers[1]!.id)).resolves.toBeDefined();
		expect(peer.consumers.size).toBe(PEER_CAPS.consumersPerProducer + 1);

		for (let i = peer.transports.size; i < PEER_CAPS.transports; i++) await room.createWebRtcTransport(peer, 'send', false);
		const tooMany = await room.createWebRtcTransport(peer, 'send', false).catch((e: unknown) => e);
		expect((tooMany as CapError).cap).toBe('transports');
		expect(peer.transports.size).toBe(PEER_CAPS.transports);
	});
});
