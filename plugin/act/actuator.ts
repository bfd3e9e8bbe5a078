import type { types } from 'mediasoup';
import {
	actionClass,
	type AllocationAction,
	type DropConsumerAction,
	type MigrateProducerAction,
	type PauseConsumerAction,
	type RestoreLayersAction,
	type ResumeConsumerAction,
	type SetConsumerLayersAction,
	type SpreadFanoutAction,
} from '../allocate/actions';
import type { Logger } from '../log';
import type { ConsumerNode, ProducerNode, Registry } from '../observe/registry';
import { Subscriptions, TypedEmitter } from '../util/typedEmitter';
import type { MigrationHooks } from './hooks';
import { ActionError, type ActionEffect, type ActionOutcome, type ActionRecord, type ConsumerMove } from './outcome';
import { Pipes } from './pipes';
import { RoomRouters, type MediaCodecsOption } from './rooms';

export interface ActuatorOptions {
	hooks: MigrationHooks;
	/** Codecs of routers Foresight creates for a room (default: those of a router the room already has). */
	mediaCodecs?: MediaCodecsOption;
	/** A hook that has not settled after this long fails the action. */
	hookTimeoutMs?: number;
	/** Priority given to consumers whose layers are lowered (mediasoup's 1..255); unset = leave priorities alone. */
	degradedPriority?: number;
	logger: Logger;
}

export type ActuatorEvents = {
	/** Every settled action, whatever its outcome: the audit log's input. */
	action: [ActionRecord];
};

export const DEFAULT_HOOK_TIMEOUT_MS = 20_000;

/** Far above any answer of a running worker (milliseconds), short enough that a hung one does not stall decisions. */
export const WORKER_ANSWER_TIMEOUT_MS = 5000;

/** What Foresight changed on one consumer, so it gives back exactly that and nothing the app decided. */
interface ConsumerClaim {
	consumer: types.Consumer;
	layers?: {
		/** The app's preferred layers and priority before Foresight lowered them. */
		app: types.ConsumerLayers | undefined;
		appPriority: number;
		/** What Foresight set: if the consumer no longer has these, the app has changed them since. */
		set: types.ConsumerLayers | undefined;
		setPriority: number;
	};
	paused: boolean;
	subs: Subscriptions;
}

/**
 * Applies allocation actions to mediasoup. The policies decide (pure); this only
 * acts. apply() never throws: every failure, including an entity closing while an
 * action runs, becomes an error outcome. Actions on the same consumer, producer
 * or room are applied one after the other.
 */
export class Actuator extends TypedEmitter<ActuatorEvents> {
	private readonly hooks: MigrationHooks;
	private readonly hookTimeoutMs: number;
	private readonly degradedPriority: number | undefined;
	private readonly log: Logger;
	private readonly rooms: RoomRouters;
	private readonly pipes = new Pipes();
	private readonly claims = new Map<string, ConsumerClaim>();
	private readonly locks = new Map<string, Promise<void>>();
	private closed = false;

	constructor(
		private readonly registry: Registry,
		options: ActuatorOptions,
	) {
		super((event, error) => options.logger.error({ err: error, event }, 'listener of an actuator event threw'));
		this.hooks = options.hooks;
		this.hookTimeoutMs = options.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
		this.degradedPriority = options.degradedPriority;
		this.log = options.logger;
		this.rooms = new RoomRouters(registry, options.hooks, options.mediaCodecs);
	}

	async apply(action: AllocationAction): Promise<ActionOutcome> {
		const startedAt = Date.now();
		const t0 = performance.now();
		let outcome: ActionOutcome;
		try {
			if (this.closed) throw new ActionError('closedActuator', 'the actuator is closed');
			const running = this.exclusive(lockKey(action), () => this.run(action));
			// Rebalances move media through the app's hooks, each bounded by the hook timeout; the rest is mediasoup requests alone.
			outcome = actionClass(action) === 'rebalance' ? await running : await this.answeredWithin(running, action);
		} catch (error) {
			outcome = this.errorOutcome(error, action);
		}
		const record: ActionRecord = { action, outcome, startedAt, durationMs: performance.now() - t0 };
		const level = outcome.status === 'error' ? 'warn' : 'info';
		this.log[level]({ action: action.type, workerId: action.workerId, reason: action.reason, outcome }, 'allocation action');
		this.emit('action', record);
		return outcome;
	}

	/**
	 * mediasoup's channel has no request timeout: an action on a stopped or stuck worker
	 * would hold the decision round behind it (and every admission answer) until the
	 * worker runs again. Past WORKER_ANSWER_TIMEOUT_MS the action fails; its requests may
	 * still complete later, as they would have.
	 */
	private async answeredWithin(running: Promise<ActionOutcome>, action: AllocationAction): Promise<ActionOutcome> {
		let timer: NodeJS.Timeout | undefined;
		const late = new Promise<never>((_, reject) => {
			timer = setTimeout(
				() => reject(new ActionError('workerTimeout', `worker ${action.workerId} did not answer within ${WORKER_ANSWER_TIMEOUT_MS} ms (stopped or stuck?)`)),
				WORKER_ANSWER_TIMEOUT_MS,
			);
		});
		try {
			return await Promise.race([running, late]);
		} finally {
			clearTimeout(timer);
		}
	}

	/** Caps what a transport may receive (its producers' senders adapt through BWE). */
	async capIngress(transportId: string, bitrateBps: number): Promise<ActionOutcome> {
		try {
			if (this.closed) throw new ActionError('closedActuator', 'the actuator is closed');
			if (!Number.isFinite(bitrateBps) || bitrateBps < 0) throw new ActionError('invalid', `bitrate must be ≥ 0, got ${bitrateBps}`);
			const transport = this.registry.get('transport', transportId)?.handle;
			if (!transport || transport.closed) throw new ActionError('notFound', `transport ${transportId} is not known or closed`);
			await transport.setMaxIncomingBitrate(bitrateBps);
			return { status: 'ok', effect: { type: 'capIngress', transportId, bitrateBps } };
		} catch (error) {
			const transport = this.registry.get('transport', transportId)?.handle;
			return errorOf(error, !transport || transport.closed);
		}
	}

	/** The room a router serves (its appData.roomId, or what the routerFor hook said); undefined when none is known. */
	roomOfRouter(router: types.Router): string | undefined {
		return this.rooms.roomOf(router);
	}

	/** Whether Foresight (not the app) has this consumer paused. */
	pausedByForesight(consumerId: string): boolean {
		return this.claims.get(consumerId)?.paused === true;
	}

	/** The app's own preferred layers of a consumer whose layers Foresight lowered (the restore target). */
	appLayersOf(consumerId: string): types.ConsumerLayers | undefined {
		return this.claims.get(consumerId)?.layers?.app;
	}

	/** The app takes a consumer back: Foresight will neither restore its layers nor resume it. */
	releaseConsumer(consumerId: string): void {
		const claim = this.claims.get(consumerId);
		if (!claim) return;
		claim.subs.dispose();
		this.claims.delete(consumerId);
	}

	/** Stops acting and removes every listener the actuator added. What it changed stays as is. */
	close(): void {
		if (this.closed) return;
		this.closed = true;
		for (const id of [...this.claims.keys()]) this.releaseConsumer(id);
		this.pipes.clear();
		this.removeAllListeners();
	}

	private async run(action: AllocationAction): Promise<ActionOutcome> {
		const ok = (effect: ActionEffect): ActionOutcome => ({ status: 'ok', effect });
		switch (action.type) {
			case 'place': {
				const { router, created } = await this.rooms.routerFor(action.roomId, action.workerId);
				return ok({ type: 'place', routerId: router.id, created });
			}
			case 'spreadFanout':
				return this.spreadFanout(action);
			case 'migrateProducer':
				return ok(await this.migrateProducer(action));
			case 'setConsumerLayers':
				return ok(await this.setConsumerLayers(action));
			case 'restoreLayers':
				return this.restoreLayers(action);
			case 'pauseConsumer':
				return this.pauseConsumer(action);
			case 'resumeConsumer':
				return this.resumeConsumer(action);
			case 'dropConsumer':
				return this.dropConsumer(action);
			// Admission answers go back to the app's join handler; mediasoup has nothing to do.
			case 'refuse':
				return ok({ type: 'refuse', peerId: action.peerId, roomId: action.roomId });
			case 'redirect':
				return ok({ type: 'redirect', peerId: action.peerId, roomId: action.roomId, target: action.target });
			case 'cannotRelieve':
				return ok({ type: 'cannotRelieve' });
		}
	}

	private async spreadFanout(action: SpreadFanoutAction): Promise<ActionOutcome> {
		const producer = this.producerNode(action.producerId);
		const source = this.routerOf(producer);
		const { router: target } = await this.rooms.routerFor(this.roomOf(source), action.toWorkerId);
		const requested = action.consumerIds.map((id) => this.registry.get('consumer', id));
		const toMove = requested
			.filter((c): c is ConsumerNode => c !== undefined && !c.handle.closed && c.producerId === action.producerId)
			.filter((c) => c.routerId !== target.id);
		if (toMove.length === 0) {
			if (requested.some((c) => c !== undefined)) return { status: 'skipped', reason: `the consumers already run on router ${target.id}` };
			throw new ActionError('notFound', `none of the consumers of ${action.producerId} is known or open`);
		}
		const served = await this.pipes.ensure(source, producer.id, target, producer.workerId === action.toWorkerId);
		const { moved, notMoved } = await this.moveConsumers(toMove, served.producerId, target);
		return {
			status: 'ok',
			effect: { type: 'spreadFanout', routerId: target.id, servedProducerId: served.producerId, piped: served.piped, moved, notMoved },
		};
	}

	/**
	 * Make-before-break: the producer is piped to the target first (so anything on
	 * the target keeps receiving while the client re-publishes), then the new
	 * producer is piped to every router with consumers of the old one and those
	 * consumers are moved; only then is the old producer closed. If a consumer
	 * could not be moved, the old producer stays open so it keeps playing.
	 */
	private async migrateProducer(action: MigrateProducerAction): Promise<ActionEffect> {
		const producer = this.producerNode(action.producerId);
		if (producer.workerId === action.toWorkerId) throw new ActionError('invalid', `producer ${producer.id} already runs on worker ${action.toWorkerId}`);
		const oldProducer = producer.handle;
		const source = this.routerOf(producer);
		const { router: target } = await this.rooms.routerFor(this.roomOf(source), action.toWorkerId);
		await this.pipes.ensure(source, producer.id, target, false);

		const { newProducerId } = await this.callHook('migrateProducer', () =>
			this.hooks.migrateProducer({ producerId: producer.id, toRouter: target }),
		);
		const created = typeof newProducerId === 'string' ? this.registry.get('producer', newProducerId) : undefined;
		if (!created || created.routerId !== target.id || created.handle.closed || newProducerId === producer.id) {
			throw new ActionError('hookFailed', `migrateProducer returned ${String(newProducerId)}, which is no open producer on router ${target.id}`);
		}

		const moved: ConsumerMove[] = [];
		const pipedTo: string[] = [];
		let notMoved = 0;
		// A second round catches consumers the app created on the old producer meanwhile.
		for (let round = 0; round < 2; round++) {
			const byRouter = this.appConsumersOf(producer.id);
			if (byRouter.size === 0) break;
			for (const [routerId, consumers] of byRouter) {
				const routerNode = this.registry.get('router', routerId);
				if (!routerNode || routerNode.handle.closed) continue;
				const served = await this.pipes.ensure(target, newProducerId, routerNode.handle, routerNode.workerId === action.toWorkerId);
				if (served.piped) pipedTo.push(routerId);
				const result = await this.moveConsumers(consumers, served.producerId, routerNode.handle);
				moved.push(...result.moved);
				notMoved += result.notMoved.length;
			}
			if (notMoved > 0) break;
		}
		if (notMoved > 0) {
			throw new ActionError('hookFailed', `${notMoved} consumers of ${producer.id} were not moved; the old producer stays open for them`);
		}
		if (oldProducer.closed) throw new ActionError('closed', `producer ${producer.id} closed during its migration`);
		oldProducer.close();
		await this.callHook('producerMigrated', async () =>
			this.hooks.producerMigrated({ oldProducerId: producer.id, newProducerId, routerId: target.id }),
		);
		return { type: 'migrateProducer', routerId: target.id, newProducerId, moved, pipedTo };
	}

	/** Asks the app to move consumers onto `target`, checks what it reports and closes the old consumers it left open. */
	private async moveConsumers(
		consumers: ConsumerNode[],
		producerId: string,
		target: types.Router,
	): Promise<{ moved: ConsumerMove[]; notMoved: string[] }> {
		const byId = new Map(consumers.map((c) => [c.id, c.handle]));
		const reported = await this.callHook('moveConsumers', () =>
			this.hooks.moveConsumers({ consumerIds: [...byId.keys()], producerId, toRouter: target }),
		);
		const moved: ConsumerMove[] = [];
		// The app's answer is validated, not trusted: only consumers that really exist on the target count.
		for (const entry of Array.isArray(reported) ? (reported as unknown[]) : []) {
			if (!isMove(entry)) continue;
			const old = byId.get(entry.oldConsumerId);
			const created = this.registry.get('consumer', entry.newConsumerId);
			if (!old || !created || created.routerId !== target.id || created.handle.closed) continue;
			if (moved.some((m) => m.oldConsumerId === entry.oldConsumerId)) continue;
			moved.push({ oldConsumerId: entry.oldConsumerId, newConsumerId: entry.newConsumerId });
			if (!old.closed) old.close();
			this.releaseConsumer(entry.oldConsumerId);
		}
		if (moved.length === 0) throw new ActionError('hookFailed', `moveConsumers moved none of ${byId.size} consumers to router ${target.id}`);
		const movedIds = new Set(moved.map((m) => m.oldConsumerId));
		// One that closed meanwhile (its receiver left) needs no move and holds nothing back.
		return { moved, notMoved: [...byId].filter(([id, c]) => !movedIds.has(id) && !c.closed).map(([id]) => id) };
	}

	private async setConsumerLayers(action: SetConsumerLayersAction): Promise<ActionEffect> {
		const consumer = this.consumer(action.consumerId);
		if (consumer.type !== 'simulcast' && consumer.type !== 'svc') {
			throw new ActionError('invalid', `consumer ${consumer.id} is ${consumer.type}: it has no layers to choose`);
		}
		if (!isLayer(action.spatial) || !isLayer(action.temporal)) {
			throw new ActionError('invalid', `layers must be integers ≥ 0, got ${action.spatial}/${action.temporal}`);
		}
		const previous = this.claims.get(consumer.id)?.layers;
		// If the app changed the layers after Foresight last did, its new choice is what to restore.
		const appUnchanged = previous !== undefined && sameLayers(consumer.preferredLayers, previous.set) && consumer.priority === previous.setPriority;
		const app = appUnchanged ? previous.app : consumer.preferredLayers;
		const appPriority = appUnchanged ? previous.appPriority : consumer.priority;
		await consumer.setPreferredLayers({ spatialLayer: action.spatial, temporalLayer: action.temporal });
		if (this.degradedPriority !== undefined && consumer.priority !== this.degradedPriority) await consumer.setPriority(this.degradedPriority);
		if (consumer.closed) throw new ActionError('closed', `consumer ${consumer.id} closed`);
		this.claim(consumer).layers = { app, appPriority, set: consumer.preferredLayers, setPriority: consumer.priority };
		return { type: 'setConsumerLayers', preferredLayers: consumer.preferredLayers, priority: consumer.priority };
	}

	private async restoreLayers(action: RestoreLayersAction): Promise<ActionOutcome> {
		const consumer = this.consumer(action.consumerId);
		const claim = this.claims.get(consumer.id);
		const layers = claim?.layers;
		if (!claim || !layers) return { status: 'skipped', reason: 'Foresight has not changed its layers' };
		const forget = (): void => {
			claim.layers = undefined;
			this.releaseIfIdle(claim);
		};
		if (!sameLayers(consumer.preferredLayers, layers.set)) {
			forget();
			return { status: 'skipped', reason: 'the app has changed its layers since' };
		}
		if (layers.app) await consumer.setPreferredLayers({ spatialLayer: layers.app.spatialLayer, temporalLayer: layers.app.temporalLayer });
		if (consumer.priority === layers.setPriority && consumer.priority !== layers.appPriority) await consumer.setPriority(layers.appPriority);
		forget();
		return { status: 'ok', effect: { type: 'restoreLayers', preferredLayers: consumer.preferredLayers, priority: consumer.priority } };
	}

	private async pauseConsumer(action: PauseConsumerAction): Promise<ActionOutcome> {
		const consumer = this.consumer(action.consumerId);
		if (this.claims.get(consumer.id)?.paused) return { status: 'skipped', reason: 'already paused by Foresight' };
		// A consumer the app paused is the app's: Foresight must never be the one to resume it.
		if (consumer.paused) return { status: 'skipped', reason: 'already paused by the app' };
		await consumer.pause();
		if (consumer.closed) throw new ActionError('closed', `consumer ${consumer.id} closed`);
		this.claim(consumer).paused = true;
		return { status: 'ok', effect: { type: 'pauseConsumer' } };
	}

	private async resumeConsumer(action: ResumeConsumerAction): Promise<ActionOutcome> {
		const consumer = this.consumer(action.consumerId);
		const claim = this.claims.get(consumer.id);
		if (!claim?.paused) return { status: 'skipped', reason: 'Foresight did not pause it' };
		claim.paused = false;
		if (!consumer.paused) {
			this.releaseIfIdle(claim);
			return { status: 'skipped', reason: 'the app has resumed it already' };
		}
		try {
			await consumer.resume();
		} catch (error) {
			if (!consumer.closed) claim.paused = true;
			throw error;
		}
		this.releaseIfIdle(claim);
		return { status: 'ok', effect: { type: 'resumeConsumer' } };
	}

	private async dropConsumer(action: DropConsumerAction): Promise<ActionOutcome> {
		const consumer = this.consumer(action.consumerId);
		consumer.close();
		this.releaseConsumer(consumer.id);
		await this.callHook('consumerDropped', async () => this.hooks.consumerDropped(consumer.id, action.reason));
		return { status: 'ok', effect: { type: 'dropConsumer' } };
	}

	/** App consumers (not pipe consumers) of a producer id, grouped by router. */
	private appConsumersOf(producerId: string): Map<string, ConsumerNode[]> {
		const byRouter = new Map<string, ConsumerNode[]>();
		for (const c of this.registry.all('consumer')) {
			if (c.producerId !== producerId || c.handle.closed) continue;
			if (this.registry.get('transport', c.transportId)?.transportType === 'pipe') continue;
			const list = byRouter.get(c.routerId) ?? [];
			list.push(c);
			byRouter.set(c.routerId, list);
		}
		return byRouter;
	}

	private producerNode(producerId: string): ProducerNode {
		const node = this.registry.get('producer', producerId);
		if (!node || node.handle.closed) throw new ActionError('notFound', `producer ${producerId} is not known or closed`);
		return node;
	}

	private consumer(consumerId: string): types.Consumer {
		const handle = this.registry.get('consumer', consumerId)?.handle;
		if (!handle || handle.closed) throw new ActionError('notFound', `consumer ${consumerId} is not known or closed`);
		return handle;
	}

	private routerOf(node: { routerId: string }): types.Router {
		const router = this.registry.get('router', node.routerId)?.handle;
		if (!router || router.closed) throw new ActionError('closed', `router ${node.routerId} closed`);
		return router;
	}

	private roomOf(router: types.Router): string {
		const roomId = this.rooms.roomOf(router);
		if (roomId === undefined) throw new ActionError('noRouter', `router ${router.id} belongs to no known room: set appData.roomId on room routers`);
		return roomId;
	}

	private claim(consumer: types.Consumer): ConsumerClaim {
		let claim = this.claims.get(consumer.id);
		if (claim) return claim;
		const subs = new Subscriptions();
		const created: ConsumerClaim = { consumer, paused: false, subs };
		subs.on<types.ConsumerObserverEvents, 'close'>(consumer.observer, 'close', () => this.releaseConsumer(consumer.id));
		// Foresight clears its own pause flag before resuming, so a resume seen here is the app's.
		subs.on<types.ConsumerObserverEvents, 'resume'>(consumer.observer, 'resume', () => {
			created.paused = false;
			this.releaseIfIdle(created);
		});
		claim = created;
		this.claims.set(consumer.id, claim);
		return claim;
	}

	private releaseIfIdle(claim: ConsumerClaim): void {
		if (!claim.paused && !claim.layers) this.releaseConsumer(claim.consumer.id);
	}

	private async callHook<T>(name: keyof MigrationHooks, call: () => Promise<T>): Promise<T> {
		let timer: NodeJS.Timeout | undefined;
		const timeout = new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new ActionError('hookTimeout', `${name} did not settle within ${this.hookTimeoutMs} ms`)), this.hookTimeoutMs);
		});
		try {
			return await Promise.race([call(), timeout]);
		} catch (error) {
			if (error instanceof ActionError) throw error;
			throw new ActionError('hookFailed', `${name} failed: ${error instanceof Error ? error.message : String(error)}`);
		} finally {
			clearTimeout(timer);
		}
	}

	/** Runs actions on the same key one after the other; a failure does not block the next. */
	private async exclusive<T>(key: string | undefined, run: () => Promise<T>): Promise<T> {
		if (key === undefined) return run();
		const previous = this.locks.get(key) ?? Promise.resolve();
		const result = previous.then(run);
		const tail = result.then(
			() => undefined,
			() => undefined,
		);
		this.locks.set(key, tail);
		try {
			return await result;
		} finally {
			if (this.locks.get(key) === tail) this.locks.delete(key);
		}
	}

	private errorOutcome(error: unknown, action: AllocationAction): ActionOutcome {
		return errorOf(error, this.namedEntityGone(action));
	}

	/** Whether the producer or consumer an action names has closed (or left the registry). */
	private namedEntityGone(action: AllocationAction): boolean {
		switch (action.type) {
			case 'spreadFanout':
			case 'migrateProducer': {
				const handle = this.registry.get('producer', action.producerId)?.handle;
				return !handle || handle.closed;
			}
			case 'setConsumerLayers':
			case 'restoreLayers':
			case 'pauseConsumer':
			case 'resumeConsumer':
			case 'dropConsumer': {
				const handle = this.registry.get('consumer', action.consumerId)?.handle;
				return !handle || handle.closed;
			}
			case 'place': {
				const worker = this.registry.get('worker', action.workerId)?.handle;
				return !worker || worker.closed;
			}
			case 'refuse':
			case 'redirect':
			case 'cannotRelieve':
				return false;
		}
	}
}

function errorOf(error: unknown, entityGone: boolean): ActionOutcome {
	if (error instanceof ActionError) return { status: 'error', code: error.code, reason: error.message };
	const message = error instanceof Error ? error.message : String(error);
	// mediasoup's InvalidStateError means a closed channel or entity: the action raced a close.
	const closed = entityGone || (error instanceof Error && error.name === 'InvalidStateError');
	return { status: 'error', code: closed ? 'closed' : 'mediasoup', reason: message };
}

function lockKey(action: AllocationAction): string | undefined {
	switch (action.type) {
		case 'spreadFanout':
		case 'migrateProducer':
			return `producer:${action.producerId}`;
		case 'setConsumerLayers':
		case 'restoreLayers':
		case 'pauseConsumer':
		case 'resumeConsumer':
		case 'dropConsumer':
			return `consumer:${action.consumerId}`;
		case 'place':
		case 'refuse':
		case 'redirect':
		case 'cannotRelieve':
			return undefined;
	}
}

function isMove(entry: unknown): entry is ConsumerMove {
	const e = entry as Partial<ConsumerMove> | null;
	return typeof e?.oldConsumerId === 'string' && typeof e.newConsumerId === 'string';
}

function isLayer(n: number): boolean {
	return Number.isInteger(n) && n >= 0;
}

function sameLayers(a: types.ConsumerLayers | undefined, b: types.ConsumerLayers | undefined): boolean {
	return a?.spatialLayer === b?.spatialLayer && a?.temporalLayer === b?.temporalLayer;
}
