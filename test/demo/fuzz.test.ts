import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { types } from 'mediasoup';
import { startDemo, type DemoServer } from '../../demo/server';
import { MAX_MESSAGE_BYTES } from '../../demo/protocol';
import { RATE_LIMIT } from '../../demo/signaling';
import { Rng } from '../../plugin/util/rng';
import { UdpSink, waitFor } from '../../training/media/rig';

/**
 * ≥ 1,000 hostile signaling messages against the live demo while a real peer
 * (a replay bot's video consumed into a UDP sink) keeps receiving media: every
 * message gets an error reply (or, far above the size limit, a closed socket),
 * the server and its workers stay up and other peers are unaffected.
 */
jest.setTimeout(60_000);

let demo: DemoServer;
beforeAll(async () => {
	demo = await startDemo({ port: 0, workers: 2, logLevel: 'silent' }, {});
});
afterAll(async () => {
	await demo?.close();
});

class Client {
	readonly replies: Array<{ id: number | null; ok: boolean; error?: string; data?: unknown }> = [];
	closedWith: number | undefined;
	private constructor(readonly ws: WebSocket) {
		ws.on('message', (m) => {
			const msg = JSON.parse(String(m)) as { id?: number | null; ok?: boolean; error?: string; data?: unknown; notification?: string };
			if (msg.notification === undefined) this.replies.push({ id: msg.id ?? null, ok: msg.ok === true, error: msg.error, data: msg.data });
		});
		ws.on('close', (code) => (this.closedWith = code));
	}
	static open(url: string): Promise<Client> {
		return new Promise((resolve, reject) => {
			const ws = new WebSocket(url);
			ws.once('open', () => resolve(new Client(ws)));
			ws.once('error', reject);
		});
	}
	async until(n: number, timeoutMs = 10_000): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while (this.replies.length < n && this.closedWith === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
	}
}

/** Ids of generated messages that are valid requests after all. */
const harmless = new Set<number>();

function hostileMessage(rng: Rng, i: number): string | Buffer {
	const methods = ['getRouterRtpCapabilities', 'join', 'createWebRtcTransport', 'connect', 'produce', 'produceData', 'consume', 'consumeData', 'resume', 'setPreferredLayers', 'closeProducer', 'closeConsumer', 'producerMigrationFailed', 'leave', 'nope', '__proto__', 'constructor'];
	const method = methods[rng.int(0, methods.length - 1)]!;
	const junk = (): unknown => [null, 42, -1, 1e308, 'x'.repeat(rng.int(0, 300)), [], {}, { __proto__: { polluted: true } }, true, [[[[[]]]]]][rng.int(0, 9)];
	switch (i % 10) {
		case 0:
			return randomBytes(rng.int(1, 200)).toString('latin1'); // not JSON
		case 1: {
			const data = junk();
			// The two requests that need no state are legitimately served when their data happens to be valid ({} or absent).
			if ((method === 'getRouterRtpCapabilities' || method === 'leave') && (data === undefined || (typeof data === 'object' && data !== null && !Array.isArray(data)))) harmless.add(i);
			return JSON.stringify({ id: i, method, data });
		}
		case 2:
			return JSON.stringify({ id: junk(), method: junk(), data: { transportId: junk(), dtlsParameters: junk() } });
		case 3:
			return JSON.stringify({ id: i, method: 'connect', data: { transportId: 'does-not-exist', dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AA' }] } } });
		case 4:
			return JSON.stringify({ id: i, method: 'produce', data: { transportId: 'x', kind: 'video', rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: rng.int(-5, 300) }], encodings: [{ ssrc: -1 }] } } });
		case 5:
			return JSON.stringify({ id: i, method: 'consume', data: { producerId: 'x'.repeat(rng.int(0, 200)) } });
		case 6:
			return `{"id":${i},"method":"join","data":${'['.repeat(rng.int(1, 5000))}`; // deep/unfinished nesting
		case 7:
			return JSON.stringify({ id: i, method: 'setPreferredLayers', data: { consumerId: 'c', spatialLayer: junk(), temporalLayer: junk() } });
		case 8:
			return JSON.stringify({ id: i, method: 'join', data: { displayName: 'x', rtpCapabilities: 'nope' }, extra: junk() });
		default:
			return JSON.stringify({ id: i, method, data: { pad: 'p'.repeat(MAX_MESSAGE_BYTES + rng.int(1, 1000)) } }); // oversized, under the hard socket limit
	}
}

test('1,000+ malformed, oversized and flooding messages: server up, media keeps flowing, others unaffected', async () => {
	const { room } = demo;
	// The real peer: a replay bot publishing VP8, consumed through a PlainTransport into a UDP sink.
	await demo.bots.add();
	const sink = await UdpSink.open();
	const bot = [...room.botProducers.values()][0]!;
	const transport = await bot.router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
	await transport.connect({ ip: '127.0.0.1', port: sink.port });
	const consumers: types.Consumer[] = [];
	for (const p of room.botProducers.values()) consumers.push(await transport.consume({ producerId: p.producerId, rtpCapabilities: bot.router.rtpCapabilities }));
	expect(consumers.map((c) => c.kind).sort()).toEqual(['audio', 'video']);
	// Video starts at the replay's next keyframe; "throughout" begins once media flows.
	await waitFor(() => sink.packets > 0, 10_000, 'first media packet');
	const received: number[] = [];
	const sampleMedia = async (): Promise<void> => {
		const before = sink.packets;
		await new Promise((r) => setTimeout(r, 500));
		received.push(sink.packets - before);
	};
	await sampleMedia();

	const url = `${demo.url.replace('http', 'ws')}/ws`;
	const rng = new Rng(1234);
	const perClient = RATE_LIMIT.capacity - 10; // stay within the burst: every message must be parsed, not rate-limited
	const clients = 22;
	let sent = 0;
	for (let c = 0; c < clients; c++) {
		const client = await Client.open(url);
		for (let i = 0; i < perClient; i++) {
			client.ws.send(hostileMessage(rng, sent++));
		}
		await client.until(perClient);
		expect(client.replies).toHaveLength(perClient);
		const served = client.replies.filter((r) => r.ok);
		expect(served.every((r) => r.id !== null && harmless.has(r.id))).toBe(true);
		expect(client.replies.filter((r) => !r.ok).every((r) => typeof r.error === 'string' && r.error.length > 0)).toBe(true);
		client.ws.close();
		if (c % 4 === 0) await sampleMedia();
	}
	expect(sent).toBeGreaterThanOrEqual(1000);

	// A flood from one peer is rate-limited, with an error reply per message.
	const flooder = await Client.open(url);
	for (let i = 0; i < 300; i++) flooder.ws.send(JSON.stringify({ id: i, method: 'getRouterRtpCapabilities' }));
	await flooder.until(300);
	const limited = flooder.replies.filter((r) => r.error?.startsWith('rate limited')).length;
	expect(limited).toBeGreaterThanOrEqual(300 - RATE_LIMIT.capacity - 20);
	expect(flooder.replies.filter((r) => r.ok).length).toBeGreaterThanOrEqual(RATE_LIMIT.capacity - 1);

	// Far above the limit the socket itself is closed (1009), which affects only that peer.
	const huge = await Client.open(url);
	huge.ws.send('x'.repeat(8 * MAX_MESSAGE_BYTES));
	await huge.until(1);
	expect(huge.closedWith).toBe(1009);

	// Another peer, connected after all that, is served normally.
	const fresh = await Client.open(url);
	fresh.ws.send(JSON.stringify({ id: 1, method: 'getRouterRtpCapabilities' }));
	await fresh.until(1);
	expect(fresh.replies[0]?.ok).toBe(true);
	fresh.ws.close();
	flooder.ws.close();

	await sampleMedia();
	process.stderr.write(`fuzz: ${sent} hostile messages; media packets per 500 ms window: ${received.join(',')}; stats ${JSON.stringify(demo.signalingStats)}\n`);
	// Media reached the real peer in every sampling window throughout.
	expect(received.length).toBeGreaterThanOrEqual(7);
	expect(received.every((n) => n > 0)).toBe(true);
	expect(demo.workers.every((w) => !w.closed)).toBe(true);
	expect(demo.signalingStats.rejected.invalid + demo.signalingStats.rejected.failed + demo.signalingStats.rejected.capped).toBeGreaterThanOrEqual(sent - harmless.size);
	for (const c of consumers) c.close();
	transport.close();
	sink.close();
});
