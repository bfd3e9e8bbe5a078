import { consumerCostPct, currentConsumerCostPct } from '../estimate';
import type { ConsumerView, CostModel, ProducerView } from '../snapshot';

/**
 * When a hot worker may spend its receivers' quality, and on how much. Pure functions
 * over plain numbers, so every rule can be read and tested on its own:
 *
 * - each degrade action must be predicted to save at least a floor (`savingFloorPct`);
 * - the consumers degraded per worker are bounded per decision and per minute (`degradeBudget`);
 * - drops only when this decision's degrades together bring the worker under its line,
 *   and never while an idle worker could take load that was not offered to it first
 *   (`dropsAllowed`); otherwise only the cheapest effective actions, and the worker is
 *   reported once as one Foresight cannot relieve (`chooseDegrades`).
 */

export type DegradeKind = 'setConsumerLayers' | 'pauseConsumer' | 'dropConsumer';

/** Escalation order: the cheapest loss of quality first. */
export const DEGRADE_ORDER: readonly DegradeKind[] = ['setConsumerLayers', 'pauseConsumer', 'dropConsumer'];

/** The per-minute bound counts degrades over this window. */
export const DEGRADE_WINDOW_S = 60;

export interface DegradeRules {
	/**
	 * Least predicted saving of one degrade action, % of a core for a worker of full
	 * capacity (it scales with the worker's capacity like every threshold).
	 */
	minDegradeSavingPct: number;
	/** Consumers degraded on one worker in one decision, at most. */
	maxDegradesPerWorkerPerTick: number;
	/** Consumers degraded on one worker within DEGRADE_WINDOW_S, at most. */
	maxDegradesPerWorkerPerMinute: number;
}

export interface DegradeCandidate {
	kind: DegradeKind;
	consumerId: string;
	priority: number;
	/** Predicted saving on the worker, % of a core. */
	savingPct: number;
	/** For setConsumerLayers: the layers it goes down to. */
	layers?: { spatial: number; temporal: number };
}

/**
 * How many consumers this worker may still have degraded now: the per-decision bound,
 * less what the per-minute bound has already spent. `recentT` are the times (s) of the
 * worker's degrades so far; older ones than the window do not count.
 */
export function degradeBudget(recentT: readonly number[], t: number, rules: DegradeRules): number {
	const inWindow = recentT.filter((x) => t - x < DEGRADE_WINDOW_S).length;
	return Math.max(0, Math.min(rules.maxDegradesPerWorkerPerTick, rules.maxDegradesPerWorkerPerMinute - inWindow));
}

/**
 * The least saving one degrade action must promise: the absolute floor, and its share of
 * the excess. With `budget` actions allowed, one that saves less than excess / budget
 * could only relieve the worker together with more actions than it may take; it spends
 * quality for an effect the measurement cannot see.
 */
export function savingFloorPct(excessPct: number, budget: number, capacityPct: number, rules: DegradeRules): number {
	const absolute = rules.minDegradeSavingPct * (capacityPct / 100);
	return Math.max(absolute, budget > 0 ? excessPct / budget : Number.POSITIVE_INFINITY);
}

/**
 * A drop (the one action the receiver cannot get back from) waits while a worker with
 * headroom for the excess sits idle, until a move off the hot worker has been proposed:
 * moving load there always comes first.
 */
export function dropsAllowed(idleWorkerWithHeadroom: boolean, moveProposed: boolean): boolean {
	return !idleWorkerWithHeadroom || moveProposed;
}

/**
 * What each consumer could give up, one candidate per kind: lower its spatial layer by
 * one (video with layers left below), pause it (video), drop it (any). Savings are what
 * the consumer costs the worker now (by `costNow`, the cost model unless told otherwise)
 * minus what it would cost after.
 */
export function degradeCandidates(
	list: ReadonlyArray<{ consumer: ConsumerView; producer: ProducerView }>,
	model: CostModel,
	costNow: (consumer: ConsumerView, producer: ProducerView) => number = (c, p) => currentConsumerCostPct(c, p, model),
): DegradeCandidate[] {
	const out: DegradeCandidate[] = [];
	for (const { consumer, producer } of list) {
		const now = costNow(consumer, producer);
		// A lower layer saves its share of what the consumer costs now, in the cost model's proportions.
		const modelled = currentConsumerCostPct(consumer, producer, model);
		const scale = modelled > 0 ? now / modelled : 1;
		const base = { consumerId: consumer.id, priority: consumer.priority };
		const video = producer.mediaClass !== 'audio';
		if (video && !consumer.paused && consumer.current.spatial > 0 && producer.layers.length >= 2) {
			const layers = { spatial: consumer.current.spatial - 1, temporal: consumer.current.temporal };
			out.push({ ...base, kind: 'setConsumerLayers', savingPct: scale * (modelled - consumerCostPct(producer, layers, model)), layers });
		}
		if (video && !consumer.paused) out.push({ ...base, kind: 'pauseConsumer', savingPct: now });
		out.push({ ...base, kind: 'dropConsumer', savingPct: now });
	}
	return out;
}

export type DegradeChoice =
	/** `take` is predicted to bring the worker under its line. */
	| { verdict: 'relieves'; take: DegradeCandidate[]; savingPct: number }
	/**
	 * Nothing allowed relieves the worker: `take` is the cheapest effective actions only
	 * (lower layers, possibly none), `bestSavingPct` what every allowed action together
	 * would have saved.
	 */
	| { verdict: 'cannotRelieve'; take: DegradeCandidate[]; bestSavingPct: number };

export interface DegradeLimits {
	/** Predicted load over the worker's line, % of a core (> 0). */
	excessPct: number;
	floorPct: number;
	budget: number;
	dropsAllowed: boolean;
}

/**
 * Picks this decision's degrades on one worker: rung by rung (layers, pauses, then
 * drops), least important consumers first and the larger saving among equals, each
 * consumer once, only candidates at or above the floor, at most `budget` of them,
 * until their savings cover the excess. Drops are kept only if the whole set then
 * covers it.
 */
export function chooseDegrades(candidates: readonly DegradeCandidate[], limits: DegradeLimits): DegradeChoice {
	const take: DegradeCandidate[] = [];
	const used = new Set<string>();
	let saved = 0;
	for (const kind of DEGRADE_ORDER) {
		if (kind === 'dropConsumer' && !limits.dropsAllowed) break;
		const rung = candidates
			.filter((c) => c.kind === kind && c.savingPct >= limits.floorPct && !used.has(c.consumerId))
			.sort((a, b) => a.priority - b.priority || b.savingPct - a.savingPct || (a.consumerId < b.consumerId ? -1 : 1));
		for (const c of rung) {
			if (take.length >= limits.budget || saved >= limits.excessPct) break;
			take.push(c);
			used.add(c.consumerId);
			saved += c.savingPct;
		}
		if (saved >= limits.excessPct) return { verdict: 'relieves', take, savingPct: saved };
	}
	return { verdict: 'cannotRelieve', take: take.filter((c) => c.kind === 'setConsumerLayers'), bestSavingPct: saved };
}
