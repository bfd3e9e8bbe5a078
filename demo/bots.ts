import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import { readRecording, type Recording } from '../training/record/format';
import { Replayer, type Publisher, type Subscriber } from '../training/loadgen/replayer';
import { runScenario, type RunState } from '../training/loadgen/runner';
import { loadScenario } from '../training/loadgen/scenario';
import type { RejoinRequest } from '../plugin';
import { MOVABLE_KEY, type PendingJoin } from '../plugin/allocate';
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
	id: string;
	router: types.Router;
	publisher: Publisher;
	subscriber: Subscriber;
	/** Re-joined audio only after its worker died (capacity was short). */
	audioOnly: boolean;
}

/**
 * Server-side bots: recorded browser media replayed into PlainTransports, each bot
 * also consuming every producer of the room into a UDP sink (the worker pays
 * the fan-out as for a browser). Each bot, and each scenario run, is placed on a
 * worker by Foresight; scenarios are rooms of their own.
 */
export class BotManager {
	private readonly replayer = new Replayer({ seed: 7 });
	private readonly bots: Bot[] = [];
	private recording: Recording | undefined;
	private scenario: { name: string; abort: AbortController; state: RunState | null; startedAt: number; done: Promise<void> } | undefined;
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
		// A replayed recording cannot re-publish elsewhere: its producers stay put (its consumers can move).
		const publisher = await this.replayer.publish(router, recording, {
			loop: true,
			...(labels ? { labels } : {}),
			appData: { peerId: id, bot: true, priority: PEER_PRIORITY.bot, [MOVABLE_KEY]: false },
		});
		let subscriber: Subscriber | undefined;
		try {
			const existing: types.Producer[] = [];
			for (const p of this.room.producers(id)) {
				const handle = this.room.findProducer(p.producerId);
				if (!handle || (audioOnly && handle.kind !== 'audio')) continue;
				await this.room.ensureOn(router, { id: handle.id, router: this.room.routerOfProducer(handle.id) });
				existing.push(handle);
			}
			subscriber = await this.replayer.subscribe(router, existing, { preferredSpatialLayer: 1, appData: { peerId: id, priority: PEER_PRIORITY.bot } });
		} catch (err) {
			this.replayer.unpublish(publisher);
			throw err;
		}
		const bot: Bot = { id, router, publisher, subscriber, audioOnly };
		for (const producer of publisher.producers.values()) this.room.addBotProducer(producer, router, id, id);
		for (const other of this.bots) {
			// A bot whose worker died consumes everything anew when it re-joins.
			if (other.id === id || other.router.closed) continue;
			// One bot whose worker is gone too must not keep this one from joining.
			await this.consumeOn(other, publisher.producers.values(), router).catch((err: unknown) =>
				this.log.warn({ bot: other.id, err: err instanceof Error ? err.message : String(err) }, 'bot could not consume a new bot'),
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
		if (this.bots.some((b) => b.id === request.peerId)) {
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
		const i = this.bots.findIndex((b) => b.id === request.peerId);
		const old = this.bots[i];
		if (!old || (!old.router.closed && !old.publisher.closed)) return;
		this.replayer.unpublish(old.publisher);
		this.replayer.unsubscribe(old.subscriber);
		this.bots[i] = await this.connect(old.id, request.router, request.mode === 'audioOnly');
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
		const i = this.bots.findIndex((b) => b.id === peerId);
		if (i < 0) return false;
		const [bot] = this.bots.splice(i, 1);
		this.replayer.unpublish(bot!.publisher);
		this.replayer.unsubscribe(bot!.subscriber);
		return true;
	}

	/** Subscribes a bot to producers living on `from` (piping them to the bot's worker first). */
	private async consumeOn(bot: Bot, producers: Iterable<types.Producer>, from: types.Router | undefined): Promise<void> {
		const list = [...producers].filter((p) => !bot.audioOnly || p.kind === 'audio');
		for (const p of list) await this.room.ensureOn(bot.router, { id: p.id, router: from });
		// Subscriber.consume only reads the ids: a piped producer has its original's id.
		await bot.subscriber.consume(list);
	}

	/**
	 * Foresight's moveConsumers hook for a bot's consumer: the bot consumes
	 * `producer` (already on the bot's router) instead. Returns the new consumer's
	 * id, or undefined when no bot owns the consumer or the bot lives elsewhere.
	 */
	async moveConsumer(consumerId: string, router: types.Router, producer: types.Producer): Promise<string | undefined> {
		const bot = this.bots.find((b) => b.subscriber.consumers.some((c) => c.id === consumerId));
		if (!bot || bot.router !== router) return undefined;
		const [consumer] = await bot.subscriber.consume([producer]);
		return consumer?.id;
	}

	/** New browser producers are consumed by every bot. */
	async onProducer(producer: types.Producer, from: types.Router | undefined): Promise<void> {
		for (const bot of this.bots) await this.consumeOn(bot, [producer], from);
	}

	remove(): string | undefined {
		const bot = this.bots.pop();
		if (!bot) return undefined;
		this.replayer.unpublish(bot.publisher);
		this.replayer.unsubscribe(bot.subscriber);
		return bot.id;
	}

	/** Runs a scenario as a room of its own, on the worker Foresight places it on (or on `router`, when it starts over after a worker died). */
	async startScenario(name: string, router?: types.Router): Promise<string> {
		if (this.scenario) throw new Error(`scenario ${this.scenario.name} is already running`);
		if (!BotManager.scenarioNames().includes(name)) throw new Error(`unknown scenario ${name}`);
		const scenario = loadScenario(join(SCENARIOS_DIR, `${name}.json`));
		const abort = new AbortController();
		const run = { name, abort, state: null as RunState | null, startedAt: Date.now(), done: Promise.resolve() };
		this.scenario = run;
		let workerId: string;
		try {
			if (router) workerId = String(router.appData.workerPid ?? '');
			else ({ workerId, router } = await this.place({ peerId: scenarioRoom(name), roomId: scenarioRoom(name), sends: ['video', 'audio'], consumes: true, priority: PEER_PRIORITY.bot }));
		} catch (err) {
			this.scenario = undefined;
			throw err;
		}
		const theRouter = router;
		this.log.info({ scenario: name, workerId }, 'scenario started');
		// The load generator's peers have no signaling to re-connect them: Foresight must not try to move them.
		run.done = runScenario(scenario, { router: theRouter, replayer: this.replayer, recordingsDir: this.recordingsDir, appData: { [MOVABLE_KEY]: false }, signal: abort.signal, onEvent: (_e, state) => (run.state = state) })
			.then(() => undefined)
			.catch((err: unknown) => {
				if (!abort.signal.aborted) this.log.error({ err: err instanceof Error ? err.message : String(err), scenario: name }, 'scenario failed');
			})
			.finally(() => {
				// Closed before its run ended, not by the operator: its worker died.
				if (theRouter.closed && !abort.signal.aborted) this.diedScenario = name;
				theRouter.close();
				if (this.scenario === run) this.scenario = undefined;
				this.log.info({ scenario: name }, 'scenario ended');
			});
		return workerId;
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
