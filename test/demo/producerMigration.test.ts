import WebSocket from 'ws';
import type { types } from 'mediasoup';
import { startDemo, type DemoServer } from '../../demo/server';
import { waitFor } from '../../training/media/rig';

/**
 * The demo's migrateProducer hook when the page does not complete the move,
 * driven through Foresight's actuator against a signaling peer speaking the
 * room page's protocol (no browser: the happy path with real media is in
 * e2e.test.ts). Each failure is an error outcome with a reason that says what
 * happened, the peer is told, and the producer stays where it was.
 */
jest.setTimeout(30_000);

let demo: DemoServer;
beforeAll(async () => {
	demo = await startDemo({ port: 0, workers: 2, logLevel: 'silent' }, {});
});
afterAll(async () => {
	await demo?.close();
});

type Reply = { id: number; ok: boolean; data?: Record<string, unknown>; error?: string };

/** A peer speaking the signaling protocol, remembering every notification. */
class SignalingPeer {
	readonly notifications: Array<{ notification: string; data: Record<string, unknown> }> = [];
	private nextId = 1;
	private readonly pending = new Map<number, (reply: Reply) => void>();

	private constructor(readonly ws: WebSocket) {
		ws.on('message', (raw) => {
			const msg = JSON.parse(String(raw)) as Reply & { notification?: string };
			if (msg.notification !== undefined) this.notifications.push({ notification: msg.notification, data: msg.data ?? {} });
			else this.pending.get(msg.id)?.(msg);
		});
	}

	static open(url: string): Promise<SignalingPeer> {
		return new Promise((resolve, reject) => {
			const ws = new WebSocket(url);
			ws.once('open', () => resolve(new SignalingPeer(ws)));
			ws.once('error', reject);
		});
	}

	request(method: string, data: Record<string, unknown> = {}): Promise<Reply> {
		const id = this.nextId++;
		return new Promise((resolve) => {
			this.pending.set(id, resolve);
			this.ws.send(JSON.stringify({ id, method, data }));
		});
	}

	async ok(method: string, data: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
		const reply = await this.request(method, data);
		if (!reply.ok) throw new Error(`${method}: ${reply.error}`);
		return reply.data ?? {};
	}

	/** The first notification of this name about `producerId`, once it came. */
	async notified(notification: string, producerId: string): Promise<Record<string, unknown>> {
		const find = () => this.notifications.find((n) => n.notification === notification && n.data.producerId === producerId);
		await waitFor(() => find() !== undefined, 5000, `${notification} notification`);
		return find()!.data;
	}
}

/** Joins and publishes an Opus producer (no media needs to flow for the failure paths). */
async function publishingPeer(): Promise<{ peer: SignalingPeer; producerId: string; otherWorkerId: string }> {
	const peer = await SignalingPeer.open(`${demo.url.replace('http', 'ws')}/ws`);
	const rtpCapabilities = await peer.ok('getRouterRtpCapabilities');
	await peer.ok('join', { displayName: 'mover', rtpCapabilities });
	const transport = await peer.ok('createWebRtcTransport', { direction: 'send' });
	const { id: producerId } = await peer.ok('produce', {
		transportId: transport.id,
		kind: 'audio',
		rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 11_111_111 }] },
		appData: { source: 'mic' },
	});
	const workerId = demo.foresight.registry.get('producer', String(producerId))!.workerId;
	const otherWorkerId = [...demo.foresight.registry.all('worker')].find((w) => w.id !== workerId)!.id;
	return { peer, producerId: String(producerId), otherWorkerId };
}

function peerOf(producerId: string) {
	return [...demo.room.peers.values()].find((p) => p.producers.has(producerId));
}

test('the page reports it cannot re-publish: the action fails at once with its reason and the producer stays', async () => {
	const { peer, producerId, otherWorkerId } = await publishingPeer();
	const transportsBefore = peerOf(producerId)!.transports.size;
	const t0 = Date.now();
	const outcome = demo.migrateProducer(producerId, otherWorkerId);
	const asked = await peer.notified('migrateProducer', producerId);
	const newTransport = asked.transport as { id: string };
	expect(peerOf(producerId)!.transports.has(newTransport.id)).toBe(true);
	// A re-publish that names another producer, or the right one on another transport, is refused.
	const stray = await peer.request('produce', {
		transportId: newTransport.id,
		kind: 'audio',
		rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 22_222_222 }] },
		appData: { source: 'mic', replaces: 'not-a-producer' },
	});
	expect(stray).toMatchObject({ ok: false, error: 'no migration of producer not-a-producer is waiting for you' });
	await peer.ok('producerMigrationFailed', { producerId, error: 'microphone unplugged' });

	const result = await outcome;
	expect(result).toMatchObject({ status: 'error', code: 'hookFailed' });
	expect(result.status === 'error' && result.reason).toContain('microphone unplugged');
	expect(Date.now() - t0).toBeLessThan(5000); // not the hook's 15 s timeout
	const told = await peer.notified('producerMigrationFailed', producerId);
	expect(told).toMatchObject({ transportId: newTransport.id, reason: expect.stringContaining('microphone unplugged') });
	// Undone: the new transport is closed, the producer is still the peer's and open.
	expect(peerOf(producerId)!.transports.size).toBe(transportsBefore);
	expect(demo.room.findProducer(producerId)?.closed).toBe(false);
	expect(demo.room.producers().map((p) => p.producerId)).toContain(producerId);
	peer.ws.close();
});

test('the peer leaves during the move, then its producer is gone: both are error outcomes naming the cause', async () => {
	const { peer, producerId, otherWorkerId } = await publishingPeer();
	const producer: types.Producer = demo.room.findProducer(producerId)!;
	const outcome = demo.migrateProducer(producerId, otherWorkerId);
	await peer.notified('migrateProducer', producerId);
	peer.ws.close();

	const result = await outcome;
	expect(result).toMatchObject({ status: 'error', code: 'hookFailed' });
	// Whichever the worker reports first: the peer's old producer or its new transport closing.
	expect(result.status === 'error' && result.reason).toMatch(/closed during its migration|closed \(the peer left\?\)/);
	expect(producer.closed).toBe(true);

	const again = await demo.migrateProducer(producerId, otherWorkerId);
	expect(again).toMatchObject({ status: 'error', code: 'notFound', reason: expect.stringContaining(producerId) });
});

test('a page that never re-publishes: the hook gives up at its timeout, says so, and undoes the new transport', async () => {
	const { peer, producerId, otherWorkerId } = await publishingPeer();
	const transportsBefore = peerOf(producerId)!.transports.size;
	const toRouter = await demo.room.routerOn(otherWorkerId);
	const t0 = Date.now();
	await expect(demo.room.migrateProducer(producerId, toRouter, 300)).rejects.toThrow(`did not re-publish producer ${producerId} within 300 ms`);
	expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
	expect(await peer.notified('producerMigrationFailed', producerId)).toMatchObject({ reason: expect.stringContaining('within 300 ms') });
	expect(peerOf(producerId)!.transports.size).toBe(transportsBefore);
	expect(demo.room.findProducer(producerId)?.closed).toBe(false);
	peer.ws.close();
});
