import type {
	AllocationSnapshot,
	ConsumerView,
	CostModel,
	LayerChoice,
	MediaClass,
	PendingJoin,
	ProducerView,
	RoomView,
	WorkerView,
} from './snapshot';
import { packetCostPct } from './snapshot';

/**
 * Load estimates shared by every policy: what a stream costs where, and what a
 * worker's load would become after an action. Built only from snapshot data.
 */

/** Typical per-layer packet rates of a freshly joining sender, before its profile exists. */
export const TYPICAL_LAYER_RATES: Readonly<Record<MediaClass, readonly number[]>> = Object.freeze({
	// 720p VP8 simulcast: low, mid, top ≈ 30 + 60 + 150 pkt/s ≈ 2.5 Mbit/s.
	video: [30, 60, 150],
	audio: [50],
	// A screen share idles at a few pkt/s and bursts on slide changes; p95, not the mean.
	screen: [400],
});

/** Share of a spatial layer's packets kept at each temporal layer (L1T3: 1/4, 1/2, all). */
const TEMPORAL_SHARE = [0.25, 0.5, 1] as const;

export function temporalShare(temporal: number): number {
	return TEMPORAL_SHARE[Math.max(0, Math.min(TEMPORAL_SHARE.length - 1, temporal))]!;
}

/** Packets per second a consumer receives at `choice` (the SFU never forwards an inactive layer). */
export function consumerPacketRate(producer: ProducerView, choice: LayerChoice): number {
	if (producer.layers.length === 0) return producer.expectedPacketRate;
	if (producer.layers.length === 1) return producer.layers[0]!.packetRate * (producer.mediaClass === 'audio' ? 1 : temporalShare(choice.temporal));
	const spatial = Math.max(0, Math.min(producer.layers.length - 1, choice.spatial));
	return producer.layers[spatial]!.packetRate * temporalShare(choice.temporal);
}

export function consumerCostPct(producer: ProducerView, choice: LayerChoice, model: CostModel): number {
	return packetCostPct(consumerPacketRate(producer, choice), model.egressUsPerPacket);
}

/** What a consumer costs now (zero while paused). */
export function currentConsumerCostPct(consumer: ConsumerView, producer: ProducerView, model: CostModel): number {
	return consumer.paused ? 0 : consumerCostPct(producer, consumer.current, model);
}

/**
 * What a consumer costs now by the predictor's attribution when the snapshot carries one, else
 * by the cost model (zero while paused): the CPU a move or a degrade takes off its worker.
 */
export function attributedConsumerCostPct(consumer: ConsumerView, producer: ProducerView, model: CostModel): number {
	if (consumer.paused) return 0;
	return consumer.attributedPct ?? consumerCostPct(producer, consumer.current, model);
}

/** Extra load on the producer's worker (plain-RTP egress) and on the receiving one (pipe ingress). */
export function pipeCostPct(producer: ProducerView, model: CostModel): { source: number; target: number } {
	return {
		source: packetCostPct(producer.expectedPacketRate, model.pipeEgressUsPerPacket),
		target: packetCostPct(producer.expectedPacketRate, model.pipeIngressUsPerPacket),
	};
}

/** The forecast a policy plans against: the worst p95 over the predictor's horizons. */
export function riskPct(worker: WorkerView): number {
	let risk = worker.cpuPct;
	for (const f of worker.forecast) risk = Math.max(risk, f.p95Pct);
	return risk;
}

/** The expected load over the predictor's horizons (mean, not p95): what quality-costing actions are judged on. */
export function expectedPct(worker: WorkerView): number {
	let expected = worker.cpuPct;
	for (const f of worker.forecast) expected = Math.max(expected, f.meanPct);
	return expected;
}

export interface SnapshotIndex {
	workers: Map<string, WorkerView>;
	producers: Map<string, ProducerView>;
	rooms: Map<string, RoomView>;
	producersByWorker: Map<string, ProducerView[]>;
	producersByRoom: Map<string, ProducerView[]>;
	consumersByWorker: Map<string, ConsumerView[]>;
	consumersByProducer: Map<string, ConsumerView[]>;
	/** producerId → workers that receive it through a pipe. */
	pipedTo: Map<string, Set<string>>;
	/** Distinct receive transports per worker (peer × worker pairs with consumers). */
	recvTransports: Map<string, Set<string>>;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
	const list = map.get(key);
	if (list) list.push(value);
	else map.set(key, [value]);
}

export function indexSnapshot(snapshot: AllocationSnapshot): SnapshotIndex {
	const index: SnapshotIndex = {
		workers: new Map(snapshot.workers.map((w) => [w.id, w])),
		producers: new Map(),
		rooms: new Map(snapshot.rooms.map((r) => [r.id, r])),
		producersByWorker: new Map(),
		producersByRoom: new Map(),
		consumersByWorker: new Map(),
		consumersByProducer: new Map(),
		pipedTo: new Map(),
		recvTransports: new Map(),
	};
	for (const p of snapshot.producers) {
		index.producers.set(p.id, p);
		push(index.producersByWorker, p.workerId, p);
		push(index.producersByRoom, p.roomId, p);
	}
	for (const c of snapshot.consumers) {
		push(index.consumersByWorker, c.workerId, c);
		push(index.consumersByProducer, c.producerId, c);
		const producer = index.producers.get(c.producerId);
		if (producer && producer.workerId !== c.workerId) {
			let set = index.pipedTo.get(producer.id);
			if (!set) index.pipedTo.set(producer.id, (set = new Set()));
			set.add(c.workerId);
		}
		let transports = index.recvTransports.get(c.workerId);
		if (!transports) index.recvTransports.set(c.workerId, (transports = new Set()));
		transports.add(c.peerId);
	}
	return index;
}

/** Expected ingress packet rate of a sender that has not produced yet. */
export function typicalIngressRate(mediaClass: MediaClass): number {
	return TYPICAL_LAYER_RATES[mediaClass].reduce((a, b) => a + b, 0);
}

/** Expected egress packet rate of one consumer of a producer at the top layer. */
function topLayerRate(producer: ProducerView): number {
	return consumerPacketRate(producer, { spatial: producer.layers.length - 1, temporal: 2 });
}

/**
 * Load a join sent to `awayId` still leaves on its room's worker `homeId`: the pipe
 * ingress of what it sends (forwarded to the room's receivers there), that stream's egress
 * to those `receiversHome` receivers (`perReceiverPct` each), and a pipe egress (every
 * layer) per room producer on `homeId` not yet piped to `awayId`, which the joiner consumes.
 */
export function splitLeftPct(
	join: PendingJoin,
	homeId: string,
	awayId: string,
	receiversHome: number,
	perReceiverPct: number,
	index: SnapshotIndex,
	model: CostModel,
	/** Pipes (`producerId>workerId`) already opened by the same decision. */
	booked: ReadonlySet<string> = new Set(),
): number {
	let left = receiversHome * perReceiverPct;
	if (join.sends.length > 0 && receiversHome > 0) left += packetCostPct(join.sends.reduce((s, c) => s + typicalIngressRate(c), 0), model.pipeIngressUsPerPacket);
	if (join.consumes) {
		for (const p of index.producersByRoom.get(join.roomId) ?? []) {
			if (p.workerId === homeId && !index.pipedTo.get(p.id)?.has(awayId) && !booked.has(`${p.id}>${awayId}`)) left += pipeCostPct(p, model).source;
		}
	}
	return left;
}

/**
 * Load a join adds to `workerId` if placed there: its own ingress, receive transport,
 * egress of everything it will consume, and pipe ingress for room producers that are
 * not yet piped there. Its producers' egress to other members lands on their workers
 * whatever the choice, except for members on `workerId` itself.
 */
export function joinCostPct(join: PendingJoin, workerId: string, index: SnapshotIndex, model: CostModel): number {
	let cost = 0;
	for (const cls of join.sends) cost += packetCostPct(typicalIngressRate(cls), model.ingressUsPerPacket);
	const roomProducers = index.producersByRoom.get(join.roomId) ?? [];
	if (join.consumes && roomProducers.length > 0) {
		cost += model.transportPct;
		for (const p of roomProducers) {
			cost += packetCostPct(topLayerRate(p), model.egressUsPerPacket);
			if (p.workerId !== workerId && !index.pipedTo.get(p.id)?.has(workerId)) cost += pipeCostPct(p, model).target;
		}
	}
	return cost;
}
