import type { AllocationPolicy } from '../actions';
import { withSafety, type SafetyOptions } from '../safety';
import { foresightPolicy, type ForesightPolicyOptions } from './foresight';
import { jitsiReactivePolicy } from './jitsiReactive';
import { leastLoadedPolicy } from './leastLoaded';
import { reactiveMigrationPolicy } from './reactiveMigration';
import { roundRobinPolicy } from './roundRobin';
import { staticScorePolicy } from './staticScore';

export { foresightPolicy, FORESIGHT_DEFAULTS, type ForesightPolicyOptions, type ForesightState } from './foresight';
export { jitsiReactivePolicy, JITSI_DEFAULTS, type JitsiOptions, type JitsiState } from './jitsiReactive';
export { leastLoadedPolicy, type LeastLoadedOptions } from './leastLoaded';
export { reactiveMigrationPolicy, REACTIVE_MIGRATION_DEFAULTS, type ReactiveMigrationOptions, type ReactiveMigrationState } from './reactiveMigration';
export { roundRobinPolicy, type RoundRobinState } from './roundRobin';
export { staticScore, staticScorePolicy } from './staticScore';

/** The policies other SFUs use, as the evaluation runs them. */
export function baselinePolicies(): Array<AllocationPolicy<unknown>> {
	return [roundRobinPolicy, leastLoadedPolicy(), staticScorePolicy, jitsiReactivePolicy(), reactiveMigrationPolicy()] as Array<AllocationPolicy<unknown>>;
}

/** Foresight as deployed: the policy behind the safety guard. */
export function guardedForesight(policy: Partial<ForesightPolicyOptions> = {}, safety: Partial<SafetyOptions> = {}): AllocationPolicy<unknown> {
	return withSafety(foresightPolicy(policy), safety) as AllocationPolicy<unknown>;
}
