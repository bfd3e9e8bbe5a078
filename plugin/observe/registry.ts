import type { types } from 'mediasoup';
import { TypedEmitter } from '../util/typedEmitter';

export type EntityKind = 'worker' | 'router' | 'transport' | 'producer' | 'consumer' | 'dataProducer' | 'dataConsumer';

interface NodeBase {
	id: string;
	workerId: string;
	/** Id of the owning entity (undefined for workers). */
	parentId: string | undefined;
	/** Milliseconds since the epoch when Foresight first saw the entity. */
	seenAt: number;
}

export interface WorkerNode extends NodeBase {
	kind: 'worker';
	pid: number;
	/** Stable label across restarts (see slot.ts): the app's appData.slot/name, else the lowest free index. */
	slot: string;
	handle: types.Worker;
}
export interface RouterNode extends NodeBase {
	kind: 'router';
	handle: types.Router;
}
export interface TransportNode extends NodeBase {
	kind: 'transport';
	routerId: string;
	transportType: types.TransportType;
	handle: types.Transport;
}
export interface ProducerNode extends NodeBase {
	kind: 'producer';
	routerId: string;
	transportId: string;
	mediaKind: types.MediaKind;
	handle: types.Producer;
}
export interface ConsumerNode extends NodeBase {
	kind: 'consumer';
	routerId: string;
	transportId: string;
	producerId: string;
	mediaKind: types.MediaKind;
	handle: types.Consumer;
}
export interface DataProducerNode extends NodeBase {
	kind: 'dataProducer';
	routerId: string;
	transportId: string;
	handle: types.DataProducer;
}
export interface DataConsumerNode extends NodeBase {
	kind: 'dataConsumer';
	routerId: string;
	transportId: string;
	dataProducerId: string;
	handle: types.DataConsumer;
}

export type GraphNode =
	| WorkerNode
	| RouterNode
	| TransportNode
	| ProducerNode
	| ConsumerNode
	| DataProducerNode
	| DataConsumerNode;

type NodeOf<K extends EntityKind> = Extract<GraphNode, { kind: K }>;

export type StreamNode = ProducerNode | ConsumerNode | DataProducerNode | DataConsumerNode;

/** Producers, consumers, data producers and data consumers: the entities that carry a stream. */
export function isStreamNode(node: GraphNode): node is StreamNode {
	return node.kind === 'producer' || node.kind === 'consumer' || node.kind === 'dataProducer' || node.kind === 'dataConsumer';
}

export type EntityCounts = Record<'routers' | 'transports' | 'producers' | 'consumers' | 'dataProducers' | 'dataConsumers', number>;

const COUNT_KEY: Record<Exclude<EntityKind, 'worker'>, keyof EntityCounts> = {
	router: 'routers',
	transport: 'transports',
	producer: 'producers',
	consumer: 'consumers',
	dataProducer: 'dataProducers',
	dataConsumer: 'dataConsumers',
};

export type RegistryEvents = {
	added: [GraphNode];
	/** Children are removed (and reported) before their parent. */
	removed: [GraphNode];
};

/**
 * The live mediasoup graph as Foresight sees it: who belongs to whom and on
 * which worker. Removing a node removes its whole subtree, so a missed close
 * event on a child can never keep a closed entity (and its handle) alive.
 */
export class Registry extends TypedEmitter<RegistryEvents> {
	private readonly nodes = new Map<string, GraphNode>();
	private readonly children = new Map<string, Set<string>>();
	private readonly counts = new Map<string, EntityCounts>();

	get size(): number {
		return this.nodes.size;
	}

	get<K extends EntityKind>(kind: K, id: string): NodeOf<K> | undefined {
		const node = this.nodes.get(id);
		return node?.kind === kind ? (node as NodeOf<K>) : undefined;
	}

	has(id: string): boolean {
		return this.nodes.has(id);
	}

	*all<K extends EntityKind>(kind: K): IterableIterator<NodeOf<K>> {
		for (const node of this.nodes.values()) if (node.kind === kind) yield node as NodeOf<K>;
	}

	/** Direct children of an entity, optionally of one kind. */
	*childrenOf<K extends EntityKind>(id: string, kind?: K): IterableIterator<NodeOf<K>> {
		for (const childId of this.children.get(id) ?? []) {
			const child = this.nodes.get(childId);
			if (child && (kind === undefined || child.kind === kind)) yield child as NodeOf<K>;
		}
	}

	/** The worker's slot (see slot.ts); undefined once it is gone. */
	slotOf(workerId: string): string | undefined {
		return this.get('worker', workerId)?.slot;
	}

	countsOf(workerId: string): EntityCounts {
		return { ...(this.counts.get(workerId) ?? emptyCounts()) };
	}

	/**
	 * Adds a node. Returns false (and adds nothing) when its parent is unknown,
	 * e.g. the parent closed while the child's creation was in flight.
	 */
	add(node: GraphNode): boolean {
		if (this.nodes.has(node.id)) return false;
		if (node.parentId !== undefined && !this.nodes.has(node.parentId)) return false;
		this.nodes.set(node.id, node);
		this.children.set(node.id, new Set());
		if (node.parentId !== undefined) this.children.get(node.parentId)!.add(node.id);
		if (node.kind === 'worker') this.counts.set(node.id, emptyCounts());
		else this.counts.get(node.workerId)![COUNT_KEY[node.kind]]++;
		this.emit('added', node);
		return true;
	}

	/** Removes a node and its subtree; returns the removed nodes, children first. */
	remove(id: string): GraphNode[] {
		const node = this.nodes.get(id);
		if (!node) return [];
		const removed: GraphNode[] = [];
		for (const childId of [...(this.children.get(id) ?? [])]) removed.push(...this.remove(childId));
		this.nodes.delete(id);
		this.children.delete(id);
		if (node.parentId !== undefined) this.children.get(node.parentId)?.delete(id);
		if (node.kind === 'worker') this.counts.delete(id);
		else {
			const counts = this.counts.get(node.workerId);
			if (counts) counts[COUNT_KEY[node.kind]]--;
		}
		removed.push(node);
		this.emit('removed', node);
		return removed;
	}

	clear(): void {
		for (const worker of [...this.all('worker')]) this.remove(worker.id);
	}
}

function emptyCounts(): EntityCounts {
	return { routers: 0, transports: 0, producers: 0, consumers: 0, dataProducers: 0, dataConsumers: 0 };
}
