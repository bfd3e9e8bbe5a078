import { join } from 'node:path';
import type { types } from 'mediasoup';
import { readRecording, type Recording } from '../record/format';
import type { Publisher, Replayer, Subscriber } from './replayer';
import { planScenario, type Scenario, type TimelineEvent } from './scenario';

/**
 * Carries a scenario's timeline out on a real router: publishers are looping
 * replays, consumers are SRTP PlainTransport bots. Events at the same instant
 * run one after another, as a burst of joins does against a real server.
 */

export interface RunOptions {
	router: types.Router;
	replayer: Replayer;
	recordingsDir: string;
	seed?: number;
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
}

interface Peer {
	group: string;
	subscriber?: Subscriber;
	publications: Map<number, Publisher>;
}

export class ScenarioRun {
	private readonly peers = new Map<string, Peer>();
	private readonly recordings = new Map<string, Recording>();
	private readonly consumesFrom: Map<string, Set<string>>;
	private startMs = 0;
	maxEventLagMs = 0;

	constructor(
		readonly scenario: Scenario,
		private readonly options: RunOptions,
	) {
		this.consumesFrom = new Map(scenario.groups.map((g) => [g.name, new Set(g.consume)]));
	}

	state(): RunState {
		let publishers = 0;
		let consumers = 0;
		for (const p of this.peers.values()) {
			publishers += p.publications.size;
			consumers += p.subscriber?.consumers.length ?? 0;
		}
		return { elapsedMs: performance.now() - this.startMs, peers: this.peers.size, publishers, consumers, maxEventLagMs: this.maxEventLagMs };
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
		}
	}

	private async join(name: string, group: string): Promise<void> {
		const peer: Peer = { group, publications: new Map() };
		this.peers.set(name, peer);
		if ((this.consumesFrom.get(group)?.size ?? 0) === 0) return;
		const existing: types.Producer[] = [];
		for (const [otherName, other] of this.peers) {
			if (otherName === name || !this.consumesFrom.get(group)!.has(other.group)) continue;
			for (const pub of other.publications.values()) existing.push(...pub.producers.values());
		}
		const g = this.scenario.groups.find((x) => x.name === group)!;
		peer.subscriber = await this.options.replayer.subscribe(this.options.router, existing, { preferredSpatialLayer: g.preferredSpatialLayer });
	}

	private async publish(e: Extract<TimelineEvent, { type: 'publish' }>): Promise<void> {
		const peer = this.peers.get(e.peer);
		if (!peer) return;
		const publisher = await this.options.replayer.publish(this.options.router, this.recording(e.recording), {
			labels: e.labels,
			maxLayers: e.maxLayers,
			loop: true,
			data: e.data,
			appData: { peer: e.peer, group: e.group },
		});
		peer.publications.set(e.pub, publisher);
		for (const [otherName, other] of this.peers) {
			if (otherName === e.peer || !other.subscriber || !this.consumesFrom.get(other.group)!.has(e.group)) continue;
			await other.subscriber.consume(publisher.producers.values());
		}
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
