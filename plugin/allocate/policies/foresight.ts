import type { AllocationAction, AllocationPolicy, UnestimatedAction } from '../actions';
import {
	consumerCostPct,
	currentConsumerCostPct,
	indexSnapshot,
	joinCostPct,
	pipeCostPct,
	riskPct,
	typicalIngressRate,
	TYPICAL_LAYER_RATES,
	type SnapshotIndex,
} from '../estimate';
import type { AllocationSnapshot, ConsumerView, PendingJoin, ProducerView, WorkerView } from '../snapshot';
import { packetCostPct } from '../snapshot';

export interface ForesightPolicyOptions {
	/** Load at which a worker counts as overloaded (and starts dropping packets near 100). */
	limitPct: number;
	/** Act when a worker's predicted p95 exceeds this; corrective actions aim back below it. */
	actAbovePct: number;
	/** Quality is touched only while a worker stays predicted above this after rebalancing. */
	degradeAbovePct: number;
	/** Joins and moved load may fill a worker up to this predicted p95. */
	fillBelowPct: number;
	/**
	 * Headroom a room's new worker should keep for the room's growth: meetings grow, and a
	 * room split over many workers pays a pipe per producer and worker.
	 */
	roomReservePct: number;
	/** Restore degraded consumers only on workers predicted below this … */
	restoreBelowPct: number;
	/** … and only while the projection stays below this. */
	restoreCeilingPct: number;
	/** Consumers at or above this priority are never degraded. */
	protectPriority: number;
	/** A room with fewer receivers on a worker is not worth a spread. */
	minFanout: number;
	maxRestoresPerWorker: number;
	/** A consumer moved or degraded is left alone this long (matches the safety cooldown). */
	memoryS: number;
	/** When set, joins that fit nowhere are redirected there instead of refused. */
	redirectTarget?: string;
}

export const FORESIGHT_DEFAULTS: Readonly<ForesightPolicyOptions> = Object.freeze({
	limitPct: 85,
	actAbovePct: 77,
	degradeAbovePct: 84,
	fillBelowPct: 72,
	roomReservePct: 20,
	restoreBelowPct: 70,
	restoreCeilingPct: 72,
	protectPriority: 200,
	minFanout: 1,
	maxRestoresPerWorker: 20,
	memoryS: 30,
});

export interface ForesightState {
	/** consumerId → time Foresight last proposed to move or degrade it */
	recent: Record<string, number>;
}

/** One decision's working set: projected p95 per worker, updated as actions are chosen. */
class Plan {
	readonly actions: AllocationAction[] = [];
	readonly projected = new Map<string, number>();
	/** Consumers already handled this decision: an entity gets at most one action. */
	readonly touched = new Set<string>();
	private readonly proposedAt = new Map<string, number>();

	constructor(
		readonly snapshot: AllocationSnapshot,
		readonly index: SnapshotIndex,
		readonly options: ForesightPolicyOptions,
		previous: ForesightState,
	) {
		for (const w of snapshot.workers) this.projected.set(w.id, riskPct(w));
		// Proposals the guard may have held back are not repeated until its cooldown is over; other candidates go first.
		for (const id in previous.recent) {
			const t = previous.recent[id]!;
			if (snapshot.t - t >= options.memoryS) continue;
			this.touched.add(id);
			this.proposedAt.set(id, t);
		}
	}

	/** State to carry: recent proposals still inside the memory window, plus this decision's. */
	nextState(): ForesightState {
		const recent: Record<string, number> = {};
		for (const id of this.touched) recent[id] = this.proposedAt.get(id) ?? this.snapshot.t;
		return { recent };
	}


	load(workerId: string): number {
		return this.projected.get(workerId) ?? 0;
	}

	add(workerId: string, deltaPct: number): void {
		this.projected.set(workerId, this.load(workerId) + deltaPct);
	}

	/** Records an action whose effect on `workerId` is `deltaPct`. */
	act(action: UnestimatedAction, deltaPct: number): void {
		const before = this.load(action.workerId);
		this.add(action.workerId, deltaPct);
		this.actions.push({ ...action, predictedBeforePct: before, predictedAfterPct: before + deltaPct } as AllocationAction);
	}

	producerOf(consumer: ConsumerView): ProducerView | undefined {
		return this.index.producers.get(consumer.producerId);
	}

	protectedConsumer(consumer: ConsumerView, producer: ProducerView): boolean {
		return consumer.priority >= this.options.protectPriority || producer.activeSpeaker;
	}
}

/** Consuming peers per worker in each room, kept current as joins are placed. */
function roomAudience(plan: Plan, roomId: string, cache: Map<string, Map<string, Set<string>>>): Map<string, Set<string>> {
	let audience = cache.get(roomId);
	if (audience) return audience;
	audience = new Map();
	for (const p of plan.index.producersByRoom.get(roomId) ?? []) {
		for (const c of plan.index.consumersByProducer.get(p.id) ?? []) {
			let peers = audience.get(c.workerId);
			if (!peers) audience.set(c.workerId, (peers = new Set()));
			peers.add(c.peerId);
		}
	}
	cache.set(roomId, audience);
	return audience;
}

function topLayerEgressPct(join: PendingJoin, plan: Plan): number {
	let pct = 0;
	for (const cls of join.sends) {
		const rates = TYPICAL_LAYER_RATES[cls];
		pct += packetCostPct(rates[rates.length - 1]!, plan.snapshot.costModel.egressUsPerPacket);
	}
	return pct;
}

/**
 * Placement by predicted p95 with the peer's expected profile: the room's own workers
 * first (no pipes), then best fit among the rest so active workers run full and idle ones
 * stay idle; refuse (or redirect) only when no worker stays under the limit.
 */
function placeJoins(plan: Plan): void {
	const { snapshot, index, options } = plan;
	const model = snapshot.costModel;
	const audiences = new Map<string, Map<string, Set<string>>>();
	// Egress per consumer of producers admitted earlier in this decision, per room.
	const pendingEgress = new Map<string, number>();
	for (const join of snapshot.pendingJoins) {
		const audience = roomAudience(plan, join.roomId, audiences);
		const perMember = topLayerEgressPct(join, plan);
		const roomWorkers = new Set([...(index.rooms.get(join.roomId)?.workerIds ?? []), ...audience.keys()]);
		const costOn = (w: WorkerView): number =>
			joinCostPct(join, w.id, index, model) +
			(join.consumes ? (pendingEgress.get(join.roomId) ?? 0) : 0) +
			(audience.get(w.id)?.size ?? 0) * perMember;
		let chosen: WorkerView | undefined;
		let chosenCost = 0;
		let reason = '';
		// Room workers first (no new pipes). A room that outgrows its workers (or a new room) opens the emptiest worker so it can grow there unsplit.
		const passes: Array<{ roomOnly: boolean; reserve: number; fullest: boolean; why: string }> = [
			{ roomOnly: true, reserve: 0, fullest: true, why: 'fits on a worker of its room' },
			{ roomOnly: false, reserve: options.roomReservePct, fullest: false, why: 'emptiest worker, room to grow' },
			{ roomOnly: false, reserve: 0, fullest: true, why: 'best fit by predicted p95' },
		];
		for (const pass of passes) {
			for (const w of snapshot.workers) {
				if (pass.roomOnly !== roomWorkers.has(w.id)) continue;
				const cost = costOn(w);
				if (plan.load(w.id) + cost + pass.reserve > options.fillBelowPct * (w.capacityPct / 100)) continue;
				if (!chosen || plan.load(w.id) > plan.load(chosen.id) === pass.fullest) {
					chosen = w;
					chosenCost = cost;
				}
			}
			if (chosen) {
				reason = pass.why;
				break;
			}
		}
		if (!chosen) {
			let best = snapshot.workers[0]!;
			for (const w of snapshot.workers) if (plan.load(w.id) + costOn(w) < plan.load(best.id) + costOn(best)) best = w;
			const after = plan.load(best.id) + costOn(best);
			if (after > options.limitPct * (best.capacityPct / 100)) {
				const base = { peerId: join.peerId, roomId: join.roomId, workerId: best.id, reason: `every worker predicted over its limit (least: ${best.id} at ${after.toFixed(0)}% with the peer)` };
				if (options.redirectTarget !== undefined) plan.act({ ...base, type: 'redirect', target: options.redirectTarget }, 0);
				else plan.act({ ...base, type: 'refuse' }, 0);
				continue;
			}
			chosen = best;
			chosenCost = costOn(best);
			reason = 'least predicted p95 (no worker under the fill target)';
		}
		plan.act({ type: 'place', peerId: join.peerId, roomId: join.roomId, workerId: chosen.id, reason }, chosenCost);
		// The newcomer's producers are consumed by the members on other workers too.
		for (const [workerId, peers] of audience) {
			if (workerId === chosen.id) continue;
			plan.add(workerId, peers.size * perMember + (join.sends.length > 0 ? packetCostPct(join.sends.reduce((s, c) => s + typicalIngressRate(c), 0), model.pipeIngressUsPerPacket) : 0));
		}
		if (join.consumes) {
			let peers = audience.get(chosen.id);
			if (!peers) audience.set(chosen.id, (peers = new Set()));
			peers.add(join.peerId);
		}
		pendingEgress.set(join.roomId, (pendingEgress.get(join.roomId) ?? 0) + perMember);
	}
}

function overTarget(plan: Plan, worker: WorkerView, thresholdPct = plan.options.actAbovePct): number {
	return plan.load(worker.id) - thresholdPct * (worker.capacityPct / 100);
}

/** The worker with the most headroom (other than `exclude`). */
function emptiestWorker(plan: Plan, exclude: string): WorkerView | undefined {
	let best: WorkerView | undefined;
	for (const w of plan.snapshot.workers) if (w.id !== exclude && (!best || plan.load(w.id) < plan.load(best.id))) best = w;
	return best;
}

/**
 * Serves receivers from another worker through pipes, the room with the most load here
 * first. A receiver moves whole (all its consumers, so its receive transport leaves this
 * worker) and a room's receivers move together to one target, so pipes are shared and
 * few. It costs no quality: one pipe per producer and target, one transport per receiver.
 */
function spreadFanout(plan: Plan, worker: WorkerView): void {
	const { index, snapshot, options } = plan;
	const model = snapshot.costModel;
	// room → receiver peer → its consumers on this worker
	const rooms = new Map<string, Map<string, ConsumerView[]>>();
	const roomCost = new Map<string, number>();
	for (const c of index.consumersByWorker.get(worker.id) ?? []) {
		const p = plan.producerOf(c);
		if (!p || c.paused || plan.touched.has(c.id)) continue;
		let receivers = rooms.get(p.roomId);
		if (!receivers) rooms.set(p.roomId, (receivers = new Map()));
		const list = receivers.get(c.peerId);
		if (list) list.push(c);
		else receivers.set(c.peerId, [c]);
		roomCost.set(p.roomId, (roomCost.get(p.roomId) ?? 0) + currentConsumerCostPct(c, p, model));
	}
	const ranked = [...rooms.entries()].filter(([, r]) => r.size >= options.minFanout).sort((a, b) => roomCost.get(b[0])! - roomCost.get(a[0])!);
	for (const [, receivers] of ranked) {
		const need = overTarget(plan, worker);
		if (need <= 0) return;
		const batch = [...receivers.entries()]
			.map(([peerId, consumers]) => ({ peerId, consumers, relief: model.transportPct + consumers.reduce((s, c) => s + currentConsumerCostPct(c, plan.producerOf(c)!, model), 0) }))
			.sort((a, b) => b.relief - a.relief);
		/** Pipes a move to `w` needs: what `w` pays on top of the moved load, and what each producer's worker pays. */
		const overheadOn = (w: WorkerView, take: number): { target: number; sources: Map<string, number> } => {
			const producers = new Set<ProducerView>();
			let transports = 0;
			for (let i = 0; i < take; i++) {
				for (const c of batch[i]!.consumers) producers.add(plan.producerOf(c)!);
				if (!index.recvTransports.get(w.id)?.has(batch[i]!.peerId)) transports++;
			}
			// The moved relief includes this worker's transports; the target pays its own.
			let target = (transports - take) * model.transportPct;
			const sources = new Map<string, number>();
			for (const p of producers) {
				if (p.workerId === w.id || index.pipedTo.get(p.id)?.has(w.id)) continue;
				const pipe = pipeCostPct(p, model);
				target += pipe.target;
				sources.set(p.workerId, (sources.get(p.workerId) ?? 0) + pipe.source);
			}
			return { target, sources };
		};
		const total = (o: { target: number; sources: Map<string, number> }): number => o.target + [...o.sources.values()].reduce((a, b) => a + b, 0);
		// Take receivers until the need is covered (with a margin against estimate error).
		let relief = 0;
		let take = 0;
		while (take < batch.length && relief < need * 1.1) relief += batch[take++]!.relief;
		// Cheapest target first (pipes already there), fullest among equals.
		let target: WorkerView | undefined;
		let overhead = { target: 0, sources: new Map<string, number>() };
		for (const w of snapshot.workers) {
			if (w.id === worker.id) continue;
			const o = overheadOn(w, take);
			if (plan.load(w.id) + relief + o.target > options.fillBelowPct * (w.capacityPct / 100)) continue;
			const cheaper = !target || total(o) < total(overhead) - 0.05;
			const asCheapButFuller = target !== undefined && Math.abs(total(o) - total(overhead)) <= 0.05 && plan.load(w.id) > plan.load(target.id);
			if (cheaper || asCheapButFuller) {
				target = w;
				overhead = o;
			}
		}
		if (!target) {
			// Nothing takes the whole batch: give the emptiest worker what fits.
			const emptiest = emptiestWorker(plan, worker.id);
			if (!emptiest) return;
			const room = options.fillBelowPct * (emptiest.capacityPct / 100) - plan.load(emptiest.id);
			relief = 0;
			take = 0;
			while (take < batch.length && relief + batch[take]!.relief + overheadOn(emptiest, take + 1).target <= room) relief += batch[take++]!.relief;
			if (take === 0) continue;
			target = emptiest;
			overhead = overheadOn(emptiest, take);
		}
		// Pipes out of this worker eat into the relief; a move that mostly feeds pipes is not worth it.
		const selfCost = overhead.sources.get(worker.id) ?? 0;
		if (relief - selfCost < relief / 2) continue;
		const moved = batch.slice(0, take);
		plan.add(target.id, relief + overhead.target);
		for (const [workerId, cost] of overhead.sources) if (workerId !== worker.id) plan.add(workerId, cost);
		const byProducer = new Map<string, { ids: string[]; relief: number }>();
		for (const { consumers } of moved) {
			for (const c of consumers) {
				const p = plan.producerOf(c)!;
				let entry = byProducer.get(p.id);
				if (!entry) byProducer.set(p.id, (entry = { ids: [], relief: 0 }));
				entry.ids.push(c.id);
				entry.relief += currentConsumerCostPct(c, p, model);
				plan.touched.add(c.id);
			}
		}
		// Transports leaving this worker and pipes out of it are booked on the first action.
		let shared = take * model.transportPct - selfCost;
		for (const [producerId, entry] of byProducer) {
			plan.act({ type: 'spreadFanout', producerId, workerId: worker.id, toWorkerId: target.id, consumerIds: entry.ids, reason: `predicted p95 over ${options.actAbovePct}%: serve ${entry.ids.length} consumers from ${target.id}` }, -(entry.relief + shared));
			shared = 0;
		}
	}
}

/** Producers whose consumers all run elsewhere move next to their largest audience. */
function migrateProducers(plan: Plan, worker: WorkerView): void {
	const { index, snapshot } = plan;
	const model = snapshot.costModel;
	for (const p of index.producersByWorker.get(worker.id) ?? []) {
		if (overTarget(plan, worker) <= 0) return;
		const consumers = index.consumersByProducer.get(p.id) ?? [];
		if (consumers.some((c) => c.workerId === worker.id && !plan.touched.has(c.id))) continue;
		const targets = index.pipedTo.get(p.id);
		if (!targets || targets.size === 0) continue;
		const pipe = pipeCostPct(p, model);
		const relief = packetCostPct(p.expectedPacketRate, model.ingressUsPerPacket) + pipe.source * targets.size;
		const ingress = packetCostPct(p.expectedPacketRate, model.ingressUsPerPacket);
		let target: WorkerView | undefined;
		for (const id of targets) {
			const w = index.workers.get(id);
			if (!w) continue;
			const cost = ingress - pipe.target + pipe.source * (targets.size - 1);
			if (plan.load(id) + cost > plan.options.fillBelowPct * (w.capacityPct / 100)) continue;
			if (!target || plan.load(id) < plan.load(target.id)) target = w;
		}
		if (!target) continue;
		plan.add(target.id, ingress - pipe.target + pipe.source * (targets.size - 1));
		plan.touched.add(p.id);
		plan.act({ type: 'migrateProducer', producerId: p.id, workerId: worker.id, toWorkerId: target.id, reason: 'no local consumers: producer moves to its audience' }, -relief);
	}
}

/** Degradable consumers on a worker, least important first. */
function degradable(plan: Plan, worker: WorkerView, includeAudio: boolean): Array<{ consumer: ConsumerView; producer: ProducerView }> {
	const list: Array<{ consumer: ConsumerView; producer: ProducerView }> = [];
	for (const c of plan.index.consumersByWorker.get(worker.id) ?? []) {
		const p = plan.producerOf(c);
		if (!p || plan.touched.has(c.id) || plan.protectedConsumer(c, p)) continue;
		if (!includeAudio && p.mediaClass === 'audio') continue;
		list.push({ consumer: c, producer: p });
	}
	return list.sort((a, b) => a.consumer.priority - b.consumer.priority || (a.consumer.id < b.consumer.id ? -1 : 1));
}

function lowerLayers(plan: Plan, worker: WorkerView): void {
	const model = plan.snapshot.costModel;
	for (const { consumer, producer } of degradable(plan, worker, false)) {
		if (overTarget(plan, worker, plan.options.degradeAbovePct) <= 0) return;
		if (consumer.paused || consumer.current.spatial === 0 || producer.layers.length < 2) continue;
		const lower = { spatial: consumer.current.spatial - 1, temporal: consumer.current.temporal };
		const saving = consumerCostPct(producer, consumer.current, model) - consumerCostPct(producer, lower, model);
		plan.touched.add(consumer.id);
		plan.act({ type: 'setConsumerLayers', consumerId: consumer.id, workerId: worker.id, spatial: lower.spatial, temporal: lower.temporal, reason: `predicted p95 over ${plan.options.degradeAbovePct}% after rebalancing: lower a low-priority consumer` }, -saving);
	}
}

function pauseOrDrop(plan: Plan, worker: WorkerView, type: 'pauseConsumer' | 'dropConsumer'): void {
	const model = plan.snapshot.costModel;
	const threshold = type === 'dropConsumer' ? plan.options.limitPct : plan.options.degradeAbovePct;
	for (const { consumer, producer } of degradable(plan, worker, type === 'dropConsumer')) {
		if (plan.load(worker.id) <= threshold * (worker.capacityPct / 100)) return;
		if (type === 'pauseConsumer' && consumer.paused) continue;
		plan.touched.add(consumer.id);
		plan.act({ type, consumerId: consumer.id, workerId: worker.id, reason: `predicted p95 over ${threshold}% after cheaper actions` }, -currentConsumerCostPct(consumer, producer, model));
	}
}

/** Gives quality back, most important consumers first, while the projection stays low. */
function restore(plan: Plan, worker: WorkerView): void {
	const { options, snapshot } = plan;
	const model = snapshot.costModel;
	const scale = worker.capacityPct / 100;
	if (plan.load(worker.id) >= options.restoreBelowPct * scale) return;
	const degraded = (plan.index.consumersByWorker.get(worker.id) ?? [])
		.filter((c) => c.paused || c.current.spatial < c.wanted.spatial || c.current.temporal < c.wanted.temporal)
		.sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : 1));
	let restored = 0;
	for (const c of degraded) {
		if (restored >= options.maxRestoresPerWorker) return;
		const p = plan.producerOf(c);
		if (!p || plan.touched.has(c.id)) continue;
		const extra = c.paused ? consumerCostPct(p, c.current, model) : consumerCostPct(p, c.wanted, model) - consumerCostPct(p, c.current, model);
		if (plan.load(worker.id) + extra > options.restoreCeilingPct * scale) return;
		plan.touched.add(c.id);
		plan.act({ type: c.paused ? 'resumeConsumer' : 'restoreLayers', consumerId: c.id, workerId: worker.id, reason: `predicted p95 under ${options.restoreBelowPct}%: restore` }, extra);
		restored++;
	}
}

/**
 * Foresight: acts on the predictor's p95 at every horizon, before the overload, with the
 * cheapest action that suffices: placement, fan-out spreading, producer migration, lower
 * layers, pause, drop, and refusal at admission. Active speakers and high-priority
 * consumers are never degraded; quality is restored only well below the action band.
 */
export function foresightPolicy(overrides: Partial<ForesightPolicyOptions> = {}): AllocationPolicy<ForesightState> {
	const options: ForesightPolicyOptions = { ...FORESIGHT_DEFAULTS, ...overrides };
	return {
		name: 'foresight',
		initialState: () => ({ recent: {} }),
		decide(snapshot, state) {
			const plan = new Plan(snapshot, indexSnapshot(snapshot), options, state);
			placeJoins(plan);
			const hottest = [...snapshot.workers].sort((a, b) => plan.load(b.id) - plan.load(a.id));
			for (const worker of hottest) {
				if (overTarget(plan, worker) <= 0) break;
				spreadFanout(plan, worker);
				migrateProducers(plan, worker);
				lowerLayers(plan, worker);
				pauseOrDrop(plan, worker, 'pauseConsumer');
				pauseOrDrop(plan, worker, 'dropConsumer');
			}
			for (const worker of snapshot.workers) restore(plan, worker);
			return { actions: plan.actions, state: plan.nextState() };
		},
	};
}
