import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import { readRecording, type Recording } from '../training/record/format';
import { ReplayPeer } from '../training/loadgen/peer';
import { Replayer } from '../training/loadgen/replayer';
import { ScenarioRun, type RunState } from '../training/loadgen/runner';
import { loadScenario, publicationTracks } from '../training/loadgen/scenario';
import type { RejoinRequest } from '../plugin';
import type { PendingJoin } from '../plugin/allocate';
import { PEER_PRIORITY, type Room } from './room';

/** Where a newcomer goes: Foresight's admission decision, the room's router on the chosen worker. Rejects when refused. */
export type Placement = (join: PendingJoin) => Promise<{ workerId: string; router: types.Router }>;

export const SCENARIOS_DIR = join(__dirname, '../training/loadgen/scenarios');
export const DEFAULT_RECORDINGS_DIR = join(__dirname, '../test/fixtures/recordings');
const BOT_RECORDING = 'talking-head';
export const MAX_BOTS = 40;

/** A scenario runs as a room of its own. */
const SCENARIO_ROOM = 'scenario:';
const scenarioRoom = (name: string): string => `${SCENARIO_ROOM}${name}`;

interface Bot {
	/** Its peer: publications and receive transports on any of the room's routers, following Foresight's moves. */
	replay: ReplayPeer;
	/** Re-joined audio only after its worker died (capacity was short). */
	audioOnly: boolean;
}

/** The key of a bot's own publication. */
const OWN = 'own';

interface ScenarioRunEntry {
	name: string;
	abort: AbortController;
	/** Set once the run is placed. */
	run: ScenarioRun | undefined;
	state: RunState | null;
	startedAt: number;
	done: Promise<void>;
	/** The scenario room's routers on other workers, created for Foresight's moves: they close with the run. */
	routers: Set<types.Router>;
}

/**
 * Server-side bots: recorded browser media replayed into PlainTransports, each bot
 * also consuming every producer of the room into a UDP sink (the worker pays
 * the fan-out as for a browser). Each bot, and each scenario run, is placed on a
 * worker by Foresight; scenarios are rooms of their own. Bots and scenario peers
 * follow Foresight's moves as pages do (training/loadgen/peer.ts): a consumer is
 * re-created on the target worker, a producer re-published there make-before-break.
 */
export class BotManager {
	private readonly replayer = new Replayer({ seed: 7 });
	private readonly bots: Bot[] = [];
	private recording: Recording | undefined;
	private scenario: ScenarioRunEntry | undefined;
	/** A scenario that ended because its worker died, until it is restarted. */
	private diedScenario: string | undefined;
	private readonly restarts = new Map<string, Promise<boolean>>();
	private rejoining: Promise<void> = Promise.resolve();
	private nextId = 1;

	constructor(
		private readonly room: Room,
		private readonly place: Placement,
		private readonly recordingsDir: string,
		private readonly log: Logger,
	) {}

	get count(): number {
		return this.bots.length;
	}

	static scenarioNames(): string[] {
		return ['audio-only-town-hall', 'bursty-joins', 'screen-share-storm', 'steady-meeting', 'webinar-fanout'].filter((n) => existsSync(join(SCENARIOS_DIR, `${n}.json`)));
	}

	async add(): Promise<string> {
		if (this.bots.length >= MAX_BOTS) throw new Error(`at most ${MAX_BOTS} bots`);
		this.recording ??= readRecording(join(this.recordingsDir, `${BOT_RECORDING}.rec.gz`));
		const id = `bot-${this.nextId++}`;
		const { router } = await this.place({ peerId: id, roomId: this.room.id, sends: ['video', 'audio'], consumes: true, priority: PEER_PRIORITY.bot });
		const bot = await this.connect(id, router, false);
		this.bots.push(bot);
		return id;
	}

	/**
	 * Publishes the bot's recording on `router` and subscribes it to every producer of
	 * the room; every other bot consumes what it publishes.
	 */
	private async connect(id: string, router: types.Router, audioOnly: boolean): Promise<Bot> {
		const recording = this.recording!;
		const labels = audioOnly ? recording.header.streams.filter((s) => s.kind === 'audio').map((s) => s.label) : undefined;
		const replay = new ReplayPeer(router, { replayer: this.replayer, peerId: id, appData: { bot: true, priority: PEER_PRIORITY.bot }, subscribe: { preferredSpatialLayer: 1 } });
		const bot: Bot = { replay, audioOnly };
		const publication = await replay.publish(OWN, recording, { loop: true, keyframeOnRequest: true, retransmitOnNack: true, ...(labels ? { labels } : {}) });
		try {
			await replay.receiver();
			for (const p of this.room.producers(id)) {
				const handle = this.room.findProducer(p.producerId);
				if (handle) await this.consumeOn(bot, [handle], this.room.routerOfProducer(handle.id));
			}
		} catch (err) {
			replay.close();
			throw err;
		}
		const produced = publication.producers.map((p) => p.producer);
		for (const producer of produced) this.room.addBotProducer(producer, router, id, id);
		for (const other of this.bots) {
			// A bot whose worker died consumes everything anew when it re-joins.
			if (other.replay.id === id || other.replay.router.closed) continue;
			// One bot whose worker is gone too must not keep this one from joining.
			await this.consumeOn(other, produced, router).catch((err: unknown) =>
				this.log.warn({ bot: other.replay.id, err: err instanceof Error ? err.message : String(err) }, 'bot could not consume a new bot'),
			);
		}
		return bot;
	}

	/**
	 * Foresight's rejoinPeers hook for a bot or a scenario's peers (true when handled
	 * here): a bot whose worker died publishes and subscribes again on `router`; a
	 * scenario whose worker died starts over there.
	 */
	async rejoin(request: RejoinRequest): Promise<boolean> {
		if (this.bots.some((b) => b.replay.id === request.peerId)) {
			// One bot at a time: each subscribes to what the ones before it published again, and they to it.
			const next = this.rejoining.then(() => this.rejoinBot(request));
			this.rejoining = next.catch(() => undefined);
			await next;
			return true;
		}
		const name = request.roomId.startsWith(SCENARIO_ROOM) ? request.roomId.slice(SCENARIO_ROOM.length) : undefined;
		if (name === undefined) return false;
		// Every peer of the scenario asks; they share one restart.
		let restart = this.restarts.get(name);
		if (!restart) {
			restart = this.restartScenario(name, request.router).finally(() => this.restarts.delete(name));
			this.restarts.set(name, restart);
		}
		return restart;
	}

	private async rejoinBot(request: RejoinRequest): Promise<void> {
		const i = this.bots.findIndex((b) => b.replay.id === request.peerId);
		const old = this.bots[i];
		if (!old) return;
		// A bot spread over two workers lost only part of itself; it starts over whole on `router` all the same.
		old.replay.close();
		this.bots[i] = await this.connect(old.replay.id, request.router, request.mode === 'audioOnly');
	}

	/** A scenario whose worker died starts over on `router` (unless the operator stopped it meanwhile). */
	private async restartScenario(name: string, router: types.Router): Promise<boolean> {
		const run = this.scenario;
		if (run?.name === name) {
			run.abort.abort();
			await run.done;
		} else if (this.diedScenario !== name) return false;
		this.diedScenario = undefined;
		await this.startScenario(name, router);
		return true;
	}

	/** A bot that fits on no worker after its worker died: it leaves the room. */
	refused(peerId: string): boolean {
		const i = this.bots.findIndex((b) => b.replay.id === peerId);
		if (i < 0) return false;
		const [bot] = this.bots.splice(i, 1);
		bot!.replay.close();
		return true;
	}

	/** Subscribes a bot to producers living on `from` (piping them to the bot's router first). */
	private async consumeOn(bot: Bot, producers: Iterable<types.Producer>, from: types.Router | undefined): Promise<void> {
		const list = [...producers].filter((p) => !bot.audioOnly || p.kind === 'audio');
		const to = bot.replay.router;
		for (const p of list) await this.room.ensureOn(to, { id: p.id, router: from });
		// One subscription per producer: a piped producer has its original's id.
		for (const p of list) await bot.replay.subscribe(p.id, [p], { paused: false });
	}

	/**
	 * Foresight's moveConsumers hook for a bot's or a scenario peer's consumer: its peer
	 * consumes `producerId` (consumable on `toRouter`) there instead. Returns the new
	 * consumer's id, or undefined when neither owns the consumer.
	 */
	async moveConsumer(consumerId: string, toRouter: types.Router, producerId: string): Promise<string | undefined> {
		const fromScenario = await this.scenario?.run?.moveConsumer(consumerId, toRouter, producerId);
		if (fromScenario) return fromScenario;
		const bot = this.bots.find((b) => b.replay.hasConsumer(consumerId));
		return (await bot?.replay.moveConsumer(consumerId, toRouter, producerId))?.id;
	}

	/** Whether the producer is a bot's or a scenario peer's (its migration is this manager's). */
	ownsProducer(producerId: string): boolean {
		return this.scenario?.run?.ownsProducer(producerId) === true || this.bots.some((b) => b.replay.hasProducer(producerId));
	}

	/**
	 * Foresight's migrateProducer hook for a bot's or a scenario peer's producer: the same
	 * track is replayed again on `toRouter` and the new producer's id returned once it
	 * carries media; the old one keeps sending until Foresight closes it. A bot's new
	 * producer takes the old one's place in the room at once (newcomers consume it).
	 */
	async migrateProducer(producerId: string, toRouter: types.Router): Promise<string> {
		const run = this.scenario?.run;
		if (run?.ownsProducer(producerId)) {
			const id = await run.migrateProducer(producerId, toRouter);
			if (id) return id;
		}
		const bot = this.bots.find((b) => b.replay.hasProducer(producerId));
		const created = await bot?.replay.republish(producerId, toRouter);
		if (!bot || !created) throw new Error(`producer ${producerId} is no open producer of a bot or scenario peer`);
		this.room.replaceBotProducer(producerId, created, toRouter);
		return created.id;
	}

	/** The scenario room's router on `worker`, for Foresight's moves: it closes with the run. */
	async routerFor(roomId: string, worker: types.Worker, mediaCodecs: types.RouterRtpCodecCapability[]): Promise<types.Router> {
		const router = await worker.createRouter({ mediaCodecs, appData: { roomId, workerPid: worker.pid } });
		const run = this.scenario;
		if (run && roomId === scenarioRoom(run.name)) run.routers.add(router);
		else this.log.warn({ roomId, workerId: worker.pid }, 'router for a room the demo does not run');
		return router;
	}

	/** New browser producers are consumed by every bot. */
	async onProducer(producer: types.Producer, from: types.Router | undefined): Promise<void> {
		for (const bot of this.bots) await this.consumeOn(bot, [producer], from);
	}

	remove(): string | undefined {
		const bot = this.bots.pop();
		if (!bot) return undefined;
		bot.replay.close();
		return bot.replay.id;
	}

	/** Packets the bots' and scenario peers' receive transports delivered to the sink, by peer id (what a test checks across moves). */
	async received(): Promise<Map<string, number>> {
		const peers = [...this.bots.map((b) => b.replay), ...(this.scenario?.run?.livePeers() ?? [])];
		const out = new Map<string, number>();
		for (const peer of peers) out.set(peer.id, await peer.received());
		return out;
	}

	/**
	 * Runs a scenario as a room of its own. Each of its peers is placed by Foresight as it
	 * joins, like a page (or, when it starts over after a worker died, all on `router`).
	 * Resolves once it runs; a peer Foresight refuses stays out (counted in the run's state).
	 */
	async startScenario(name: string, router?: types.Router): Promise<void> {
		if (this.scenario) throw new Error(`scenario ${this.scenario.name} is already running`);
		if (!BotManager.scenarioNames().includes(name)) throw new Error(`unknown scenario ${name}`);
		const scenario = loadScenario(join(SCENARIOS_DIR, `${name}.json`));
		const abort = new AbortController();
		const run: ScenarioRunEntry = { name, abort, run: undefined, state: null, startedAt: Date.now(), done: Promise.resolve(), routers: new Set() };
		this.scenario = run;
		const roomId = scenarioRoom(name);
		const groups = new Map(scenario.groups.map((g) => [g.name, g]));
		const placePeer = async (peer: string, group: string): Promise<types.Router | undefined> => {
			const g = groups.get(group)!;
			const sends = [...new Set(g.publish.flatMap((p) => publicationTracks(p).map((t) => t.mediaClass)))];
			try {
				return (await this.place({ peerId: `${roomId}/${peer}`, roomId, sends, consumes: g.consume.length > 0, priority: PEER_PRIORITY.bot })).router;
			} catch (err) {
				this.log.info({ scenario: name, peer, err: err instanceof Error ? err.message : String(err) }, 'scenario peer not admitted');
				return undefined;
			}
		};
		this.log.info({ scenario: name, restartOn: router?.id }, 'scenario started');
		// Its peers follow Foresight's moves (ScenarioRun.moveConsumer / migrateProducer through the demo's hooks).
		run.run = new ScenarioRun(scenario, {
			...(router ? { router } : { placePeer }),
			replayer: this.replayer,
			recordingsDir: this.recordingsDir,
			peerIdPrefix: `${roomId}/`,
			signal: abort.signal,
			onEvent: (_e, state) => (run.state = state),
			onError: (e, err) => this.log.debug({ scenario: name, event: e.type, err: err.message }, 'scenario event raced a close'),
		});
		run.done = run.run
			.run()
			.then(() => undefined)
			.catch((err: unknown) => {
				if (!abort.signal.aborted) this.log.error({ err: err instanceof Error ? err.message : String(err), scenario: name }, 'scenario failed');
			})
			.finally(() => {
				// A worker died under it and no restart came (healing restarts it through rejoin()).
				if (!abort.signal.aborted && [...run.routers].some((r) => r.closed)) this.diedScenario = name;
				router?.close();
				for (const r of run.routers) r.close();
				if (this.scenario === run) this.scenario = undefined;
				this.log.info({ scenario: name }, 'scenario ended');
			});
	}

	/** Drops this share of the bots' and scenarios' RTP before it leaves (a lossy path; see Replayer.setLoss). */
	setSendLoss(rate: number): void {
		this.replayer.setLoss(rate);
	}

	stopScenario(): void {
		this.scenario?.abort.abort();
	}

	status(): { bots: number; scenario: { name: string; elapsedS: number; peers: number } | null } {
		const s = this.scenario;
		return { bots: this.bots.length, scenario: s ? { name: s.name, elapsedS: Math.round((Date.now() - s.startedAt) / 1000), peers: s.state?.peers ?? 0 } : null };
	}

	close(): void {
		this.stopScenario();
		while (this.remove());
		this.replayer.close();
	}
}
