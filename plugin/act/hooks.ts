import type { types } from 'mediasoup';

/**
 * What the app implements in its signaling so Foresight can move media between
 * workers. mediasoup cannot move a transport: a client has to open a new one on
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
}
