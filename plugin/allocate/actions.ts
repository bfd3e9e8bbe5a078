import type { AllocationSnapshot } from './snapshot';

/**
 * Allocation actions, cheapest first. Every action names the worker whose load it
 * concerns and the policy's predicted load of that worker before and after, so the
 * audit log can later compare prediction with measured reality.
 */

interface ActionBase {
	reason: string;
	workerId: string;
	/** Predicted p95 CPU of `workerId` before the action, % of one core. */
	predictedBeforePct: number;
	/** Predicted p95 CPU of `workerId` after the action. */
	predictedAfterPct: number;
}

/** Admit a joining peer onto a worker (its room's router there is created on demand). */
export interface PlaceAction extends ActionBase {
	type: 'place';
	peerId: string;
	roomId: string;
}

/**
 * Why a rebalance moves load: to relieve a worker predicted hot (the default), or to
 * empty a lightly loaded one onto fuller workers so fewer workers run half idle.
 */
export type RebalanceIntent = 'relieve' | 'consolidate';

/** What every rebalance carries besides the load estimate of the worker it leaves. */
interface RebalanceFields {
	/** Absent means 'relieve'. */
	intent?: RebalanceIntent;
	/** Predicted p95 CPU of `toWorkerId` after the action, when the policy estimated it. */
	targetPredictedAfterPct?: number;
}

/** Serve some consumers of a hot producer from another worker through pipeToRouter. */
export interface SpreadFanoutAction extends ActionBase, RebalanceFields {
	type: 'spreadFanout';
	producerId: string;
	/** Worker the consumers currently run on (`workerId` is the one relieved = this). */
	toWorkerId: string;
	consumerIds: string[];
}

/** Move a producer's send transport to another worker; remote consumers are re-piped. */
export interface MigrateProducerAction extends ActionBase, RebalanceFields {
	type: 'migrateProducer';
	producerId: string;
	toWorkerId: string;
}

/** What every degrade carries: the floor its predicted saving was held to. */
interface DegradeFields {
	/** Least predicted saving (predictedBefore − predictedAfter, % of a core) the policy accepted for this action. */
	savingFloorPct?: number;
}

export interface SetConsumerLayersAction extends ActionBase, DegradeFields {
	type: 'setConsumerLayers';
	consumerId: string;
	spatial: number;
	temporal: number;
}

/** Back to the layers the client wants. */
export interface RestoreLayersAction extends ActionBase {
	type: 'restoreLayers';
	consumerId: string;
}

export interface PauseConsumerAction extends ActionBase, DegradeFields {
	type: 'pauseConsumer';
	consumerId: string;
}

export interface ResumeConsumerAction extends ActionBase {
	type: 'resumeConsumer';
	consumerId: string;
}

export interface DropConsumerAction extends ActionBase, DegradeFields {
	type: 'dropConsumer';
	consumerId: string;
}

export interface RefuseAction extends ActionBase {
	type: 'refuse';
	peerId: string;
	roomId: string;
}

/** Send the peer to another deployment (`target` is app-defined, e.g. a region). */
export interface RedirectAction extends ActionBase {
	type: 'redirect';
	peerId: string;
	roomId: string;
	target: string;
}

/**
 * Not a change: the policy reports, once per episode, a worker over its line that no
 * allowed action can bring under it (the operator's cue to add capacity).
 */
export interface CannotRelieveAction extends ActionBase {
	type: 'cannotRelieve';
}

export type AllocationAction =
	| PlaceAction
	| SpreadFanoutAction
	| MigrateProducerAction
	| SetConsumerLayersAction
	| RestoreLayersAction
	| PauseConsumerAction
	| ResumeConsumerAction
	| DropConsumerAction
	| RefuseAction
	| RedirectAction
	| CannotRelieveAction;

export type ActionType = AllocationAction['type'];

/** A rebalance that empties a lightly loaded worker rather than relieving a hot one. */
export function isConsolidation(action: AllocationAction): boolean {
	return (action.type === 'spreadFanout' || action.type === 'migrateProducer') && action.intent === 'consolidate';
}

/** Admission answers a join; rebalancing moves load; degrade costs quality; restore gives it back; a report changes nothing. */
export type ActionClass = 'admission' | 'rebalance' | 'degrade' | 'restore' | 'report';

export function actionClass(action: AllocationAction): ActionClass {
	switch (action.type) {
		case 'place':
		case 'redirect':
		case 'refuse':
			return 'admission';
		case 'spreadFanout':
		case 'migrateProducer':
			return 'rebalance';
		case 'setConsumerLayers':
		case 'pauseConsumer':
		case 'dropConsumer':
			return 'degrade';
		case 'restoreLayers':
		case 'resumeConsumer':
			return 'restore';
		case 'cannotRelieve':
			return 'report';
	}
}

/**
 * The entities an action changes, for cooldowns. A spread changes where its consumers
 * run, not the producer: another batch of the same producer may follow at once, while
 * the moved consumers themselves must not bounce back.
 */
export function actionEntities(action: AllocationAction): string[] {
	switch (action.type) {
		case 'place':
		case 'redirect':
		case 'refuse':
			return [`peer:${action.peerId}`];
		case 'spreadFanout':
			return action.consumerIds.map((id) => `consumer:${id}`);
		case 'migrateProducer':
			return [`producer:${action.producerId}`];
		case 'setConsumerLayers':
		case 'restoreLayers':
		case 'pauseConsumer':
		case 'resumeConsumer':
		case 'dropConsumer':
			return [`consumer:${action.consumerId}`];
		case 'cannotRelieve':
			return [`worker:${action.workerId}`];
	}
}

/** Policy signature: pure, returns its next state instead of mutating. */
export interface AllocationPolicy<State> {
	readonly name: string;
	initialState(): State;
	decide(snapshot: AllocationSnapshot, state: State): { actions: AllocationAction[]; state: State };
}

/** An action before its load estimate is attached (distributes over the union). */
export type UnestimatedAction = AllocationAction extends infer A
	? A extends AllocationAction
		? Omit<A, 'predictedBeforePct' | 'predictedAfterPct'>
		: never
	: never;
