import { actionClass, actionEntities, isConsolidation, type AllocationAction, type AllocationPolicy } from './actions';
import type { AllocationSnapshot } from './snapshot';

/**
 * The safety layer wraps any policy. It never invents actions; it only lets through
 * those that respect hysteresis bands, cooldowns and a global rate, and records why
 * every other one was held back. Admission answers are never held back: a joining peer
 * must be told where to go, and that moves nothing that already runs; nor are reports,
 * which change nothing.
 */
export interface SafetyOptions {
	/** Rebalancing and degrading need the concerned worker predicted at or above this. */
	highBandPct: number;
	/** Restoring needs the worker predicted at or below this after the restore. */
	lowBandPct: number;
	/**
	 * Consolidating (emptying a light worker onto fuller ones) needs the emptied worker
	 * predicted at or below this …
	 */
	consolidateBelowPct: number;
	/** … and the receiving worker predicted at or below this after the move, well under the high band's relief trigger. */
	consolidateCeilingPct: number;
	/** Minimum time between two actions on the same entity. */
	entityCooldownS: number;
	/**
	 * A worker that took load in a consolidation is not emptied in turn for this long.
	 * Consolidating is a scale-down decision, and like one it must not flap: the streams
	 * of each side have their own cooldowns, so without this two light workers empty into
	 * each other by turns (seen in the fault suite's demo: four moves back and forth in 40 s).
	 */
	consolidationHoldS: number;
	/** No restore on a worker this soon after something there was degraded or moved. */
	restoreHoldS: number;
	/** Token bucket: sustained actions per second … */
	ratePerS: number;
	/** … and the largest burst. */
	burst: number;
	/** Decide and audit, but let nothing but admission answers through. */
	dryRun: boolean;
}

export const SAFETY_DEFAULTS: Readonly<SafetyOptions> = Object.freeze({
	highBandPct: 75,
	lowBandPct: 72,
	consolidateBelowPct: 55,
	consolidateCeilingPct: 80,
	entityCooldownS: 30,
	// Kubernetes' autoscaler waits as long before a scale-down (its stabilization window).
	consolidationHoldS: 300,
	restoreHoldS: 30,
	ratePerS: 50,
	burst: 400,
	dryRun: false,
});

export type AuditOutcome = 'applied' | 'dryRun' | 'cooldown' | 'hysteresis' | 'restoreHold' | 'rateLimited';

export interface AuditRecord {
	t: number;
	action: AllocationAction;
	outcome: AuditOutcome;
	/** Filled in by the actuator once the worker has been measured after the action. */
	measuredAfterPct?: number;
}

export interface SafetyState {
	tokens: number;
	lastT: number | null;
	/** entity → time of its last let-through action */
	entityLastT: Record<string, number>;
	/** worker → time of the last rebalance/degrade concerning it */
	workerPressureT: Record<string, number>;
	/** worker → time it last took load in a consolidation */
	consolidatedIntoT: Record<string, number>;
}

export function initialSafetyState(options: SafetyOptions): SafetyState {
	return { tokens: options.burst, lastT: null, entityLastT: {}, workerPressureT: {}, consolidatedIntoT: {} };
}

function verdict(action: AllocationAction, t: number, state: SafetyState, options: SafetyOptions): AuditOutcome {
	const cls = actionClass(action);
	if (cls === 'admission' || cls === 'report') return options.dryRun ? 'dryRun' : 'applied';
	if (isConsolidation(action)) {
		const target = 'targetPredictedAfterPct' in action ? action.targetPredictedAfterPct : undefined;
		if (action.predictedBeforePct > options.consolidateBelowPct || target === undefined || target > options.consolidateCeilingPct) return 'hysteresis';
		if (t - (state.consolidatedIntoT[action.workerId] ?? -Infinity) < options.consolidationHoldS) return 'hysteresis';
	} else if ((cls === 'rebalance' || cls === 'degrade') && action.predictedBeforePct < options.highBandPct) return 'hysteresis';
	if (cls === 'restore' && action.predictedAfterPct > options.lowBandPct) return 'hysteresis';
	if (cls === 'restore' && t - (state.workerPressureT[action.workerId] ?? -Infinity) < options.restoreHoldS) return 'restoreHold';
	if (actionEntities(action).some((e) => t - (state.entityLastT[e] ?? -Infinity) < options.entityCooldownS)) return 'cooldown';
	if (state.tokens < 1) return 'rateLimited';
	return options.dryRun ? 'dryRun' : 'applied';
}

/** Copies only entries still inside their window, so the state stays bounded by recent activity. */
function recentOnly(times: Record<string, number>, t: number, windowS: number): Record<string, number> {
	const kept: Record<string, number> = {};
	for (const key in times) if (t - times[key]! < windowS) kept[key] = times[key]!;
	return kept;
}

/**
 * Entities a move created (a migration's new producer, the consumers that replaced moved
 * ones) start on the cooldown of those they replace. A move gives media new ids: without
 * this, a room moved whole to relieve one worker could be moved straight back in the next
 * decision to relieve the other, and on again (seen in the demo at a 10 % budget).
 */
export function inheritCooldown(state: SafetyState, created: readonly string[], t: number): SafetyState {
	if (created.length === 0) return state;
	const entityLastT = { ...state.entityLastT };
	for (const e of created) entityLastT[e] = Math.max(entityLastT[e] ?? -Infinity, t);
	return { ...state, entityLastT };
}

/** Pure filter: the actions let through, an audit record per action, and the next state. */
export function guard(
	actions: readonly AllocationAction[],
	t: number,
	previous: SafetyState,
	options: SafetyOptions,
): { approved: AllocationAction[]; audit: AuditRecord[]; state: SafetyState } {
	const elapsed = previous.lastT === null ? 0 : Math.max(0, t - previous.lastT);
	const state: SafetyState = {
		tokens: Math.min(options.burst, previous.tokens + elapsed * options.ratePerS),
		lastT: t,
		entityLastT: recentOnly(previous.entityLastT, t, options.entityCooldownS),
		workerPressureT: recentOnly(previous.workerPressureT, t, options.restoreHoldS),
		consolidatedIntoT: recentOnly(previous.consolidatedIntoT, t, options.consolidationHoldS),
	};
	const approved: AllocationAction[] = [];
	const audit: AuditRecord[] = [];
	for (const action of actions) {
		const outcome = verdict(action, t, state, options);
		audit.push({ t, action, outcome });
		if (outcome !== 'applied' && outcome !== 'dryRun') continue;
		const cls = actionClass(action);
		if (cls !== 'admission' && cls !== 'report') {
			// Dry runs spend tokens and cooldowns as a live run would, so the log shows what would really happen.
			state.tokens -= 1;
			for (const e of actionEntities(action)) state.entityLastT[e] = t;
			// Emptying a light worker is no pressure on it: it may get quality back at once.
			if (cls !== 'restore' && !isConsolidation(action)) state.workerPressureT[action.workerId] = t;
			if (isConsolidation(action) && 'toWorkerId' in action) state.consolidatedIntoT[action.toWorkerId] = t;
		}
		if (outcome === 'applied' || cls === 'admission') approved.push(action);
	}
	return { approved, audit, state };
}

export interface GuardedState<Inner> {
	inner: Inner;
	safety: SafetyState;
	/** Audit records of the last decision. */
	audit: AuditRecord[];
}

/** A policy whose every decision goes through `guard`. */
export function withSafety<Inner>(policy: AllocationPolicy<Inner>, overrides: Partial<SafetyOptions> = {}): AllocationPolicy<GuardedState<Inner>> {
	const options: SafetyOptions = { ...SAFETY_DEFAULTS, ...overrides };
	return {
		name: policy.name,
		initialState: () => ({ inner: policy.initialState(), safety: initialSafetyState(options), audit: [] }),
		decide(snapshot: AllocationSnapshot, state: GuardedState<Inner>) {
			const decision = policy.decide(snapshot, state.inner);
			const guarded = guard(decision.actions, snapshot.t, state.safety, options);
			return { actions: guarded.approved, state: { inner: decision.state, safety: guarded.state, audit: guarded.audit } };
		},
	};
}
