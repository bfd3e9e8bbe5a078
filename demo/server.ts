/**
 * `npm run demo`: a mediasoup SFU with Foresight attached, a browser room at /
 * and a live operator dashboard at /dashboard. Also importable: startDemo()
 * is what the end-to-end and fuzz tests run.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import pino, { type Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { attach, type ActionOutcome, type AllocationAction, type Foresight, type MigrationHooks } from '../plugin';
import type { PendingJoin } from '../plugin/allocate';
import { BotManager, DEFAULT_RECORDINGS_DIR, type Placement } from './bots';
import { BUILD_DIR, buildClient } from './build';
import { demoConfigFromEnv, type DemoConfig } from './config';
import { DashboardFeed } from './feed';
import { installProcessGuard, processFaults } from './guard';
import { DemoMetrics } from './metrics';
import { MAX_MESSAGE_BYTES } from './protocol';
import { Room, SignalingError } from './room';
import { newSignalingStats, SignalingSession, type SignalingStats } from './signaling';

export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } },
];

const PUBLIC_DIR = join(__dirname, 'public');

export interface DemoServer {
	url: string;
	config: DemoConfig;
	foresight: Foresight;
	workers: types.Worker[];
	room: Room;
	feed: DashboardFeed;
	bots: BotManager;
	signalingStats: SignalingStats;
	buildMs: number;
	/**
	 * Moves a browser peer's producer to another worker now through Foresight's
	 * actuator and the demo's migration hooks (`foresight.apply`): an operator's (or a
	 * test's) migrateProducer action, audited like Foresight's own.
	 */
	migrateProducer(producerId: string, toWorkerId: string): Promise<ActionOutcome>;
	close(): Promise<void>;
}

const scenarioRequest = z.object({ name: z.string().min(1).max(64) });

/** What a test harness may change in a demo it starts (the fault suite makes hooks hang or throw). */
export interface DemoSeams {
	/** Wraps the demo's hooks before Foresight gets them. */
	wrapHooks?: (hooks: MigrationHooks) => MigrationHooks;
}

export async function startDemo(overrides: Partial<DemoConfig> = {}, env: NodeJS.ProcessEnv = process.env, seams: DemoSeams = {}): Promise<DemoServer> {
	const config = demoConfigFromEnv(env, overrides);
	const log: Logger = pino({ name: 'demo', level: config.logLevel });
	const built = buildClient();

	// The room and bots are created once the workers exist; Foresight's hooks only run after that.
	let roomReady: Room | undefined;
	let botsReady: BotManager | undefined;
	const theRoom = (): Room => {
		if (!roomReady) throw new Error('the demo room is not ready yet');
		return roomReady;
	};
	const theBots = (): BotManager => {
		if (!botsReady) throw new Error('the demo bots are not ready yet');
		return botsReady;
	};
	let createWorkerNow: ((slot: string | undefined) => Promise<types.Worker>) | undefined;
	let closed = false;
	// Attach before creating workers: Foresight discovers them through mediasoup.observer.
	const demoHooks: MigrationHooks = {
		...migrationHooks(theRoom, theBots, log),
		...healingHooks(theRoom, theBots, (slot) => createWorkerNow!(slot), log),
	};
	const hooks = seams.wrapHooks ? seams.wrapHooks(demoHooks) : demoHooks;
	const foresight = attach(mediasoup, {
		logger: log,
		logLevel: config.logLevel,
		dryRun: config.dryRun,
		...(config.workerCapacityPct !== undefined ? { allocation: { workerCapacityPct: config.workerCapacityPct } } : {}),
		mediaCodecs: MEDIA_CODECS,
		hooks,
	});
	// A migration that failed once the client had re-published is the room's to tidy up (see Room.producerMigrationEnded).
	const onSettled = (action: AllocationAction, outcome: ActionOutcome | undefined): void => {
		if (action.type === 'migrateProducer' && outcome?.status === 'error') theRoom().producerMigrationEnded(action.producerId, outcome.reason);
	};
	foresight.on('audit', (entry) => onSettled(entry.action, entry.outcome));
	// A worker that stopped answering gets a grace period, then it is killed: healing moves its peers where media flows.
	const hungKills = new Map<string, NodeJS.Timeout>();
	foresight.on('healing', (event) => {
		if (event.type === 'workerResponsive') {
			clearTimeout(hungKills.get(event.workerId));
			hungKills.delete(event.workerId);
		}
		if (event.type !== 'workerUnresponsive' || config.hungWorkerKillS === 0) return;
		const timer = setTimeout(() => {
			hungKills.delete(event.workerId);
			const worker = workersById.get(event.workerId);
			if (!worker || worker.closed) return;
			log.error({ pid: worker.pid, afterS: config.hungWorkerKillS }, 'worker hung: killing it so its peers move');
			process.kill(worker.pid, 'SIGKILL');
		}, config.hungWorkerKillS * 1000);
		timer.unref();
		hungKills.set(event.workerId, timer);
	});
	// The live workers, also keyed by Foresight's worker ids, which its decisions name: a dead one
	// leaves both, its replacement (Foresight's replaceWorker hook) joins them.
	const workers: types.Worker[] = [];
	const workersById = new Map<string, types.Worker>();
	const addWorker = (w: types.Worker): void => {
		workers.push(w);
		workersById.set(String(w.pid), w);
		w.on('died', (err) => {
			log.error({ pid: w.pid, err: err.message }, 'mediasoup worker died');
			// mediasoup 3.32 removes its process SIGINT/SIGTERM listeners on close() but not on death:
			// each dead worker would leave two behind (and itself with them).
			const onSignal = (w as unknown as { onSignal?: () => void }).onSignal;
			if (onSignal) for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeListener(signal, onSignal);
			workersById.delete(String(w.pid));
			const i = workers.indexOf(w);
			if (i >= 0) workers.splice(i, 1);
		});
	};
	createWorkerNow = async (slot) => {
		if (closed) throw new Error('the demo is closing');
		const w = await mediasoup.createWorker({ logLevel: 'warn', ...(slot !== undefined ? { appData: { slot } } : {}) });
		addWorker(w);
		return w;
	};
	await Promise.all(Array.from({ length: config.workers }, () => createWorkerNow!(undefined)));
	const room = new Room('demo', workersById, MEDIA_CODECS, config, log);
	roomReady = room;
	await room.anyRouter;

	const labelOf = (transportId: string): string => {
		const node = foresight.registry.get('transport', transportId);
		const appData = node?.handle.appData ?? {};
		const peerId = typeof appData.peerId === 'string' ? appData.peerId : undefined;
		const peer = peerId ? room.peers.get(peerId) : undefined;
		if (peer) return `${peer.displayName} (${String(appData.direction ?? '')})`;
		if (peerId) return peerId;
		if (typeof appData.replay === 'string') return `replay ${String(appData.peer ?? '')} ${appData.replay}`.trim();
		if (node?.transportType === 'pipe') return 'pipe (producers shared across workers)';
		return node?.transportType === 'plain' ? 'bot subscriber' : transportId.slice(0, 8);
	};
	// Profiles, load and decisions go to Foresight's store: InfluxDB when INFLUX_URL is set, else in memory.
	const feed = new DashboardFeed(foresight, labelOf);
	const place: Placement = async (join: PendingJoin) => {
		const answer = await foresight.place(join);
		if (answer.decision === 'place') return answer;
		throw new SignalingError(answer.decision === 'redirect' ? `not admitted here, try ${answer.target}: ${answer.reason}` : `not admitted: ${answer.reason}`);
	};
	const bots = new BotManager(room, place, config.recordingsDir ?? DEFAULT_RECORDINGS_DIR, log);
	botsReady = bots;
	feed.botStatus = () => bots.status();
	const signalingStats: SignalingStats = newSignalingStats();
	const metrics = new DemoMetrics(foresight, signalingStats, () => bots.status());

	const app = express();
	app.disable('x-powered-by');
	app.use(express.json({ limit: '4kb' }));
	const page = (file: string) => (_req: express.Request, res: express.Response) => res.type('html').send(readFileSync(join(PUBLIC_DIR, file)));
	app.get('/', page('room.html'));
	app.get('/dashboard', page('dashboard.html'));
	app.use('/static', express.static(PUBLIC_DIR));
	app.use('/build', express.static(BUILD_DIR));
	app.get('/metrics', async (_req, res) => {
		res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
	});
	app.get('/api/status', (_req, res) => {
		res.json({ workers: workers.map((w) => ({ pid: w.pid, closed: w.closed })), peers: room.peers.size, ...bots.status(), scenarios: BotManager.scenarioNames(), dryRun: foresight.dryRun, processFaults: processFaults() ?? null });
	});
	app.post('/api/bots', async (_req, res) => {
		try {
			res.json({ id: await bots.add() });
		} catch (err) {
			res.status(409).json({ error: err instanceof Error ? err.message : String(err) });
		}
	});
	app.delete('/api/bots', (_req, res) => {
		res.json({ id: bots.remove() ?? null });
	});
	app.post('/api/scenario', async (req, res) => {
		const parsed = scenarioRequest.safeParse(req.body);
		if (!parsed.success) return void res.status(400).json({ error: 'expected {"name": "<scenario>"}' });
		try {
			await bots.startScenario(parsed.data.name);
			res.json({ started: parsed.data.name });
		} catch (err) {
			res.status(409).json({ error: err instanceof Error ? err.message : String(err) });
		}
	});
	app.delete('/api/scenario', (_req, res) => {
		bots.stopScenario();
		res.json({ stopping: true });
	});
	app.post('/api/allocation', (req, res) => {
		const parsed = z.object({ dryRun: z.boolean() }).safeParse(req.body);
		if (!parsed.success) return void res.status(400).json({ error: 'expected {"dryRun": boolean}' });
		foresight.dryRun = parsed.data.dryRun;
		res.json({ dryRun: foresight.dryRun });
	});

	const server: Server = createServer(app);
	// maxPayload above our own limit so oversized messages get a polite error reply first.
	const signalingWss = new WebSocketServer({ noServer: true, maxPayload: 4 * MAX_MESSAGE_BYTES });
	const dashboardWss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
	for (const wss of [signalingWss, dashboardWss]) wss.on('error', (err) => log.error({ err: err.message }, 'WebSocket server error'));
	server.on('upgrade', (req, socket, head) => {
		const path = new URL(req.url ?? '/', 'http://localhost').pathname;
		const target = path === '/ws' ? signalingWss : path === '/dashboard' ? dashboardWss : undefined;
		if (!target) return void socket.destroy();
		target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
	});
	signalingWss.on('connection', (ws: WebSocket) => {
		const session = new SignalingSession(
			ws,
			room,
			async (peer) => (await place({ peerId: peer.id, roomId: room.id, sends: ['video', 'audio'], consumes: true, priority: 100 })).router,
			signalingStats,
			log,
		);
		session.onProducer = (p) => void bots.onProducer(p, session.peer.router).catch((err: unknown) => log.warn({ err: String(err) }, 'bots could not consume a new producer'));
	});
	dashboardWss.on('connection', (ws: WebSocket) => {
		// A dashboard that goes away mid-send is its own problem, not the server's.
		ws.on('error', (err) => log.debug({ err: err.message }, 'dashboard socket error'));
		ws.send(JSON.stringify({ ...feed.snapshot(), scenarios: BotManager.scenarioNames(), dryRun: foresight.dryRun }));
		ws.on('message', () => {}); // read-only channel; controls are HTTP
	});
	feed.on('frame', (frame) => {
		const json = JSON.stringify({ ...frame, dryRun: foresight.dryRun });
		for (const ws of dashboardWss.clients) if (ws.readyState === ws.OPEN) ws.send(json);
	});

	const { ms: buildMs } = await built;
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(config.port, config.host, () => resolve());
	});
	server.on('error', (err) => log.error({ err: err.message }, 'HTTP server error'));
	feed.start();
	const address = server.address() as AddressInfo;
	const url = `http://${config.host}:${address.port}`;
	log.info({ url, dashboard: `${url}/dashboard`, workers: workers.map((w) => w.pid), buildMs: Math.round(buildMs) }, 'demo ready');

	return {
		url,
		config,
		foresight,
		workers,
		room,
		feed,
		bots,
		signalingStats,
		buildMs,
		async migrateProducer(producerId, toWorkerId) {
			const workerId = foresight.registry.get('producer', producerId)?.workerId ?? '';
			const entry = await foresight.apply({ type: 'migrateProducer', producerId, toWorkerId, workerId, reason: 'operator', predictedBeforePct: 0, predictedAfterPct: 0 });
			return entry.outcome ?? { status: 'skipped', reason: 'not carried out' };
		},
		async close() {
			if (closed) return;
			closed = true;
			feed.stop();
			bots.close();
			for (const ws of signalingWss.clients) ws.terminate();
			for (const ws of dashboardWss.clients) ws.terminate();
			signalingWss.close();
			dashboardWss.close();
			await new Promise<void>((r) => server.close(() => r()));
			for (const t of hungKills.values()) clearTimeout(t);
			await foresight.detach();
			for (const w of [...workers]) w.close();
		},
	};
}

/**
 * The demo's side of Foresight's migrations. Browser consumers move (the client
 * swaps the track, see Room.moveConsumer), and so do the bots' and scenario peers'
 * (their receive transport is re-created on the target worker, see ReplayPeer);
 * browser producers move (the client re-publishes on the target worker, see
 * Room.migrateProducer), and so do bots' and scenario peers' (the replay is started
 * again there, make-before-break, see ReplayPeer.republish).
 */
function migrationHooks(room: () => Room, bots: () => BotManager, log: Logger): MigrationHooks {
	return {
		async moveConsumers({ consumerIds, producerId, toRouter }) {
			const moves = await Promise.all(
				consumerIds.map(async (oldConsumerId) => {
					try {
						const botConsumerId = await bots().moveConsumer(oldConsumerId, toRouter, producerId);
						if (botConsumerId) return [{ oldConsumerId, newConsumerId: botConsumerId }];
						const moved = await room().moveConsumer(oldConsumerId, toRouter, producerId);
						if (!moved || moved.consumer.id === oldConsumerId) return [];
						// Make-before-break: Foresight closes the old consumer once this resolves.
						await moved.swapped;
						return [{ oldConsumerId, newConsumerId: moved.consumer.id }];
					} catch (err) {
						log.warn({ err: err instanceof Error ? err.message : String(err), consumerId: oldConsumerId }, 'consumer not moved');
						return [];
					}
				}),
			);
			return moves.flat();
		},
		migrateProducer: async ({ producerId, toRouter }) =>
			bots().ownsProducer(producerId)
				? { newProducerId: await bots().migrateProducer(producerId, toRouter) }
				: { newProducerId: (await room().migrateProducer(producerId, toRouter)).id },
		producerMigrated: ({ oldProducerId, newProducerId }) => {
			// A replay's old copy stops by itself once Foresight has closed its producer.
			if (bots().ownsProducer(newProducerId)) return;
			room().producerMigrated(oldProducerId, newProducerId);
		},
		consumerDropped: (consumerId, reason) => room().consumerDropped(consumerId, reason),
		routerFor: (roomId, worker) => (roomId === room().id ? room().routerOnWorker(worker) : bots().routerFor(roomId, worker, MEDIA_CODECS)),
	};
}

/**
 * The demo's side of healing after a worker dies: a new worker takes the dead one's
 * slot; pages re-create what they lost on the router Foresight chose (Room.rejoins),
 * `+ bot` bots publish and subscribe again there, a scenario starts over there.
 */
function healingHooks(room: () => Room, bots: () => BotManager, createWorker: (slot: string) => Promise<types.Worker>, log: Logger): Pick<MigrationHooks, 'replaceWorker' | 'rejoinPeers'> {
	return {
		replaceWorker: async ({ workerId, slot }) => {
			const worker = await createWorker(slot);
			log.warn({ dead: workerId, pid: worker.pid, slot }, 'replacement worker started');
			return worker;
		},
		async rejoinPeers({ peers, refused }) {
			for (const r of refused) {
				if (bots().refused(r.peerId)) continue;
				const peer = room().peers.get(r.peerId);
				if (peer) room().rejoins.refuse(peer, r.reason);
			}
			return Promise.all(
				peers.map(async (request) => {
					try {
						if (await bots().rejoin(request)) return { peerId: request.peerId, rejoined: true };
						const peer = room().peers.get(request.peerId);
						if (!peer) return { peerId: request.peerId, rejoined: false, reason: 'no such peer in the demo (it left)' };
						await room().rejoins.rejoin(peer, request);
						return { peerId: request.peerId, rejoined: true };
					} catch (err) {
						const reason = err instanceof Error ? err.message : String(err);
						log.warn({ peerId: request.peerId, reason }, 'peer not re-joined');
						return { peerId: request.peerId, rejoined: false, reason };
					}
				}),
			);
		},
	};
}

/** `--hosts N` on the command line: the multi-host demo (demo/cluster/launch.ts) instead of one process. */
function hostsArgument(argv: readonly string[]): number | undefined {
	const i = argv.indexOf('--hosts');
	if (i < 0) return undefined;
	const n = Number(argv[i + 1]);
	if (!Number.isInteger(n) || n < 2 || n > 8) throw new Error('--hosts takes a number of hosts from 2 to 8');
	return n;
}

if (require.main === module && hostsArgument(process.argv) !== undefined) {
	installProcessGuard(pino({ name: 'demo' }));
	void import('./cluster/launch').then(({ launchCluster }) =>
		launchCluster({ hosts: hostsArgument(process.argv)!, ...(process.env.DEMO_PORT ? { port: Number(process.env.DEMO_PORT) } : {}) }).then(
			(cluster) => {
				process.stdout.write(`cluster demo ready: ${cluster.url} (${hostsArgument(process.argv)} hosts in network namespaces, one InfluxDB)\n`);
				const shutdown = (): void => void cluster.close().then(() => process.exit(0));
				process.once('SIGINT', shutdown);
				process.once('SIGTERM', shutdown);
			},
			(error: unknown) => {
				process.stderr.write(`cluster demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
				process.exit(1);
			},
		),
	);
} else if (require.main === module) {
	installProcessGuard(pino({ name: 'demo' }));
	startDemo()
		.then((demo) => {
			process.stdout.write(`demo ready: room ${demo.url}/  dashboard ${demo.url}/dashboard  metrics ${demo.url}/metrics (client built in ${Math.round(demo.buildMs)} ms)\n`);
			const shutdown = (): void => void demo.close().then(() => process.exit(0));
			process.once('SIGINT', shutdown);
			process.once('SIGTERM', shutdown);
		})
		.catch((error: unknown) => {
			process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
			process.exit(1);
		});
}
