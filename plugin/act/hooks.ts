import type { types } from 'mediasoup';

/**
 * What the app implements in its signaling so Foresight can move media between
 * workers, and bring peers back after a worker dies (replaceWorker, rejoinPeers). mediasoup cannot move a transport: a client has to open a new one on
 * the target router and publish or consume there, and only the app can tell the
 * client to. Every hook is make-before-break: it resolves once the new entity
 * carries media; the old one is closed afterwards, so nobody's media stops.
 *
 * Hooks may reject; the actuator turns that (and a timeout) into an error
 * outcome and never retries on its own.
 */
export interface MigrationHooks {
	/**
	 * The client of `producerId` publishes the same source again on a new send
	 * transport on `toRouter` (mediasoup-client: `device.createSendTransport()` on
	 * parameters from `toRouter`, then `produce({ track })` with the same track).
	 * Keep the old producer open: Foresight first moves its consumers to the new
	 * one, then closes it and calls `producerMigrated`.
	 *
	 * @returns the id of the new producer, created on `toRouter`.
	 */
	migrateProducer(request: { producerId: string; toRouter: types.Router }): Promise<{ newProducerId: string }>;

	/**
	 * The clients of `consumerIds` consume `producerId` on `toRouter` instead (where
	 * Foresight has piped it: the id is the one to consume *there*), on a receive
	 * transport they open on `toRouter` if they have none, then close the old
	 * consumers. Resolve once the new consumers exist; a consumer that could not be
	 * moved is left out of the result and keeps its old consumer.
	 *
	 * Foresight closes any listed old consumer the hook left open, so a client never
	 * receives the same source twice.
	 */
	moveConsumers(request: {
		consumerIds: string[];
		producerId: string;
		toRouter: types.Router;
	}): Promise<Array<{ oldConsumerId: string; newConsumerId: string }>>;

	/**
	 * The migration of `oldProducerId` is complete: its consumers consume
	 * `newProducerId` and Foresight has closed the old producer on the server. The
	 * app updates its room (new peers must consume `newProducerId`) and closes the
	 * client-side producer and, if now empty, its old send transport.
	 */
	producerMigrated(info: { oldProducerId: string; newProducerId: string; routerId: string }): void | Promise<void>;

	/** Foresight closed this consumer to shed load; the app tells its client. */
	consumerDropped(consumerId: string, reason: string): void | Promise<void>;

	/**
	 * The router of room `roomId` on `worker`, created on demand. Optional: without
	 * it Foresight creates one itself with the room's media codecs (see
	 * ActuatorOptions.mediaCodecs) and `appData: { roomId }`.
	 *
	 * Foresight finds a room's existing routers by `appData.roomId`; a router
	 * returned from here is remembered for its room even without it.
	 */
	routerFor?(roomId: string, worker: types.Worker): Promise<types.Router>;

	/**
	 * A worker died. Create its replacement (`mediasoup.createWorker({ appData: { slot } })`
	 * keeps the dead worker's label on metrics and dashboards), or resolve undefined to run
	 * on fewer workers. Optional: without it Foresight re-places on the workers left.
	 * Foresight adopts the returned worker if the observer has not seen it already.
	 */
	replaceWorker?(dead: DeadWorker): Promise<types.Worker | undefined>;

	/**
	 * Peers lost media with a dead worker: re-connect each to its `router`. The client
	 * keeps its session and whatever it has on live workers (make-before-break: nothing
	 * alive is closed before the new transports carry media); the app opens new transports
	 * on `router`, publishes the sources of the lost producers again and consumes again
	 * what the lost consumers received, as far as `mode` allows. Resolve with one result
	 * per peer once its media flows again (or it could not be re-connected). Called once
	 * per round: the peers that fit in full, then those that fit degraded along with
	 * those that fit nowhere (`refused`, whose clients the app tells).
	 * Optional: without it the peers are only forgotten, as before healing existed.
	 */
	rejoinPeers?(request: RejoinPeersRequest): Promise<RejoinResult[]>;
}

/** A worker that died, as Foresight last saw it. */
export interface DeadWorker {
	/** Foresight's id of the dead worker (its pid). */
	workerId: string;
	/** Its stable label: a replacement created with `appData: { slot }` inherits it. */
	slot: string;
}

/** How much of a peer comes back on its new worker. */
export type RejoinMode =
	/** Everything it lost: every source published again, everything consumed again. */
	| 'full'
	/** Capacity is short: it publishes only its audio again and consumes only audio. */
	| 'audioOnly';

/** One peer to re-connect after its worker died. */
export interface RejoinRequest {
	/** The peer: its transports' `appData.peerId` (the transport id when it has none). */
	peerId: string;
	/** Its room: `appData.roomId` of the router it lost. */
	roomId: string;
	/** Where it re-joins: its room's router on a worker the policy admitted it to. */
	router: types.Router;
	/** The worker of `router`. */
	workerId: string;
	/** How much of it comes back. */
	mode: RejoinMode;
	/** Its priority (transport `appData.priority`, else its consumers' highest); higher ones are restored first. */
	priority: number;
	/** Its transports that died with the worker: the client closes its side of them. */
	lostTransportIds: string[];
	/** Producers it lost: publish their sources again on `router` (audio ones only in 'audioOnly'). */
	lostProducerIds: string[];
	/** Consumers it lost: consume their sources again on `router` (audio ones only in 'audioOnly'). */
	lostConsumerIds: string[];
	/** Data producers it lost, to create again on `router`. */
	lostDataProducerIds: string[];
	/** Data consumers it lost, to create again on `router`. */
	lostDataConsumerIds: string[];
}

/** A peer that fits on no worker, not even degraded. */
export interface RefusedPeer {
	/** The peer, as in RejoinRequest. */
	peerId: string;
	/** Its room, as in RejoinRequest (empty when its router named none). */
	roomId: string;
	/** The admission's answer. */
	reason: string;
}

/** One healing round for the app. */
export interface RejoinPeersRequest {
	/** The worker that died. */
	deadWorkerId: string;
	/** Peers to re-connect now, highest priority first. */
	peers: RejoinRequest[];
	/** Peers that fit nowhere (only in the last round): the app tells their clients. */
	refused: RefusedPeer[];
}

/** What became of one RejoinRequest. */
export interface RejoinResult {
	/** The peer, as in its request. */
	peerId: string;
	/** True once its media flows on its new router. */
	rejoined: boolean;
	/** Why not, when `rejoined` is false (the client left, did not answer, …). */
	reason?: string;
}
