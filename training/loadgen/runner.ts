import { join } from 'node:path';
import type { types } from 'mediasoup';
import { readRecording, type Recording } from '../record/format';
import { ReplayPeer, type LinkState } from './peer';
import type { Replayer } from './replayer';
import { planScenario, pubKey, type Scenario, type TimelineEvent, type TimelineEventOf } from './scenario';

/**
 * Carries a scenario's timeline out on a real router: publishers are looping
 * replays, consumers are SRTP PlainTransport bots. Events at the same instant
 * run one after another, as a burst of joins does against a real server.
 */

export interface RunOptions {
	/** Where every peer goes, unless `placePeer` chooses per peer (one of the two is required). */
	router?: types.Router;
	/**
	 * Per-peer placement (e.g. an allocation policy choosing among workers): peers of
	 * one scenario on different routers see each other's media through pipeToRouter,
	 * as a multi-worker mediasoup app's room does. Undefined = not admitted: the peer
	 * stays out of the scenario (counted in RunState.refused).
	 */
	placePeer?: (peer: string, group: string) => Promise<types.Router | undefined>;
	replayer: Replayer;
	recordingsDir: string;
	seed?: number;
	/** Added to the appData of every transport and producer the scenario's peers create (e.g. `movable: false`). */
	appData?: Record<string, unknown>;
	/** Prefix of the scenario's peers' `appData.peerId` (the peer's name follows), e.g. the room's id. */
	peerIdPrefix?: string;
	/**
	 * Publishes a publication of a `client: "browser"` group (scenario.ts) on `router`, e.g. a
	 * headless Chromium page (loadgen/browserClients.ts); required when the scenario has such groups.
	 * `appData` is what a replayed publication's producers would carry (peerId, peer, group).
	 */
	browser?: (router: types.Router, event: TimelineEventOf<'publish'>, appData: Record<string, unknown>) => Promise<ExternalPublication>;
	/** A subscription event that failed (it raced a close); the run goes on. */
	onError?: (event: TimelineEvent, error: Error) => void;
	/** Called after each event with the live counts. */
	onEvent?: (event: TimelineEvent, state: RunState) => void;
	signal?: AbortSignal;
}

export interface RunState {
	elapsedMs: number;
	peers: number;
	publishers: number;
	consumers: number;
	/** Largest delay between an event's planned time and its completion. */
	maxEventLagMs: number;
	/** Peers placePeer did not admit. */
	refused: number;
	/** Subscription events that failed because they raced a close (see RunOptions.onError). */
	failedEvents: number;
}

/** A publication sent by something other than the replayer (RunOptions.browser). */
export interface ExternalPublication {
	producers: Array<{ label: string; producer: types.Producer; router: types.Router }>;
	close(): Promise<void>;
}

interface Peer {
	group: string;
	replay: ReplayPeer;
	/** Its publications sent through RunOptions.browser, by the timeline's `pub`. */
	external: Map<string, ExternalPublication>;
}

export class ScenarioRun {
	private readonly peers = new Map<string, Peer>();
	private readonly recordings = new Map<string, Recording>();
	/** Producers made consumable on other routers, by `${producerId} ${routerId}`: one pipe each, shared by that router's consumers. */
	private readonly piped = new Map<string, Promise<void>>();
	private startMs = 0;
	maxEventLagMs = 0;
	private refused = 0;
	private failedEvents = 0;

	constructor(
		readonly scenario: Scenario,
		private readonly options: RunOptions,
	) {
		if (!options.router && !options.placePeer) throw new TypeError('runScenario needs a router or placePeer');
		if (!options.browser && scenario.groups.some((g) => g.client === 'browser')) throw new TypeError(`scenario ${scenario.name} has browser groups: runScenario needs RunOptions.browser`);
	}

	state(): RunState {
		let publishers = 0;
		let consumers = 0;
		for (const p of this.peers.values()) {
			publishers += p.replay.publications.size + p.external.size;
			consumers += p.replay.consumerCount;
		}
		return { elapsedMs: performance.now() - this.startMs, peers: this.peers.size, publishers, consumers, maxEventLagMs: this.maxEventLagMs, refused: this.refused, failedEvents: this.failedEvents };
	}

	/** The scenario's peers now (for following moves and counting what each receives). */
	livePeers(): ReplayPeer[] {
		return [...this.peers.values()].map((p) => p.replay);
	}

	/**
	 * An app's moveConsumers hook, for a consumer of this run: its peer consumes
	 * `producerId` on `toRouter` instead. The new consumer's id, or undefined when no
	 * peer of this run owns the consumer.
	 */
	async moveConsumer(consumerId: string, toRouter: types.Router, producerId: string): Promise<string | undefined> {
		const peer = this.livePeers().find((p) => p.hasConsumer(consumerId));
		return (await peer?.moveConsumer(consumerId, toRouter, producerId))?.id;
	}

	/** An app's migrateProducer hook, for a producer of this run: its track is published again on `toRouter` (see ReplayPeer.republish). */
	async migrateProducer(producerId: string, toRouter: types.Router): Promise<string | undefined> {
		const peer = this.livePeers().find((p) => p.hasProducer(producerId));
		return (await peer?.republish(producerId, toRouter))?.id;
	}

	ownsProducer(producerId: string): boolean {
		return this.livePeers().some((p) => p.hasProducer(producerId));
	}

	async run(): Promise<RunState> {
		const events = planScenario(this.scenario, this.options.seed);
		for (const e of events) if (e.type === 'publish') this.recording(e.recording);
		this.startMs = performance.now();
		try {
			for (const e of events) {
				const wait = this.startMs + e.atMs - performance.now();
				if (this.options.signal?.aborted) break;
				if (wait > 0) await abortableDelay(wait, this.options.signal);
				if (this.options.signal?.aborted) break;
				await this.apply(e);
				this.maxEventLagMs = Math.max(this.maxEventLagMs, performance.now() - this.startMs - e.atMs);
				this.options.onEvent?.(e, this.state());
			}
			return this.state();
		} finally {
			for (const peer of [...this.peers.keys()]) this.leave(peer);
		}
	}

	private recording(name: string): Recording {
		let r = this.recordings.get(name);
		if (!r) {
			r = readRecording(join(this.options.recordingsDir, `${name}.rec.gz`));
			this.recordings.set(name, r);
		}
		return r;
	}

	private async apply(e: TimelineEvent): Promise<void> {
		switch (e.type) {
			case 'join':
				return this.join(e.peer, e.group);
			case 'publish':
				return this.publish(e);
			case 'unpublish':
				this.peers.get(e.peer)?.replay.unpublish(String(e.pub));
				return this.closeExternal(e.peer, String(e.pub));
			case 'leave':
				return this.leave(e.peer);
			case 'speaker':
				return;
			case 'subscribe':
				return this.tolerant(e, () => this.subscribe(e));
			case 'subscription':
				return this.tolerant(e, async () => this.peers.get(e.peer)?.replay.update(pubKey(e.publisher, e.pub), linkState(e)));
			case 'unsubscribe':
				this.peers.get(e.peer)?.replay.unsubscribe(pubKey(e.publisher, e.pub));
				return;
		}
	}

	/**
	 * A subscription event that raced a close (its publication's producer migrated or
	 * closed, a receive transport emptied by a move) is counted, not fatal: the rest of
	 * the timeline still runs, as a real client's next request would.
	 */
	private async tolerant(e: TimelineEvent, run: () => Promise<unknown>): Promise<void> {
		try {
			await run();
		} catch (err) {
			this.failedEvents++;
			this.options.onError?.(e, err instanceof Error ? err : new Error(String(err)));
		}
	}

	private async join(name: string, group: string): Promise<void> {
		const router = this.options.placePeer ? await this.options.placePeer(name, group) : this.options.router;
		if (!router) {
			this.refused++;
			return;
		}
		const replay = new ReplayPeer(router, { replayer: this.options.replayer, peerId: `${this.options.peerIdPrefix ?? ''}${name}`, ...(this.options.appData ? { appData: this.options.appData } : {}) });
		this.peers.set(name, { group, replay, external: new Map() });
		// The consumer transport exists from the join, as an app's recv transport does; the timeline's subscribe events fill it.
		const g = this.scenario.groups.find((x) => x.name === group)!;
		if (g.consume.length > 0) await replay.receiver();
	}

	private async subscribe(e: TimelineEventOf<'subscribe'>): Promise<void> {
		const peer = this.peers.get(e.peer);
		const publisher = this.peers.get(e.publisher);
		const publication = publisher?.replay.publications.get(String(e.pub)) ?? publisher?.external.get(String(e.pub));
		if (!peer || !publication) return;
		const to = peer.replay.router;
		const producers = publication.producers.filter((p) => !p.producer.closed);
		await Promise.all(producers.map(({ producer, router }) => this.reachable(producer, router, to)));
		await peer.replay.subscribe(
			pubKey(e.publisher, e.pub),
			producers.map((p) => p.producer),
			linkState(e),
		);
	}

	/**
	 * Makes `producer` consumable on `to` by its own id: across workers a pipe producer
	 * keeps the id, and a producer Foresight (or another subscriber) piped there already
	 * is reused, since the worker refuses a second one with the same id.
	 */
	private reachable(producer: types.Producer, from: types.Router, to: types.Router): Promise<void> {
		if (from === to || producer.closed) return Promise.resolve();
		const key = `${producer.id} ${to.id}`;
		let pipe = this.piped.get(key);
		if (!pipe) {
			pipe = hasProducer(to, producer.id).then(async (there) => {
				if (!there) await from.pipeToRouter({ producerId: producer.id, router: to });
			});
			// A failed pipe is retried by the next consumer instead of failing them all.
			pipe.catch(() => this.piped.delete(key));
			this.piped.set(key, pipe);
		}
		return pipe;
	}

	private async publish(e: TimelineEventOf<'publish'>): Promise<void> {
		const peer = this.peers.get(e.peer);
		if (!peer) return;
		if (this.scenario.groups.find((g) => g.name === e.group)?.client === 'browser') {
			const publication = await this.options.browser!(peer.replay.router, e, { ...this.options.appData, peer: e.peer, group: e.group, peerId: peer.replay.id });
			// The peer may have left while its page was opening.
			if (this.peers.get(e.peer) === peer) peer.external.set(String(e.pub), publication);
			else await publication.close();
			return;
		}
		await peer.replay.publish(String(e.pub), this.recording(e.recording), {
			labels: e.labels,
			maxLayers: e.maxLayers,
			loop: true,
			data: e.data,
			appData: { peer: e.peer, group: e.group },
		});
	}

	private leave(name: string): void {
		const peer = this.peers.get(name);
		if (!peer) return;
		peer.replay.close();
		for (const pub of [...peer.external.keys()]) void this.closeExternal(name, pub);
		this.peers.delete(name);
	}

	private async closeExternal(name: string, pub: string): Promise<void> {
		const peer = this.peers.get(name);
		const publication = peer?.external.get(pub);
		if (!publication) return;
		peer!.external.delete(pub);
		await publication.close().catch((err: unknown) => this.options.onError?.({ atMs: this.state().elapsedMs, type: 'unpublish', peer: name, pub: Number(pub) }, err instanceof Error ? err : new Error(String(err))));
	}
}

function linkState(e: { spatialLayer?: number; paused: boolean }): LinkState {
	return e.spatialLayer === undefined ? { paused: e.paused } : { spatialLayer: e.spatialLayer, paused: e.paused };
}

/** Whether a producer with this id is already on the router (piped there by Foresight, say). */
async function hasProducer(router: types.Router, producerId: string): Promise<boolean> {
	const dump = await router.dump();
	return dump.mapProducerIdConsumerIds.some((entry) => entry.key === producerId);
}

/** Resolves after `ms`, or as soon as `signal` aborts: a pending timer would keep the process (or a Jest worker) alive after a stop. */
function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
	return new Promise((resolve) => {
		const done = (): void => {
			clearTimeout(timer);
			signal?.removeEventListener('abort', done);
			resolve();
		};
		const timer = setTimeout(done, ms);
		signal?.addEventListener('abort', done, { once: true });
	});
}

export function runScenario(scenario: Scenario, options: RunOptions): Promise<RunState> {
	return new ScenarioRun(scenario, options).run();
}
