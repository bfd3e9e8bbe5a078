import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { DemoConfig } from './config';

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

export class Peer {
	readonly transports = new Map<string, types.WebRtcTransport>();
	readonly producers = new Map<string, types.Producer>();
	readonly consumers = new Map<string, types.Consumer>();
	readonly dataProducers = new Map<string, types.DataProducer>();
	readonly dataConsumers = new Map<string, types.DataConsumer>();
	rtpCapabilities: types.RtpCapabilities | undefined;
	sctpCapabilities: types.SctpCapabilities | undefined;
	displayName = '';
	joined = false;
	/** The router (hence worker) the allocation manager placed this peer on. */
	router: types.Router | undefined;

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

export class Room {
	readonly peers = new Map<string, Peer>();
	/** Producers that belong to no signaling peer (replay bots). */
	readonly botProducers = new Map<string, RemoteProducer & { handle: types.Producer; router: types.Router }>();

	private readonly routers = new Map<string, Promise<types.Router>>();
	/** Consumers closed by Foresight, not by the room, for a while: its hook tells why after the fact. */
	private readonly closedByOthers = new Map<string, Peer>();
	/** `${producerId}→${routerId}` already piped. */
	private readonly piped = new Map<string, Promise<unknown>>();

	constructor(
		readonly id: string,
		private readonly workers: ReadonlyMap<string, types.Worker>,
		readonly mediaCodecs: types.RouterRtpCodecCapability[],
		private readonly config: DemoConfig,
		private readonly log: Logger,
	) {}

	/** The room's router on a worker, created the first time the room needs that worker. */
	routerOn(workerId: string): Promise<types.Router> {
		let r = this.routers.get(workerId);
		if (!r) {
			const worker = this.workers.get(workerId);
			if (!worker) throw new Error(`unknown worker ${workerId}`);
			r = worker.createRouter({ mediaCodecs: this.mediaCodecs, appData: { roomId: this.id, workerPid: worker.pid } });
			r.then((router) => router.observer.once('close', () => this.routers.delete(workerId))).catch(() => this.routers.delete(workerId));
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
					hasProducer(router, producer.id).then((there) => (there ? undefined : source.pipeToRouter({ producerId: producer.id, router })));
			p.catch(() => this.piped.delete(key));
			this.piped.set(key, p);
		}
		await p;
	}

	/** The router a producer lives on (its transport's). */
	routerOfProducer(producerId: string): types.Router | undefined {
		for (const peer of this.peers.values()) if (peer.producers.has(producerId) || peer.dataProducers.has(producerId)) return peer.router;
		return this.botProducers.get(producerId)?.router;
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
			this.botProducers.delete(producer.id);
			this.broadcast('', 'producerClosed', { producerId: producer.id, peerId });
		});
		this.broadcast('', 'newProducer', { producerId: producer.id, peerId, kind: producer.kind, displayName });
	}

	async createWebRtcTransport(peer: Peer, direction: 'send' | 'recv', sctp: boolean): Promise<types.WebRtcTransport> {
		if (peer.transports.size >= 4) throw new SignalingError('too many transports for one peer');
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
			numSctpStreams: { OS: 1024, MIS: 1024 },
			initialAvailableOutgoingBitrate: 1_000_000,
			appData: { peerId: peer.id, direction, routerId: router.id },
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
		if (!peer.router) throw new SignalingError('join first');
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
	 * consumable on `router`. `resumed` settles once the client plays the new
	 * consumer (or after `swapTimeoutMs`), so the old one can be closed then.
	 */
	async moveConsumer(
		consumerId: string,
		router: types.Router,
		producerId: string,
		swapTimeoutMs = 10_000,
	): Promise<{ consumer: types.Consumer; resumed: Promise<void> } | undefined> {
		const peer = this.peerOfConsumer(consumerId);
		if (!peer) return undefined;
		const old = peer.consumers.get(consumerId)!;
		if (old.appData.routerId === router.id) return { consumer: old, resumed: Promise.resolve() };
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
		// The client resumes the new consumer once its track is attached; then the old one goes.
		const resumed = new Promise<void>((resolve) => {
			const done = (): void => {
				clearTimeout(timer);
				consumer.observer.off('resume', done);
				consumer.observer.off('close', done);
				peer.consumers.delete(old.id);
				old.close();
				resolve();
			};
			const timer = setTimeout(done, swapTimeoutMs);
			timer.unref();
			consumer.observer.once('resume', done);
			consumer.observer.once('close', done);
		});
		this.log.info({ peerId: peer.id, from: old.id, to: consumer.id, routerId: router.id }, 'consumer migrated');
		return { consumer, resumed };
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
