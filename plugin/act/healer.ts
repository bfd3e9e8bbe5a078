/**
 * Healing after a worker dies. mediasoup closes the dead worker's routers before it
 * reports the death, so the healer notes what each peer loses as the registry
 * forgets it; then, one dead worker at a time, it asks the app for a replacement,
 * re-places the peers through the allocation manager's admission (highest priority
 * first, degraded to audio only when they do not fit in full, refused only when not
 * even that fits) and hands them to the app's rejoinPeers hook. Every step is a
 * `healing` event and an audit record in the store.
 */
import type { types } from 'mediasoup';
import type { MediaClass, PendingJoin } from '../allocate/snapshot';
import type { Logger } from '../log';
import type { GraphNode, Registry } from '../observe/registry';
import type { ProfileStore } from '../store/types';
import { TypedEmitter } from '../util/typedEmitter';
import type { DeadWorker, MigrationHooks, RefusedPeer, RejoinMode, RejoinRequest, RejoinResult } from './hooks';
import type { PlaceAnswer } from './manager';

/** One step of healing one dead worker, or a worker that stopped answering; `ts` in milliseconds since the epoch. */
export type HealingEvent =
	/** A worker stopped answering (stopped or stuck): it is left out of decisions (see observe/liveness.ts). */
	| { type: 'workerUnresponsive'; ts: number; workerId: string; slot: string }
	/** It answered again after `hungMs`. */
	| { type: 'workerResponsive'; ts: number; workerId: string; slot: string; hungMs: number }
	/** The worker died; these peers had something on it. */
	| { type: 'workerDied'; ts: number; workerId: string; slot: string; peerIds: string[] }
	/** The app's replaceWorker hook gave a replacement (Foresight's id of it). */
	| { type: 'workerReplaced'; ts: number; workerId: string; slot: string; newWorkerId: string }
	/** No replacement: no hook, the hook declined, failed or timed out. */
	| { type: 'workerNotReplaced'; ts: number; workerId: string; slot: string; reason: string }
	/** One admission round: who goes where, in which mode, and who fits nowhere in it. */
	| { type: 'peersPlaced'; ts: number; workerId: string; mode: RejoinMode; placed: Array<{ peerId: string; workerId: string }>; refused: RefusedPeer[] }
	/** The app's rejoinPeers answer for one round. */
	| { type: 'peersRejoined'; ts: number; workerId: string; mode: RejoinMode; results: RejoinResult[] }
	/** Healing of the worker is over. */
	| {
		type: 'healed';
		ts: number;
		workerId: string;
		/** From the death to the last answer. */
		durationMs: number;
		rejoined: number;
		/** Rejoined, but audio only. */
		degraded: number;
		refused: number;
		/** Placed but not re-connected (the hook said so, failed or timed out; or there is no hook). */
		failed: number;
	};

export type HealerEvents = {
	healing: [HealingEvent];
};

export interface HealerSources {
	registry: Registry;
	/** The allocation manager's admission, several peers in one decision. */
	placeAll(joins: PendingJoin[]): Promise<PlaceAnswer[]>;
	/** Room of a router (its appData.roomId, or what the app's routerFor hook said). */
	roomOf(router: types.Router): string | undefined;
	/** Hands a replacement worker to the graph observer when it has not seen it. */
	adoptWorker(worker: types.Worker): void;
	store(): ProfileStore;
}

export interface HealerOptions {
	hooks: Pick<MigrationHooks, 'replaceWorker' | 'rejoinPeers'>;
	/** A hook that has not settled after this long fails its step. */
	hookTimeoutMs: number;
	logger: Logger;
}

/** What one peer had on the dead worker. */
interface Casualty {
	peerId: string;
	roomId: string | undefined;
	/** Its transports' appData.priority, when the app set one. */
	givenPriority: number | undefined;
	transports: string[];
	producers: Array<{ id: string; mediaClass: MediaClass }>;
	consumers: Array<{ id: string; kind: types.MediaKind; priority: number }>;
	dataProducers: string[];
	dataConsumers: string[];
}

/** mediasoup's consumer priorities run 1..255; a peer with no priority at all is the lowest. */
const LOWEST_PRIORITY = 1;

export class Healer extends TypedEmitter<HealerEvents> {
	/** Per dead worker, per peer: what the registry forgot when the worker died. */
	private readonly casualties = new Map<string, Map<string, Casualty>>();
	private chain: Promise<void> = Promise.resolve();
	private closed = false;
	private readonly onRemoved = (node: GraphNode): void => this.noteCasualty(node);

	constructor(
		private readonly sources: HealerSources,
		private readonly options: HealerOptions,
	) {
		super((event, error) => options.logger.error({ err: error, event }, 'listener of a healing event threw'));
		sources.registry.on('removed', this.onRemoved);
	}

	/** The graph observer reports a death (the worker node is still in the registry, its subtree is not). */
	workerDied(workerId: string): void {
		if (this.closed) return;
		const slot = this.sources.registry.slotOf(workerId) ?? workerId;
		const peers = this.casualties.get(workerId) ?? new Map<string, Casualty>();
		this.casualties.delete(workerId);
		const dead: DeadWorker = { workerId, slot };
		// One dead worker at a time: the second round of admissions must see the first one's peers.
		this.chain = this.chain.then(() => this.heal(dead, [...peers.values()])).catch((error: unknown) => {
			this.options.logger.error({ err: error, workerId }, 'healing failed');
		});
	}

	/** The liveness probe reports a worker that stopped answering (it is left out of decisions meanwhile). */
	workerUnresponsive(workerId: string): void {
		if (!this.closed) this.step({ type: 'workerUnresponsive', ts: Date.now(), workerId, slot: this.sources.registry.slotOf(workerId) ?? workerId });
	}

	/** … and when it answers again. */
	workerResponsive(workerId: string, hungMs: number): void {
		if (!this.closed) this.step({ type: 'workerResponsive', ts: Date.now(), workerId, slot: this.sources.registry.slotOf(workerId) ?? workerId, hungMs });
	}

	/** Resolves once every healing under way has ended. */
	idle(): Promise<void> {
		return this.chain;
	}

	close(): void {
		this.closed = true;
		this.sources.registry.off('removed', this.onRemoved);
		this.casualties.clear();
		this.removeAllListeners();
	}

	private noteCasualty(node: GraphNode): void {
		if (node.kind === 'worker' || node.kind === 'router') return;
		const { registry } = this.sources;
		if (registry.get('worker', node.workerId)?.handle.died !== true) return;
		// Children leave first: a stream's transport and router are still known (the node itself is already gone).
		const transportId = node.kind === 'transport' ? node.id : node.transportId;
		const transport = node.kind === 'transport' ? node : registry.get('transport', transportId);
		if (!transport || transport.transportType === 'pipe') return;
		const appData = transport.handle.appData;
		const peerId = typeof appData.peerId === 'string' ? appData.peerId : transportId;
		let byPeer = this.casualties.get(node.workerId);
		if (!byPeer) this.casualties.set(node.workerId, (byPeer = new Map()));
		let c = byPeer.get(peerId);
		if (!c) {
			const router = registry.get('router', transport.routerId)?.handle;
			c = {
				peerId,
				roomId: router ? this.sources.roomOf(router) : undefined,
				givenPriority: undefined,
				transports: [],
				producers: [],
				consumers: [],
				dataProducers: [],
				dataConsumers: [],
			};
			byPeer.set(peerId, c);
		}
		if (typeof appData.priority === 'number') c.givenPriority = Math.max(c.givenPriority ?? appData.priority, appData.priority);
		switch (node.kind) {
			case 'transport':
				c.transports.push(node.id);
				break;
			case 'producer':
				c.producers.push({ id: node.id, mediaClass: node.mediaKind === 'audio' ? 'audio' : node.handle.appData.source === 'screen' ? 'screen' : 'video' });
				break;
			case 'consumer':
				c.consumers.push({ id: node.id, kind: node.mediaKind, priority: node.handle.priority });
				break;
			case 'dataProducer':
				c.dataProducers.push(node.id);
				break;
			case 'dataConsumer':
				c.dataConsumers.push(node.id);
				break;
		}
	}

	private async heal(dead: DeadWorker, casualties: Casualty[]): Promise<void> {
		const t0 = Date.now();
		const peers = casualties.map((c) => ({ ...c, priority: peerPriority(c) })).sort((a, b) => b.priority - a.priority || (a.peerId < b.peerId ? -1 : 1));
		this.step({ type: 'workerDied', ts: t0, workerId: dead.workerId, slot: dead.slot, peerIds: peers.map((p) => p.peerId) });
		await this.replace(dead);
		const tally = { rejoined: 0, degraded: 0, refused: 0, failed: 0 };
		const rejoin = this.options.hooks.rejoinPeers;
		if (!rejoin) {
			tally.failed = peers.length;
			if (peers.length > 0) this.options.logger.warn({ workerId: dead.workerId, peers: peers.length }, 'peers lost with a dead worker are not re-joined: the app gave no rejoinPeers hook');
		} else if (peers.length > 0) {
			const noRoom = peers.filter((p) => p.roomId === undefined).map((p) => refusal(p, 'its router named no room (appData.roomId)'));
			let pending = peers.filter((p) => p.roomId !== undefined);
			for (const mode of ['full', 'audioOnly'] as const) {
				const last = mode === 'audioOnly';
				if (this.closed || (last && pending.length === 0 && noRoom.length === 0)) break;
				// Degraded: audio only, for peers that have audio to send or receive.
				const candidates = last ? pending.filter(hasAudio) : pending;
				const refused = last ? [...noRoom, ...pending.filter((p) => !hasAudio(p)).map((p) => refusal(p, 'does not fit in full and has no audio'))] : [];
				const answers = candidates.length > 0 ? await this.sources.placeAll(candidates.map((p) => joinOf(p, mode))) : [];
				const requests: RejoinRequest[] = [];
				const next: typeof pending = [];
				candidates.forEach((p, i) => {
					const a = answers[i]!;
					if (a.decision === 'place') requests.push(requestOf(p, a, mode));
					else if (last) refused.push(refusal(p, a.reason));
					else next.push(p);
				});
				this.step({ type: 'peersPlaced', ts: Date.now(), workerId: dead.workerId, mode, placed: requests.map((r) => ({ peerId: r.peerId, workerId: r.workerId })), refused });
				tally.refused += refused.length;
				const results = requests.length + refused.length > 0 ? await this.askRejoin(rejoin, { deadWorkerId: dead.workerId, peers: requests, refused }) : [];
				if (requests.length > 0) this.step({ type: 'peersRejoined', ts: Date.now(), workerId: dead.workerId, mode, results });
				for (const r of results) {
					if (!r.rejoined) tally.failed++;
					else if (last) tally.degraded++;
					else tally.rejoined++;
				}
				pending = next;
			}
		}
		this.step({ type: 'healed', ts: Date.now(), workerId: dead.workerId, durationMs: Date.now() - t0, ...tally });
	}

	private async replace(dead: DeadWorker): Promise<void> {
		const hook = this.options.hooks.replaceWorker;
		const base = { workerId: dead.workerId, slot: dead.slot };
		if (!hook) return this.step({ type: 'workerNotReplaced', ts: Date.now(), ...base, reason: 'the app gave no replaceWorker hook' });
		try {
			const worker = await this.withTimeout('replaceWorker', () => hook(dead));
			if (!worker) return this.step({ type: 'workerNotReplaced', ts: Date.now(), ...base, reason: 'the app declined' });
			if (worker.closed) return this.step({ type: 'workerNotReplaced', ts: Date.now(), ...base, reason: 'replaceWorker returned a closed worker' });
			this.sources.adoptWorker(worker);
			this.step({ type: 'workerReplaced', ts: Date.now(), ...base, newWorkerId: String(worker.pid) });
		} catch (error) {
			this.step({ type: 'workerNotReplaced', ts: Date.now(), ...base, reason: messageOf(error) });
		}
	}

	/** The app's answer, validated: one result per requested peer, a missing or malformed one counts as not rejoined. */
	private async askRejoin(hook: NonNullable<MigrationHooks['rejoinPeers']>, request: Parameters<typeof hook>[0]): Promise<RejoinResult[]> {
		let answered: unknown;
		try {
			answered = await this.withTimeout('rejoinPeers', () => hook(request));
		} catch (error) {
			const reason = messageOf(error);
			return request.peers.map((p) => ({ peerId: p.peerId, rejoined: false, reason }));
		}
		const byPeer = new Map<string, RejoinResult>();
		for (const entry of Array.isArray(answered) ? (answered as unknown[]) : []) {
			const r = entry as Partial<RejoinResult> | null;
			if (typeof r?.peerId !== 'string' || typeof r.rejoined !== 'boolean' || byPeer.has(r.peerId)) continue;
			byPeer.set(r.peerId, { peerId: r.peerId, rejoined: r.rejoined, ...(typeof r.reason === 'string' ? { reason: r.reason } : {}) });
		}
		return request.peers.map((p) => byPeer.get(p.peerId) ?? { peerId: p.peerId, rejoined: false, reason: 'rejoinPeers gave no answer for this peer' });
	}

	private async withTimeout<T>(name: string, call: () => Promise<T>): Promise<T> {
		let timer: NodeJS.Timeout | undefined;
		const timeout = new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new Error(`${name} did not settle within ${this.options.hookTimeoutMs} ms`)), this.options.hookTimeoutMs);
		});
		try {
			return await Promise.race([Promise.resolve().then(call), timeout]);
		} finally {
			clearTimeout(timer);
		}
	}

	private step(event: HealingEvent): void {
		const level = event.type === 'workerNotReplaced' || event.type === 'workerUnresponsive' || (event.type === 'healed' && event.failed + event.refused > 0) ? 'warn' : 'info';
		this.options.logger[level]({ healing: event }, `healing: ${event.type}`);
		this.emit('healing', event);
		void this.persist(event);
	}

	private async persist(event: HealingEvent): Promise<void> {
		const { targetIds, toWorkerId, reason } = auditFieldsOf(event);
		try {
			await this.sources.store().writeAction({
				ts: event.ts,
				action: event.type === 'peersPlaced' || event.type === 'peersRejoined' ? `heal-${event.type}-${event.mode}` : `heal-${event.type}`,
				targetIds,
				workerId: event.workerId,
				...(toWorkerId !== undefined ? { toWorkerId } : {}),
				reason,
				predictedBefore: { cpuPct: 0 },
				predictedAfter: { cpuPct: 0 },
				dryRun: false,
			});
		} catch (error) {
			this.options.logger.warn({ err: error }, 'healing audit record not stored');
		}
	}
}

function hasAudio(c: Casualty): boolean {
	return c.producers.some((p) => p.mediaClass === 'audio') || c.consumers.some((x) => x.kind === 'audio');
}

function peerPriority(c: Casualty): number {
	return c.givenPriority ?? Math.max(LOWEST_PRIORITY, ...c.consumers.map((x) => x.priority));
}

type RankedCasualty = Casualty & { priority: number };

function joinOf(c: RankedCasualty, mode: RejoinMode): PendingJoin {
	const sends = [...new Set(c.producers.map((p) => p.mediaClass))].filter((cls) => mode === 'full' || cls === 'audio');
	// Audio only is priced as sending audio: what it consumes back is audio too, a fraction of a video consumer.
	return { peerId: c.peerId, roomId: c.roomId!, sends, consumes: mode === 'full' && c.consumers.length > 0, priority: c.priority };
}

function requestOf(c: RankedCasualty, answer: Extract<PlaceAnswer, { decision: 'place' }>, mode: RejoinMode): RejoinRequest {
	return {
		peerId: c.peerId,
		roomId: c.roomId!,
		router: answer.router,
		workerId: answer.workerId,
		mode,
		priority: c.priority,
		lostTransportIds: c.transports,
		lostProducerIds: c.producers.map((p) => p.id),
		lostConsumerIds: c.consumers.map((x) => x.id),
		lostDataProducerIds: c.dataProducers,
		lostDataConsumerIds: c.dataConsumers,
	};
}

function refusal(c: Casualty, reason: string): RefusedPeer {
	return { peerId: c.peerId, roomId: c.roomId ?? '', reason };
}

function auditFieldsOf(event: HealingEvent): { targetIds: string[]; toWorkerId?: string; reason: string } {
	switch (event.type) {
		case 'workerUnresponsive':
			return { targetIds: [], reason: `worker ${event.workerId} (slot ${event.slot}) stopped answering: left out of decisions` };
		case 'workerResponsive':
			return { targetIds: [], reason: `worker ${event.workerId} (slot ${event.slot}) answers again after ${event.hungMs} ms` };
		case 'workerDied':
			return { targetIds: event.peerIds, reason: `worker ${event.workerId} (slot ${event.slot}) died with ${event.peerIds.length} peers on it` };
		case 'workerReplaced':
			return { targetIds: [event.newWorkerId], toWorkerId: event.newWorkerId, reason: `replaced by worker ${event.newWorkerId} in slot ${event.slot}` };
		case 'workerNotReplaced':
			return { targetIds: [], reason: `not replaced: ${event.reason}` };
		case 'peersPlaced':
			return {
				targetIds: [...event.placed.map((p) => p.peerId), ...event.refused.map((p) => p.peerId)],
				reason: `${event.placed.length} placed ${event.mode === 'full' ? 'in full' : 'audio only'} (${event.placed.map((p) => `${p.peerId}→${p.workerId}`).join(', ')}); ${event.refused.length} refused${event.refused.length > 0 ? `: ${event.refused.map((r) => `${r.peerId} (${r.reason})`).join(', ')}` : ''}`,
			};
		case 'peersRejoined':
			return {
				targetIds: event.results.map((r) => r.peerId),
				reason: `${event.results.filter((r) => r.rejoined).length} of ${event.results.length} re-joined${event.results.some((r) => !r.rejoined) ? `; not: ${event.results.filter((r) => !r.rejoined).map((r) => `${r.peerId} (${r.reason ?? 'no reason'})`).join(', ')}` : ''}`,
			};
		case 'healed':
			return { targetIds: [], reason: `healed in ${event.durationMs} ms: ${event.rejoined} re-joined, ${event.degraded} audio only, ${event.refused} refused, ${event.failed} failed` };
	}
}

function messageOf(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}
