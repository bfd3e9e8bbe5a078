import type { LoadForecast } from './snapshot';

/**
 * Whether an action that costs receivers something pays for itself: the exposure it is
 * predicted to avoid (consumer-seconds over the overload line within the forecast's
 * horizon, from the policy's own forecast) against what it costs the receivers, both in
 * the currency the evaluation uses (docs/allocation-metrics.md, "Quality cost"). Pure
 * functions over plain numbers, in the style of safety.ts and degrade.ts, so each rule
 * can be read and tested on its own.
 */

/**
 * What receivers lose, consumer-seconds per unit, as docs/allocation-metrics.md prices it
 * (a test checks these equal the simulator's weights). These are published prices, not
 * a measurement: a deployment that values disruption more can scale them with
 * `WorthRules.costFactor`.
 */
export const QUALITY_PRICE = Object.freeze({
	/** A receiver of a moved consumer goes without media this long. */
	movedConsumerS: 1,
	/** Every receiver of a migrated producer waits this long for its keyframe. */
	migratedReceiverS: 2,
	/** Per second below the wanted layer. */
	downgradePerS: 0.5,
	/** Per second paused. */
	pausedPerS: 1,
	/** A dropped consumer, or one a refused peer would have had. */
	lostConsumer: 60,
});

export interface WorthRules {
	/**
	 * An action goes ahead only when the exposure it avoids is at least this multiple of
	 * what it costs. Above 1 on purpose: the avoided exposure is a forecast, the cost is
	 * certain, and a margin keeps two borderline decisions from undoing each other.
	 */
	worthMargin: number;
	/** Scales every price of QUALITY_PRICE (1: the evaluation's prices). */
	costFactor: number;
	/**
	 * Exposure is counted over this window, the last forecast held beyond its horizon; a
	 * lowered or paused consumer is priced for as long (restores wait at least the safety
	 * guard's restore hold, 30 s by default), so both sides of the decision cover the same stretch.
	 */
	worthWindowS: number;
}

/**
 * Probability that a load with this mean and 95th percentile exceeds `linePct`, taking
 * the forecast as normal (σ = (p95 − mean) / 1.645). A forecast without spread is a step.
 */
export function probabilityOver(meanPct: number, p95Pct: number, linePct: number): number {
	const sigma = (p95Pct - meanPct) / 1.645;
	if (!(sigma > 1e-6)) return meanPct > linePct ? 1 : 0;
	return 1 - normalCdf((linePct - meanPct) / sigma);
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26, error < 1.5e-7: far below the forecast's own). */
function normalCdf(z: number): number {
	const x = Math.abs(z) / Math.SQRT2;
	const t = 1 / (1 + 0.3275911 * x);
	const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
	return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** A worker's load ahead as the policy plans it. */
export interface Outlook {
	/** Predictor output, ascending horizons (load as measured when the forecast was made). */
	forecast: readonly LoadForecast[];
	/** Measured load now: the outlook before the first horizon. */
	cpuPct: number;
	/** Load this decision's actions add (negative: take off), % of a core. */
	shiftPct: number;
	/** Growth of the worker's rooms from their join trend, % of a core per second … */
	growthPctPerS: number;
	/** … expected to go on at most this long. */
	growthHorizonS: number;
	/** The growth is taken as part of the forecast's tail (p95 = max(p95, mean + growth)) rather than on top of it (see ForesightPolicyOptions.growthWithinTail). */
	growthWithinTail?: boolean;
	/** Seconds ahead that count (see WorthRules.worthWindowS). */
	windowS: number;
}

/**
 * Seconds the worker is expected over `linePct` within the window: each stretch between
 * two horizons counts with the probability of being over at its end (the first stretch
 * starts now), and the last forecast holds to the end of the window. Growth, up to its
 * own horizon, adds to the mean, and to the p95 too unless `growthWithinTail` (then the p95
 * is at least the grown mean). Without a forecast the measured load holds.
 */
export function expectedSecondsOver(outlook: Outlook, linePct: number): number {
	const { shiftPct, growthPctPerS, growthHorizonS, windowS } = outlook;
	const forecast = outlook.forecast.length > 0 ? outlook.forecast : [{ horizonS: 0, meanPct: outlook.cpuPct, p95Pct: outlook.cpuPct }];
	let seconds = 0;
	let from = 0;
	let p = 0;
	for (const f of forecast) {
		if (from >= windowS) break;
		const growth = growthPctPerS * Math.min(f.horizonS, growthHorizonS);
		const mean = f.meanPct + shiftPct + growth;
		p = probabilityOver(mean, outlook.growthWithinTail === true ? Math.max(f.p95Pct + shiftPct, mean) : f.p95Pct + shiftPct + growth, linePct);
		seconds += (Math.min(f.horizonS, windowS) - from) * p;
		from = f.horizonS;
	}
	return seconds + Math.max(0, windowS - from) * p;
}

/**
 * Consumer-seconds an action is predicted to avoid: on the worker it relieves, its
 * exposed receivers before minus those that stay after; on the worker that takes the
 * load, what it adds there. `consumers` count receivers the overload would reach
 * (un-paused), before the action.
 */
export function avoidedExposure(
	source: { outlook: Outlook; consumers: number },
	relief: { pct: number; consumers: number },
	target: { outlook: Outlook; consumers: number } | undefined,
	linePct: number,
): number {
	const before = source.consumers * expectedSecondsOver(source.outlook, linePct);
	const after = Math.max(0, source.consumers - relief.consumers) * expectedSecondsOver({ ...source.outlook, shiftPct: source.outlook.shiftPct - relief.pct }, linePct);
	let created = 0;
	if (target) {
		const was = target.consumers * expectedSecondsOver(target.outlook, linePct);
		const will = (target.consumers + relief.consumers) * expectedSecondsOver({ ...target.outlook, shiftPct: target.outlook.shiftPct + relief.pct }, linePct);
		created = Math.max(0, will - was);
	}
	return before - after - created;
}

/** What an action costs its receivers, consumer-seconds, at the evaluation's prices. */
export interface ActionCost {
	/** Consumers that move to another worker (each without media for a second). */
	movedConsumers?: number;
	/** Receivers of producers that migrate (each waiting for a keyframe). A receiver moved with its producer pays once, at this price. */
	migratedReceivers?: number;
	/** Consumers lowered a layer, for `forS`. */
	downgraded?: number;
	/** Consumers paused, for `forS`. */
	paused?: number;
	/** Consumers dropped, or a refused peer's would-be consumers. */
	lost?: number;
	/** How long a downgrade or pause is expected to last before it is restored, s. */
	forS?: number;
}

export function costOf(cost: ActionCost, rules: WorthRules): number {
	const forS = cost.forS ?? 0;
	return (
		rules.costFactor *
		((cost.movedConsumers ?? 0) * QUALITY_PRICE.movedConsumerS +
			(cost.migratedReceivers ?? 0) * QUALITY_PRICE.migratedReceiverS +
			(cost.downgraded ?? 0) * QUALITY_PRICE.downgradePerS * forS +
			(cost.paused ?? 0) * QUALITY_PRICE.pausedPerS * forS +
			(cost.lost ?? 0) * QUALITY_PRICE.lostConsumer)
	);
}

/** The decision: does the avoided exposure pay for the cost, with the margin? A free action (cost 0) always does. */
export function paysForItself(avoidedConsumerS: number, cost: ActionCost, rules: WorthRules): boolean {
	const price = costOf(cost, rules);
	return price <= 0 || avoidedConsumerS >= rules.worthMargin * price;
}
