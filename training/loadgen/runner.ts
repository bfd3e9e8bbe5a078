import { join } from 'node:path';
import type { types } from 'mediasoup';
import { readRecording, type Recording } from '../record/format';
import type { Publisher, Replayer, Subscriber } from './replayer';
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
}

interface Peer {
	group: string;
	router: types.Router;
	subscriber?: Subscriber;
	publications: Map<number, Publisher>;
	/** This peer's consumers of each publication it subscribes to, by pubKey(). */
	links: Map<string, types.Consumer[]>;
}

export class ScenarioRun {
	private readonly peers = new Map<string, Peer>();
	private readonly recordings = new Map<string, Recording>();
	/** Producers piped to other routers, by `${producerId} ${routerId}`: one pipe each, shared by that router's consumers. */
	private readonly piped = new Map<string, Promise<types.Producer>>();
	private startMs = 0;
	maxEventLagMs = 0;
	private refused = 0;

	constructor(
		readonly scenario: Scenario,
		private readonly options: RunOptions,
	) {
		if (!options.router && !options.placePeer) throw new TypeError('runScenario needs a router or placePeer');
	}

	state(): RunState {
		let publishers = 0;
		let consumers = 0;
		for (const p of this.peers.values()) {
			publishers += p.publications.size;
			consumers += p.subscriber?.consumers.length ?? 0;
		}
		return { elapsedMs: performance.now() - this.startMs, peers: this.peers.size, publishers, consumers, maxEventLagMs: this.maxEventLagMs, refused: this.refused };
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
			case 'unpublish': {
				const peer = this.peers.get(e.peer);
				const pub = peer?.publications.get(e.pub);
				if (pub) {
					this.options.replayer.unpublish(pub);
					peer!.publications.delete(e.pub);
				}
				return;
			}
			case 'leave':
				return this.leave(e.peer);
			case 'speaker':
				return;
			case 'subscribe':
				return this.subscribe(e);
			case 'subscription':
				return this.update(e);
			case 'unsubscribe': {
				const links = this.peers.get(e.peer)?.links;
				const key = pubKey(e.publisher, e.pub);
				for (const c of links?.get(key) ?? []) c.close();
				links?.delete(key);
				return;
			}
		}
	}

	private async join(name: string, group: string): Promise<void> {
		const router = this.options.placePeer ? await this.options.placePeer(name, group) : this.options.router;
		if (!router) {
			this.refused++;
			return;
		}
		const peer: Peer = { group, router, publications: new Map(), links: new Map() };
		this.peers.set(name, peer);
		// The consumer transport exists from the join, as an app's recv transport does; the timeline's subscribe events fill it.
		const g = this.scenario.groups.find((x) => x.name === group)!;
		if (g.consume.length > 0) peer.subscriber = await this.options.replayer.subscribe(router, [], this.options.appData ? { appData: this.options.appData } : {});
	}

	private async subscribe(e: TimelineEventOf<'subscribe'>): Promise<void> {
		const peer = this.peers.get(e.peer);
		const publisher = this.peers.get(e.publisher);
		const pub = publisher?.publications.get(e.pub);
		if (!peer?.subscriber || !publisher || !pub) return;
		const producers = await this.reachable(pub.producers.values(), publisher.router, peer.router);
		peer.links.set(pubKey(e.publisher, e.pub), await peer.subscriber.consume(producers, { spatialLayer: e.spatialLayer, paused: e.paused }));
	}

	private async update(e: TimelineEventOf<'subscription'>): Promise<void> {
		for (const c of this.peers.get(e.peer)?.links.get(pubKey(e.publisher, e.pub)) ?? []) {
			if (c.closed) continue;
			if (e.spatialLayer !== undefined && c.type === 'simulcast') await c.setPreferredLayers({ spatialLayer: e.spatialLayer });
			if (e.paused !== c.paused) await (e.paused ? c.pause() : c.resume());
		}
	}

	/** The producers as consumable on `to`: themselves on their own router, else their pipe producers. */
	private async reachable(producers: Iterable<types.Producer>, from: types.Router, to: types.Router): Promise<types.Producer[]> {
		const list = [...producers].filter((p) => !p.closed);
		if (from === to) return list;
		return Promise.all(
			list.map((p) => {
				const key = `${p.id} ${to.id}`;
				let pipe = this.piped.get(key);
				if (!pipe) {
					pipe = from.pipeToRouter({ producerId: p.id, router: to }).then((r) => r.pipeProducer!);
					// A failed pipe is retried by the next consumer instead of failing them all.
					pipe.catch(() => this.piped.delete(key));
					this.piped.set(key, pipe);
				}
				return pipe;
			}),
		);
	}

	private async publish(e: TimelineEventOf<'publish'>): Promise<void> {
		const peer = this.peers.get(e.peer);
		if (!peer) return;
		const publisher = await this.options.replayer.publish(peer.router, this.recording(e.recording), {
			labels: e.labels,
			maxLayers: e.maxLayers,
			loop: true,
			data: e.data,
			appData: { ...this.options.appData, peer: e.peer, group: e.group },
		});
		peer.publications.set(e.pub, publisher);
	}

	private leave(name: string): void {
		const peer = this.peers.get(name);
		if (!peer) return;
		for (const pub of peer.publications.values()) this.options.replayer.unpublish(pub);
		if (peer.subscriber) this.options.replayer.unsubscribe(peer.subscriber);
		this.peers.delete(name);
	}
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
