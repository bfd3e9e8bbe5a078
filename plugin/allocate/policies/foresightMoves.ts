/** Relief by moving load, no quality spent: whole rooms, fan-out spreading through pipes, producer migration. */
import type { UnestimatedAction } from '../actions';
import { pipeCostPct } from '../estimate';
import { type ConsumerView, type ProducerView, type WorkerView, packetCostPct } from '../snapshot';
import { type Plan, reliefNeed, emptiestWorker, migratable } from './foresightPlan';

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
export function wholeRoom(plan: Plan, roomId: string, worker: WorkerView): WholeRoom | undefined {
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

/** The fullest worker other than `exclude` that takes `pct` under the fill target (on `Plan.targetLoad`); light workers (consolidation's sources) last. */
export function roomTarget(plan: Plan, exclude: string, pct: number): WorkerView | undefined {
	const { options } = plan;
	const light = (w: WorkerView): boolean => plan.load(w.id) <= plan.scaled(options.consolidateBelowPct, w);
	let target: WorkerView | undefined;
	for (const w of plan.snapshot.workers) {
		if (w.id === exclude || plan.targetLoad(w.id) + pct > plan.scaled(options.fillBelowPct, w)) continue;
		if (!target || (light(target) && !light(w)) || (light(target) === light(w) && plan.targetLoad(w.id) > plan.targetLoad(target.id))) target = w;
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
export function moveWholeRooms(plan: Plan, worker: WorkerView): void {
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
export function roomConsumers(room: WholeRoom): number {
	let n = 0;
	for (const list of room.consumers.values()) n += list.filter((c) => !c.paused).length;
	return n;
}

/** One spread per producer for its receivers, then the producers: the worker's relief is booked on the last action, so the guard sees the load that called for the move on every one. */
export function commitRoomMove(plan: Plan, worker: WorkerView, target: WorkerView, room: WholeRoom): void {
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
export function spreadFanout(plan: Plan, worker: WorkerView): void {
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

/** Producers whose consumers all run elsewhere move next to their largest audience. */
export function migrateProducers(plan: Plan, worker: WorkerView): void {
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
