import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { DemoConfig } from './config';
import { Rejoins } from './rejoin';

/**
 * The demo's room model: a room spans one router per worker it has peers on
 * (created on demand, joined with pipeToRouter when a peer consumes a producer
 * that lives on another worker), peers with their transports, producers,
 * consumers and data channels. Server-side bots publish into the same room, so
 * browser peers see them as remote producers.
 */

export type Notify = (notification: string, data: Record<string, unknown>) => void;

export interface RemoteProducer {
	producerId: string;
	peerId: string;
	kind: types.MediaKind;
	displayName: string;
}

/**
 * Transport `appData.priority`: when a worker dies and capacity is short, Foresight
 * restores people before the load generator's bots.
 */
export const PEER_PRIORITY = { browser: 200, bot: 50 } as const;

/** How long the client has to re-publish a source on the new send transport. */
export const PRODUCER_MIGRATION_TIMEOUT_MS = 15_000;

/** A producer being re-published on another worker, by its old id (see Room.migrateProducer). */
interface ProducerMigration {
	peer: Peer;
	oldProducer: types.Producer;
	transport: types.WebRtcTransport;
	/** Set once the client produced on `transport`. */
	newProducer?: types.Producer;
	/** The hook has resolved: the new producer carries media; failures from here on are the actuator's. */
	settled: boolean;
	resolve(newProducer: types.Producer): void;
	reject(error: Error): void;
}

/** How often a re-published producer is checked for media before the hook resolves. */
const MEDIA_POLL_MS = 100;
/** How long a re-published producer may lag behind its old twin's simulcast layers once it carries media. */
const LAYERS_GRACE_MS = 2000;

export class Peer {
	readonly transports = new Map<string, types.WebRtcTransport>();
	readonly producers = new Map<string, types.Producer>();
	readonly consumers = new Map<string, types.Consumer>();
	readonly dataProducers = new Map<string, types.DataProducer>();
	readonly dataConsumers = new Map<string, types.DataConsumer>();
	rtpCapabilities: types.RtpCapabilities | undefined;
	displayName = '';
	joined = false;
	/** The router (hence worker) the allocation manager placed this peer on. */
	router: types.Router | undefined;
	/** Re-joined audio only after a worker died (capacity was short): it neither sends nor receives video. */
	audioOnly = false;

	constructor(
		readonly id: string,
		readonly notify: Notify,
	) {}

	transport(id: string): types.WebRtcTransport {
		const t = this.transports.get(id);
		if (!t) throw new SignalingError(`unknown transport ${id}`);
		return t;
	}

	/** The transport this peer receives on from `router` (its own router unless a consumer was migrated). */
	recvTransport(router = this.router): types.WebRtcTransport | undefined {
		for (const t of this.transports.values()) if (t.appData.direction === 'recv' && t.appData.routerId === router?.id) return t;
		return undefined;
	}

	close(): void {
		// Closing transports closes everything created on them.
		for (const t of this.transports.values()) t.close();
		this.transports.clear();
		this.producers.clear();
		this.consumers.clear();
		this.dataProducers.clear();
		this.dataConsumers.clear();
		this.joined = false;
	}
}

/** A request the peer got wrong: its message becomes the error reply. */
export class SignalingError extends Error {}

/**
 * Per-peer caps: what one browser tab can ask of the SFU. Each consumer costs worker CPU
 * on every packet of its producer and each transport ports and DTLS state, so a peer that
 * asks for more than a conference page needs is refused (and counted in /metrics).
 */
export const PEER_CAPS = {
	/** Live transports: send + recv, twice over for a migration in flight. */
	transports: 4,
	producers: 4,
	dataProducers: 2,
	/** Consumers of one remote producer: a page shows a source once; a swap in progress needs a second. */
	consumersPerProducer: 4,
	/** All consumers: a 7×7 grid of video and audio tiles plus data, with room to spare. */
	consumers: 128,
} as const;
export type PeerCap = keyof typeof PEER_CAPS;

/** A request refused by one of PEER_CAPS. */
export class CapError extends SignalingError {
	constructor(readonly cap: PeerCap) {
		super(`too many ${cap === 'consumersPerProducer' ? 'consumers of this producer' : cap} for one peer (at most ${PEER_CAPS[cap]})`);
	}
}

export class Room {
	readonly peers = new Map<string, Peer>();
	/** Producers that belong to no signaling peer (replay bots). */
	readonly botProducers = new Map<string, RemoteProducer & { handle: types.Producer; router: types.Router }>();

	private readonly routers = new Map<string, Promise<types.Router>>();
	private readonly routersById = new Map<string, types.Router>();
	private readonly producerMigrations = new Map<string, ProducerMigration>();
	/** Consumers closed by Foresight, not by the room, for a while: its hook tells why after the fact. */
	private readonly closedByOthers = new Map<string, Peer>();
	/** `${producerId}→${routerId}` already piped. */
	private readonly piped = new Map<string, Promise<{ pipeProducer?: types.Producer; pipeDataProducer?: types.DataProducer } | undefined>>();
	/** Pages re-connecting after their worker died (Foresight's rejoinPeers hook). */
	readonly rejoins: Rejoins;

	constructor(
		readonly id: string,
		private readonly workers: ReadonlyMap<string, types.Worker>,
		readonly mediaCodecs: types.RouterRtpCodecCapability[],
		private readonly config: DemoConfig,
		private readonly log: Logger,
	) {
		this.rejoins = new Rejoins(this, log);
	}

	/** The room's router on a worker, created the first time the room needs that worker. */
	routerOn(workerId: string): Promise<types.Router> {
		let r = this.routers.get(workerId);
		if (!r) {
			const worker = this.workers.get(workerId);
			if (!worker) throw new Error(`unknown worker ${workerId}`);
			r = worker.createRouter({ mediaCodecs: this.mediaCodecs, appData: { roomId: this.id, workerPid: worker.pid } });
			r.then((router) => {
				this.routersById.set(router.id, router);
				router.observer.once('close', () => {
					this.routers.delete(workerId);
					this.routersById.delete(router.id);
				});
			}).catch(() => this.routers.delete(workerId));
			this.routers.set(workerId, r);
		}
		return r;
	}

	/** Any router of the room (capabilities are the same on all of them). */
	get anyRouter(): Promise<types.Router> {
		const first = this.routers.values().next();
		if (!first.done) return first.value;
		return this.routerOn(this.workers.keys().next().value!);
	}

	/** The room's router on a worker given by handle (Foresight's routerFor hook). */
	routerOnWorker(worker: types.Worker): Promise<types.Router> {
		for (const [id, w] of this.workers) if (w === worker) return this.routerOn(id);
		throw new Error(`worker ${worker.pid} is not one of the room's workers`);
	}

	/** Makes a producer (or data producer) of this room available on `router`. */
	async ensureOn(router: types.Router, producer: { id: string; router: types.Router | undefined; data?: boolean }): Promise<void> {
		if (!producer.router || producer.router === router) return;
		const key = `${producer.id}→${router.id}`;
		let p = this.piped.get(key);
		if (!p) {
			const source = producer.router;
			p = producer.data
				? source.pipeToRouter({ dataProducerId: producer.id, router })
				: // Foresight pipes producers too when it spreads fan-out: the worker refuses a second pipe of the same id.
					// Checking first is not enough, as both may pipe at once; the loser finds it there.
					hasProducer(router, producer.id).then((there) =>
						there
							? undefined
							: source.pipeToRouter({ producerId: producer.id, router }).catch(async (err: Error) => {
									if (await hasProducer(router, producer.id)) return undefined;
									throw err;
								}),
					);
			// Forgotten once the pipe is gone (its producer closed, a worker died): it may be needed again later.
			p.then(
				(r) => {
					const forget = (): void => void this.piped.delete(key);
					r?.pipeProducer?.observer.once('close', forget);
					r?.pipeDataProducer?.observer.once('close', forget);
				},
				() => this.piped.delete(key),
			);
			this.piped.set(key, p);
		}
		await p;
	}

	/** The router a producer lives on (its transport's: a migrated producer is no longer on its peer's router). */
	routerOfProducer(producerId: string): types.Router | undefined {
		for (const peer of this.peers.values()) {
			const producer = peer.producers.get(producerId) ?? peer.dataProducers.get(producerId);
			if (producer) return this.routersById.get(String(producer.appData.routerId)) ?? peer.router;
		}
		return this.botProducers.get(producerId)?.router;
	}

	/**
	 * A browser peer's new producer: other peers are told, and told again when it
	 * closes, unless it closed because its migrated twin replaced it.
	 */
	addProducer(peer: Peer, producer: types.Producer): void {
		this.adoptProducer(peer, producer);
		this.broadcast(peer.id, 'newProducer', { producerId: producer.id, peerId: peer.id, kind: producer.kind, displayName: peer.displayName });
	}

	private adoptProducer(peer: Peer, producer: types.Producer): void {
		peer.producers.set(producer.id, producer);
		producer.observer.once('close', () => {
			peer.producers.delete(producer.id);
			if (this.producerMigrations.get(producer.id)?.settled) return;
			this.broadcast(peer.id, 'producerClosed', { producerId: producer.id, peerId: peer.id });
		});
	}

	/**
	 * Foresight's migrateProducer hook: the peer gets a send transport on
	 * `toRouter` and re-publishes the same source there, tagged
	 * `appData.replaces`. Resolves with the new producer once it receives as many
	 * RTP streams as the old one (so consumers moved to it see no gap); it stays
	 * out of the room's producer list until producerMigrated (so nobody consumes
	 * both), and the old one keeps sending meanwhile.
	 */
	async migrateProducer(producerId: string, toRouter: types.Router, timeoutMs = PRODUCER_MIGRATION_TIMEOUT_MS): Promise<types.Producer> {
		const peer = [...this.peers.values()].find((p) => p.producers.has(producerId));
		if (!peer) throw new Error(`producer ${producerId} is no open producer of a peer in room ${this.id} (closed, its peer left, or a bot's)`);
		const oldProducer = peer.producers.get(producerId)!;
		if (this.producerMigrations.has(producerId)) throw new Error(`producer ${producerId} is already being migrated`);
		if (this.routerOfProducer(producerId)?.id === toRouter.id) throw new Error(`producer ${producerId} already lives on router ${toRouter.id}`);
		const transport = await this.createTransportOn(toRouter, peer, 'send', false);
		if (oldProducer.closed) {
			transport.close();
			throw new Error(`producer ${producerId} closed during its migration`);
		}
		const created = new Promise<types.Producer>((resolve, reject) => {
			const migration: ProducerMigration = { peer, oldProducer, transport, settled: false, resolve, reject };
			this.producerMigrations.set(producerId, migration);
			const timer = setTimeout(() => fail(`peer ${peer.id} did not re-publish producer ${producerId} within ${timeoutMs} ms`), timeoutMs);
			timer.unref();
			const fail = (reason: string): void => {
				if (this.producerMigrations.get(producerId) !== migration || migration.settled) return;
				clearTimeout(timer);
				this.abortProducerMigration(producerId, reason);
				reject(new Error(reason));
			};
			oldProducer.observer.once('close', () => fail(`producer ${producerId} closed during its migration`));
			transport.observer.once('close', () => fail(`the new send transport of peer ${peer.id} closed (the peer left?)`));
			migration.resolve = (producer) => {
				if (this.producerMigrations.get(producerId) !== migration || migration.settled) return;
				migration.settled = true;
				clearTimeout(timer);
				resolve(producer);
			};
			migration.reject = (error) => fail(error.message);
		});
		peer.notify('migrateProducer', {
			producerId,
			transport: { id: transport.id, iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters },
		});
		this.log.info({ peerId: peer.id, producerId, routerId: toRouter.id }, 'producer migration asked of the client');
		return created;
	}

	/** The peer re-published a migrating producer (a produce tagged `appData.replaces`) on the transport it was given. */
	async produceReplacement(peer: Peer, replaces: string, transportId: string, produce: (transport: types.WebRtcTransport) => Promise<types.Producer>): Promise<types.Producer> {
		const migration = this.producerMigrations.get(replaces);
		if (!migration || migration.peer !== peer || migration.newProducer) throw new SignalingError(`no migration of producer ${replaces} is waiting for you`);
		if (migration.transport.id !== transportId) throw new SignalingError(`re-publish producer ${replaces} on transport ${migration.transport.id}`);
		const producer = await produce(migration.transport);
		if (producer.kind !== migration.oldProducer.kind) {
			producer.close();
			throw new SignalingError(`producer ${replaces} is ${migration.oldProducer.kind}, not ${producer.kind}`);
		}
		migration.newProducer = producer;
		void this.untilMediaFlows(producer, migration.oldProducer).then(
			() => migration.resolve(producer),
			(error: unknown) => migration.reject(error instanceof Error ? error : new Error(String(error))),
		);
		return producer;
	}

	/**
	 * Resolves once `producer` receives RTP, and all the streams `like` receives
	 * (every simulcast layer) or LAYERS_GRACE_MS after its first; rejects if it
	 * closes. The browser's bandwidth estimate may hold the top layer back for a
	 * while: a consumer then gets a lower layer for a moment, not a frozen frame.
	 */
	private async untilMediaFlows(producer: types.Producer, like: types.Producer): Promise<void> {
		const flowing = async (p: types.Producer): Promise<number> => (await p.getStats()).filter((s) => s.packetCount > 0).length;
		const wanted = Math.max(1, like.closed ? 1 : await flowing(like));
		let firstAt: number | undefined;
		while (!producer.closed) {
			const streams = await flowing(producer);
			if (streams > 0) firstAt ??= Date.now();
			if (streams >= wanted || (firstAt !== undefined && Date.now() - firstAt >= LAYERS_GRACE_MS)) return;
			await new Promise((r) => setTimeout(r, MEDIA_POLL_MS));
		}
		throw new Error(`producer ${producer.id} closed before it carried media`);
	}

	/** Whether a migration of this producer waits for its client to re-publish it. */
	migrating(producerId: string): boolean {
		return this.producerMigrations.has(producerId);
	}

	/** The client could not re-publish: the hook fails now rather than at its timeout. */
	producerMigrationFailed(peer: Peer, producerId: string, error: string): void {
		const migration = this.producerMigrations.get(producerId);
		if (!migration || migration.peer !== peer) throw new SignalingError(`no migration of producer ${producerId} is waiting for you`);
		migration.reject(new Error(`peer ${peer.id} could not re-publish producer ${producerId}: ${error}`));
	}

	/**
	 * Foresight's producerMigrated hook: the new producer replaces the old one in
	 * the room (newcomers consume it), and the client closes its old producer and,
	 * if nothing else is sent on it, its old send transport (closed here too).
	 */
	producerMigrated(oldProducerId: string, newProducerId: string): void {
		const migration = this.producerMigrations.get(oldProducerId);
		if (!migration?.newProducer || migration.newProducer.id !== newProducerId) {
			this.log.warn({ oldProducerId, newProducerId }, 'producerMigrated for a migration the room did not run');
			return;
		}
		const { peer, oldProducer, newProducer } = migration;
		// Closed while the migration is still registered: nobody is told it is gone.
		if (!oldProducer.closed) oldProducer.close();
		this.producerMigrations.delete(oldProducerId);
		if (newProducer.closed) return;
		peer.producers.delete(oldProducerId);
		this.adoptProducer(peer, newProducer);
		const oldTransportId = oldProducer.appData.transportId;
		const stillUsed = [...peer.producers.values(), ...peer.dataProducers.values()].some((p) => p.appData.transportId === oldTransportId);
		const oldTransport = typeof oldTransportId === 'string' && !stillUsed ? peer.transports.get(oldTransportId) : undefined;
		oldTransport?.close();
		peer.notify('producerMigrated', { oldProducerId, newProducerId, closedTransportId: oldTransport?.id ?? null });
		this.log.info({ peerId: peer.id, oldProducerId, newProducerId }, 'producer migrated');
	}

	/**
	 * The migration failed after the client re-published (Foresight could not move
	 * every consumer, say). If the old producer is gone the new one takes its
	 * place; otherwise both stay: each keeps the consumers it has.
	 */
	producerMigrationEnded(oldProducerId: string, reason: string): void {
		const migration = this.producerMigrations.get(oldProducerId);
		if (!migration) return;
		if (!migration.settled || !migration.newProducer) return this.abortProducerMigration(oldProducerId, reason);
		this.log.warn({ oldProducerId, newProducerId: migration.newProducer.id, reason }, 'producer migration did not complete');
		if (migration.oldProducer.closed) return this.producerMigrated(oldProducerId, migration.newProducer.id);
		this.producerMigrations.delete(oldProducerId);
		migration.peer.notify('producerMigrationFailed', { producerId: oldProducerId, newProducerId: migration.newProducer.id, reason });
	}

	/** Undoes a migration the client has not completed: its new transport (and anything on it) goes. */
	private abortProducerMigration(producerId: string, reason: string): void {
		const migration = this.producerMigrations.get(producerId);
		if (!migration) return;
		this.producerMigrations.delete(producerId);
		migration.transport.close();
		migration.peer.notify('producerMigrationFailed', { producerId, transportId: migration.transport.id, reason });
		this.log.warn({ peerId: migration.peer.id, producerId, reason }, 'producer migration failed');
	}

	/** Every producer a newcomer may consume, browsers' and bots'. */
	producers(exceptPeerId?: string): RemoteProducer[] {
		const out: RemoteProducer[] = [];
		for (const peer of this.peers.values()) {
			if (peer.id === exceptPeerId || !peer.joined) continue;
			for (const p of peer.producers.values()) out.push({ producerId: p.id, peerId: peer.id, kind: p.kind, displayName: peer.displayName });
		}
		for (const b of this.botProducers.values()) out.push({ producerId: b.producerId, peerId: b.peerId, kind: b.kind, displayName: b.displayName });
		return out;
	}

	dataProducers(exceptPeerId?: string): Array<{ dataProducerId: string; peerId: string; displayName: string }> {
		const out: Array<{ dataProducerId: string; peerId: string; displayName: string }> = [];
		for (const peer of this.peers.values()) {
			if (peer.id === exceptPeerId || !peer.joined) continue;
			for (const d of peer.dataProducers.values()) out.push({ dataProducerId: d.id, peerId: peer.id, displayName: peer.displayName });
		}
		return out;
	}

	broadcast(fromPeerId: string, notification: string, data: Record<string, unknown>): void {
		for (const peer of this.peers.values()) if (peer.id !== fromPeerId && peer.joined) peer.notify(notification, data);
	}

	findProducer(producerId: string): types.Producer | undefined {
		for (const peer of this.peers.values()) {
			const p = peer.producers.get(producerId);
			if (p) return p;
		}
		return this.botProducers.get(producerId)?.handle;
	}

	findDataProducer(dataProducerId: string): { handle: types.DataProducer; peer: Peer } | undefined {
		for (const peer of this.peers.values()) {
			const d = peer.dataProducers.get(dataProducerId);
			if (d) return { handle: d, peer };
		}
		return undefined;
	}

	addBotProducer(producer: types.Producer, router: types.Router, peerId: string, displayName: string): void {
		const entry = { producerId: producer.id, peerId, kind: producer.kind, displayName, handle: producer, router };
		this.botProducers.set(producer.id, entry);
		producer.observer.once('close', () => {
			// One replaced by its migrated twin (replaceBotProducer) is no longer listed: its consumers moved, nobody is told.
			if (this.botProducers.get(producer.id)?.handle !== producer) return;
			this.botProducers.delete(producer.id);
			this.broadcast('', 'producerClosed', { producerId: producer.id, peerId });
		});
		this.broadcast('', 'newProducer', { producerId: producer.id, peerId, kind: producer.kind, displayName });
	}

	/**
	 * A bot's producer was re-published on another worker (Foresight's migrateProducer):
	 * newcomers consume the new one from now on. Nobody is told: Foresight moves the old
	 * one's consumers to the new one, then closes the old one.
	 */
	replaceBotProducer(oldProducerId: string, producer: types.Producer, router: types.Router): void {
		const old = this.botProducers.get(oldProducerId);
		if (!old) return;
		this.botProducers.delete(oldProducerId);
		this.botProducers.set(producer.id, { ...old, producerId: producer.id, handle: producer, router });
		producer.observer.once('close', () => {
			if (this.botProducers.get(producer.id)?.handle !== producer) return;
			this.botProducers.delete(producer.id);
			this.broadcast('', 'producerClosed', { producerId: producer.id, peerId: old.peerId });
		});
	}

	async createWebRtcTransport(peer: Peer, direction: 'send' | 'recv', sctp: boolean): Promise<types.WebRtcTransport> {
		if (peer.transports.size >= PEER_CAPS.transports) throw new CapError('transports');
		if (!peer.router) throw new SignalingError('join first');
		return this.createTransportOn(peer.router, peer, direction, sctp);
	}

	private async createTransportOn(router: types.Router, peer: Peer, direction: 'send' | 'recv', sctp: boolean): Promise<types.WebRtcTransport> {
		const listen = { ip: this.config.rtcIp, announcedAddress: this.config.announcedAddress, portRange: { min: this.config.rtcMinPort, max: this.config.rtcMaxPort } };
		const transport = await router.createWebRtcTransport({
			listenInfos: [
				{ protocol: 'udp', ...listen },
				{ protocol: 'tcp', ...listen },
			],
			enableSctp: sctp,
			initialAvailableOutgoingBitrate: 1_000_000,
			...(direction === 'recv' && this.config.minOutgoingBitrate > 0 ? { minOutgoingBitrate: this.config.minOutgoingBitrate } : {}),
			appData: { peerId: peer.id, direction, routerId: router.id, priority: PEER_PRIORITY.browser },
		});
		transport.on('dtlsstatechange', (state) => {
			if (state === 'failed' || state === 'closed') this.log.warn({ peerId: peer.id, transportId: transport.id, state }, 'transport DTLS state');
		});
		peer.transports.set(transport.id, transport);
		transport.observer.once('close', () => peer.transports.delete(transport.id));
		return transport;
	}

	/** A paused consumer of `producer` on the peer's recv transport; the client resumes it once ready. */
	async consume(peer: Peer, producerId: string): Promise<types.Consumer> {
		if (!peer.rtpCapabilities) throw new SignalingError('join first');
		const producer = this.findProducer(producerId);
		if (!producer) throw new SignalingError(`unknown producer ${producerId}`);
		if (peer.audioOnly && producer.kind !== 'audio') throw new SignalingError('audio only since a media server failed');
		if (!peer.router) throw new SignalingError('join first');
		if (peer.consumers.size >= PEER_CAPS.consumers) throw new CapError('consumers');
		let ofThisProducer = 0;
		for (const c of peer.consumers.values()) if (c.producerId === producerId) ofThisProducer++;
		if (ofThisProducer >= PEER_CAPS.consumersPerProducer) throw new CapError('consumersPerProducer');
		await this.ensureOn(peer.router, { id: producerId, router: this.routerOfProducer(producerId) });
		if (!peer.router.canConsume({ producerId, rtpCapabilities: peer.rtpCapabilities })) throw new SignalingError('cannot consume this producer with your capabilities');
		const transport = peer.recvTransport();
		if (!transport) throw new SignalingError('create a recv transport first');
		return this.consumeOn(peer, transport, producerId);
	}

	private async consumeOn(peer: Peer, transport: types.WebRtcTransport, producerId: string): Promise<types.Consumer> {
		const consumer = await transport.consume({ producerId, rtpCapabilities: peer.rtpCapabilities!, paused: true, appData: { peerId: peer.id, routerId: transport.appData.routerId } });
		peer.consumers.set(consumer.id, consumer);
		// Foresight closes consumers too (to shed load): the client is told like for any other close.
		consumer.observer.once('close', () => {
			if (!peer.consumers.delete(consumer.id)) return;
			peer.notify('consumerClosed', { consumerId: consumer.id });
			this.closedByOthers.set(consumer.id, peer);
			setTimeout(() => this.closedByOthers.delete(consumer.id), 30_000).unref();
		});
		const notifyClosed = (): void => {
			if (peer.consumers.delete(consumer.id)) peer.notify('consumerClosed', { consumerId: consumer.id });
		};
		consumer.on('producerclose', () => {
			notifyClosed();
			consumer.close();
		});
		consumer.on('transportclose', notifyClosed);
		consumer.on('layerschange', (layers) => peer.notify('layersChanged', { consumerId: consumer.id, spatialLayer: layers?.spatialLayer ?? null, temporalLayer: layers?.temporalLayer ?? null }));
		return consumer;
	}

	async consumeData(peer: Peer, dataProducerId: string): Promise<types.DataConsumer> {
		const found = this.findDataProducer(dataProducerId);
		if (!found) throw new SignalingError(`unknown data producer ${dataProducerId}`);
		if (found.peer === peer) throw new SignalingError('cannot consume your own data producer');
		if (!peer.router) throw new SignalingError('join first');
		await this.ensureOn(peer.router, { id: dataProducerId, router: found.peer.router, data: true });
		const transport = peer.recvTransport();
		if (!transport) throw new SignalingError('create a recv transport first');
		const dataConsumer = await transport.consumeData({ dataProducerId });
		peer.dataConsumers.set(dataConsumer.id, dataConsumer);
		dataConsumer.on('dataproducerclose', () => {
			peer.dataConsumers.delete(dataConsumer.id);
			dataConsumer.close();
			peer.notify('dataConsumerClosed', { dataConsumerId: dataConsumer.id });
		});
		return dataConsumer;
	}

	/**
	 * Moves one browser consumer to another worker without the user noticing: the
	 * producer is piped there, the peer gets a recv transport on that worker if it
	 * has none, and a new paused consumer; the client swaps the track and resumes
	 * the new consumer, and then the old one is closed. Returns the new consumer's
	 * id, or undefined when the consumer is not a browser peer's.
	 */
	async migrateConsumer(consumerId: string, toWorkerId: string): Promise<string | undefined> {
		const peer = this.peerOfConsumer(consumerId);
		if (!peer) return undefined;
		const producerId = peer.consumers.get(consumerId)!.producerId;
		const router = await this.routerOn(toWorkerId);
		await this.ensureOn(router, { id: producerId, router: this.routerOfProducer(producerId) });
		return (await this.moveConsumer(consumerId, router, producerId))?.consumer.id;
	}

	/**
	 * Foresight's moveConsumers hook, for one consumer: `producerId` is already
	 * consumable on `router`. `swapped` settles once the client shows the new
	 * consumer and has closed the old one (it keeps playing until the new one has
	 * a frame), or after `swapTimeoutMs`, when the old one is closed here.
	 */
	async moveConsumer(
		consumerId: string,
		router: types.Router,
		producerId: string,
		swapTimeoutMs = 10_000,
	): Promise<{ consumer: types.Consumer; swapped: Promise<void> } | undefined> {
		const peer = this.peerOfConsumer(consumerId);
		if (!peer) return undefined;
		const old = peer.consumers.get(consumerId)!;
		// A producer migration moves consumers that stay on their router to the new producer.
		if (old.appData.routerId === router.id && old.producerId === producerId) return { consumer: old, swapped: Promise.resolve() };
		let transport = peer.recvTransport(router);
		let transportInfo: Record<string, unknown> | undefined;
		if (!transport) {
			transport = await this.createTransportOn(router, peer, 'recv', false);
			transportInfo = { id: transport.id, iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters };
		}
		const preferred = old.preferredLayers;
		const consumer = await this.consumeOn(peer, transport, producerId);
		if (preferred && consumer.type === 'simulcast') await consumer.setPreferredLayers(preferred);
		peer.notify('consumerMigrated', {
			oldConsumerId: old.id,
			transport: transportInfo ?? null,
			transportId: transport.id,
			consumer: { id: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters, type: consumer.type },
		});
		// The client resumes the new consumer, shows it once it has a frame, then closes the old one (closeConsumer).
		const swapped = new Promise<void>((resolve) => {
			const done = (): void => {
				clearTimeout(timer);
				old.observer.off('close', done);
				consumer.observer.off('close', done);
				peer.consumers.delete(old.id);
				if (!old.closed) old.close();
				resolve();
			};
			const timer = setTimeout(done, swapTimeoutMs);
			timer.unref();
			old.observer.once('close', done);
			consumer.observer.once('close', done);
		});
		this.log.info({ peerId: peer.id, from: old.id, to: consumer.id, routerId: router.id }, 'consumer migrated');
		return { consumer, swapped };
	}

	/** Foresight closed a consumer to shed load (the client already removed its tile): tell the peer why. */
	consumerDropped(consumerId: string, reason: string): void {
		const peer = this.closedByOthers.get(consumerId) ?? this.peerOfConsumer(consumerId);
		if (!peer) return;
		this.closedByOthers.delete(consumerId);
		if (peer.consumers.delete(consumerId)) peer.notify('consumerClosed', { consumerId });
		peer.notify('consumerDropped', { consumerId, reason });
	}

	private peerOfConsumer(consumerId: string): Peer | undefined {
		for (const peer of this.peers.values()) if (peer.consumers.has(consumerId)) return peer;
		return undefined;
	}

	removePeer(peer: Peer): void {
		this.rejoins.cancel(peer, 'the peer left');
		if (!this.peers.delete(peer.id)) return;
		peer.close();
		this.broadcast(peer.id, 'peerLeft', { peerId: peer.id });
	}
}

/** Whether a producer with this id is already on the router (piped by Foresight, say). */
async function hasProducer(router: types.Router, producerId: string): Promise<boolean> {
	const dump = await router.dump();
	return dump.mapProducerIdConsumerIds.some((entry) => entry.key === producerId);
}
