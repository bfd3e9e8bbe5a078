/** The actuator: applies allocation actions to mediasoup (the I/O side of the allocation manager). */
export { Actuator, DEFAULT_HOOK_TIMEOUT_MS, type ActuatorEvents, type ActuatorOptions } from './actuator';
export type { DeadWorker, MigrationHooks, RefusedPeer, RejoinMode, RejoinPeersRequest, RejoinRequest, RejoinResult } from './hooks';
export { Healer, type HealerEvents, type HealerOptions, type HealerSources, type HealingEvent } from './healer';
export type { ActionEffect, ActionErrorCode, ActionOutcome, ActionRecord, ConsumerMove } from './outcome';
export type { MediaCodecsOption } from './rooms';
