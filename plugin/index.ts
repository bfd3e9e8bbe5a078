export { attach, Foresight, type AttachOptions, type ForesightEvents, type PlaceOptions } from './foresight';
export { MemoryClusterBus } from './cluster/memoryChannel';
export { InfluxClusterChannel } from './cluster/influxChannel';
export { CrossHostPipes, pipeEndSchema, pipedProducerSchema, type PipeEnd, type PipedProducer } from './cluster/pipes';
export { decideCrossHost, canTake, liveHosts, hostHeadroomPct, reservedPct, type CrossHostDecision, type CrossHostInput } from './cluster/decide';
export { decideCrossHostRelief, afterMoves, expectedOverS, MOVE_DISRUPTION_S, CROSS_HOST_RELIEF_DEFAULTS, type CrossHostMove, type CrossHostReliefInput, type CrossHostReliefOptions } from './cluster/relieve';
export type { ClusterEvent, ClusterStats, ClusterView } from './cluster/member';
export type { ClusterChannel, ClusterState, HostReport, Reservation, WorkerReport } from './cluster/types';
export type { PlaceAnswer } from './act/manager';
export {
	ENV_VARIABLES,
	ForesightConfigError,
	foresightOptionsSchema,
	optionsFromEnv,
	parseOptions,
	type ForesightOptions,
	type ResolvedForesightOptions,
} from './config';
export type { MediasoupModule } from './observe/attach';
export type {
	EntityCounts,
	EntityKind,
	GraphNode,
	Registry,
	RegistryEvents,
	WorkerNode,
	RouterNode,
	TransportNode,
	ProducerNode,
	ConsumerNode,
	DataProducerNode,
	DataConsumerNode,
} from './observe/registry';
export * from './profile/schema';
export { PROFILER_NOTIFICATION_KINDS, PROFILER_REQUEST_KINDS, type ProfilerNotificationKind, type ProfilerRequestKind, type ProfilerStats } from './profile/meter';
export type { FastTrigger, WorkerRound } from './profile/profiler';
export type { DeadWorker, MigrationHooks, RefusedPeer, RejoinMode, RejoinPeersRequest, RejoinRequest, RejoinResult } from './act/hooks';
export type { HealingEvent } from './act/healer';
export type { AuditEntry } from './act/manager';
export type { ActionOutcome, ActionRecord } from './act/outcome';
export type { AllocationAction, ActionType } from './allocate/actions';
export type { AllocationSnapshot, PendingJoin, MediaClass } from './allocate/snapshot';
export { MOVABLE_KEY } from './allocate/snapshot';
export type { WorkerPrediction, HorizonS, ResourceEstimate } from './predict/types';
export type { RetrainResult, RetrainTrigger } from './predict/retrainer';
export type { ReplaceDecision } from './predict/engine';
export type { GuardStatus, GuardSwitch, GuardErrors, GuardMode } from './predict/guard';
export type { ProfileStore, StoreStats } from './store/types';
export { MemoryStore } from './store/memoryStore';
export { InfluxStore, InfluxSchemaError, type InfluxSchemaState } from './store/influxStore';
export { registerMetrics, auditOutcome, METRICS, type AuditOutcome, type ForesightMetrics, type MetricsOptions, type MetricsRegistry } from './metrics';
export { MissingPeerError } from './util/optionalPeer';
