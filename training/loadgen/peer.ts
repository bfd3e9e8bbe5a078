import type { types } from 'mediasoup';
import type { Recording } from '../record/format';
import type { PublishOptions, Publisher, Replayer, Subscriber, SubscribeOptions } from './replayer';

/**
 * One load-generator peer that can follow Foresight's moves, as a browser page does
 * through its signaling: its receive transports and publications live on any of its
 * room's routers, a consumer can be re-created on another router (moveConsumer) and a
 * published track re-published on another router while the old copy keeps sending
 * (republish: make-before-break). Everything it opens carries `appData.peerId`, so
 * Foresight sees one peer, not one per transport.
 */

/** What the peer asked of one subscription: a consumer moved elsewhere is re-created the same way. */
export interface LinkState {
	spatialLayer?: number;
	paused: boolean;
}

interface Link {
	consumers: types.Consumer[];
	state: LinkState;
}

/** How long a re-published track may take to carry media before the move fails. */
export const REPUBLISH_TIMEOUT_MS = 10_000;
/**
 * How long a moved consumer is given to deliver before the old one closes anyway: audio
 * (20 ms frames) and video right at a key frame deliver within it. A replay cannot answer
 * a key-frame request, so a moved video consumer otherwise resumes at the recording's next
 * key frame (talking-head: every 4 s); waiting for that would hold Foresight's move, and
 * every decision behind it, for seconds per producer.
 */
export const MOVE_FLOW_WAIT_MS = 300;
/** How long a re-published copy may lag behind its old twin's simulcast layers once it carries media. */
const LAYERS_GRACE_MS = 2000;
const POLL_MS = 100;

/** One publication: the copy first published, plus one copy per track re-published elsewhere since. */
export class Publication {
	readonly copies: Publisher[] = [];

	constructor(
		readonly recording: Recording,
		readonly options: PublishOptions,
	) {}

	/** Its live producers, the newest copy of each track, with the router each lives on. */
	get producers(): Array<{ label: string; producer: types.Producer; router: types.Router }> {
		const byLabel = new Map<string, { label: string; producer: types.Producer; router: types.Router }>();
		for (const copy of this.copies) {
			if (copy.closed || !copy.router) continue;
			for (const [label, producer] of copy.producers) if (!producer.closed) byLabel.set(label, { label, producer, router: copy.router });
		}
		return [...byLabel.values()];
	}

	find(producerId: string): { label: string; copy: Publisher; producer: types.Producer } | undefined {
		for (const copy of this.copies) for (const [label, producer] of copy.producers) if (producer.id === producerId && !producer.closed) return { label, copy, producer };
		return undefined;
	}
}

export interface ReplayPeerOptions {
	replayer: Replayer;
	/** `appData.peerId` of everything it opens. */
	peerId: string;
	/** Added to the appData of every transport and producer it opens. */
	appData?: Record<string, unknown>;
	/** Its receive transports' options (preferred spatial layer, SRTP). */
	subscribe?: Omit<SubscribeOptions, 'appData'>;
}

export class ReplayPeer {
	readonly publications = new Map<string, Publication>();
	private readonly receivers = new Map<types.Router, Promise<Subscriber>>();
	private readonly links = new Map<string, Link>();
	/** Packets delivered by receive transports it has closed since (a move empties one). */
	private retiredPackets = 0;
	private closed = false;

	constructor(
		/** Where new publications and receive transports go: its join router, then where its receiving moved. */
		public router: types.Router,
		private readonly options: ReplayPeerOptions,
	) {}

	get id(): string {
		return this.options.peerId;
	}

	private appData(extra: Record<string, unknown> = {}): Record<string, unknown> {
		return { ...this.options.appData, ...extra, peerId: this.options.peerId };
	}

	/** Publishes a recording (a copy of each of its tracks) on the peer's router. */
	async publish(key: string, recording: Recording, options: PublishOptions = {}): Promise<Publication> {
		const publication = new Publication(recording, { ...options, appData: this.appData(options.appData) });
		const copy = await this.options.replayer.publish(this.router, recording, publication.options);
		publication.copies.push(copy);
		this.publications.set(key, publication);
		return publication;
	}

	unpublish(key: string): void {
		const publication = this.publications.get(key);
		if (!publication) return;
		this.publications.delete(key);
		for (const copy of publication.copies) this.options.replayer.unpublish(copy);
	}

	/** Its receive transport on `router`, opened on first use. */
	receiver(router: types.Router = this.router): Promise<Subscriber> {
		let sub = this.receivers.get(router);
		if (!sub) {
			sub = this.options.replayer.subscribe(router, [], { ...this.options.subscribe, appData: this.appData() });
			const created = sub;
			const forget = (): void => {
				if (this.receivers.get(router) === created) this.receivers.delete(router);
			};
			created.then(
				// Forgotten with its transport (its router closed, a worker died, or it was closed here), leaving no listener
				// behind; the replayer lets it go too, so that its shared sink socket closes with the last subscriber.
				(s) =>
					s.transport.observer.once('close', () => {
						forget();
						this.retiredPackets += this.options.replayer.received(s).packets;
						this.options.replayer.unsubscribe(s);
					}),
				forget,
			);
			this.receivers.set(router, created);
		}
		return sub;
	}

	/** Consumes `producers` (consumable on the peer's router) as one subscription; `state` is kept for moves. */
	async subscribe(key: string, producers: Array<Pick<types.Producer, 'id'>>, state: LinkState): Promise<types.Consumer[]> {
		const consumers = await (await this.receiver()).consume(producers, { ...(state.spatialLayer !== undefined ? { spatialLayer: state.spatialLayer } : {}), paused: state.paused });
		const link = this.links.get(key);
		if (link) {
			link.consumers.push(...consumers);
			link.state = state;
		} else this.links.set(key, { consumers, state });
		return consumers;
	}

	async update(key: string, state: LinkState): Promise<void> {
		const link = this.links.get(key);
		if (!link) return;
		link.state = state;
		for (const c of [...link.consumers]) {
			if (c.closed) continue;
			if (state.spatialLayer !== undefined && c.type === 'simulcast') await c.setPreferredLayers({ spatialLayer: state.spatialLayer });
			if (state.paused !== c.paused) await (state.paused ? c.pause() : c.resume());
		}
	}

	unsubscribe(key: string): void {
		for (const c of this.links.get(key)?.consumers ?? []) c.close();
		this.links.delete(key);
	}

	hasConsumer(consumerId: string): boolean {
		return this.linkOf(consumerId) !== undefined;
	}

	hasProducer(producerId: string): boolean {
		return [...this.publications.values()].some((p) => p.find(producerId) !== undefined);
	}

	/** Live consumers over all its receive transports. */
	get consumerCount(): number {
		let n = 0;
		for (const link of this.links.values()) n += link.consumers.filter((c) => !c.closed).length;
		return n;
	}

	/** Its receive transports that exist now (for counting what they deliver). */
	async subscribers(): Promise<Subscriber[]> {
		const settled = await Promise.allSettled(this.receivers.values());
		return settled.flatMap((s) => (s.status === 'fulfilled' && !s.value.transport.closed ? [s.value] : []));
	}

	/** RTP and RTCP packets its receive transports have delivered to the replayer's sink, closed ones included. */
	async received(): Promise<number> {
		let packets = this.retiredPackets;
		for (const sub of await this.subscribers()) packets += this.options.replayer.received(sub).packets;
		return packets;
	}

	/**
	 * Foresight's moveConsumers, for one consumer of this peer: it consumes `producerId`
	 * (consumable on `toRouter`) on its receive transport there, opened if needed, in the
	 * subscription's state. The old consumer closes once the new one delivers (or after
	 * MOVE_FLOW_WAIT_MS); a receive transport left with no consumer closes, so the worker
	 * it leaves no longer pays for it. Undefined when the consumer is not this peer's.
	 */
	async moveConsumer(consumerId: string, toRouter: types.Router, producerId: string): Promise<types.Consumer | undefined> {
		const found = this.linkOf(consumerId);
		if (!found || this.closed) return undefined;
		const old = found.link.consumers.find((c) => c.id === consumerId)!;
		const fromRouter = await this.routerOfConsumer(old);
		const receiver = await this.receiver(toRouter);
		const { state } = found.link;
		const [consumer] = await receiver.consume([{ id: producerId }], { ...(state.spatialLayer !== undefined ? { spatialLayer: state.spatialLayer } : {}), paused: state.paused });
		if (!consumer) return undefined;
		// The subscription may have ended meanwhile: then the new consumer is not wanted either.
		const link = this.linkOf(consumerId)?.link;
		if (!link) {
			consumer.close();
			return undefined;
		}
		link.consumers[link.consumers.indexOf(old)] = consumer;
		if (!state.paused) await untilDelivers(consumer, MOVE_FLOW_WAIT_MS);
		if (!old.closed) old.close();
		if (fromRouter && fromRouter !== toRouter) {
			this.router = toRouter;
			await this.closeIfEmpty(fromRouter);
		}
		return consumer;
	}

	/**
	 * Foresight's migrateProducer, for one of this peer's tracks: the same track is
	 * published again on `toRouter` (a new copy with fresh SSRCs) and the returned
	 * producer carries media when this resolves; the old one keeps sending until Foresight
	 * closes it, and its copy stops with its last producer. Undefined when not this peer's.
	 */
	async republish(producerId: string, toRouter: types.Router, timeoutMs = REPUBLISH_TIMEOUT_MS): Promise<types.Producer | undefined> {
		for (const publication of this.publications.values()) {
			const found = publication.find(producerId);
			if (!found) continue;
			if (found.copy.router === toRouter) throw new Error(`producer ${producerId} already lives on router ${toRouter.id}`);
			const copy = await this.options.replayer.publish(toRouter, publication.recording, {
				...publication.options,
				labels: [found.label],
				data: false,
				autoStart: true,
				appData: { ...publication.options.appData, replaces: producerId },
			});
			const producer = copy.producers.get(found.label);
			try {
				if (!producer) throw new Error(`the copy on router ${toRouter.id} has no ${found.label} track`);
				if (![...this.publications.values()].includes(publication)) throw new Error(`publication of ${producerId} ended during its migration`);
				await untilMediaFlows(producer, found.producer, timeoutMs);
			} catch (err) {
				this.options.replayer.unpublish(copy);
				throw err;
			}
			publication.copies.push(copy);
			return producer;
		}
		return undefined;
	}

	close(): void {
		this.closed = true;
		for (const key of [...this.publications.keys()]) this.unpublish(key);
		for (const sub of this.receivers.values()) sub.then((s) => this.options.replayer.unsubscribe(s), () => undefined);
		this.receivers.clear();
		this.links.clear();
	}

	private linkOf(consumerId: string): { key: string; link: Link } | undefined {
		for (const [key, link] of this.links) if (link.consumers.some((c) => c.id === consumerId && !c.closed)) return { key, link };
		return undefined;
	}

	private async routerOfConsumer(consumer: types.Consumer): Promise<types.Router | undefined> {
		for (const sub of await this.subscribers()) if (sub.consumers.includes(consumer)) return sub.router;
		return undefined;
	}

	private async closeIfEmpty(router: types.Router): Promise<void> {
		const sub = await this.receivers.get(router)?.catch(() => undefined);
		if (!sub || sub.consumers.some((c) => !c.closed)) return;
		this.receivers.delete(router);
		this.retiredPackets += this.options.replayer.received(sub).packets;
		this.options.replayer.unsubscribe(sub);
	}
}

/** Resolves once the consumer has sent a packet, or after `maxMs` (a video consumer may wait for a key frame). */
async function untilDelivers(consumer: types.Consumer, maxMs: number): Promise<void> {
	const deadline = Date.now() + maxMs;
	while (!consumer.closed && Date.now() < deadline) {
		const stats = await consumer.getStats().catch(() => []);
		if (stats.some((s) => s.type === 'outbound-rtp' && s.packetCount > 0)) return;
		await new Promise((r) => setTimeout(r, POLL_MS));
	}
}

/**
 * Resolves once `producer` receives RTP on as many streams as `like` (every simulcast
 * layer), or LAYERS_GRACE_MS after its first; rejects if it closes or carries nothing
 * within `timeoutMs`.
 */
async function untilMediaFlows(producer: types.Producer, like: types.Producer, timeoutMs: number): Promise<void> {
	const flowing = async (p: types.Producer): Promise<number> => (await p.getStats()).filter((s) => s.packetCount > 0).length;
	const wanted = Math.max(1, like.closed ? 1 : await flowing(like).catch(() => 1));
	const deadline = Date.now() + timeoutMs;
	let firstAt: number | undefined;
	while (!producer.closed) {
		const streams = await flowing(producer);
		if (streams > 0) firstAt ??= Date.now();
		if (streams >= wanted || (firstAt !== undefined && Date.now() - firstAt >= LAYERS_GRACE_MS)) return;
		if (Date.now() > deadline) throw new Error(`the copy of producer ${like.id} carried no media within ${timeoutMs} ms`);
		await new Promise((r) => setTimeout(r, POLL_MS));
	}
	throw new Error(`producer ${producer.id} closed before it carried media`);
}
