import { expectedSecondsOver, type Outlook } from '../worth';

/**
 * When Foresight relieves a worker by moving load (whole rooms, fan-out spreading, producer
 * migration), and whether a move pays. Pure functions over plain numbers, so each rule can be
 * read and tested on its own (test/allocate/relief.test.ts).
 */

/** A worker's load as one decision sees it, % of a core, after the decision's actions so far. */
export interface ReliefLoads {
	/** Mean forecast: no tail, no growth extrapolation. */
	expectedPct: number;
	/** Worst p95 plus the rooms' growth over the horizon. */
	trajectoryPct: number;
}

/** Lines of a relief decision, already scaled to the worker's capacity. */
export interface ReliefRule {
	/** Judge on the expected load against `limitPct` (else on the trajectory against `actAbovePct`). */
	onExpected: boolean;
	limitPct: number;
	actAbovePct: number;
	relieveToPct: number;
}

/** The load relief reads under the rule. */
export function reliefLoadPct(loads: ReliefLoads, rule: Pick<ReliefRule, 'onExpected'>): number {
	return rule.onExpected ? loads.expectedPct : loads.trajectoryPct;
}

/** Whether the worker is to be relieved at all. */
export function reliefDue(loads: ReliefLoads, rule: ReliefRule): boolean {
	return rule.onExpected ? loads.expectedPct > rule.limitPct : loads.trajectoryPct > rule.actAbovePct;
}

/** How much to take off to reach the relief target (≤ 0: nothing more). */
export function reliefNeedPct(loads: ReliefLoads, rule: ReliefRule): number {
	return reliefLoadPct(loads, rule) - rule.relieveToPct;
}

/**
 * The outlook without the forecast's tail and without the growth extrapolation: the load is
 * taken to be its mean, so a worker is counted over the line exactly while its mean is.
 */
export function expectedOutlook(outlook: Outlook): Outlook {
	return { ...outlook, forecast: outlook.forecast.map((f) => ({ ...f, p95Pct: f.meanPct })), growthPctPerS: 0 };
}

/** A worker a move touches: its outlook, its exposed (un-paused) consumers, its overload line. */
export interface ExposureSide {
	outlook: Outlook;
	consumers: number;
	linePct: number;
}

/** Consumer-seconds over the line that `pct` more load and `consumers` more receivers create on `side` (never negative). */
export function exposureAdded(side: ExposureSide, pct: number, consumers: number): number {
	const was = side.consumers * expectedSecondsOver(side.outlook, side.linePct);
	const will = (side.consumers + consumers) * expectedSecondsOver({ ...side.outlook, shiftPct: side.outlook.shiftPct + pct }, side.linePct);
	return Math.max(0, will - was);
}

/**
 * Consumer-seconds a move is predicted to avoid, net of what it adds elsewhere: on the
 * source, its exposed receivers before minus those that stay after `relief`; minus what the
 * target gets (the moved load plus the pipe ingress and transports it pays there, and the
 * moved receivers); minus what the pipes' egress adds on each other producer's worker.
 */
export function moveAvoidedExposure(
	source: ExposureSide,
	relief: { pct: number; consumers: number },
	target: (ExposureSide & { pct: number }) | undefined,
	others: ReadonlyArray<ExposureSide & { pct: number }> = [],
): number {
	const before = source.consumers * expectedSecondsOver(source.outlook, source.linePct);
	const after = Math.max(0, source.consumers - relief.consumers) * expectedSecondsOver({ ...source.outlook, shiftPct: source.outlook.shiftPct - relief.pct }, source.linePct);
	let created = target ? exposureAdded(target, target.pct, relief.consumers) : 0;
	for (const o of others) created += exposureAdded(o, o.pct, 0);
	return before - after - created;
}

/**
 * Whether sending a joiner away from its room's worker relieves that worker: only when the
 * split takes it under its line. `expectedPct` is its expected load before the joiner,
 * `splitLeftPct` what the split still leaves there (estimate.ts `splitLeftPct`). Over the
 * line either way, the split only adds pipes, on both workers.
 */
export function splitRelieves(home: { expectedPct: number; linePct: number }, splitLeftPct: number): boolean {
	return home.expectedPct + splitLeftPct <= home.linePct;
}
