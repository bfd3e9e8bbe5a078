import type { MigrateProducerAction, SpreadFanoutAction } from '../allocate/actions';
import { currentConsumerCostPct, expectedPct, indexSnapshot, pipeCostPct, riskPct, type SnapshotIndex } from '../allocate/estimate';
import { FORESIGHT_DEFAULTS } from '../allocate/policies/foresight';
import { packetCostPct, type AllocationSnapshot, type ConsumerView, type ProducerView, type WorkerView } from '../allocate/snapshot';
import { expectedSecondsOver, paysForItself, QUALITY_PRICE, type WorthRules } from '../allocate/worth';
import { canTake, reservedPct } from './decide';
import type { HostReport, Reservation } from './types';

/**
 * Cross-host relief as a pure function of this host's snapshot and the shared view: when
 * a worker here is predicted over its line and this host has no room left to relieve it
 * within itself, part of its fan-out goes to another host that reported predicted
 * headroom (its receivers consume the room's producers there, over a cross-host pipe),
 * and a producer whose local audience has all gone along follows it. A move is proposed
 * only when the exposure it is expected to save pays for the disruption it causes, both in
 * consumer-seconds, priced and judged as Foresight's moves within a host (worth.ts: the
 * evaluation's prices, with its margin). The caller
 * carries the moves out (make-before-break hooks, or the simulator) and books each one's
 * load on its target as a reservation, so other hosts do not fill the same room.
 */

/**
 * Seconds without media a move costs each receiver: the allocation's published prices
 * (plugin/allocate/worth.ts QUALITY_PRICE, docs/allocation-metrics.md "Quality cost").
 */
export const MOVE_DISRUPTION_S = Object.freeze({ movedConsumer: QUALITY_PRICE.movedConsumerS, migratedProducerReceiver: QUALITY_PRICE.migratedReceiverS });

export interface CrossHostReliefOptions extends WorthRules {
	/** A consumer on a worker above this share of its capacity is exposed (the overload line exposure is counted at). */
	limitPct: number;
	/**
	 * A worker whose expected load (the forecast's mean, not its p95) is above this is hot: a
	 * move between hosts costs its receivers media, and Foresight judges every action that
	 * costs quality on the expected load (its degrade trigger), leaving the p95 to free moves.
	 */
	hotAbovePct: number;
	/** Moves take load off until the worst p95 is back at this. */
	relieveToPct: number;
	/** A remote worker takes a move only if its reported p95 stays at or below this after it (Foresight's fill target). */
	fillBelowPct: number;
	/** Moves proposed per decision at most (every spread and migration counts); the safety guard rate-limits on top. */
	maxMoves: number;
}

export const CROSS_HOST_RELIEF_DEFAULTS: Readonly<CrossHostReliefOptions> = Object.freeze({
	limitPct: FORESIGHT_DEFAULTS.limitPct,
	hotAbovePct: FORESIGHT_DEFAULTS.degradeAbovePct,
	relieveToPct: FORESIGHT_DEFAULTS.relieveToPct,
	fillBelowPct: FORESIGHT_DEFAULTS.fillBelowPct,
	// A burst of cross-host moves is what the guard's per-entity cooldown cannot see coming; one room per decision is enough to follow a trend.
	maxMoves: 8,
	// Priced and judged as Foresight prices and judges its moves within a host (worthMargin, costFactor, worthWindowS).
	worthMargin: FORESIGHT_DEFAULTS.worthMargin,
	costFactor: FORESIGHT_DEFAULTS.costFactor,
	worthWindowS: FORESIGHT_DEFAULTS.worthWindowS,
});

export interface CrossHostReliefInput {
	selfId: string;
	/** This host's own part: its workers, producers and their consumers. */
	snapshot: AllocationSnapshot;
	/** Live hosts other than this one (liveHosts()). */
	hosts: readonly HostReport[];
	reservations: readonly Reservation[];
	nowMs: number;
}

export interface CrossHostMove {
	action: SpreadFanoutAction | MigrateProducerAction;
	targetHost: string;
	/** Load the move adds on the target host's worker, % of a core: the reservation to book. */
	costPct: number;
	roomId: string;
	/** Expected exposure the move saves, consumer-seconds within the forecast horizon. */
	exposureSavedS: number;
	/** Receivers' seconds without media it costs. */
	disruptionS: number;
}

/**
 * Expected seconds the worker spends above `linePct` (% of one core) within `windowS` if its
 * load moved by `deltaPct`, as Foresight's own moves are judged (worth.ts expectedSecondsOver:
 * the forecast read as a normal distribution with its mean and p95, the last horizon held to
 * the end of the window).
 */
export function expectedOverS(worker: WorkerView, linePct: number, deltaPct = 0, windowS: number = CROSS_HOST_RELIEF_DEFAULTS.worthWindowS): number {
	return expectedSecondsOver({ forecast: worker.forecast, cpuPct: worker.cpuPct, shiftPct: deltaPct, growthPctPerS: 0, growthHorizonS: 0, windowS }, linePct);
}

/** A receiving peer's consumers of one room on the hot worker, and what moving them takes off it. */
interface Receiver {
	peerId: string;
	consumers: ConsumerView[];
	/** Its consumers' egress and its receive transport, % of a core. */
	reliefPct: number;
}

/** A remote worker that could take load, as its host reported it, less what is already reserved on that host. */
interface RemoteWorker {
	host: HostReport;
	workerId: string;
	availablePct: number;
	/** Its reported worst p95 plus what is reserved on its host, % of a core. */
	loadPct: number;
	holdsRoom: boolean;
}

function remoteWorkers(input: CrossHostReliefInput, roomId: string, fillScale: (capacityPct: number) => number): RemoteWorker[] {
	const out: RemoteWorker[] = [];
	for (const host of input.hosts) {
		const reserved = reservedPct(input.reservations, host.hostId, input.nowMs);
		for (const w of host.workers) {
			// headroomPct is before the reporter's fill target; this decision's own fill target may differ.
			const load = (w.capacityPct * FORESIGHT_DEFAULTS.fillBelowPct) / 100 - w.headroomPct + reserved;
			const available = fillScale(w.capacityPct) - load;
			if (available > 0) out.push({ host, workerId: w.workerId, availablePct: available, loadPct: load, holdsRoom: w.rooms.includes(roomId) });
		}
	}
	// The room's hosts first (its media is piped there already), then the most room.
	return out.sort((a, b) => Number(b.holdsRoom) - Number(a.holdsRoom) || b.availablePct - a.availablePct);
}

/** Receivers of each room on `worker`, movable and un-paused, largest load first. */
function receiversByRoom(index: SnapshotIndex, snapshot: AllocationSnapshot, worker: WorkerView): Map<string, Receiver[]> {
	const model = snapshot.costModel;
	const byRoom = new Map<string, Map<string, Receiver>>();
	for (const c of index.consumersByWorker.get(worker.id) ?? []) {
		const p = index.producers.get(c.producerId);
		if (!p || c.paused || c.movable === false) continue;
		let room = byRoom.get(p.roomId);
		if (!room) byRoom.set(p.roomId, (room = new Map()));
		let r = room.get(c.peerId);
		if (!r) room.set(c.peerId, (r = { peerId: c.peerId, consumers: [], reliefPct: model.transportPct }));
		r.consumers.push(c);
		r.reliefPct += currentConsumerCostPct(c, p, model);
	}
	const out = new Map<string, Receiver[]>();
	for (const [roomId, room] of byRoom) out.set(roomId, [...room.values()].sort((a, b) => b.reliefPct - a.reliefPct));
	return out;
}

/**
 * The moves this host should make now, cheapest relief first; empty when no worker is hot,
 * when the host can relieve its hot workers within itself (cheaper: no pipe between hosts;
 * the local policy does it), or when no move saves more exposure than it disrupts.
 */
export function decideCrossHostRelief(input: CrossHostReliefInput, options: CrossHostReliefOptions = CROSS_HOST_RELIEF_DEFAULTS): CrossHostMove[] {
	const { snapshot } = input;
	const model = snapshot.costModel;
	const index = indexSnapshot(snapshot);
	const scale = (pct: number, capacityPct: number): number => (pct * capacityPct) / 100;
	const risk = new Map(snapshot.workers.map((w) => [w.id, riskPct(w)]));
	const moves: CrossHostMove[] = [];
	/** Load booked on remote workers by this decision. */
	const booked = new Map<string, number>();
	const hot = snapshot.workers.filter((w) => expectedPct(w) > scale(options.hotAbovePct, w.capacityPct)).sort((a, b) => risk.get(b.id)! - risk.get(a.id)!);
	for (const worker of hot) {
		if (moves.length >= options.maxMoves) break;
		let need = risk.get(worker.id)! - scale(options.relieveToPct, worker.capacityPct);
		// Room the host's other workers have before their fill targets: if it covers the need, the local policy relieves the worker.
		const spare = snapshot.workers.reduce((s, w) => (w.id === worker.id ? s : s + Math.max(0, scale(options.fillBelowPct, w.capacityPct) - risk.get(w.id)!)), 0);
		if (spare >= need) continue;
		const line = scale(options.limitPct, worker.capacityPct);
		// Exposure counts every consumer on the worker, also those of other hosts' producers the snapshot does not list.
		const listed = index.consumersByWorker.get(worker.id) ?? [];
		const exposedNow = Math.max(worker.consumers, listed.length) - listed.filter((c) => c.paused).length;
		let relievedPct = 0;
		let movedConsumers = 0;
		const rooms = [...receiversByRoom(index, snapshot, worker).entries()].sort((a, b) => sum(b[1]) - sum(a[1]));
		for (const [roomId, receivers] of rooms) {
			if (need <= 0 || moves.length >= options.maxMoves) break;
			const candidates = remoteWorkers(input, roomId, (cap) => scale(options.fillBelowPct, cap));
			for (const target of candidates) {
				const targetBooked = booked.get(target.workerId) ?? 0;
				const plan = planSpread(index, model, worker, receivers, need, target.availablePct - targetBooked);
				if (!plan) continue;
				// The host-level bound every cross-host decision keeps (reservations and this host's share of the target's headroom).
				const bookedOnHost = [...booked.entries()].filter(([id]) => target.host.workers.some((w) => w.workerId === id)).reduce((s, [, v]) => s + v, 0);
				if (!canTake(target.host, { selfId: input.selfId, costPct: plan.targetCostPct + bookedOnHost, hosts: input.hosts, reservations: input.reservations, nowMs: input.nowMs }).ok) continue;
				const before = exposedNow - movedConsumers;
				const over = (delta: number): number => expectedOverS(worker, line, delta, options.worthWindowS);
				const saved = before * over(-relievedPct) - (before - plan.consumers.length) * over(-(relievedPct + plan.sourceReliefPct));
				const disruption = plan.consumers.length * MOVE_DISRUPTION_S.movedConsumer * options.costFactor;
				if (!paysForItself(saved, { movedConsumers: plan.consumers.length }, options)) continue;
				const riskBefore = risk.get(worker.id)! - relievedPct;
				const targetAfter = target.loadPct + targetBooked + plan.targetCostPct;
				const byProducer = new Map<string, ConsumerView[]>();
				for (const c of plan.consumers) {
					const list = byProducer.get(c.producerId);
					if (list) list.push(c);
					else byProducer.set(c.producerId, [c]);
				}
				let first = true;
				for (const [producerId, consumers] of byProducer) {
					moves.push({
						action: {
							type: 'spreadFanout',
							intent: 'relieve',
							producerId,
							workerId: worker.id,
							toWorkerId: target.workerId,
							consumerIds: consumers.map((c) => c.id),
							predictedBeforePct: riskBefore,
							predictedAfterPct: riskBefore - plan.sourceReliefPct,
							targetPredictedAfterPct: targetAfter,
							reason: `predicted over ${options.limitPct}% with no room on this host: ${consumers.length} consumers served from host ${target.host.hostId} (saves ${saved.toFixed(0)} exposed consumer-s for ${disruption} s of disruption)`,
						},
						targetHost: target.host.hostId,
						// The whole batch's load is booked once, on its first action.
						costPct: first ? plan.targetCostPct : 0,
						roomId,
						exposureSavedS: first ? saved : 0,
						disruptionS: consumers.length * MOVE_DISRUPTION_S.movedConsumer,
					});
					first = false;
				}
				booked.set(target.workerId, targetBooked + plan.targetCostPct);
				relievedPct += plan.sourceReliefPct;
				movedConsumers += plan.consumers.length;
				need -= plan.sourceReliefPct;
				// A producer here whose every listed consumer has just left with the spread follows its audience, if that saves more than it disrupts.
				for (const p of index.producersByWorker.get(worker.id) ?? []) {
					if (p.roomId !== roomId || p.movable === false || moves.length >= options.maxMoves) continue;
					const all = index.consumersByProducer.get(p.id) ?? [];
					if (all.length === 0 || all.some((c) => c.movable === false || !plan.consumers.includes(c))) continue;
					const migration = migrationOf(p, model, all.length);
					const room = target.availablePct - (booked.get(target.workerId) ?? 0);
					if (migration.targetCostPct > room) continue;
					const b = exposedNow - movedConsumers;
					const s = b * (expectedOverS(worker, line, -relievedPct, options.worthWindowS) - expectedOverS(worker, line, -(relievedPct + migration.sourceReliefPct), options.worthWindowS));
					const d = all.length * MOVE_DISRUPTION_S.migratedProducerReceiver * options.costFactor;
					if (!paysForItself(s, { migratedReceivers: all.length }, options)) continue;
					const pb = risk.get(worker.id)! - relievedPct;
					moves.push({
						action: {
							type: 'migrateProducer',
							intent: 'relieve',
							producerId: p.id,
							workerId: worker.id,
							toWorkerId: target.workerId,
							predictedBeforePct: pb,
							predictedAfterPct: pb - migration.sourceReliefPct,
							reason: `its receivers here moved to host ${target.host.hostId}: the producer follows (saves ${s.toFixed(0)} exposed consumer-s for ${d} s of disruption)`,
						},
						targetHost: target.host.hostId,
						costPct: migration.targetCostPct,
						roomId,
						exposureSavedS: s,
						disruptionS: d,
					});
					booked.set(target.workerId, (booked.get(target.workerId) ?? 0) + migration.targetCostPct);
					relievedPct += migration.sourceReliefPct;
					need -= migration.sourceReliefPct;
				}
				break;
			}
		}
	}
	return moves;
}

const sum = (receivers: readonly Receiver[]): number => receivers.reduce((s, r) => s + r.reliefPct, 0);

/**
 * Receivers of one room taken off `worker` (largest first) until the need is covered with a
 * margin, or all; what leaves the worker net of the pipes its producers then feed to the
 * other host, and what the target pays (their egress, transports, pipe ingress). Undefined
 * when the target cannot take even the first receiver or the move mostly feeds pipes.
 */
function planSpread(index: SnapshotIndex, model: AllocationSnapshot['costModel'], worker: WorkerView, receivers: readonly Receiver[], needPct: number, roomPct: number): { consumers: ConsumerView[]; sourceReliefPct: number; targetCostPct: number } | undefined {
	const cost = (take: number): { relief: number; target: number; consumers: ConsumerView[] } => {
		const consumers = receivers.slice(0, take).flatMap((r) => r.consumers);
		const producers = new Map<string, ProducerView>();
		for (const c of consumers) producers.set(c.producerId, index.producers.get(c.producerId)!);
		let relief = 0;
		for (let i = 0; i < take; i++) relief += receivers[i]!.reliefPct;
		let target = relief;
		// One pipe per producer to the other host: plain-RTP egress where the producer runs, pipe ingress there.
		for (const p of producers.values()) {
			const pipe = pipeCostPct(p, model);
			if (p.workerId === worker.id) relief -= pipe.source;
			target += pipe.target;
		}
		return { relief, target, consumers };
	};
	let take = 0;
	let best: ReturnType<typeof cost> | undefined;
	while (take < receivers.length) {
		const next = cost(take + 1);
		if (next.target > roomPct) break;
		best = next;
		take++;
		if (next.relief >= needPct * 1.1) break;
	}
	if (!best) return undefined;
	const gross = receivers.slice(0, take).reduce((s, r) => s + r.reliefPct, 0);
	// A move whose relief mostly goes into the pipes it opens is not worth disrupting anyone.
	if (best.relief < gross / 2) return undefined;
	return { consumers: best.consumers, sourceReliefPct: best.relief, targetCostPct: best.target };
}

/** A producer with no receiver left here moved to the other host: its ingress and the pipe out go, the target takes its ingress instead of the pipe's. */
function migrationOf(p: ProducerView, model: AllocationSnapshot['costModel'], _receivers: number): { sourceReliefPct: number; targetCostPct: number } {
	const ingress = packetCostPct(p.expectedPacketRate, model.ingressUsPerPacket);
	const pipe = pipeCostPct(p, model);
	return { sourceReliefPct: ingress + pipe.source, targetCostPct: Math.max(0, ingress - pipe.target) };
}

/**
 * This host's snapshot as its own policy should see it once `moves` are under way: the
 * moved consumers and migrated producers gone, their worker's load (measured and forecast)
 * lowered by what the moves take off it, so the local policy neither relieves the same
 * worker twice nor touches media that is leaving.
 */
export function afterMoves(snapshot: AllocationSnapshot, moves: readonly CrossHostMove[]): AllocationSnapshot {
	if (moves.length === 0) return snapshot;
	const movedConsumers = new Set<string>();
	const movedProducers = new Set<string>();
	const relief = new Map<string, number>();
	for (const m of moves) {
		const a = m.action;
		if (a.type === 'spreadFanout') for (const id of a.consumerIds) movedConsumers.add(id);
		else movedProducers.add(a.producerId);
		relief.set(a.workerId, (relief.get(a.workerId) ?? 0) + (a.predictedBeforePct - a.predictedAfterPct));
	}
	return {
		...snapshot,
		workers: snapshot.workers.map((w) => {
			const r = relief.get(w.id);
			if (!r) return w;
			return { ...w, cpuPct: Math.max(0, w.cpuPct - r), forecast: w.forecast.map((f) => ({ ...f, meanPct: Math.max(0, f.meanPct - r), p95Pct: Math.max(0, f.p95Pct - r) })) };
		}),
		producers: snapshot.producers.filter((p) => !movedProducers.has(p.id)),
		consumers: snapshot.consumers.filter((c) => !movedConsumers.has(c.id) && !movedProducers.has(c.producerId)),
	};
}
