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
import { attach, CrossHostPipes, MOVABLE_KEY, pipeEndSchema, pipedProducerSchema, type ClusterEvent, type Foresight, type PipedProducer } from '../../plugin';
import { readRecording, type Recording } from '../../training/record/format';
import { Replayer, type PacketSender, type Publisher, type RemoteCopy, type Subscriber } from '../../training/loadgen/replayer';
import { buildHostReport } from '../../plugin/cluster/report';
import { installProcessGuard } from '../guard';
import {
	healthSchema,
	joinAnswerSchema,
	joinRequestSchema,
	peerRequestSchema,
	pipeConnectSchema,
	pipeOpenSchema,
	pipeProduceSchema,
	pipePullSchema,
	type BotStats,
	type Health,
	type JoinAnswer,
} from './protocol';

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
	/**
	 * cross-host: Foresight's cluster admission (redirects). local: every join is placed here
	 * (per-host-only Foresight, or a node selector in front that already chose this host);
	 * the host still publishes its state. For the cluster bench's baselines.
	 */
	CLUSTER_ADMISSION: z.enum(['cross-host', 'local']).default('cross-host'),
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
	const redirects: Health['redirects'] = [];
	/** Consumers Foresight closed to shed load (priced by the bench). */
	let dropped = 0;
	foresight.on('audit', (entry) => {
		const a = entry.action;
		if (a.type === 'dropConsumer' && entry.outcome?.status === 'ok') dropped++;
		if (a.type !== 'redirect') return;
		redirects.push({ ts: entry.ts, peerId: a.peerId, roomId: a.roomId, target: a.target, reason: a.reason });
		// The dashboard shows the latest; the audit store keeps them all.
		if (redirects.length > 50) redirects.shift();
	});
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

	const selfId = config.FORESIGHT_CLUSTER_HOST_ID;
	const selfUrl = `http://${config.CLUSTER_HOST_IP}:${config.CLUSTER_PORT}`;
	const pipes = new CrossHostPipes(config.CLUSTER_HOST_IP, selfId);
	/**
	 * A room that lives on several hosts is joined by one cross-host pipe link per pair of
	 * hosts: each side sends its own bots' producers over it, and its bots consume what came
	 * from the other side. Keyed by `${roomId}|${otherHostId}`.
	 */
	const links = new Map<string, { roomId: string; hostId: string; url: string; linkId: string; remoteLinkId: string }>();
	/** Producers received over links, per room, with the router they arrived on. */
	const remote = new Map<string, Array<{ producer: types.Producer; router: types.Router; fromHost: string }>>();
	const post = async (url: string, path: string, body: unknown): Promise<unknown> => {
		const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
		const value: unknown = await res.json();
		if (!res.ok) throw new Error(`${url}${path}: HTTP ${res.status} ${JSON.stringify(value)}`);
		return value;
	};
	const roomRouter = (roomId: string): types.Router | undefined => [...bots.values()].find((b) => b.roomId === roomId && !b.router.closed)?.router;
	/** Every local bot of the room consumes `arrived` (piped to its router within this host first). */
	const fanOut = async (roomId: string, arrived: Array<{ producer: types.Producer; router: types.Router }>, except?: string): Promise<void> => {
		for (const bot of bots.values()) {
			if (bot.roomId !== roomId || bot.peerId === except || bot.router.closed) continue;
			for (const a of arrived) await ensureOn(a.producer, a.router, bot.router);
			await bot.subscriber.consume(arrived.map((a) => a.producer));
		}
	};
	const received = async (roomId: string, linkId: string, fromHost: string, piped: PipedProducer[]): Promise<Array<{ producer: types.Producer; router: types.Router }>> => {
		const router = pipes.routerOf(linkId);
		const arrived: Array<{ producer: types.Producer; router: types.Router; fromHost: string }> = [];
		for (const p of piped) arrived.push({ producer: await pipes.receive(linkId, p), router, fromHost });
		const list = remote.get(roomId) ?? [];
		remote.set(roomId, [...list.filter((r) => !r.producer.closed), ...arrived]);
		return arrived;
	};
	/** Links the room to every other live host that holds it (the view's rooms), pulling their producers and pushing ours. */
	const linkRoom = async (roomId: string, router: types.Router): Promise<void> => {
		for (const h of foresight.clusterView()?.hosts ?? []) {
			if ((h.rooms[roomId] ?? 0) === 0 || links.has(`${roomId}|${h.hostId}`) || !h.endpoint) continue;
			const theirs = pipeEndSchema.parse(await post(h.endpoint, '/pipe/open', { roomId, fromHost: selfId }));
			const mine = await pipes.open(router);
			await pipes.connect(mine.linkId, theirs);
			await post(h.endpoint, '/pipe/connect', { roomId, fromHost: selfId, fromUrl: selfUrl, linkId: theirs.linkId, remote: mine });
			links.set(`${roomId}|${h.hostId}`, { roomId, hostId: h.hostId, url: h.endpoint, linkId: mine.linkId, remoteLinkId: theirs.linkId });
			const pulled = z.array(pipedProducerSchema).parse(await post(h.endpoint, '/pipe/pull', { linkId: theirs.linkId, roomId }));
			const arrived = await received(roomId, mine.linkId, h.hostId, pulled);
			await fanOut(roomId, arrived);
			log.info({ room: roomId, host: h.hostId, pulled: pulled.length }, 'room linked to another host over a cross-host pipe');
		}
	};
	/** Sends `producers` (of this host's bots) to every host the room is linked with. */
	const push = async (roomId: string, producers: Array<{ producer: types.Producer; router: types.Router }>): Promise<void> => {
		for (const link of links.values()) {
			if (link.roomId !== roomId) continue;
			const piped: PipedProducer[] = [];
			for (const p of producers) {
				await ensureOn(p.producer, p.router, pipes.routerOf(link.linkId));
				piped.push(await pipes.send(link.linkId, p.producer.id));
			}
			await post(link.url, '/pipe/produce', { linkId: link.remoteLinkId, roomId, fromHost: selfId, producers: piped }).catch((err: unknown) =>
				log.warn({ err: err instanceof Error ? err.message : String(err), host: link.hostId }, 'producers not sent to a linked host'),
			);
		}
	};
	// A host that went silent is gone for placement; its links carry nothing any more.
	foresight.on('cluster', (e) => {
		if (e.type !== 'hostSilent') return;
		for (const [key, link] of links) {
			if (link.hostId !== e.hostId) continue;
			links.delete(key);
			for (const r of remote.get(link.roomId) ?? []) if (r.fromHost === e.hostId) r.producer.close();
		}
	});

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
		const local = config.CLUSTER_ADMISSION === 'local';
		const answer = await foresight.place({ peerId: req.peerId, roomId: req.roomId, sends: ['video', 'audio'], consumes: true, priority: 50 }, { redirected: req.redirected || local });
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
			for (const r of remote.get(req.roomId) ?? []) {
				if (r.producer.closed) continue;
				await ensureOn(r.producer, r.router, router);
				existing.push(r.producer);
			}
			const subscriber = await replayer.subscribe(router, existing, { preferredSpatialLayer: 1, appData: { peerId: req.peerId, priority: 50 }, sink: req.sink });
			const mine = [...publisher.producers.values()];
			for (const other of roommates) {
				for (const p of mine) await ensureOn(p, router, other.router);
				await other.subscriber.consume(mine);
			}
			bots.set(req.peerId, { peerId: req.peerId, roomId: req.roomId, workerId: answer.workerId, router, replayer, publisher, subscriber });
			// The room's other hosts: link to those not linked yet (pulling their media), send ours to all of them.
			await linkRoom(req.roomId, router).catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err), room: req.roomId }, 'room not linked to another host'));
			await push(req.roomId, mine.map((producer) => ({ producer, router })));
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
		return { peerId, workerId: bot.workerId, producerPackets, consumerPackets, consumers: bot.subscriber.consumers.length, producers: bot.publisher.producers.size };
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
			workers: workerHealth(foresight),
			dropped,
			redirects,
			links: [...links.values()].map((l) => ({ roomId: l.roomId, hostId: l.hostId, ...pipes.counts(l.linkId) })),
		});
	};

	const routes: Record<string, (body: unknown) => Promise<unknown> | unknown> = {
		'POST /join': joinBot,
		'POST /leave': (body) => ({ left: leave(peerRequestSchema.parse(body).peerId) }),
		'POST /stats': botStats,
		'POST /flush': async () => ({ flushed: await foresight.store.flush(10_000), store: foresight.store.stats() }),
		'GET /health': health,
		// The other side of linkRoom(): another host opens a link to this host's part of a room.
		'POST /pipe/open': async (body) => {
			const { roomId } = pipeOpenSchema.parse(body);
			const router = roomRouter(roomId);
			if (!router) throw new HttpError(404, `room ${roomId} has no bot here`);
			return pipes.open(router);
		},
		'POST /pipe/connect': async (body) => {
			const req = pipeConnectSchema.parse(body);
			await pipes.connect(req.linkId, req.remote);
			links.set(`${req.roomId}|${req.fromHost}`, { roomId: req.roomId, hostId: req.fromHost, url: req.fromUrl, linkId: req.linkId, remoteLinkId: req.remote.linkId });
			return { connected: true };
		},
		'POST /pipe/pull': async (body) => {
			const req = pipePullSchema.parse(body);
			const out: PipedProducer[] = [];
			const linkRouter = pipes.routerOf(req.linkId);
			for (const bot of bots.values()) {
				if (bot.roomId !== req.roomId) continue;
				for (const p of bot.publisher.producers.values()) {
					if (p.closed) continue;
					// The link lives on one router of the room here; a bot on another worker of this host is piped to it first.
					await ensureOn(p, bot.router, linkRouter);
					out.push(await pipes.send(req.linkId, p.id));
				}
			}
			return out;
		},
		'POST /pipe/produce': async (body) => {
			const req = pipeProduceSchema.parse(body);
			const arrived = await received(req.roomId, req.linkId, req.fromHost, req.producers);
			await fanOut(req.roomId, arrived);
			return { received: arrived.length };
		},
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
			pipes.close();
			await new Promise<void>((r) => server.close(() => r()));
			await foresight.detach();
			for (const w of workers) w.close();
		},
	};
}

/** Each worker's part of the shared view plus what the bench prices: consumers served, paused by Foresight, below the layers asked for. */
function workerHealth(foresight: Foresight): Health['workers'] {
	const snapshot = foresight.allocationSnapshot();
	return buildHostReport(snapshot).workers.map((w) => {
		const consumers = snapshot.consumers.filter((c) => c.workerId === w.workerId);
		return {
			workerId: w.workerId,
			capacityPct: w.capacityPct,
			cpuPct: w.cpuPct,
			headroomPct: w.headroomPct,
			p95: w.p95,
			rooms: w.rooms,
			consumers: consumers.filter((c) => !c.paused).length,
			paused: consumers.filter((c) => c.paused).length,
			downgraded: consumers.filter((c) => !c.paused && (c.current.spatial < c.wanted.spatial || c.current.temporal < c.wanted.temporal)).length,
		};
	});
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
