/** Consolidation: empties a light worker onto fuller ones when load recedes (all or nothing). */
import { pipeCostPct } from '../estimate';
import { type ConsumerView, type ProducerView, type WorkerView, packetCostPct } from '../snapshot';
import { type Plan, migratable } from './foresightPlan';

/**
 * Consolidation: when load recedes, the lightest worker with no growing room is emptied
 * onto the fullest workers that stay under the consolidation target, so load sits on
 * few well-used workers instead of many half-idle ones. All or nothing: a worker half
 * emptied still runs (and still idles), so it is emptied only if every receiver and
 * producer on it fits elsewhere. The bands make it hysteretic: sources at or below
 * `consolidateBelowPct`, targets kept at or below `consolidateFillPct` (under the fill
 * target and well under the relief trigger), and moved streams then sit out the cooldown.
 */
export function consolidate(plan: Plan): void {
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
