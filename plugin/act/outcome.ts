import type { types } from 'mediasoup';
import type { AllocationAction } from '../allocate/actions';

export interface ConsumerMove {
	oldConsumerId: string;
	newConsumerId: string;
}

/** What an action changed in mediasoup, per action type. */
export type ActionEffect =
	/** `created` is false when the room already had a router on that worker. */
	| { type: 'place'; routerId: string; created: boolean }
	| {
		type: 'spreadFanout';
		routerId: string;
		/** Producer id the moved consumers consume on `routerId`. */
		servedProducerId: string;
		/** False when an existing pipe (or the producer itself) was reused. */
		piped: boolean;
		moved: ConsumerMove[];
		/** Requested consumers the hook did not move (they keep their old consumer). */
		notMoved: string[];
	}
	| {
		type: 'migrateProducer';
		routerId: string;
		newProducerId: string;
		moved: ConsumerMove[];
		/** Routers the new producer was piped to for its consumers. */
		pipedTo: string[];
	}
	| { type: 'setConsumerLayers'; preferredLayers: types.ConsumerLayers | undefined; priority: number }
	| { type: 'restoreLayers'; preferredLayers: types.ConsumerLayers | undefined; priority: number }
	| { type: 'pauseConsumer' }
	| { type: 'resumeConsumer' }
	| { type: 'dropConsumer' }
	| { type: 'refuse'; peerId: string; roomId: string }
	| { type: 'redirect'; peerId: string; roomId: string; target: string }
	/** A report: nothing changed. */
	| { type: 'cannotRelieve' }
	| { type: 'capIngress'; transportId: string; bitrateBps: number };

export type ActionErrorCode =
	/** An entity the action names is not (or no longer) in the registry. */
	| 'notFound'
	/** An entity closed while the action ran. */
	| 'closed'
	/** The action cannot apply to these entities (e.g. layers of a non-simulcast consumer). */
	| 'invalid'
	/** No router for the room could be found or created. */
	| 'noRouter'
	| 'hookFailed'
	| 'hookTimeout'
	/** The worker did not answer in time (stopped or stuck); the requests may still complete later. */
	| 'workerTimeout'
	/** mediasoup rejected a request for another reason. */
	| 'mediasoup'
	/** The actuator was closed. */
	| 'closedActuator';

export type ActionOutcome =
	| { status: 'ok'; effect: ActionEffect }
	/** Nothing to do, e.g. resuming a consumer Foresight did not pause. */
	| { status: 'skipped'; reason: string }
	| { status: 'error'; code: ActionErrorCode; reason: string };

/** One settled action, for the audit log (the action carries reason and predictions). */
export interface ActionRecord {
	action: AllocationAction;
	outcome: ActionOutcome;
	/** Milliseconds since the epoch. */
	startedAt: number;
	durationMs: number;
}

/** An error with the outcome code it maps to; thrown inside the actuator only. */
export class ActionError extends Error {
	constructor(
		readonly code: ActionErrorCode,
		message: string,
	) {
		super(message);
		this.name = 'ActionError';
	}
}

/**
 * The entities an applied move created, as the safety guard names them
 * (`producer:<id>`, `consumer:<id>`): they inherit the cooldown of what they replace.
 */
export function createdEntities(outcome: ActionOutcome | undefined): string[] {
	if (outcome?.status !== 'ok') return [];
	const { effect } = outcome;
	if (effect.type !== 'spreadFanout' && effect.type !== 'migrateProducer') return [];
	const consumers = effect.moved.map((m) => `consumer:${m.newConsumerId}`);
	return effect.type === 'migrateProducer' ? [`producer:${effect.newProducerId}`, ...consumers] : consumers;
}
