/** One decision's working set (Plan: projected load per worker, kept current as actions are chosen) and the small queries every stage of the decision shares. */
import type { AllocationAction, UnestimatedAction } from '../actions';
import { expectedPct, currentConsumerCostPct, attributedConsumerCostPct, riskPct, TYPICAL_LAYER_RATES, type SnapshotIndex } from '../estimate';
import { type AllocationSnapshot, type ConsumerView, type CostModel, type PendingJoin, type ProducerView, type WorkerView, packetCostPct } from '../snapshot';
import { avoidedExposure, paysForItself, type ActionCost, type Outlook } from '../worth';
import { DEGRADE_WINDOW_S } from './degrade';
import type { ForesightPolicyOptions, ForesightState } from './foresightTypes';
import { recordJoins, roomGrowth, workerGrowth, type JoinTrace } from './growth';
import { expectedOutlook, moveAvoidedExposure, reliefLoadPct, reliefNeedPct, type ExposureSide, type ReliefLoads, type ReliefRule } from './relief';

/** One decision's working set: projected p95 per worker, updated as actions are chosen. */
export class Plan {
	readonly actions: AllocationAction[] = [];
	/**
	 * Per worker: the predictor's worst p95, plus the expected growth of its rooms, plus this
	 * decision's actions. The trajectory (load()) takes the larger of tail and growth instead
	 * of both when `growthWithinTail` is on.
	 */
	private readonly projected = new Map<string, number>();
	/** The worker's own growth at the start of the decision: the part its forecast's tail may already hold (`growthWithinTail`). */
	private readonly ownGrowth = new Map<string, number>();
	/** The part of `projected` that is room growth not yet seen: enough to move load early, not to touch quality or refuse. */
	readonly expectedGrowth = new Map<string, number>();
	/** p95 minus mean of each worker's forecast: the tail that justifies a free move but not a loss of quality. */
	private readonly tail = new Map<string, number>();
	/** Each worker's trajectory before this decision's actions: what its forecast describes. */
	private readonly start = new Map<string, number>();
	/** Un-paused consumers per worker (who an overload there reaches), kept current as moves are chosen. */
	private readonly exposed = new Map<string, number>();
	/** Consumers already handled this decision: an entity gets at most one action. */
	readonly touched = new Set<string>();
	/** Workers that received or shed load this decision: not emptied in the same breath. */
	readonly changed = new Set<string>();
	/** roomId → the worker a room was moved to whole this decision (the snapshot still shows it where it was). */
	readonly relocated = new Map<string, string>();
	/** Rooms that had a joiner placed this decision: never moved whole (the snapshot does not show the joiner, who would be left behind). */
	readonly joinedRooms = new Set<string>();
	/** Rooms every sender of which joined within the growth window (see `youngRoomsGrow`). */
	readonly youngRooms = new Set<string>();
	/** Workers hosting a young room, kept current as joins are placed. */
	readonly youngHosts = new Set<string>();
	/** roomId → workerId → consuming peers there, kept current as joins are placed. */
	readonly receivers: Map<string, Map<string, Set<string>>>;
	readonly joins: JoinTrace;
	/** roomId → expected growth of one receiver's egress, % of a core per second. */
	readonly growthByRoom: Map<string, number>;
	/** workerId → growth of its load from its rooms' join trends, % of a core per second. */
	readonly growth: Map<string, number>;
	private readonly proposedAt = new Map<string, number>();
	private readonly degradedAt = new Map<string, number[]>();
	private readonly unrelieved = new Map<string, number>();
	/** Whole rooms' targets are filled on the expected load this decision: every trajectory started over the fill target (`roomTargetsOnExpected`). */
	private readonly targetsOnExpected: boolean;
	/** Workers found beyond relief in an earlier decision (reported then). */
	private readonly reportedUnrelieved: ReadonlySet<string>;

	constructor(
		readonly snapshot: AllocationSnapshot,
		readonly index: SnapshotIndex,
		readonly options: ForesightPolicyOptions,
		previous: ForesightState,
	) {
		this.receivers = receiversByRoom(index);
		this.joins = recordJoins(
			previous.joins,
			snapshot.t,
			snapshot.pendingJoins.map((join) => ({ roomId: join.roomId, egressPct: topLayerEgressPct(join, snapshot.costModel) })),
			options.growthWindowS,
		);
		this.growthByRoom = roomGrowth(this.joins, options.growthWindowS);
		this.growth = workerGrowth(this.receivers, this.growthByRoom);
		if (options.youngRoomsGrow) {
			for (const roomId in this.joins) {
				if ((index.rooms.get(roomId)?.peers ?? 0) > this.joins[roomId]!.length) continue;
				this.youngRooms.add(roomId);
				for (const w of index.rooms.get(roomId)?.workerIds ?? []) this.youngHosts.add(w);
				for (const w of this.receivers.get(roomId)?.keys() ?? []) this.youngHosts.add(w);
			}
		}
		// The trajectory a worker is planned against: the predictor's worst p95, plus what its growing rooms add over the horizon.
		for (const w of snapshot.workers) {
			const growth = (this.growth.get(w.id) ?? 0) * options.growthHorizonS;
			const risk = riskPct(w);
			this.projected.set(w.id, risk + growth);
			if (growth > 0) {
				this.expectedGrowth.set(w.id, growth);
				this.ownGrowth.set(w.id, growth);
			}
			this.tail.set(w.id, Math.max(0, risk - expectedPct(w)));
			this.start.set(w.id, risk + growth);
			this.exposed.set(w.id, (index.consumersByWorker.get(w.id) ?? []).filter((c) => !c.paused).length);
		}
		this.targetsOnExpected = options.reliefOnExpected && options.roomTargetsOnExpected && snapshot.workers.every((w) => this.load(w.id) > this.scaled(options.fillBelowPct, w));
		for (const [id, times] of Object.entries(previous.degradedAt ?? {})) {
			const recent = times.filter((x) => snapshot.t - x < DEGRADE_WINDOW_S);
			if (recent.length > 0) this.degradedAt.set(id, recent);
		}
		const reported = new Set<string>();
		for (const [id, t] of Object.entries(previous.unrelieved ?? {})) {
			if (snapshot.t - t >= options.memoryS) continue;
			reported.add(id);
			this.unrelieved.set(id, t);
		}
		this.reportedUnrelieved = reported;
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
		return { recent, joins: this.joins, degradedAt: Object.fromEntries(this.degradedAt), unrelieved: Object.fromEntries(this.unrelieved) };
	}

	/** Times of the worker's degrades within the per-minute window. */
	degradesOf(workerId: string): number[] {
		return this.degradedAt.get(workerId) ?? [];
	}

	noteDegrades(workerId: string, count: number): void {
		if (count > 0) this.degradedAt.set(workerId, [...this.degradesOf(workerId), ...Array<number>(count).fill(this.snapshot.t)]);
	}

	/** Marks the worker beyond relief now; true the first time in its episode (the decision that reports it). */
	markUnrelieved(workerId: string): boolean {
		this.unrelieved.set(workerId, this.snapshot.t);
		return !this.reportedUnrelieved.has(workerId);
	}

	/** Whether this decision proposed moving load off the worker (spread, migration, whole room). */
	movedOff(workerId: string): boolean {
		return this.actions.some((a) => (a.type === 'spreadFanout' || a.type === 'migrateProducer') && a.workerId === workerId);
	}

	/** What a receiver of `roomId` will add over the horizon as the room keeps growing. */
	receiverGrowthPct(roomId: string): number {
		return (this.growthByRoom.get(roomId) ?? 0) * this.options.growthHorizonS;
	}

	scaled(pct: number, worker: WorkerView): number {
		return pct * (worker.capacityPct / 100);
	}


	/** The trajectory: expected load after this decision's actions, plus the tail and the growth (or the larger of them, see `growthWithinTail`). */
	load(workerId: string): number {
		const sum = this.projected.get(workerId) ?? 0;
		if (!this.options.growthWithinTail) return sum;
		const own = this.ownGrowth.get(workerId) ?? 0;
		const tail = this.tail.get(workerId) ?? 0;
		return sum - own - tail + Math.max(own, tail);
	}

	add(workerId: string, deltaPct: number, growthPct = 0): void {
		this.projected.set(workerId, (this.projected.get(workerId) ?? 0) + deltaPct);
		if (growthPct !== 0) this.expectedGrowth.set(workerId, (this.expectedGrowth.get(workerId) ?? 0) + growthPct);
		// Growth that leaves takes the worker's own (what its tail may hold) with it.
		const own = this.ownGrowth.get(workerId);
		if (growthPct < 0 && own !== undefined) this.ownGrowth.set(workerId, Math.max(0, own + growthPct));
	}

	/**
	 * The load expected after this decision's actions: the trajectory without the growth
	 * extrapolation and without the forecast's tail. Quality is spent (and peers refused)
	 * only on this; moves, which cost none, act on the whole trajectory.
	 */
	expectedLoad(workerId: string): number {
		return this.forecastLoad(workerId) - (this.tail.get(workerId) ?? 0);
	}

	/** The load a whole room's new worker is filled on (see `roomTargetsOnExpected`). */
	targetLoad(workerId: string): number {
		return this.targetsOnExpected ? this.expectedLoad(workerId) : this.load(workerId);
	}

	/** The predictor's p95 after this decision's actions, without the growth extrapolation. */
	forecastLoad(workerId: string): number {
		return (this.projected.get(workerId) ?? 0) - Math.max(0, this.expectedGrowth.get(workerId) ?? 0);
	}

	/** The worker's load ahead: its forecast shifted by what this decision has moved on or off it. */
	outlook(workerId: string): Outlook {
		const w = this.index.workers.get(workerId)!;
		return {
			forecast: w.forecast,
			cpuPct: w.cpuPct,
			shiftPct: (this.projected.get(workerId) ?? 0) - (this.start.get(workerId) ?? 0),
			growthWithinTail: this.options.growthWithinTail,
			growthPctPerS: this.growth.get(workerId) ?? 0,
			growthHorizonS: this.options.growthHorizonS,
			windowS: this.options.worthWindowS,
		};
	}

	/**
	 * Whether taking `reliefPct` and `consumers` receivers off `sourceId` (onto `targetId`,
	 * when load moves) avoids more predicted exposure than `cost`, by worth.ts. Judged
	 * before the action is booked.
	 */
	pays(sourceId: string, relief: { pct: number; consumers: number }, targetId: string | undefined, cost: ActionCost): boolean {
		const line = (id: string): number => this.scaled(this.options.limitPct, this.index.workers.get(id)!);
		const side = (id: string) => ({ outlook: this.outlook(id), consumers: this.exposed.get(id) ?? 0 });
		const avoided = avoidedExposure(side(sourceId), relief, targetId === undefined ? undefined : side(targetId), line(sourceId));
		return paysForItself(avoided, cost, this.options);
	}

	/** What the consumer takes off its worker now (see `priceFromAttribution`). */
	consumerCost(consumer: ConsumerView, producer: ProducerView): number {
		const model = this.snapshot.costModel;
		return this.options.priceFromAttribution ? attributedConsumerCostPct(consumer, producer, model) : currentConsumerCostPct(consumer, producer, model);
	}

	/** The loads relief reads for a worker, after this decision's actions so far. */
	reliefLoads(workerId: string): ReliefLoads {
		return { expectedPct: this.expectedLoad(workerId), trajectoryPct: this.load(workerId) };
	}

	reliefRule(worker: WorkerView): ReliefRule {
		const o = this.options;
		return { onExpected: o.reliefOnExpected, limitPct: this.scaled(o.limitPct, worker), actAbovePct: this.scaled(o.actAbovePct, worker), relieveToPct: this.scaled(o.relieveToPct, worker) };
	}

	/** Load relief reads for the worker (expected or trajectory, by `reliefOnExpected`). */
	reliefLoad(worker: WorkerView): number {
		return reliefLoadPct(this.reliefLoads(worker.id), this.reliefRule(worker));
	}

	/** What the relief trigger says of its load, in words for the actions' reasons. */
	reliefWhy(): string {
		return this.options.reliefOnExpected ? `expected load over ${this.options.limitPct}%` : `predicted trajectory over ${this.options.actAbovePct}%`;
	}

	/**
	 * Whether a relief move pays: `relief` off `sourceId`, `targetPct` and the moved receivers
	 * onto `targetId`, `others` (workerId → pct: pipe egress) onto the producers' workers. With
	 * `reliefOnExpected`, judged on the expected load (relief.ts), pipes included; else as `pays`.
	 */
	movePays(sourceId: string, relief: { pct: number; consumers: number }, targetId: string, targetPct: number, cost: ActionCost, others: ReadonlyMap<string, number> = new Map()): boolean {
		if (!this.options.reliefOnExpected) return this.pays(sourceId, relief, targetId, cost);
		const side = (id: string): ExposureSide => ({
			outlook: expectedOutlook(this.outlook(id)),
			consumers: this.exposed.get(id) ?? 0,
			linePct: this.scaled(this.options.limitPct, this.index.workers.get(id)!),
		});
		const extra = [...others].filter(([id, pct]) => id !== sourceId && id !== targetId && pct > 0).map(([id, pct]) => ({ ...side(id), pct }));
		const avoided = moveAvoidedExposure(side(sourceId), relief, { ...side(targetId), pct: targetPct }, extra);
		return paysForItself(avoided, cost, this.options);
	}

	/** Keeps the exposed-receiver counts current after `count` consumers moved (or, without `to`, were paused or dropped). */
	moveExposed(from: string, to: string | undefined, count: number): void {
		this.exposed.set(from, (this.exposed.get(from) ?? 0) - count);
		if (to !== undefined) this.exposed.set(to, (this.exposed.get(to) ?? 0) + count);
	}

	/** Records an action whose effect on `workerId` is `deltaPct` (of which `growthPct` is expected growth). */
	act(action: UnestimatedAction, deltaPct: number, growthPct = 0): void {
		const before = this.load(action.workerId);
		this.add(action.workerId, deltaPct, growthPct);
		if (action.type !== 'refuse' && action.type !== 'redirect' && action.type !== 'cannotRelieve') this.changed.add(action.workerId);
		this.actions.push({ ...action, predictedBeforePct: before, predictedAfterPct: before + deltaPct } as AllocationAction);
	}

	producerOf(consumer: ConsumerView): ProducerView | undefined {
		return this.index.producers.get(consumer.producerId);
	}

	protectedConsumer(consumer: ConsumerView, producer: ProducerView): boolean {
		return consumer.priority >= this.options.protectPriority || producer.activeSpeaker;
	}
}

/** Consuming peers per worker in each room. */
function receiversByRoom(index: SnapshotIndex): Map<string, Map<string, Set<string>>> {
	const rooms = new Map<string, Map<string, Set<string>>>();
	for (const [workerId, consumers] of index.consumersByWorker) {
		for (const c of consumers) {
			const roomId = index.producers.get(c.producerId)?.roomId;
			if (roomId === undefined) continue;
			let workers = rooms.get(roomId);
			if (!workers) rooms.set(roomId, (workers = new Map()));
			let peers = workers.get(workerId);
			if (!peers) workers.set(workerId, (peers = new Set()));
			peers.add(c.peerId);
		}
	}
	return rooms;
}

/** Egress one receiver pays for everything `join` sends, at the top layer. */
export function topLayerEgressPct(join: PendingJoin, model: CostModel): number {
	let pct = 0;
	for (const cls of join.sends) {
		const rates = TYPICAL_LAYER_RATES[cls];
		pct += packetCostPct(rates[rates.length - 1]!, model.egressUsPerPacket);
	}
	return pct;
}

/** The item with the least `key` (the first of equals), undefined for none. */
export function leastBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
	let best: T | undefined;
	let bestKey = Number.POSITIVE_INFINITY;
	for (const item of items) {
		const k = key(item);
		if (best === undefined || k < bestKey) {
			best = item;
			bestKey = k;
		}
	}
	return best;
}

/** How much relief still has to take off the worker (≤ 0: relieved), on the load `reliefOnExpected` chooses. */
export function reliefNeed(plan: Plan, worker: WorkerView): number {
	return reliefNeedPct(plan.reliefLoads(worker.id), plan.reliefRule(worker));
}

/** How far the trajectory (or, with `expected`, the expected load) is above `thresholdPct`. */
export function overTarget(plan: Plan, worker: WorkerView, thresholdPct = plan.options.actAbovePct, expected = false): number {
	return (expected ? plan.expectedLoad(worker.id) : plan.load(worker.id)) - plan.scaled(thresholdPct, worker);
}

/** The worker with the most headroom (other than `exclude`). */
export function emptiestWorker(plan: Plan, exclude: string): WorkerView | undefined {
	let best: WorkerView | undefined;
	for (const w of plan.snapshot.workers) if (w.id !== exclude && (!best || plan.load(w.id) < plan.load(best.id))) best = w;
	return best;
}

/**
 * A migrated producer is a new producer: every consumer of it, on any worker, must be
 * re-pointed by its client, so one the app cannot move pins the producer too.
 */
export function migratable(index: SnapshotIndex, producer: ProducerView): boolean {
	return producer.movable !== false && (index.consumersByProducer.get(producer.id) ?? []).every((c) => c.movable !== false);
}
