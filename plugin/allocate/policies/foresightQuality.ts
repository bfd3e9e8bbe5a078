/** Relief that spends quality (lower layers, pause, drop) on a measured overload, and its restoration when load falls. */
import { consumerCostPct } from '../estimate';
import type { ConsumerView, ProducerView, WorkerView } from '../snapshot';
import { chooseDegrades, degradeBudget, degradeCandidates, dropsAllowed, savingFloorPct } from './degrade';
import { type Plan, overTarget } from './foresightPlan';

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
export function degrade(plan: Plan, worker: WorkerView): void {
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
export function restore(plan: Plan, worker: WorkerView): void {
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
