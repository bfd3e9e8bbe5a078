import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { parseMessage, TokenBucket, type SignalingRequest } from './protocol';
import { CapError, Peer, PEER_CAPS, SignalingError, type PeerCap, type Room } from './room';

/** Burst of 60 messages, then 20 per second: far above what a browser peer needs. */
export const RATE_LIMIT = { capacity: 60, perSecond: 20 } as const;
/** A peer that keeps hammering after being told is disconnected. */
const MAX_REJECTED_IN_A_ROW = 500;

export interface SignalingStats {
	accepted: number;
	rejected: Record<'invalid' | 'rateLimited' | 'failed' | 'capped', number>;
	/** Requests refused by a per-peer cap (also counted in rejected.capped). */
	capped: Record<PeerCap, number>;
}

export function newSignalingStats(): SignalingStats {
	return {
		accepted: 0,
		rejected: { invalid: 0, rateLimited: 0, failed: 0, capped: 0 },
		capped: Object.fromEntries(Object.keys(PEER_CAPS).map((k) => [k, 0])) as Record<PeerCap, number>,
	};
}

/**
 * One WebSocket = one peer. Requests run one at a time per peer (mediasoup
 * state changes in order); whatever a peer sends, the worst outcome is an error
 * reply to that peer.
 */
export class SignalingSession {
	readonly peer: Peer;
	private readonly bucket = new TokenBucket(RATE_LIMIT.capacity, RATE_LIMIT.perSecond, Date.now());
	private queue: Promise<void> = Promise.resolve();
	private rejectedInARow = 0;
	/** Called for each producer this peer creates (the bots consume it). */
	onProducer: (producer: types.Producer) => void = () => {};

	constructor(
		private readonly socket: WebSocket,
		private readonly room: Room,
		/** Picks the router (worker) a joining peer goes to: the allocation manager's placement. */
		private readonly place: (peer: Peer) => Promise<types.Router>,
		private readonly stats: SignalingStats,
		private readonly log: Logger,
	) {
		this.peer = new Peer(randomUUID(), (notification, data) => this.send({ notification, data }));
		socket.on('message', (raw: Buffer, isBinary: boolean) => this.onMessage(raw, isBinary));
		socket.on('close', () => this.room.removePeer(this.peer));
		socket.on('error', (err) => this.log.debug({ err: err.message, peerId: this.peer.id }, 'signaling socket error'));
	}

	private send(message: Record<string, unknown>): void {
		if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
	}

	private reject(id: number | null, error: string, kind: keyof SignalingStats['rejected']): void {
		this.stats.rejected[kind]++;
		this.send({ id, ok: false, error });
		if (++this.rejectedInARow >= MAX_REJECTED_IN_A_ROW) this.socket.close(1008, 'too many bad messages');
	}

	private onMessage(raw: Buffer, isBinary: boolean): void {
		if (!this.bucket.take(Date.now())) return this.reject(null, 'rate limited: slow down', 'rateLimited');
		if (isBinary) return this.reject(null, 'binary messages are not accepted', 'invalid');
		const parsed = parseMessage(raw);
		if (!parsed.ok) return this.reject(parsed.id, parsed.error, 'invalid');
		const request = parsed.request;
		this.queue = this.queue.then(async () => {
			try {
				const data = await this.handle(request);
				this.rejectedInARow = 0;
				this.stats.accepted++;
				this.send({ id: request.id, ok: true, data });
			} catch (err) {
				const message = err instanceof Error ? err.message : String(err);
				if (!(err instanceof SignalingError)) this.log.debug({ peerId: this.peer.id, method: request.method, err: message }, 'request failed');
				if (err instanceof CapError) this.stats.capped[err.cap]++;
				this.reject(request.id, message, err instanceof CapError ? 'capped' : 'failed');
			}
		});
	}

	private requireJoined(): void {
		if (!this.peer.joined) throw new SignalingError('join first');
	}

	private async handle(request: SignalingRequest): Promise<unknown> {
		const { room, peer } = this;
		switch (request.method) {
			case 'getRouterRtpCapabilities':
				return (await room.anyRouter).rtpCapabilities;
			case 'join': {
				if (peer.joined) throw new SignalingError('already joined');
				peer.displayName = request.data.displayName;
				peer.rtpCapabilities = request.data.rtpCapabilities as types.RtpCapabilities;
				peer.router = await this.place(peer);
				peer.joined = true;
				room.peers.set(peer.id, peer);
				room.broadcast(peer.id, 'peerJoined', { peerId: peer.id, displayName: peer.displayName });
				return { peerId: peer.id, roomId: room.id, workerPid: peer.router.appData.workerPid ?? null, producers: room.producers(peer.id), dataProducers: room.dataProducers(peer.id) };
			}
			case 'createWebRtcTransport': {
				this.requireJoined();
				const t = await room.createWebRtcTransport(peer, request.data.direction, request.data.sctp);
				return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters, sctpParameters: t.sctpParameters };
			}
			case 'connect':
				this.requireJoined();
				await peer.transport(request.data.transportId).connect({ dtlsParameters: request.data.dtlsParameters as types.DtlsParameters });
				return {};
			case 'produce': {
				this.requireJoined();
				const { transportId, kind, rtpParameters } = request.data;
				const produce = (transport: types.WebRtcTransport): Promise<types.Producer> =>
					transport.produce({
						kind,
						rtpParameters: rtpParameters as types.RtpParameters,
						appData: { ...request.data.appData, peerId: peer.id, transportId: transport.id, routerId: transport.appData.routerId },
					});
				// A re-published source (producer migration) replaces its twin: it neither counts twice nor is announced.
				const replaces = request.data.appData?.replaces;
				if (replaces !== undefined) {
					if (typeof replaces !== 'string') throw new SignalingError('appData.replaces must be a producer id');
					return { id: (await room.produceReplacement(peer, replaces, transportId, produce)).id };
				}
				if (peer.producers.size >= PEER_CAPS.producers) throw new CapError('producers');
				if (peer.audioOnly && kind !== 'audio') throw new SignalingError('audio only since a media server failed');
				const producer = await produce(peer.transport(transportId));
				room.addProducer(peer, producer);
				this.onProducer(producer);
				return { id: producer.id };
			}
			case 'closeConsumer':
				this.requireJoined();
				this.consumer(request.data.consumerId).close();
				return {};
			case 'rejoined':
				this.requireJoined();
				room.rejoins.answered(peer, request.data.error);
				return {};
			case 'producerMigrationFailed':
				this.requireJoined();
				room.producerMigrationFailed(peer, request.data.producerId, request.data.error);
				return {};
			case 'produceData': {
				this.requireJoined();
				if (peer.dataProducers.size >= PEER_CAPS.dataProducers) throw new CapError('dataProducers');
				const transport = peer.transport(request.data.transportId);
				const dataProducer = await transport.produceData({
					sctpStreamParameters: request.data.sctpStreamParameters as types.SctpStreamParameters,
					label: request.data.label,
					protocol: request.data.protocol,
					appData: { ...request.data.appData, peerId: peer.id, transportId: transport.id, routerId: transport.appData.routerId },
				});
				peer.dataProducers.set(dataProducer.id, dataProducer);
				dataProducer.observer.once('close', () => peer.dataProducers.delete(dataProducer.id));
				room.broadcast(peer.id, 'newDataProducer', { dataProducerId: dataProducer.id, peerId: peer.id, displayName: peer.displayName });
				return { id: dataProducer.id };
			}
			case 'consume': {
				this.requireJoined();
				const c = await room.consume(peer, request.data.producerId);
				return { id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters, type: c.type };
			}
			case 'consumeData': {
				this.requireJoined();
				const d = await room.consumeData(peer, request.data.dataProducerId);
				return { id: d.id, dataProducerId: d.dataProducerId, sctpStreamParameters: d.sctpStreamParameters, label: d.label, protocol: d.protocol };
			}
			case 'resume':
				this.requireJoined();
				await this.consumer(request.data.consumerId).resume();
				return {};
			case 'setPreferredLayers':
				this.requireJoined();
				await this.consumer(request.data.consumerId).setPreferredLayers({ spatialLayer: request.data.spatialLayer, temporalLayer: request.data.temporalLayer });
				return {};
			case 'closeProducer': {
				this.requireJoined();
				const p = peer.producers.get(request.data.producerId);
				if (!p) throw new SignalingError(`unknown producer ${request.data.producerId}`);
				p.close();
				return {};
			}
			case 'leave':
				room.removePeer(peer);
				return {};
		}
	}

	private consumer(id: string): types.Consumer {
		const c = this.peer.consumers.get(id);
		if (!c) throw new SignalingError(`unknown consumer ${id}`);
		return c;
	}
}
