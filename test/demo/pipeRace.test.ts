import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import pino from 'pino';
import { demoConfigFromEnv } from '../../demo/config';
import { Room } from '../../demo/room';
import { MEDIA_CODECS } from '../../demo/server';

/**
 * Foresight pipes a producer to another worker when it spreads fan-out, while the demo
 * pipes it there for a peer that consumes it: on real workers, whichever comes second
 * must find the producer there instead of failing the peer's consume.
 */
test('a producer piped by Foresight and by the room at once is available, and the room does not fail', async () => {
	const workers = [await mediasoup.createWorker({ logLevel: 'error' }), await mediasoup.createWorker({ logLevel: 'error' })];
	try {
		const room = new Room('race', new Map(workers.map((w) => [String(w.pid), w])), MEDIA_CODECS, demoConfigFromEnv({}, { rtcIp: '127.0.0.1' }), pino({ level: 'silent' }));
		const [a, b] = await Promise.all(workers.map((w) => room.routerOnWorker(w)));
		const source = await a!.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
		for (let i = 0; i < 5; i++) {
			const producer = await source.produce({
				kind: 'audio',
				rtpParameters: { codecs: [{ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }], encodings: [{ ssrc: 2000 + i }] },
			});
			// Foresight's pipe starts first; the room's check for it runs while it is being made.
			const foresights = a!.pipeToRouter({ producerId: producer.id, router: b! });
			const rooms = room.ensureOn(b!, { id: producer.id, router: a! });
			const [f, r] = await Promise.allSettled([foresights, rooms]);
			expect(r.status).toBe('fulfilled');
			const dump = await b!.dump();
			expect(dump.mapProducerIdConsumerIds.some((e) => e.key === producer.id)).toBe(true);
			// Whichever lost the race, exactly one pipe producer exists: the other one failed or stood down.
			expect(f.status === 'fulfilled' || (f.reason as Error).message.includes('already exists')).toBe(true);
		}
	} finally {
		for (const w of workers) w.close();
	}
});
