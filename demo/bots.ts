import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import { readRecording, type Recording } from '../training/record/format';
import { Replayer, type Publisher, type Subscriber } from '../training/loadgen/replayer';
import { runScenario, type RunState } from '../training/loadgen/runner';
import { loadScenario } from '../training/loadgen/scenario';
import { MOVABLE_KEY, type PendingJoin } from '../plugin/allocate';
import type { Room } from './room';

/** Where a newcomer goes: Foresight's admission decision, the room's router on the chosen worker. Rejects when refused. */
export type Placement = (join: PendingJoin) => Promise<{ workerId: string; router: types.Router }>;

export const SCENARIOS_DIR = join(__dirname, '../training/loadgen/scenarios');
export const DEFAULT_RECORDINGS_DIR = join(__dirname, '../test/fixtures/recordings');
const BOT_RECORDING = 'talking-head';
export const MAX_BOTS = 40;

interface Bot {
	id: string;
	router: types.Router;
	publisher: Publisher;
	subscriber: Subscriber;
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
		const { router } = await this.place({ peerId: id, roomId: this.room.id, sends: ['video', 'audio'], consumes: true, priority: 100 });
		// A replayed recording cannot re-publish elsewhere: its producers stay put (its consumers can move).
		const publisher = await this.replayer.publish(router, this.recording, { loop: true, appData: { peerId: id, bot: true, [MOVABLE_KEY]: false } });
		const existing: types.Producer[] = [];
		for (const p of this.room.producers(id)) {
			const handle = this.room.findProducer(p.producerId);
			if (!handle) continue;
			await this.room.ensureOn(router, { id: handle.id, router: this.room.routerOfProducer(handle.id) });
			existing.push(handle);
		}
		const subscriber = await this.replayer.subscribe(router, existing, { preferredSpatialLayer: 1 });
		const bot = { id, router, publisher, subscriber };
		for (const producer of publisher.producers.values()) this.room.addBotProducer(producer, router, id, id);
		for (const other of this.bots) await this.consumeOn(other, publisher.producers.values(), router);
		this.bots.push(bot);
		return id;
	}

	/** Subscribes a bot to producers living on `from` (piping them to the bot's worker first). */
	private async consumeOn(bot: Bot, producers: Iterable<types.Producer>, from: types.Router | undefined): Promise<void> {
		const list = [...producers];
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

	async startScenario(name: string): Promise<string> {
		if (this.scenario) throw new Error(`scenario ${this.scenario.name} is already running`);
		if (!BotManager.scenarioNames().includes(name)) throw new Error(`unknown scenario ${name}`);
		const scenario = loadScenario(join(SCENARIOS_DIR, `${name}.json`));
		const abort = new AbortController();
		const run = { name, abort, state: null as RunState | null, startedAt: Date.now(), done: Promise.resolve() };
		this.scenario = run;
		let router: types.Router;
		let workerId: string;
		try {
			({ workerId, router } = await this.place({ peerId: `scenario:${name}`, roomId: `scenario:${name}`, sends: ['video', 'audio'], consumes: true, priority: 100 }));
		} catch (err) {
			this.scenario = undefined;
			throw err;
		}
		this.log.info({ scenario: name, workerId }, 'scenario started');
		// The load generator's peers have no signaling to re-connect them: Foresight must not try to move them.
		run.done = runScenario(scenario, { router, replayer: this.replayer, recordingsDir: this.recordingsDir, appData: { [MOVABLE_KEY]: false }, signal: abort.signal, onEvent: (_e, state) => (run.state = state) })
			.then(() => undefined)
			.catch((err: unknown) => {
				if (!abort.signal.aborted) this.log.error({ err: err instanceof Error ? err.message : String(err), scenario: name }, 'scenario failed');
			})
			.finally(() => {
				router.close();
				if (this.scenario === run) this.scenario = undefined;
				this.log.info({ scenario: name }, 'scenario ended');
			});
		return workerId;
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
