import type { AllocationAction, AllocationPolicy, UnestimatedAction } from '../actions';
import {
	consumerCostPct,
	expectedPct,
	currentConsumerCostPct,
	attributedConsumerCostPct,
	indexSnapshot,
	joinCostPct,
	pipeCostPct,
	riskPct,
	typicalIngressRate,
	TYPICAL_LAYER_RATES,
	type SnapshotIndex,
} from '../estimate';
import type { AllocationSnapshot, ConsumerView, CostModel, PendingJoin, ProducerView, WorkerView } from '../snapshot';
import { chooseDegrades, degradeBudget, degradeCandidates, dropsAllowed, savingFloorPct, DEGRADE_WINDOW_S, type DegradeRules } from './degrade';
import { recordJoins, roomGrowth, workerGrowth, type JoinTrace } from './growth';
import { packetCostPct } from '../snapshot';
import { avoidedExposure, paysForItself, type ActionCost, type Outlook, type WorthRules } from '../worth';
import { expectedOutlook, moveAvoidedExposure, reliefDue, reliefLoadPct, reliefNeedPct, type ExposureSide, type ReliefLoads, type ReliefRule } from './relief';

export interface ForesightPolicyOptions extends DegradeRules, WorthRules {
	/** Load at which a worker counts as overloaded (and starts dropping packets near 100). */
	limitPct: number;
	/**
	 * Relief moves (whole rooms, fan-out spreading, producer migration) judged as admission
	 * keeps a joiner with its room: a worker is relieved only while its expected load (mean
	 * forecast after this decision's actions, no tail, no growth extrapolation) is over
	 * `limitPct`, down to `relieveToPct` of it, and a move goes ahead only when the exposure
	 * it is expected to avoid on that load, net of what it adds on its target and (through
	 * its pipes) on the producers' workers, pays its disruption (worth.ts). A move is a
	 * certain cost (its receivers' gap; a split room's pipes carry every simulcast layer on
	 * both workers), the forecast's tail only a risk. Likewise a room that outgrew its worker
	 * (`relocateOutgrownRooms`) moves whole only when the joiner cannot stay with it under
	 * `keepWithRoomBelowPct`, the alternative being a split, and only when that pays on the
	 * expected load. Off: relief acts on the trajectory above `actAbovePct` and is judged with
	 * the tail, and rooms move whole as soon as their worker's trajectory is over the fill
	 * target (moves earlier, splits more rooms).
	 */
	reliefOnExpected: boolean;
	/**
	 * What a consumer takes off its worker when it is moved, lowered, paused or dropped is
	 * priced by the predictor's attribution of the worker's CPU to it (when the snapshot has
	 * one), else by the cost model. The cost model is a per-packet constant; the attribution is
	 * fitted to this worker's measured CPU, so a saving is not promised that the worker will
	 * not show. Pipes, transports and producers' ingress are still priced by the cost model.
	 */
	priceFromAttribution: boolean;
	/**
	 * With `reliefOnExpected` off: rebalance when a worker's predicted trajectory (p95 plus room growth) exceeds this …
	 * Above the limit on purpose: the trajectory is a 95th percentile, so past the limit a
	 * worker filled to `fillBelowPct` runs a real risk of overload, while the p95's own noise
	 * (a point or two from second to second) no longer crosses the trigger on its own.
	 */
	actAbovePct: number;
	/**
	 * … moving load off it until the trajectory is back at this. Above `fillBelowPct`: a
	 * relieved worker is not refilled by the next joins (which relieved it again, in a loop
	 * of moved receivers), it takes joins again once its load has receded under the fill target.
	 */
	relieveToPct: number;
	/** Quality is touched only while a worker stays predicted above this after rebalancing. */
	degradeAbovePct: number;
	/**
	 * Joins and moved load fill a worker up to this predicted trajectory before another
	 * worker is opened: workers run full, idle ones stay idle (no stream, no slack).
	 */
	fillBelowPct: number;
	/**
	 * Headroom a worker must keep to take a new room's first peer: meetings grow, and a room
	 * split over many workers pays a pipe per producer and worker.
	 */
	newRoomReservePct: number;
	/** Whether a new room goes to the fullest worker that keeps the reserve (dense: fewer half-idle workers) or the emptiest (rooms grow apart). */
	newRoomOnFullest: boolean;
	/**
	 * A joiner its room's only worker cannot take moves the whole room (with the joiner) to
	 * a worker that holds it, rather than splitting it over two workers and their pipes.
	 */
	relocateOutgrownRooms: boolean;
	/** Relocate only rooms with a join trend: a churn joiner replacing a leaver is no reason to move a settled room. */
	relocateGrowingOnly: boolean;
	/** A relocated room's new worker keeps this multiple of the room's load free for its growth (at least a new room's reserve). */
	relocateHeadroom: number;
	/**
	 * With `newRoomOnFullest`: only workers none of whose rooms is growing take a new room
	 * (else the emptiest with the reserve does). Rooms that grow side by side split, and on a
	 * fleet near capacity the pipes of split rooms are what tips it over.
	 */
	newRoomAvoidsGrowth: boolean;
	/**
	 * For `newRoomAvoidsGrowth`, a young room (every sender it has joined within `growthWindowS`,
	 * one just created included) counts as growing before two joins make a trend: a room that
	 * is being created is a meeting starting, not a churn joiner replacing a leaver.
	 */
	youngRoomsGrow: boolean;
	/**
	 * Over the fill target, a joiner still goes to its room's worker while that worker's
	 * expected load (mean forecast, no tail, no growth extrapolation) stays at or below this
	 * with it: splitting the room is a certain cost (a pipe per producer and worker, each
	 * carrying every simulcast layer), the forecast's tail only a risk.
	 */
	keepWithRoomBelowPct: number;
	/**
	 * A worker's trajectory is its mean forecast plus the larger of the forecast's tail (p95 −
	 * mean) and its rooms' growth, not their sum: both stand for load not yet seen. The anchored
	 * predictor's band is learned from its matured errors (before it has them, half the level
	 * plus a point: a worker in its first minute is still filling), and while its rooms fill
	 * those errors are the very joins the growth term extrapolates. Growth that this decision
	 * moves or places onto a worker is not in its band and adds on top. Off (the default):
	 * p95 plus growth, which exposed less on the tuning seeds (figures in 46f8bb4's message).
	 */
	growthWithinTail: boolean;
	/** Joins of the last this many seconds give a room's growth rate … */
	growthWindowS: number;
	/** … which is expected to go on for this long (the trajectory's horizon). */
	growthHorizonS: number;
	/** A worker predicted at or below this, with no growing room, is emptied onto fuller ones … */
	consolidateBelowPct: number;
	/** … each of which must stay at or below this (under the fill target: a hysteresis band against moving back). */
	consolidateFillPct: number;
	/** Lightest workers tried for consolidation per decision. */
	consolidateCandidates: number;
	/** Restore degraded consumers only on workers predicted below this … */
	restoreBelowPct: number;
	/** … and only while the projection stays below this. */
	restoreCeilingPct: number;
	/** Consumers at or above this priority are never degraded. */
	protectPriority: number;
	/** A room with fewer receivers on a worker is not worth a spread. */
	minFanout: number;
	/**
	 * Relieve a hot worker by moving whole rooms that live on it alone (every receiver and
	 * producer together, no pipe left behind) before splitting a room with fan-out spreading.
	 */
	moveWholeRooms: boolean;
	maxRestoresPerWorker: number;
	/** A consumer moved or degraded is left alone this long (matches the safety cooldown). */
	memoryS: number;
	/** When set, joins that fit nowhere are redirected there instead of refused. */
	redirectTarget?: string;
}

export const FORESIGHT_DEFAULTS: Readonly<ForesightPolicyOptions> = Object.freeze({
	limitPct: 85,
	reliefOnExpected: true,
	priceFromAttribution: true,
	actAbovePct: 86,
	relieveToPct: 83,
	degradeAbovePct: 85,
	fillBelowPct: 82,
	newRoomReservePct: 20,
	newRoomOnFullest: true,
	relocateOutgrownRooms: true,
	relocateHeadroom: 1,
	relocateGrowingOnly: true,
	newRoomAvoidsGrowth: true,
	youngRoomsGrow: true,
	growthWithinTail: false,
	keepWithRoomBelowPct: 85,
	growthWindowS: 15,
	growthHorizonS: 15,
	consolidateBelowPct: 55,
	consolidateFillPct: 78,
	// None by default: emptying a light worker avoids no exposure, and every move costs its receivers (worth.ts).
	consolidateCandidates: 0,
	restoreBelowPct: 70,
	restoreCeilingPct: 72,
	protectPriority: 200,
	minFanout: 1,
	moveWholeRooms: true,
	maxRestoresPerWorker: 20,
	memoryS: 30,
	worthWindowS: 30,
	// The avoided exposure is a forecast and the cost is certain: a move must be forecast to avoid twice what it costs.
	worthMargin: 2,
	costFactor: 1,
	// Under half a top-layer video receiver (0.2 % of a core): an audio receiver's loss never pays.
	minDegradeSavingPct: 0.1,
	// With the share-of-excess floor, ten degrades cover any excess they are allowed to act on.
	maxDegradesPerWorkerPerTick: 10,
	maxDegradesPerWorkerPerMinute: 30,
});

export interface ForesightState {
	/** consumerId → time Foresight last proposed to move or degrade it */
	recent: Record<string, number>;
	/** Sending joins of the last `growthWindowS`, per room: the rooms' growth trend. */
	joins: JoinTrace;
	/** workerId → times of its degrades in the last DEGRADE_WINDOW_S (the per-minute bound). */
	degradedAt?: Record<string, number[]>;
	/** workerId → last time it was found beyond relief: reported once, until it has been relievable for `memoryS`. */
	unrelieved?: Record<string, number>;
}

/** One decision's working set: projected p95 per worker, updated as actions are chosen. */
class Plan {
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
function topLayerEgressPct(join: PendingJoin, model: CostModel): number {
	let pct = 0;
	for (const cls of join.sends) {
		const rates = TYPICAL_LAYER_RATES[cls];
		pct += packetCostPct(rates[rates.length - 1]!, model.egressUsPerPacket);
	}
	return pct;
}

/**
 * Placement by predicted trajectory with the peer's expected profile: the fullest of the
 * room's own workers that takes it (no pipes), else the fullest worker that keeps a new
 * room's reserve, else the fullest that fits at all: a worker is filled up to the fill
 * target before another is opened, so active workers run full and idle ones stay idle.
 *
 * A joiner stays with its room over the fill target while the room's worker carries it
 * under the limit on its expected load: splitting a room is a certain cost (a pipe per
 * producer and worker, each carrying every simulcast layer, on both workers), while the
 * trajectory's excess over the mean is a risk, and on a filling worker mostly the later
 * joins that this policy places (and charges) itself when they come. The room is split
 * only when its worker is expected over the limit with the peer and another is not.
 * Refuse (or redirect) only when no worker stays under the limit on its expected load.
 */
function placeJoins(plan: Plan): void {
	const { snapshot, index, options } = plan;
	const model = snapshot.costModel;
	// Egress per consumer of producers admitted earlier in this decision, per room.
	const pendingEgress = new Map<string, number>();
	for (const join of snapshot.pendingJoins) {
		let audience = plan.receivers.get(join.roomId);
		if (!audience) plan.receivers.set(join.roomId, (audience = new Map()));
		const perMember = topLayerEgressPct(join, model);
		// A receiver of a growing room takes the room's growth with it.
		const growth = join.consumes ? plan.receiverGrowthPct(join.roomId) : 0;
		const relocatedTo = plan.relocated.get(join.roomId);
		const roomWorkers = new Set(relocatedTo !== undefined ? [relocatedTo] : [...(index.rooms.get(join.roomId)?.workerIds ?? []), ...audience.keys()]);
		const costOn = (w: WorkerView): number =>
			joinCostPct(join, w.id, index, model) +
			(join.consumes ? (pendingEgress.get(join.roomId) ?? 0) : 0) +
			(audience.get(w.id)?.size ?? 0) * perMember +
			growth;
		let chosen: WorkerView | undefined;
		let chosenCost = 0;
		let reason = '';
		// A new room goes to the fullest worker that keeps it room to grow and whose own rooms
		// have stopped growing (an idle worker qualifies): rooms packed beside growing ones split
		// as they grow, paying a pipe per producer and worker. A room that outgrows its worker
		// while it grows moves whole (relocateRoom); settled rooms are packed by consolidation.
		const passes: Array<{ roomOnly: boolean; reserve: number; fullest: boolean; calm?: boolean; why: string }> = [
			{ roomOnly: true, reserve: 0, fullest: true, why: 'fullest worker of its room that takes it' },
			{ roomOnly: false, reserve: options.newRoomReservePct, fullest: options.newRoomOnFullest, calm: options.newRoomOnFullest && options.newRoomAvoidsGrowth, why: `${options.newRoomOnFullest ? 'fullest' : 'emptiest'} worker with room to grow${options.newRoomOnFullest && options.newRoomAvoidsGrowth ? ' and no growing room' : ''}` },
			{ roomOnly: false, reserve: options.newRoomReservePct, fullest: false, why: 'emptiest worker with room to grow' },
			{ roomOnly: false, reserve: 0, fullest: true, why: 'fullest worker that takes it' },
		];
		// The joiner's own trend share is a trajectory term, never part of what it is expected to cost now.
		const expectedAfter = (w: WorkerView): number => plan.expectedLoad(w.id) + costOn(w) - growth;
		const withinLimit = (w: WorkerView): boolean => expectedAfter(w) <= plan.scaled(options.limitPct, w);
		const keeps = (w: WorkerView): boolean => expectedAfter(w) <= plan.scaled(Math.min(options.keepWithRoomBelowPct, options.limitPct), w);
		for (const pass of passes) {
			for (const w of snapshot.workers) {
				if (pass.roomOnly !== roomWorkers.has(w.id) || (pass.calm === true && (plan.growth.has(w.id) || plan.youngHosts.has(w.id)))) continue;
				const cost = costOn(w);
				if (plan.load(w.id) + cost + plan.scaled(pass.reserve, w) > plan.scaled(options.fillBelowPct, w)) continue;
				if (!chosen || plan.load(w.id) > plan.load(chosen.id) === pass.fullest) {
					chosen = w;
					chosenCost = cost;
				}
			}
			if (chosen) {
				reason = pass.why;
				break;
			}
			if (!pass.roomOnly) continue;
			// Over the fill target, the room's own worker still takes its joiner while it is expected under the limit with it;
			// with `reliefOnExpected` that comes before moving the room whole, which is then done only to avoid splitting it.
			const keep = (): boolean => {
				chosen = leastBy(
					snapshot.workers.filter((w) => roomWorkers.has(w.id) && keeps(w)),
					expectedAfter,
				);
				if (!chosen) return false;
				chosenCost = costOn(chosen);
				reason = `its room's worker: over the fill target, expected under ${Math.min(options.keepWithRoomBelowPct, options.limitPct)}% with the peer`;
				return true;
			};
			if (options.reliefOnExpected && keep()) break;
			if (options.relocateOutgrownRooms && roomWorkers.size === 1 && !plan.joinedRooms.has(join.roomId) && (!options.relocateGrowingOnly || plan.growthByRoom.has(join.roomId))) {
				const moved = relocateRoom(plan, join.roomId, [...roomWorkers][0]!, costOn);
				if (moved) {
					({ chosen, cost: chosenCost } = moved);
					reason = `its room outgrew its worker and moved whole to ${chosen.id}`;
					break;
				}
			}
			if (!options.reliefOnExpected && keep()) break;
		}
		if (!chosen) {
			// No worker under the fill target, and the room's (if any) expected over the limit with the peer:
			// another worker that is expected under it is clearly better (the split's pipes included in its cost).
			const under = leastBy(snapshot.workers.filter(withinLimit), expectedAfter);
			if (under) {
				chosen = under;
				chosenCost = costOn(under);
				reason = `least expected load under the ${options.limitPct}% limit (no worker under the fill target)`;
			} else {
				// Expected over the limit everywhere: refusal is judged on the expected load, as every loss of quality is, not on the tail.
				const least = leastBy(snapshot.workers, expectedAfter)!;
				const after = expectedAfter(least);
				if (refusalPays(plan, join, least, costOn(least) - growth)) {
					const base = { peerId: join.peerId, roomId: join.roomId, workerId: least.id, reason: `every worker expected over its limit (least: ${least.id} at ${after.toFixed(0)}% with the peer)` };
					if (options.redirectTarget !== undefined) plan.act({ ...base, type: 'redirect', target: options.redirectTarget }, 0);
					else plan.act({ ...base, type: 'refuse' }, 0);
					continue;
				}
				// Admitted over the limit: with its room, where it adds no pipe, else where the least is expected.
				chosen = leastBy(
					snapshot.workers.filter((w) => roomWorkers.has(w.id)),
					expectedAfter,
				) ?? least;
				chosenCost = costOn(chosen);
				reason = roomWorkers.has(chosen.id) ? "its room's worker (every worker expected over the limit, refusal does not pay)" : 'least expected load (every worker expected over the limit, refusal does not pay)';
			}
		}
		plan.act({ type: 'place', peerId: join.peerId, roomId: join.roomId, workerId: chosen.id, reason }, chosenCost, growth);
		plan.joinedRooms.add(join.roomId);
		if (plan.youngRooms.has(join.roomId)) plan.youngHosts.add(chosen.id);
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

/** The item with the least `key` (the first of equals), undefined for none. */
function leastBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
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

/**
 * A refusal costs the peer every consumer it would have had (the room's producers); it
 * pays only when admitting it to the least loaded worker is predicted to expose more.
 */
function refusalPays(plan: Plan, join: PendingJoin, worker: WorkerView, costPct: number): boolean {
	const lost = join.consumes ? (plan.index.producersByRoom.get(join.roomId)?.length ?? 0) : 0;
	// Judged as if admitted: its load and its receivers on the worker, both taken off by the refusal.
	plan.add(worker.id, costPct);
	plan.moveExposed(worker.id, undefined, -lost);
	const pays = plan.pays(worker.id, { pct: costPct, consumers: lost }, undefined, { lost });
	plan.moveExposed(worker.id, undefined, lost);
	plan.add(worker.id, -costPct);
	return pays;
}

/**
 * A joiner its room's only worker cannot take: the whole room moves, joiner included, to
 * the fullest worker that holds it with room to grow on (`relocateHeadroom` × its load, at
 * least a new room's reserve; else without), instead of the joiner opening a second worker
 * for the room. The moves are booked as relief of the room's worker with the joiner on it,
 * the load that calls for them.
 */
function relocateRoom(plan: Plan, roomId: string, sourceId: string, costOn: (w: WorkerView) => number): { chosen: WorkerView; cost: number } | undefined {
	const source = plan.index.workers.get(sourceId);
	const room = source && plan.relocated.get(roomId) === undefined ? wholeRoom(plan, roomId, source) : undefined;
	if (!source || !room) return undefined;
	const cost = costOn(source);
	// A room that outgrew one worker is still growing: its new worker keeps room for it to grow on.
	const needed = room.relief + cost;
	const headroom = Math.max(plan.options.relocateHeadroom * needed, plan.scaled(plan.options.newRoomReservePct, source));
	const target = roomTarget(plan, source.id, needed + headroom) ?? roomTarget(plan, source.id, needed);
	if (!target) return undefined;
	plan.add(source.id, cost);
	// Judged with the joiner on the room's worker, the overload the move is there to avoid.
	const receivers = roomConsumers(room);
	const moves = room.relief + cost - (plan.options.reliefOnExpected ? room.growth : 0);
	if (!plan.movePays(source.id, { pct: moves, consumers: receivers }, target.id, moves, { migratedReceivers: receivers })) {
		plan.add(source.id, -cost);
		return undefined;
	}
	commitRoomMove(plan, source, target, room);
	plan.add(source.id, -cost);
	plan.relocated.set(roomId, target.id);
	const audience = plan.receivers.get(roomId);
	const left = audience?.get(source.id);
	if (audience && left) {
		audience.delete(source.id);
		audience.set(target.id, left);
	}
	return { chosen: target, cost };
}

/** How much relief still has to take off the worker (≤ 0: relieved), on the load `reliefOnExpected` chooses. */
function reliefNeed(plan: Plan, worker: WorkerView): number {
	return reliefNeedPct(plan.reliefLoads(worker.id), plan.reliefRule(worker));
}

/** How far the trajectory (or, with `expected`, the expected load) is above `thresholdPct`. */
function overTarget(plan: Plan, worker: WorkerView, thresholdPct = plan.options.actAbovePct, expected = false): number {
	return (expected ? plan.expectedLoad(worker.id) : plan.load(worker.id)) - plan.scaled(thresholdPct, worker);
}

/** The worker with the most headroom (other than `exclude`). */
function emptiestWorker(plan: Plan, exclude: string): WorkerView | undefined {
	let best: WorkerView | undefined;
	for (const w of plan.snapshot.workers) if (w.id !== exclude && (!best || plan.load(w.id) < plan.load(best.id))) best = w;
	return best;
}

interface WholeRoom {
	roomId: string;
	producers: ProducerView[];
	/** Consumers per producer, all on the room's worker. */
	consumers: Map<string, ConsumerView[]>;
	/** Load leaving the worker with it: ingress, egress, receive transports, and its receivers' share of the room's growth. */
	relief: number;
	growth: number;
}

/** The room as a whole if it lives entirely on `worker` (every producer and every consumer), movable and untouched. */
function wholeRoom(plan: Plan, roomId: string, worker: WorkerView): WholeRoom | undefined {
	const { index, snapshot } = plan;
	const model = snapshot.costModel;
	const producers = index.producersByRoom.get(roomId) ?? [];
	if (producers.length === 0 || plan.joinedRooms.has(roomId)) return undefined;
	const consumers = new Map<string, ConsumerView[]>();
	const receivers = new Set<string>();
	let relief = 0;
	for (const p of producers) {
		const list = index.consumersByProducer.get(p.id) ?? [];
		if (p.workerId !== worker.id || plan.touched.has(p.id) || !migratable(index, p) || list.some((c) => c.workerId !== worker.id || plan.touched.has(c.id))) return undefined;
		consumers.set(p.id, list);
		relief += packetCostPct(p.expectedPacketRate, model.ingressUsPerPacket);
		for (const c of list) {
			relief += plan.consumerCost(c, p);
			receivers.add(c.peerId);
		}
	}
	const growth = plan.receiverGrowthPct(roomId) * receivers.size;
	relief += receivers.size * model.transportPct + growth;
	return { roomId, producers, consumers, relief, growth };
}

/** Rooms hosted entirely on `worker`. */
function wholeRoomsOn(plan: Plan, worker: WorkerView): WholeRoom[] {
	const rooms: WholeRoom[] = [];
	const seen = new Set<string>();
	for (const p of plan.index.producersByWorker.get(worker.id) ?? []) {
		if (seen.has(p.roomId)) continue;
		seen.add(p.roomId);
		const room = wholeRoom(plan, p.roomId, worker);
		if (room) rooms.push(room);
	}
	return rooms;
}

/** The fullest worker other than `exclude` that takes `pct` under the fill target; light workers (consolidation's sources) last. */
function roomTarget(plan: Plan, exclude: string, pct: number): WorkerView | undefined {
	const { options } = plan;
	const light = (w: WorkerView): boolean => plan.load(w.id) <= plan.scaled(options.consolidateBelowPct, w);
	let target: WorkerView | undefined;
	for (const w of plan.snapshot.workers) {
		if (w.id === exclude || plan.load(w.id) + pct > plan.scaled(options.fillBelowPct, w)) continue;
		if (!target || (light(target) && !light(w)) || (light(target) === light(w) && plan.load(w.id) > plan.load(target.id))) target = w;
	}
	return target;
}

/**
 * Relieves a hot worker by moving whole rooms that live on it alone to one other worker:
 * every receiver and producer together, so the room stays unsplit and pays no pipe. A
 * split room pays a pipe per producer and worker, which on a fleet near capacity is what
 * runs it out; receiver spreading is left for rooms too large to move whole. The smallest
 * room that covers the need goes first (the least to re-connect); the target is the
 * fullest worker it fits on under the fill target, light workers (consolidation's sources) last.
 */
function moveWholeRooms(plan: Plan, worker: WorkerView): void {
	const rooms = wholeRoomsOn(plan, worker).sort((a, b) => a.relief - b.relief || (a.roomId < b.roomId ? -1 : 1));
	// With `reliefOnExpected` the need is in expected load, which a room's growth share is not part of.
	const counted = (r: WholeRoom): number => r.relief - (plan.options.reliefOnExpected ? r.growth : 0);
	while (rooms.length > 0) {
		const need = reliefNeed(plan, worker);
		if (need <= 0) return;
		// The smallest room that covers the need, else the largest that fits somewhere, and on.
		const covering = rooms.findIndex((r) => counted(r) >= need * 1.1);
		const order = covering >= 0 ? [covering, ...[...rooms.keys()].filter((i) => i !== covering).reverse()] : [...rooms.keys()].reverse();
		let moved = false;
		for (const i of order) {
			const target = roomTarget(plan, worker.id, rooms[i]!.relief);
			const receivers = roomConsumers(rooms[i]!);
			// Every receiver of the room waits for its producer's keyframe on the new worker.
			if (!target || !plan.movePays(worker.id, { pct: counted(rooms[i]!), consumers: receivers }, target.id, counted(rooms[i]!), { migratedReceivers: receivers })) continue;
			commitRoomMove(plan, worker, target, rooms[i]!);
			rooms.splice(i, 1);
			moved = true;
			break;
		}
		if (!moved) return;
	}
}

/** Consumers a whole-room move takes along. */
function roomConsumers(room: WholeRoom): number {
	let n = 0;
	for (const list of room.consumers.values()) n += list.filter((c) => !c.paused).length;
	return n;
}

/** One spread per producer for its receivers, then the producers: the worker's relief is booked on the last action, so the guard sees the load that called for the move on every one. */
function commitRoomMove(plan: Plan, worker: WorkerView, target: WorkerView, room: WholeRoom): void {
	const { options } = plan;
	plan.add(target.id, room.relief, room.growth);
	plan.changed.add(target.id);
	plan.moveExposed(worker.id, target.id, roomConsumers(room));
	const targetPredictedAfterPct = plan.load(target.id);
	const reason = `${plan.reliefWhy()}: room ${room.roomId} moves whole to ${target.id}`;
	const actions: UnestimatedAction[] = [];
	for (const p of room.producers) {
		const consumers = room.consumers.get(p.id)!;
		for (const c of consumers) plan.touched.add(c.id);
		if (consumers.length > 0) actions.push({ type: 'spreadFanout', intent: 'relieve', targetPredictedAfterPct, producerId: p.id, workerId: worker.id, toWorkerId: target.id, consumerIds: consumers.map((c) => c.id), reason });
	}
	for (const p of room.producers) {
		plan.touched.add(p.id);
		actions.push({ type: 'migrateProducer', intent: 'relieve', targetPredictedAfterPct, producerId: p.id, workerId: worker.id, toWorkerId: target.id, reason });
	}
	actions.forEach((action, i) => plan.act(action, i === actions.length - 1 ? -room.relief : 0, i === actions.length - 1 ? -room.growth : 0));
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
		if (!p || c.paused || c.movable === false || plan.touched.has(c.id)) continue;
		let receivers = rooms.get(p.roomId);
		if (!receivers) rooms.set(p.roomId, (receivers = new Map()));
		const list = receivers.get(c.peerId);
		if (list) list.push(c);
		else receivers.set(c.peerId, [c]);
		roomCost.set(p.roomId, (roomCost.get(p.roomId) ?? 0) + plan.consumerCost(c, p));
	}
	const ranked = [...rooms.entries()].filter(([, r]) => r.size >= options.minFanout).sort((a, b) => roomCost.get(b[0])! - roomCost.get(a[0])!);
	for (const [roomId, receivers] of ranked) {
		const need = reliefNeed(plan, worker);
		if (need <= 0) return;
		// A receiver of a growing room takes its share of the growth along (not part of the expected load `reliefOnExpected` reads).
		const growth = plan.receiverGrowthPct(roomId);
		const countedGrowth = options.reliefOnExpected ? 0 : growth;
		const batch = [...receivers.entries()]
			.map(([peerId, consumers]) => ({ peerId, consumers, relief: model.transportPct + growth + consumers.reduce((s, c) => s + plan.consumerCost(c, plan.producerOf(c)!), 0) }))
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
		while (take < batch.length && relief - (growth - countedGrowth) * take < need * 1.1) relief += batch[take++]!.relief;
		// Workers light enough to be emptied by consolidation last (moving load there undoes it),
		// then the cheapest target (pipes already there), the fullest among equals.
		const light = (w: WorkerView): boolean => plan.load(w.id) <= plan.scaled(options.consolidateBelowPct, w);
		let target: WorkerView | undefined;
		let overhead = { target: 0, sources: new Map<string, number>() };
		for (const w of snapshot.workers) {
			if (w.id === worker.id) continue;
			const o = overheadOn(w, take);
			if (plan.load(w.id) + relief + o.target > plan.scaled(options.fillBelowPct, w)) continue;
			const lighter = target !== undefined && light(w) && !light(target);
			const heavier = target === undefined || (!light(w) && light(target));
			const cheaper = heavier || (!lighter && total(o) < total(overhead) - 0.05);
			const asCheapButFuller = target !== undefined && !lighter && !heavier && Math.abs(total(o) - total(overhead)) <= 0.05 && plan.load(w.id) > plan.load(target.id);
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
		const movedConsumers = moved.reduce((n, r) => n + r.consumers.length, 0);
		const uncounted = (growth - countedGrowth) * take;
		if (!plan.movePays(worker.id, { pct: relief - uncounted - selfCost, consumers: movedConsumers }, target.id, relief - uncounted + overhead.target, { movedConsumers }, overhead.sources)) continue;
		plan.moveExposed(worker.id, target.id, movedConsumers);
		const movedGrowth = growth * take;
		plan.add(target.id, relief + overhead.target, movedGrowth);
		plan.changed.add(target.id);
		const targetPredictedAfterPct = plan.load(target.id);
		for (const [workerId, cost] of overhead.sources) if (workerId !== worker.id) plan.add(workerId, cost);
		const byProducer = new Map<string, { ids: string[]; relief: number }>();
		for (const { consumers } of moved) {
			for (const c of consumers) {
				const p = plan.producerOf(c)!;
				let entry = byProducer.get(p.id);
				if (!entry) byProducer.set(p.id, (entry = { ids: [], relief: 0 }));
				entry.ids.push(c.id);
				entry.relief += plan.consumerCost(c, p);
				plan.touched.add(c.id);
			}
		}
		// Transports leaving this worker and pipes out of it are booked on the first action.
		let shared = take * model.transportPct + movedGrowth - selfCost;
		let sharedGrowth = movedGrowth;
		for (const [producerId, entry] of byProducer) {
			plan.act(
				{ type: 'spreadFanout', intent: 'relieve', targetPredictedAfterPct, producerId, workerId: worker.id, toWorkerId: target.id, consumerIds: entry.ids, reason: `${plan.reliefWhy()}: serve ${entry.ids.length} consumers from ${target.id}` },
				-(entry.relief + shared),
				-sharedGrowth,
			);
			shared = 0;
			sharedGrowth = 0;
		}
	}
}

/**
 * A migrated producer is a new producer: every consumer of it, on any worker, must be
 * re-pointed by its client, so one the app cannot move pins the producer too.
 */
function migratable(index: SnapshotIndex, producer: ProducerView): boolean {
	return producer.movable !== false && (index.consumersByProducer.get(producer.id) ?? []).every((c) => c.movable !== false);
}

/** Producers whose consumers all run elsewhere move next to their largest audience. */
function migrateProducers(plan: Plan, worker: WorkerView): void {
	const { index, snapshot } = plan;
	const model = snapshot.costModel;
	for (const p of index.producersByWorker.get(worker.id) ?? []) {
		if (reliefNeed(plan, worker) <= 0) return;
		if (!migratable(index, p)) continue;
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
		const receivers = consumers.filter((c) => !c.paused).length;
		// It relieves this worker of ingress and pipes; no receiver moves, each waits for a keyframe.
		const onTarget = ingress - pipe.target + pipe.source * (targets.size - 1);
		if (!plan.movePays(worker.id, { pct: relief, consumers: 0 }, target.id, onTarget, { migratedReceivers: receivers })) continue;
		plan.add(target.id, onTarget);
		plan.changed.add(target.id);
		plan.touched.add(p.id);
		plan.act({ type: 'migrateProducer', intent: 'relieve', targetPredictedAfterPct: plan.load(target.id), producerId: p.id, workerId: worker.id, toWorkerId: target.id, reason: 'no local consumers: producer moves to its audience' }, -relief);
	}
}

/**
 * Consolidation: when load recedes, the lightest worker with no growing room is emptied
 * onto the fullest workers that stay under the consolidation target, so load sits on
 * few well-used workers instead of many half-idle ones. All or nothing: a worker half
 * emptied still runs (and still idles), so it is emptied only if every receiver and
 * producer on it fits elsewhere. The bands make it hysteretic: sources at or below
 * `consolidateBelowPct`, targets kept at or below `consolidateFillPct` (under the fill
 * target and well under the relief trigger), and moved streams then sit out the cooldown.
 */
function consolidate(plan: Plan): void {
	const { snapshot, index, options } = plan;
	const hosting = snapshot.workers.filter((w) => index.consumersByWorker.has(w.id) || index.producersByWorker.has(w.id));
	if (hosting.length < 2) return;
	const candidates = hosting
		.filter((w) => !plan.changed.has(w.id) && plan.load(w.id) <= plan.scaled(options.consolidateBelowPct, w) && !plan.growth.has(w.id))
		.sort((a, b) => plan.load(a.id) - plan.load(b.id))
		.slice(0, options.consolidateCandidates);
	for (const source of candidates) {
		// Cheap bound first: the others' room under the target must at least hold the source's load.
		let room = 0;
		for (const w of hosting) if (w.id !== source.id) room += Math.max(0, plan.scaled(options.consolidateFillPct, w) - plan.load(w.id));
		if (room < plan.load(source.id) - plan.snapshot.costModel.workerBasePct) continue;
		const evacuation = planEvacuation(plan, source, hosting);
		if (!evacuation) continue;
		commitEvacuation(plan, source, evacuation);
		return;
	}
}

interface Evacuation {
	receivers: Array<{ peerId: string; consumers: ConsumerView[]; relief: number; target: string }>;
	producers: Array<{ producer: ProducerView; relief: number; target: string }>;
	/** Projected load of every target once all has moved. */
	loads: Map<string, number>;
}

/** Where everything on `source` would go, or undefined when something fits nowhere (or moved too recently). */
function planEvacuation(plan: Plan, source: WorkerView, hosting: readonly WorkerView[]): Evacuation | undefined {
	const { index, snapshot, options } = plan;
	const model = snapshot.costModel;
	const consumers = index.consumersByWorker.get(source.id) ?? [];
	const producers = index.producersByWorker.get(source.id) ?? [];
	const stays = (e: { id: string; movable?: boolean }): boolean => e.movable === false || plan.touched.has(e.id);
	if (consumers.some(stays) || producers.some(stays) || !producers.every((p) => migratable(index, p))) return undefined;
	const targets = hosting.filter((w) => w.id !== source.id);
	const loads = new Map(targets.map((w) => [w.id, plan.load(w.id)]));
	const fits = (w: WorkerView, cost: number): boolean => loads.get(w.id)! + cost <= plan.scaled(options.consolidateFillPct, w);
	// producerId → workers it will be piped to (or live on) once the evacuation is done.
	const reach = new Map<string, Set<string>>();
	const reachOf = (p: ProducerView): Set<string> => {
		let set = reach.get(p.id);
		if (!set) reach.set(p.id, (set = new Set([p.workerId, ...(index.pipedTo.get(p.id) ?? [])])));
		return set;
	};
	const byPeer = new Map<string, ConsumerView[]>();
	for (const c of consumers) {
		const list = byPeer.get(c.peerId);
		if (list) list.push(c);
		else byPeer.set(c.peerId, [c]);
	}
	const receivers: Evacuation['receivers'] = [];
	const roomOf = (list: readonly ConsumerView[]): string | undefined => plan.producerOf(list[0]!)?.roomId;
	const planned = [...byPeer.entries()]
		.map(([peerId, list]) => ({ peerId, consumers: list, relief: model.transportPct + list.reduce((s, c) => s + plan.consumerCost(c, plan.producerOf(c)!), 0) }))
		.sort((a, b) => b.relief - a.relief || (a.peerId < b.peerId ? -1 : 1));
	for (const receiver of planned) {
		const roomId = roomOf(receiver.consumers);
		const roomWorkers = roomId === undefined ? undefined : plan.receivers.get(roomId);
		const costOn = (w: WorkerView): number => {
			let cost = receiver.relief;
			for (const c of receiver.consumers) {
				const p = plan.producerOf(c)!;
				if (!reachOf(p).has(w.id)) cost += pipeCostPct(p, model).target;
			}
			return cost;
		};
		// The room's other workers first (its pipes are there), then the fullest that fits.
		let best: WorkerView | undefined;
		let bestInRoom = false;
		for (const w of targets) {
			const cost = costOn(w);
			if (!fits(w, cost)) continue;
			const inRoom = roomWorkers?.has(w.id) ?? false;
			if (!best || (inRoom && !bestInRoom) || (inRoom === bestInRoom && loads.get(w.id)! > loads.get(best.id)!)) {
				best = w;
				bestInRoom = inRoom;
			}
		}
		if (!best) return undefined;
		loads.set(best.id, loads.get(best.id)! + costOn(best));
		for (const c of receiver.consumers) reachOf(plan.producerOf(c)!).add(best.id);
		receivers.push({ ...receiver, target: best.id });
	}
	const targetOfPeer = new Map(receivers.map((r) => [r.peerId, r.target]));
	const moved: Evacuation['producers'] = [];
	for (const p of producers) {
		const pipe = pipeCostPct(p, model);
		const audience = new Map<string, number>();
		for (const c of index.consumersByProducer.get(p.id) ?? []) {
			const at = c.workerId === source.id ? targetOfPeer.get(c.peerId)! : c.workerId;
			audience.set(at, (audience.get(at) ?? 0) + 1);
		}
		const ingress = packetCostPct(p.expectedPacketRate, model.ingressUsPerPacket);
		// On a worker of its audience it no longer needs a pipe there; it pipes to every other one.
		const costOn = (w: WorkerView): number => ingress + pipe.source * (audience.size - (audience.has(w.id) ? 1 : 0)) - (audience.has(w.id) ? pipe.target : 0);
		let best: WorkerView | undefined;
		for (const w of targets) {
			if (!fits(w, costOn(w))) continue;
			const larger = (audience.get(w.id) ?? 0) - (best ? (audience.get(best.id) ?? 0) : -1);
			if (!best || larger > 0 || (larger === 0 && loads.get(w.id)! > loads.get(best.id)!)) best = w;
		}
		if (!best) return undefined;
		loads.set(best.id, loads.get(best.id)! + costOn(best));
		moved.push({ producer: p, relief: ingress + pipe.source * audience.size, target: best.id });
	}
	return { receivers, producers: moved, loads };
}

function commitEvacuation(plan: Plan, source: WorkerView, evacuation: Evacuation): void {
	const model = plan.snapshot.costModel;
	const reason = (what: string): string => `consolidate: ${source.id} predicted at ${plan.load(source.id).toFixed(0)}% with no growing room, ${what}`;
	// One action per producer and target: receivers going to the same worker share it, and its pipe.
	const groups = new Map<string, { producerId: string; target: string; consumers: ConsumerView[]; relief: number }>();
	for (const receiver of evacuation.receivers) {
		// The receive transport leaves with the peer's first consumer.
		let transport = model.transportPct;
		for (const c of receiver.consumers) {
			plan.touched.add(c.id);
			const key = `${c.producerId}\u0000${receiver.target}`;
			let group = groups.get(key);
			if (!group) groups.set(key, (group = { producerId: c.producerId, target: receiver.target, consumers: [], relief: 0 }));
			group.consumers.push(c);
			group.relief += transport + plan.consumerCost(c, plan.producerOf(c)!);
			transport = 0;
		}
	}
	for (const { producerId, target, consumers, relief } of groups.values()) {
		plan.act(
			{
				type: 'spreadFanout',
				intent: 'consolidate',
				targetPredictedAfterPct: evacuation.loads.get(target)!,
				producerId,
				workerId: source.id,
				toWorkerId: target,
				consumerIds: consumers.map((c) => c.id),
				reason: reason(`serve ${consumers.length} consumers from ${target}`),
			},
			-relief,
		);
	}
	for (const { producer, relief, target } of evacuation.producers) {
		plan.touched.add(producer.id);
		plan.act(
			{ type: 'migrateProducer', intent: 'consolidate', targetPredictedAfterPct: evacuation.loads.get(target)!, producerId: producer.id, workerId: source.id, toWorkerId: target, reason: reason(`producer moves to ${target}`) },
			-relief,
		);
	}
	for (const [workerId, load] of evacuation.loads) {
		if (load === plan.load(workerId)) continue;
		plan.add(workerId, load - plan.load(workerId));
		plan.changed.add(workerId);
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

/**
 * Quality is spent only on an overload the measurement already confirms: a forecast
 * alone (a new screen share is expected at its burst rate until profiled) earns free
 * moves, never a loss of quality.
 */
function measuredOver(plan: Plan, worker: WorkerView, thresholdPct: number): boolean {
	return worker.cpuPct > plan.scaled(thresholdPct, worker);
}

/** Another worker light enough to be idle (consolidation's notion) that takes `pct` under the fill target. */
function idleWorkerWithHeadroom(plan: Plan, exclude: string, pct: number): boolean {
	const { options } = plan;
	return plan.snapshot.workers.some((w) => w.id !== exclude && plan.load(w.id) <= plan.scaled(options.consolidateBelowPct, w) && plan.load(w.id) + pct <= plan.scaled(options.fillBelowPct, w));
}

/**
 * Spends quality on a worker the moves could not relieve, by the rules of degrade.ts:
 * only on a measured overload, within the per-tick and per-minute bounds, each action
 * above the saving floor, drops only as part of a set that relieves the worker. A
 * worker nothing allowed can relieve gets the cheapest effective actions (if any) and
 * is reported once.
 */
function degrade(plan: Plan, worker: WorkerView): void {
	const { options, snapshot } = plan;
	if (!measuredOver(plan, worker, options.degradeAbovePct)) return;
	const excess = overTarget(plan, worker, options.degradeAbovePct, true);
	if (excess <= 0) return;
	const budget = degradeBudget(plan.degradesOf(worker.id), snapshot.t, options);
	const floor = savingFloorPct(excess, budget, worker.capacityPct, options);
	const underLimit = !measuredOver(plan, worker, options.limitPct);
	const moveFirst = !dropsAllowed(idleWorkerWithHeadroom(plan, worker.id, excess), plan.movedOff(worker.id));
	const drops = !underLimit && !moveFirst;
	const choice = chooseDegrades(degradeCandidates(degradable(plan, worker, true), snapshot.costModel, (c, p) => plan.consumerCost(c, p)), { excessPct: excess, floorPct: floor, budget, dropsAllowed: drops });
	const count = (kind: string): number => choice.take.filter((c) => c.kind === kind).length;
	const off = count('pauseConsumer') + count('dropConsumer');
	const saving = choice.take.reduce((sum, c) => sum + c.savingPct, 0);
	const cost = { downgraded: count('setConsumerLayers'), paused: count('pauseConsumer'), lost: count('dropConsumer'), forS: options.worthWindowS };
	// Quality is spent only where the exposure it spares the worker's other receivers is worth more.
	if (choice.take.length > 0 && !plan.pays(worker.id, { pct: saving, consumers: off }, undefined, cost)) return;
	plan.moveExposed(worker.id, undefined, off);
	const line = `${options.degradeAbovePct}% of capacity`;
	for (const c of choice.take) {
		plan.touched.add(c.consumerId);
		const base = { consumerId: c.consumerId, workerId: worker.id, savingFloorPct: floor };
		const saves = `saves ${c.savingPct.toFixed(2)} pp (floor ${floor.toFixed(2)})`;
		if (c.kind === 'setConsumerLayers') plan.act({ ...base, type: c.kind, spatial: c.layers!.spatial, temporal: c.layers!.temporal, reason: `expected load over ${line} after rebalancing: lower a low-priority consumer, ${saves}` }, -c.savingPct);
		else plan.act({ ...base, type: c.kind, reason: `expected load over ${line} after cheaper actions: ${c.kind === 'pauseConsumer' ? 'pause' : 'drop'} a low-priority consumer, ${saves}` }, -c.savingPct);
	}
	plan.noteDegrades(worker.id, choice.take.length);
	if (choice.verdict === 'relieves' || !plan.markUnrelieved(worker.id)) return;
	const noDrops = underLimit ? `, no drops under the ${options.limitPct}% limit` : moveFirst ? ', no drops while an idle worker could take load that was not moved' : '';
	plan.act(
		{
			type: 'cannotRelieve',
			workerId: worker.id,
			reason:
				`cannot relieve: expected ${plan.expectedLoad(worker.id).toFixed(2)}% is ${excess.toFixed(2)} pp over ${line}; the ${budget} degrades allowed now (each saving ≥ ${floor.toFixed(2)} pp` +
				`${noDrops}) save at most ${choice.bestSavingPct.toFixed(2)} pp`,
		},
		0,
	);
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
 * Foresight: places joins on every worker's predicted trajectory (the predictor's worst p95
 * over its horizons plus the growth its rooms' join trends will bring) and acts before
 * the overload with the cheapest action that suffices: placement that fills a worker
 * before opening another, then, only on the expected load (never on the tail or the
 * extrapolation, see `reliefOnExpected`), fan-out spreading and producer migration that
 * pay for their disruption and pipes, lower layers, pause, drop, and refusal at admission. When load recedes, light workers are emptied onto fuller ones.
 * Active speakers and high-priority consumers are never degraded; quality is restored
 * only well below the action band.
 */
export function foresightPolicy(overrides: Partial<ForesightPolicyOptions> = {}): AllocationPolicy<ForesightState> {
	const options: ForesightPolicyOptions = { ...FORESIGHT_DEFAULTS, ...overrides };
	return {
		name: 'foresight',
		initialState: () => ({ recent: {}, joins: {} }),
		decide(snapshot, state) {
			const plan = new Plan(snapshot, indexSnapshot(snapshot), options, state);
			placeJoins(plan);
			const hottest = [...snapshot.workers].sort((a, b) => plan.reliefLoad(b) - plan.reliefLoad(a));
			for (const worker of hottest) {
				if (!reliefDue(plan.reliefLoads(worker.id), plan.reliefRule(worker))) break;
				if (options.moveWholeRooms) moveWholeRooms(plan, worker);
				spreadFanout(plan, worker);
				migrateProducers(plan, worker);
				degrade(plan, worker);
			}
			consolidate(plan);
			for (const worker of snapshot.workers) restore(plan, worker);
			return { actions: plan.actions, state: plan.nextState() };
		},
	};
}
