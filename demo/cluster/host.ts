/**
 * One SFU host of a cluster: mediasoup workers with Foresight attached (cluster view on
 * the shared InfluxDB from FORESIGHT_CLUSTER_* and INFLUX_*), serving replay-bot clients
 * over a small HTTP API (protocol.ts). Started once per network namespace by
 * test/support/netns.ts and by `npm run demo -- --hosts N`; each bot's media arrives over
 * real UDP from its client, and what it consumes goes back to the client's sink.
 *
 * Environment: CLUSTER_HOST_IP (listen address for HTTP and RTP), CLUSTER_PORT (3000),
 * CLUSTER_WORKERS (2), CLUSTER_LOG_LEVEL (warn), CLUSTER_RECORDINGS_DIR, plus Foresight's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import pino from 'pino';
import { z } from 'zod';
import { attach, MOVABLE_KEY, type ClusterEvent, type Foresight } from '../../plugin';
import { readRecording, type Recording } from '../../training/record/format';
import { Replayer, type PacketSender, type Publisher, type RemoteCopy, type Subscriber } from '../../training/loadgen/replayer';
import { installProcessGuard } from '../guard';
import { healthSchema, joinAnswerSchema, joinRequestSchema, peerRequestSchema, type BotStats, type Health, type JoinAnswer } from './protocol';

const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } },
];

const port = z.coerce.number().pipe(z.int().min(0).max(65535));
export const hostEnvSchema = z.object({
	CLUSTER_HOST_IP: z.ipv4(),
	CLUSTER_PORT: port.default(3000),
	CLUSTER_WORKERS: z.coerce.number().pipe(z.int().min(1).max(64)).default(2),
	CLUSTER_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
	CLUSTER_RECORDINGS_DIR: z.string().min(1).default(join(__dirname, '../../test/fixtures/recordings')),
	/** The recording every bot replays. */
	CLUSTER_RECORDING: z.string().regex(/^[A-Za-z0-9_-]+$/).default('talking-head'),
	FORESIGHT_CLUSTER_HOST_ID: z.string().min(1),
	INFLUX_URL: z.string().min(1),
});

/** The copies a bot's publish produced, for its client to send (the client owns the sockets). */
class ClientSender implements PacketSender {
	readonly copies: RemoteCopy[] = [];
	constructor(private readonly sinkPortOf: number) {}
	async publish(_recording: Recording, copy: RemoteCopy): Promise<number> {
		this.copies.push(copy);
		return this.copies.length;
	}
	start(): void {}
	unpublish(): void {}
	async sinkPort(): Promise<number> {
		return this.sinkPortOf;
	}
}

interface Bot {
	peerId: string;
	roomId: string;
	workerId: string;
	router: types.Router;
	replayer: Replayer;
	publisher: Publisher;
	subscriber: Subscriber;
}

export interface ClusterHost {
	url: string;
	foresight: Foresight;
	close(): Promise<void>;
}

export async function startClusterHost(env: NodeJS.ProcessEnv = process.env): Promise<ClusterHost> {
	const config = hostEnvSchema.parse(env);
	const log = pino({ name: `host:${config.FORESIGHT_CLUSTER_HOST_ID}`, level: config.CLUSTER_LOG_LEVEL }, pino.destination(2));
	const foresight = attach(mediasoup, { logger: log, mediaCodecs: MEDIA_CODECS });
	const events: Array<{ ts: number; type: ClusterEvent['type']; hostId?: string }> = [];
	foresight.on('cluster', (e) => events.push({ ts: Date.now(), type: e.type, ...('hostId' in e ? { hostId: e.hostId } : {}) }));
	const workers: types.Worker[] = [];
	for (let i = 0; i < config.CLUSTER_WORKERS; i++) workers.push(await mediasoup.createWorker({ logLevel: 'warn', appData: { slot: `w${i}` } }));
	const recording = readRecording(join(config.CLUSTER_RECORDINGS_DIR, `${config.CLUSTER_RECORDING}.rec.gz`));
	const bots = new Map<string, Bot>();
	let seed = 1;
	/** One pipe per (producer, router): mediasoup refuses to pipe a producer twice to the same router. */
	const piped = new Map<string, Promise<unknown>>();
	const ensureOn = (producer: types.Producer, from: types.Router, to: types.Router): Promise<unknown> => {
		if (from === to) return Promise.resolve();
		const key = `${producer.id}>${to.id}`;
		let p = piped.get(key);
		if (!p) {
			p = from.pipeToRouter({ producerId: producer.id, router: to });
			p.catch(() => piped.delete(key));
			piped.set(key, p);
		}
		return p;
	};

	const leave = (peerId: string): boolean => {
		const bot = bots.get(peerId);
		if (!bot) return false;
		bots.delete(peerId);
		bot.replayer.close();
		return true;
	};

	const joinBot = async (body: unknown): Promise<JoinAnswer> => {
		const req = joinRequestSchema.parse(body);
		leave(req.peerId);
		const answer = await foresight.place({ peerId: req.peerId, roomId: req.roomId, sends: ['video', 'audio'], consumes: true, priority: 50 }, { redirected: req.redirected });
		if (answer.decision === 'refuse') return { decision: 'refuse', reason: answer.reason };
		if (answer.decision === 'redirect') return { decision: 'redirect', target: answer.target, reason: answer.reason, stale: answer.stale === true, ...(answer.endpoint ? { endpoint: answer.endpoint } : {}) };
		const router = answer.router;
		const sender = new ClientSender(req.sink.port);
		const replayer = new Replayer({ listenIp: config.CLUSTER_HOST_IP, sender, seed: seed++ });
		try {
			// A client's replayed recording cannot re-publish elsewhere: its producers stay put.
			const publisher = await replayer.publish(router, recording, { loop: true, appData: { peerId: req.peerId, bot: true, [MOVABLE_KEY]: false } });
			const roommates = [...bots.values()].filter((b) => b.roomId === req.roomId && !b.router.closed);
			const existing: types.Producer[] = [];
			for (const other of roommates) {
				for (const p of other.publisher.producers.values()) {
					await ensureOn(p, other.router, router);
					existing.push(p);
				}
			}
			const subscriber = await replayer.subscribe(router, existing, { preferredSpatialLayer: 1, appData: { peerId: req.peerId, priority: 50 }, sink: req.sink });
			const mine = [...publisher.producers.values()];
			for (const other of roommates) {
				for (const p of mine) await ensureOn(p, router, other.router);
				await other.subscriber.consume(mine);
			}
			bots.set(req.peerId, { peerId: req.peerId, roomId: req.roomId, workerId: answer.workerId, router, replayer, publisher, subscriber });
			return { decision: 'place', hostId: config.FORESIGHT_CLUSTER_HOST_ID, workerId: answer.workerId, stale: answer.stale === true, copies: sender.copies.map((c) => ({ ...c, rewrites: c.rewrites.map((r) => r ?? null) })), subscriberPort: subscriber.localPort };
		} catch (err) {
			replayer.close();
			throw err;
		}
	};

	const botStats = async (body: unknown): Promise<BotStats> => {
		const { peerId } = peerRequestSchema.parse(body);
		const bot = bots.get(peerId);
		if (!bot) throw new HttpError(404, `no bot ${peerId} here`);
		let producerPackets = 0;
		for (const p of bot.publisher.producers.values()) for (const s of await p.getStats()) producerPackets += s.packetCount;
		let consumerPackets = 0;
		for (const c of bot.subscriber.consumers) for (const s of await c.getStats()) if (s.type === 'outbound-rtp') consumerPackets += s.packetCount;
		return { peerId, workerId: bot.workerId, producerPackets, consumerPackets, consumers: bot.subscriber.consumers.length };
	};

	const health = (): Health => {
		const cluster = foresight.clusterStats();
		const store = foresight.store.stats();
		return healthSchema.parse({
			hostId: config.FORESIGHT_CLUSTER_HOST_ID,
			pid: process.pid,
			workerPids: workers.filter((w) => !w.closed).map((w) => w.pid),
			bots: [...bots.values()].map((b) => ({ peerId: b.peerId, roomId: b.roomId, workerId: b.workerId })),
			cluster: {
				stale: cluster?.stale ?? false,
				published: cluster?.published ?? 0,
				publishFailures: cluster?.publishFailures ?? 0,
				readFailures: cluster?.readFailures ?? 0,
				hosts: cluster?.hosts ?? [],
			},
			store,
			events,
		});
	};

	const routes: Record<string, (body: unknown) => Promise<unknown> | unknown> = {
		'POST /join': joinBot,
		'POST /leave': (body) => ({ left: leave(peerRequestSchema.parse(body).peerId) }),
		'POST /stats': botStats,
		'POST /flush': async () => ({ flushed: await foresight.store.flush(10_000), store: foresight.store.stats() }),
		'GET /health': health,
	};
	const server = createServer((req: IncomingMessage, res: ServerResponse) => {
		const chunks: Buffer[] = [];
		let size = 0;
		req.on('data', (c: Buffer) => {
			size += c.length;
			if (size <= 64 * 1024) chunks.push(c);
		});
		req.on('end', () => {
			const route = routes[`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`];
			const reply = (status: number, value: unknown): void => {
				res.writeHead(status, { 'content-type': 'application/json' });
				res.end(JSON.stringify(value));
			};
			if (!route) return reply(404, { error: 'no such route' });
			if (size > 64 * 1024) return reply(413, { error: 'body too large' });
			let body: unknown = undefined;
			try {
				body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
			} catch {
				return reply(400, { error: 'body is not JSON' });
			}
			Promise.resolve()
				.then(() => route(body))
				.then(
					(value) => reply(200, value),
					(err: unknown) => {
						const status = err instanceof HttpError ? err.status : err instanceof z.ZodError ? 400 : 500;
						if (status === 500) log.error({ err }, 'request failed');
						reply(status, { error: err instanceof Error ? err.message : String(err) });
					},
				);
		});
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(config.CLUSTER_PORT, config.CLUSTER_HOST_IP, () => resolve());
	});
	const url = `http://${config.CLUSTER_HOST_IP}:${config.CLUSTER_PORT}`;
	return {
		url,
		foresight,
		async close() {
			for (const id of [...bots.keys()]) leave(id);
			await new Promise<void>((r) => server.close(() => r()));
			await foresight.detach();
			for (const w of workers) w.close();
		},
	};
}

class HttpError extends Error {
	constructor(
		readonly status: number,
		message: string,
	) {
		super(message);
	}
}

/** Typed answer check for clients: the host's reply is their external input. */
export function parseJoinAnswer(value: unknown): JoinAnswer {
	return joinAnswerSchema.parse(value);
}

if (require.main === module) {
	installProcessGuard(pino({ name: 'cluster-host' }, pino.destination(2)));
	startClusterHost()
		.then((host) => {
			process.stdout.write(`${JSON.stringify({ ready: host.url, pid: process.pid })}\n`);
			const shutdown = (): void => void host.close().then(() => process.exit(0));
			process.once('SIGINT', shutdown);
			process.once('SIGTERM', shutdown);
		})
		.catch((error: unknown) => {
			process.stderr.write(`cluster host failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
			process.exit(1);
		});
}
