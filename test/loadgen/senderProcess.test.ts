import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { readRecording } from '../../training/record/format';
import { Replayer } from '../../training/loadgen/replayer';
import { SenderProcess } from '../../training/loadgen/senderProcess';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * A copy sent by another process: the producers created here receive every layer the
 * copy sends, and a consumer bot's packets reach the sender process's sink.
 */
describe('replaying through a sender process', () => {
	let worker: types.Worker;
	let sender: SenderProcess;

	beforeAll(async () => {
		worker = await mediasoup.createWorker({ logLevel: 'error' });
		sender = await SenderProcess.spawn({ seed: 11 });
	});
	afterAll(async () => {
		await sender.close();
		worker.close();
	});

	test('the worker receives the copy from the child and the bots deliver to it', async () => {
		const recording = readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz'));
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const replayer = new Replayer({ seed: 11, sender });
		const publisher = await replayer.publish(router, recording, { loop: true });
		const video = publisher.producers.get([...publisher.producers.keys()].find((l) => publisher.producers.get(l)!.kind === 'video')!)!;
		const bot = await replayer.subscribe(router, [...publisher.producers.values()], { preferredSpatialLayer: 2 });
		await waitFor(async () => (await video.getStats()).length === 3, 10_000);
		const layers = await video.getStats();
		expect(layers.every((s) => s.byteCount > 0)).toBe(true);
		// Sent is counted by the child; the sink there sees what the worker forwards to the bot.
		await waitFor(async () => (await sender.stats()).sinkPackets > 100, 10_000);
		const stats = await sender.stats();
		expect(stats.packetsSent).toBeGreaterThan(100);
		expect(bot.consumers.length).toBe(2);
		replayer.close();
		// Unpublished copies stop sending.
		await new Promise((r) => setTimeout(r, 300));
		const after = (await sender.stats()).packetsSent;
		await new Promise((r) => setTimeout(r, 300));
		expect((await sender.stats()).packetsSent).toBe(after);
	}, 40_000);

	test('a data replay is refused with a clear error (its DataProducer lives in the parent)', async () => {
		const recording = readRecording(join(__dirname, '../fixtures/recordings/opus-mono-chat.rec.gz'));
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		await expect(new Replayer({ sender }).publish(router, recording, { data: true })).rejects.toThrow(/data replay needs/);
	});
});
