import type { types } from 'mediasoup';
import { z } from 'zod';

/**
 * Pipes between routers of different hosts (processes): mediasoup's PipeTransport pair,
 * connected by parameters the app carries between hosts over its own signaling, as
 * mediasoup's pipeToRouter does within one process. A link is one transport on each side
 * (both directions use it); a producer is sent over it by consuming it on the source's
 * transport and producing it with the same id on the target's. Everything received from
 * the other host is parsed with these schemas: it crossed the network.
 */
const id = z.string().min(1).max(128);
const port = z.int().min(1).max(65535);

/** One end of a link: where its PipeTransport listens. */
export const pipeEndSchema = z.object({ linkId: id, ip: z.ipv4(), port });
export type PipeEnd = z.infer<typeof pipeEndSchema>;

/** A producer sent over a link: what the other side needs to produce it (same id, kind and parameters as mediasoup's pipe consumer gives). */
export const pipedProducerSchema = z.object({
	producerId: id,
	kind: z.enum(['audio', 'video']),
	rtpParameters: z.looseObject({ codecs: z.array(z.looseObject({})).min(1).max(32), encodings: z.array(z.looseObject({})).max(8).optional() }),
	paused: z.boolean(),
	appData: z.record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean()])).optional(),
});
export type PipedProducer = z.infer<typeof pipedProducerSchema>;

interface Link {
	id: string;
	router: types.Router;
	transport: types.PipeTransport;
	/** Producers this side sends over the link: id → pipe consumer. */
	sent: Map<string, types.Consumer>;
	/** Producers received over the link: id → pipe producer. */
	received: Map<string, types.Producer>;
}

let nextLink = 1;

/**
 * This host's ends of cross-host links. Typical exchange (host A sends room media to B):
 * B `open(router)` → end B; A `open(routerA)` + `connect(linkA, endB)` → end A; B
 * `connect(linkB, endA)`; then A `send(linkA, producerId)` → PipedProducer, B
 * `receive(linkB, piped)` → a producer on B's router with the same id.
 */
export class CrossHostPipes {
	private readonly links = new Map<string, Link>();

	constructor(
		/** Address the other hosts reach this host's PipeTransports at (its own network address). */
		private readonly listenIp: string,
		private readonly hostId: string,
	) {}

	/** Opens this host's end of a new link on `router`. */
	async open(router: types.Router): Promise<PipeEnd> {
		const transport = await router.createPipeTransport({ listenInfo: { protocol: 'udp', ip: this.listenIp }, enableRtx: true });
		const link: Link = { id: `${this.hostId}:${nextLink++}`, router, transport, sent: new Map(), received: new Map() };
		this.links.set(link.id, link);
		// The router closes (room gone, worker died): the link goes with it.
		transport.observer.once('close', () => this.links.delete(link.id));
		return { linkId: link.id, ip: transport.tuple.localAddress ?? this.listenIp, port: transport.tuple.localPort };
	}

	/** Connects this host's end `linkId` to the other host's end (parsed: it came over the network). */
	async connect(linkId: string, remote: unknown): Promise<void> {
		const end = pipeEndSchema.parse(remote);
		await this.link(linkId).transport.connect({ ip: end.ip, port: end.port });
	}

	/** Sends a producer of the link's router to the other host; idempotent per producer. */
	async send(linkId: string, producerId: string): Promise<PipedProducer> {
		const link = this.link(linkId);
		let consumer = link.sent.get(producerId);
		if (!consumer || consumer.closed) {
			consumer = await link.transport.consume({ producerId });
			link.sent.set(producerId, consumer);
			consumer.observer.once('close', () => link.sent.delete(producerId));
		}
		return { producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters as PipedProducer['rtpParameters'], paused: consumer.producerPaused };
	}

	/** Produces on the link's router what the other host sent (same id); idempotent per producer. */
	async receive(linkId: string, piped: unknown): Promise<types.Producer> {
		const p = pipedProducerSchema.parse(piped);
		const link = this.link(linkId);
		const existing = link.received.get(p.producerId);
		if (existing && !existing.closed) return existing;
		const producer = await link.transport.produce({
			id: p.producerId,
			kind: p.kind,
			rtpParameters: p.rtpParameters as unknown as types.RtpParameters,
			paused: p.paused,
			appData: { ...p.appData, pipedFromHost: true },
		});
		link.received.set(p.producerId, producer);
		producer.observer.once('close', () => link.received.delete(p.producerId));
		return producer;
	}

	/** The other host closed a producer it sent: close its copy here (its consumers close with it). */
	drop(linkId: string, producerId: string): void {
		this.links.get(linkId)?.received.get(producerId)?.close();
	}

	/** Producers sent and received over a link (0 and 0 once it is closed). */
	counts(linkId: string): { sent: number; received: number } {
		const link = this.links.get(linkId);
		return { sent: link?.sent.size ?? 0, received: link?.received.size ?? 0 };
	}

	routerOf(linkId: string): types.Router {
		return this.link(linkId).router;
	}

	private link(linkId: string): Link {
		const link = this.links.get(linkId);
		if (!link || link.transport.closed) throw new Error(`no open cross-host link ${linkId}`);
		return link;
	}

	close(): void {
		for (const link of this.links.values()) link.transport.close();
		this.links.clear();
	}
}
