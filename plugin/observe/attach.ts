import type { types } from 'mediasoup';
import type { Logger } from '../log';
import { Subscriptions, TypedEmitter, type ListenerTarget } from '../util/typedEmitter';
import { isInternal } from './internal';
import { Registry, type GraphNode, type WorkerNode } from './registry';
import { chooseWorkerSlot } from './slot';

/** What Foresight needs of the mediasoup module: its observer. */
export interface MediasoupModule {
	observer: types.Observer;
}

export type GraphObserverEvents = {
	/** A worker's process died (it is removed from the registry with everything on it). */
	workerDied: [workerId: string, error: Error | undefined];
};

/**
 * Follows mediasoup's observer events down the whole tree (worker → router →
 * transport → producer/consumer/data producer/data consumer) into a Registry.
 * Every listener it adds is tracked per entity: removed when that entity
 * closes, and all of them on detach().
 */
export class GraphObserver extends TypedEmitter<GraphObserverEvents> {
	readonly registry = new Registry();
	private readonly root = new Subscriptions();
	private readonly perEntity = new Map<string, Subscriptions>();
	private attached = true;

	constructor(
		mediasoup: MediasoupModule,
		private readonly log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a Foresight event threw'));
		this.root.on<types.ObserverEvents, 'newworker'>(mediasoup.observer, 'newworker', (worker: types.Worker) => this.onWorker(worker));
		// Dispose an entity's listeners whenever it leaves the registry, including
		// as part of a cascade whose close events arrive in any order.
		this.registry.on('removed', (node) => {
			this.perEntity.get(node.id)?.dispose();
			this.perEntity.delete(node.id);
		});
	}

	/** Removes every listener Foresight added and forgets the graph. Idempotent. */
	detach(): void {
		if (!this.attached) return;
		this.attached = false;
		this.root.dispose();
		for (const subs of this.perEntity.values()) subs.dispose();
		this.perEntity.clear();
		this.registry.clear();
	}

	/**
	 * Adopts a worker created before attach() (mediasoup has no list of existing
	 * workers, so the app hands them over). Its existing routers etc. are not
	 * discoverable through the observer API; only what is created from now on.
	 */
	adoptWorker(worker: types.Worker): void {
		this.onWorker(worker);
	}

	/** Registers a node; returns the subscription group for its listeners, or undefined if it was not added. */
	private track(node: GraphNode): Subscriptions | undefined {
		if (!this.attached || isInternal(node.handle) || !this.registry.add(node)) return undefined;
		const subs = new Subscriptions();
		this.perEntity.set(node.id, subs);
		return subs;
	}

	private onWorker(worker: types.Worker): void {
		if (worker.closed || this.registry.has(String(worker.pid))) return;
		const taken = new Set<string>();
		for (const w of this.registry.all('worker')) taken.add(w.slot);
		const { slot, conflict } = chooseWorkerSlot(worker.appData, taken);
		if (conflict !== undefined) this.log.warn({ pid: worker.pid, requested: conflict, slot }, 'worker slot already held by a live worker; using the lowest free index');
		const node: WorkerNode = {
			kind: 'worker',
			id: String(worker.pid),
			pid: worker.pid,
			slot,
			workerId: String(worker.pid),
			parentId: undefined,
			seenAt: Date.now(),
			handle: worker,
		};
		const subs = this.track(node);
		if (!subs) return;
		subs.on<types.WorkerObserverEvents, 'newrouter'>(worker.observer, 'newrouter', (router: types.Router) => this.onRouter(node.id, router));
		subs.on<types.WorkerObserverEvents, 'close'>(worker.observer, 'close', () => {
			if (worker.died) {
				this.log.warn({ workerId: node.id }, 'mediasoup worker died');
				this.emit('workerDied', node.id, undefined);
			}
			this.registry.remove(node.id);
		});
	}

	private onRouter(workerId: string, router: types.Router): void {
		if (router.closed) return;
		const subs = this.track(
			{ kind: 'router', id: router.id, workerId, parentId: workerId, seenAt: Date.now(), handle: router },
		);
		if (!subs) return;
		subs.on<types.RouterObserverEvents, 'newtransport'>(router.observer, 'newtransport', (t: types.Transport) => this.onTransport(workerId, router.id, t));
		subs.on<types.RouterObserverEvents, 'close'>(router.observer, 'close', () => this.registry.remove(router.id));
	}

	private onTransport(workerId: string, routerId: string, transport: types.Transport): void {
		if (transport.closed) return;
		const subs = this.track(
			{
				kind: 'transport',
				id: transport.id,
				workerId,
				routerId,
				parentId: routerId,
				seenAt: Date.now(),
				transportType: transport.type,
				handle: transport,
			},
		);
		if (!subs) return;
		const base = { workerId, routerId, transportId: transport.id, parentId: transport.id };
		subs.on<types.TransportObserverEvents, 'newproducer'>(transport.observer, 'newproducer', (p: types.Producer) => {
			if (p.closed) return;
			this.trackLeaf({ ...base, kind: 'producer', id: p.id, mediaKind: p.kind, seenAt: Date.now(), handle: p }, p.observer);
		});
		subs.on<types.TransportObserverEvents, 'newconsumer'>(transport.observer, 'newconsumer', (c: types.Consumer) => {
			if (c.closed) return;
			this.trackLeaf(
				{ ...base, kind: 'consumer', id: c.id, producerId: c.producerId, mediaKind: c.kind, seenAt: Date.now(), handle: c },
				c.observer,
			);
		});
		subs.on<types.TransportObserverEvents, 'newdataproducer'>(transport.observer, 'newdataproducer', (d: types.DataProducer) => {
			if (d.closed) return;
			this.trackLeaf({ ...base, kind: 'dataProducer', id: d.id, seenAt: Date.now(), handle: d }, d.observer);
		});
		subs.on<types.TransportObserverEvents, 'newdataconsumer'>(transport.observer, 'newdataconsumer', (d: types.DataConsumer) => {
			if (d.closed) return;
			this.trackLeaf(
				{ ...base, kind: 'dataConsumer', id: d.id, dataProducerId: d.dataProducerId, seenAt: Date.now(), handle: d },
				d.observer,
			);
		});
		subs.on<types.TransportObserverEvents, 'close'>(transport.observer, 'close', () => this.registry.remove(transport.id));
	}

	private trackLeaf(node: GraphNode, observer: ListenerTarget<{ close: [] }>): void {
		this.track(node)?.on(observer, 'close', () => this.registry.remove(node.id));
	}
}
