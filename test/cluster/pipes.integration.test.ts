import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { CrossHostPipes } from '../../plugin/cluster/pipes';
import { readRecording } from '../../training/record/format';
import { Replayer } from '../../training/loadgen/replayer';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * Two "hosts" in one process: each has its own worker, router and CrossHostPipes, and
 * nothing is shared but the parameters a test hands over (as the app would, over its
 * signaling). A replayed recording published on host A is received on host B over the
 * pipe link's real UDP, with its own producer id, and a consumer on B gets its packets.
 */
test('a producer crosses to another host over a cross-host pipe link, and consumers there receive it', async () => {
	const workers = await Promise.all([mediasoup.createWorker({ logLevel: 'warn' }), mediasoup.createWorker({ logLevel: 'warn' })]);
	const replayer = new Replayer({ seed: 5 });
	try {
		const [routerA, routerB] = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: MEDIA_CODECS })));
		const a = new CrossHostPipes('127.0.0.1', 'a');
		const b = new CrossHostPipes('127.0.0.1', 'b');
		const publisher = await replayer.publish(routerA!, readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz')), { loop: true });
		// The exchange: B opens, A opens and connects to B's end, B connects to A's (JSON in between, as on a wire).
		const wire = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));
		const endB = await b.open(routerB!);
		const endA = await a.open(routerA!);
		await a.connect(endA.linkId, wire(endB));
		await b.connect(endB.linkId, wire(endA));
		const received: types.Producer[] = [];
		for (const producer of publisher.producers.values()) {
			const piped = await a.send(endA.linkId, producer.id);
			received.push(await b.receive(endB.linkId, wire(piped)));
			// Sending and receiving again is a no-op, not a second producer.
			await a.send(endA.linkId, producer.id);
			expect(await b.receive(endB.linkId, wire(piped))).toBe(received.at(-1));
		}
		expect(received.map((p) => p.id).sort()).toEqual([...publisher.producers.values()].map((p) => p.id).sort());
		expect(a.counts(endA.linkId)).toEqual({ sent: publisher.producers.size, received: 0 });
		expect(b.counts(endB.linkId)).toEqual({ sent: 0, received: publisher.producers.size });
		// Media arrives on B: the received producers count packets, and a subscriber there gets them.
		const subscriber = await replayer.subscribe(routerB!, received);
		await waitFor(async () => {
			let packets = 0;
			for (const p of received) for (const s of await p.getStats()) packets += s.packetCount;
			return packets > 200 && replayer.received(subscriber).packets > 100;
		}, 10_000);
		// What crossed the network is checked: malformed parameters are refused before mediasoup sees them.
		await expect(b.receive(endB.linkId, { producerId: 'x', kind: 'video', rtpParameters: { codecs: [] }, paused: false })).rejects.toThrow();
		await expect(b.connect(endB.linkId, { linkId: 'x', ip: 'not an ip', port: 1 })).rejects.toThrow();
		// Closing A's producer closes nothing on B by itself; the app tells B (drop) and B's copy goes.
		b.drop(endB.linkId, received[0]!.id);
		expect(received[0]!.closed).toBe(true);
		a.close();
		b.close();
	} finally {
		replayer.close();
		for (const w of workers) w.close();
	}
});
