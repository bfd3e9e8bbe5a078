import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { readRecording } from '../../training/record/format';
import { ReplayPeer } from '../../training/loadgen/peer';
import { Replayer } from '../../training/loadgen/replayer';

/**
 * A load-generator peer follows moves across real workers as a page does: its consumer
 * is re-created on the other worker's router and keeps delivering; its published track
 * is replayed again on the other worker (make-before-break) and the old copy stops once
 * its producer is closed.
 */
jest.setTimeout(30_000);

const RECORDING = readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz'));
const CODECS: types.RouterRtpCodecCapability[] = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

let workers: types.Worker[];
let replayer: Replayer;

beforeAll(async () => {
	workers = await Promise.all([0, 1].map(() => mediasoup.createWorker({ logLevel: 'warn' })));
	replayer = new Replayer({ seed: 3 });
});

afterAll(() => {
	replayer?.close();
	for (const w of workers ?? []) w.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function packetsOut(consumer: types.Consumer): Promise<number> {
	return (await consumer.getStats()).filter((s) => s.type === 'outbound-rtp').reduce((n, s) => n + s.packetCount, 0);
}

test('a consumer moves to another worker and a track is re-published there, media flowing throughout', async () => {
	const [a, b] = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: CODECS })));
	const publisher = new ReplayPeer(a!, { replayer, peerId: 'pub', appData: { tag: 1 } });
	const receiver = new ReplayPeer(a!, { replayer, peerId: 'sub' });
	const publication = await publisher.publish('0', RECORDING, { loop: true });
	const mic = publication.producers.find((p) => p.label === 'mic')!.producer;
	expect(mic.appData).toMatchObject({ peerId: 'pub', tag: 1 });
	const [consumer] = await receiver.subscribe('pub/0', [mic], { paused: false });
	const oldReceiver = (await receiver.subscribers())[0]!;
	expect(oldReceiver.transport.appData).toMatchObject({ peerId: 'sub' });
	await sleep(800);
	const before = await receiver.received();
	expect(before).toBeGreaterThan(0);

	// spreadFanout: the producer is piped to b (as Foresight's actuator does), then the receiver moves there.
	await a!.pipeToRouter({ producerId: mic.id, router: b! });
	const moved = await receiver.moveConsumer(consumer!.id, b!, mic.id);
	expect(moved).toBeDefined();
	expect(moved!.id).not.toBe(consumer!.id);
	expect(consumer!.closed).toBe(true);
	// Its receive transport on a had nothing left: it closed, so a no longer pays for it.
	expect(oldReceiver.transport.closed).toBe(true);
	expect(receiver.router).toBe(b);
	expect(receiver.hasConsumer(moved!.id)).toBe(true);
	const afterMove = await receiver.received();
	await sleep(800);
	expect(await receiver.received()).toBeGreaterThan(afterMove);
	expect(await packetsOut(moved!)).toBeGreaterThan(0);

	// migrateProducer: the mic is replayed again on b; the old copy keeps sending until its producer closes.
	const oldCopy = publication.copies[0]!;
	const created = await publisher.republish(mic.id, b!);
	expect(created).toBeDefined();
	expect((await created!.getStats()).some((s) => s.packetCount > 0)).toBe(true);
	expect(created!.appData).toMatchObject({ peerId: 'pub', replaces: mic.id });
	expect(mic.closed).toBe(false);
	const again = await receiver.moveConsumer(moved!.id, b!, created!.id);
	expect(again!.producerId).toBe(created!.id);
	mic.close();
	// The camera is still the old copy's: it keeps sending; the mic's newest copy is listed.
	expect(oldCopy.closed).toBe(false);
	expect(publication.producers.map((p) => [p.label, p.producer.id]).sort()).toEqual(
		[
			['camera', publication.copies[0]!.producers.get('camera')!.id],
			['mic', created!.id],
		].sort(),
	);
	const received = await receiver.received();
	await sleep(800);
	expect(await receiver.received()).toBeGreaterThan(received);
	// Once its last producer closes, the old copy stops and its transport closes.
	publication.copies[0]!.producers.get('camera')!.close();
	expect(oldCopy.closed).toBe(true);

	publisher.close();
	receiver.close();
	a!.close();
	b!.close();
});

test('moving a consumer the peer does not own, or re-publishing onto its own router, is refused', async () => {
	const router = await workers[0]!.createRouter({ mediaCodecs: CODECS });
	const peer = new ReplayPeer(router, { replayer, peerId: 'p' });
	const publication = await peer.publish('0', RECORDING, { loop: true, labels: ['mic'] });
	expect(await peer.moveConsumer('no-such-consumer', router, 'x')).toBeUndefined();
	expect(await peer.republish('no-such-producer', router)).toBeUndefined();
	await expect(peer.republish(publication.producers[0]!.producer.id, router)).rejects.toThrow(/already lives on router/);
	peer.close();
	router.close();
});
