/** Admission: where each pending join goes, when its room moves whole instead of splitting, and when a refusal pays. */
import { joinCostPct, pipeCostPct, splitLeftPct, typicalIngressRate } from '../estimate';
import { type PendingJoin, type WorkerView, packetCostPct } from '../snapshot';
import { wholeRoom, roomTarget, roomConsumers, commitRoomMove } from './foresightMoves';
import { type Plan, topLayerEgressPct, leastBy } from './foresightPlan';
import { splitRelieves } from './relief';

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
export function placeJoins(plan: Plan): void {
	const { snapshot, index, options } = plan;
	const model = snapshot.costModel;
	// Egress per consumer of producers admitted earlier in this decision, per room.
	const pendingEgress = new Map<string, number>();
	// Pipes this decision's joins open (producer>worker), each paid once.
	const pipesBooked = new Set<string>();
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
			// another worker that is expected under it is better (the split's pipes included in its cost),
			// if sending the peer there takes the room's worker under the limit (`splitOnlyToRelieve`).
			const under = leastBy(snapshot.workers.filter(withinLimit), expectedAfter);
			const home = leastBy(
				snapshot.workers.filter((w) => roomWorkers.has(w.id)),
				expectedAfter,
			);
			const left = (from: WorkerView, to: WorkerView): number =>
				splitLeftPct(join, from.id, to.id, audience.get(from.id)?.size ?? 0, perMember, index, model, pipesBooked);
			if (options.splitOnlyToRelieve && under && home && !roomWorkers.has(under.id) && !splitRelieves({ expectedPct: plan.expectedLoad(home.id), linePct: plan.scaled(options.limitPct, home) }, left(home, under))) {
				chosen = home;
				chosenCost = costOn(home);
				reason = `its room's worker: sent to ${under.id}, the peer would leave it over the ${options.limitPct}% limit anyway (pipes, no relief)`;
			} else if (under) {
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
		// Its consumers of producers on other workers are fed by pipes, whose egress (every layer) the producers' workers pay.
		if (join.consumes) {
			for (const p of index.producersByRoom.get(join.roomId) ?? []) {
				const key = `${p.id}>${chosen.id}`;
				if (p.workerId === chosen.id || index.pipedTo.get(p.id)?.has(chosen.id) || pipesBooked.has(key)) continue;
				pipesBooked.add(key);
				plan.add(p.workerId, pipeCostPct(p, model).source);
			}
		}
		if (join.consumes) {
			let peers = audience.get(chosen.id);
			if (!peers) audience.set(chosen.id, (peers = new Set()));
			peers.add(join.peerId);
		}
		pendingEgress.set(join.roomId, (pendingEgress.get(join.roomId) ?? 0) + perMember);
	}
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
