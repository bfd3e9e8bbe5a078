import { performance } from 'node:perf_hooks';
import { actionClass, isConsolidation, type AllocationAction, type AllocationPolicy } from '../actions';
import { temporalShare } from '../estimate';
import type { AllocationSnapshot, LayerChoice, MediaClass, PendingJoin } from '../snapshot';
import { drawMachine, drawProducerTruth, pct, trueLayerRates, TRUTH, type Machine, type ProducerTruth } from './groundTruth';
import { emptyMetrics, finishMetrics, LeadTimeTracker, s85, workerSlack, type ScenarioMetrics } from './metrics';
import { SimLiveView, type Seen, type SeenConsumer, type SeenProducer, type SeenWorker } from './liveView';
import { Rng } from '../../util/rng';
import type { TfPredictor } from '../../predict/model';
import type { Scenario, SimEvent, SimTrack } from './scenarios';

/**
 * Trace-driven simulator: plays a scenario against a policy one second at a time. The
 * policy gets a snapshot built by the live code (sim/liveView.ts: profiles, load samples,
 * the live prediction engine, the live snapshot builder) from noisy, lagged observations
 * only; ground truth (the machine's coefficients, per-stream and per-worker cost factors,
 * exact rates, ramp shapes) stays in here. Moving media is priced: every moved receiver
 * misses media for a while, and the target pays the new transport and a keyframe burst.
 * Definitions of every figure: docs/allocation-metrics.md.
 */
export interface SimOptions {
	/** Load above which consumers count as exposed. */
	overloadPct: number;
	/** Relative noise of a measured CPU sample. */
	measurementSigma: number;
	/** Relative noise of an observed stream rate. */
	observationSigma: number;
	/** Diagnostics hook: called once per second with the truth and what the policy was shown. */
	onTick?: (tick: SimTick) => void;
	/** Also compute each room's intrinsic demand every second (for reference packers; costs time). */
	roomDemand?: boolean;
	/** Run the live prediction engine for this policy (Foresight); baselines read measured CPU only and can skip it. Default true. */
	predict?: boolean;
	/** Serve forecasts from this trained model instead of the engine's kNN fallback. */
	model?: TfPredictor;
}

export interface SimTick {
	t: number;
	demand: ReadonlyMap<string, number>;
	counterfactual: ReadonlyMap<string, number>;
	hosting: ReadonlySet<string>;
	snapshot: AllocationSnapshot;
	actions: readonly AllocationAction[];
	/**
	 * With `roomDemand`: roomId → true CPU, % of a nominal core, its streams would cost on
	 * one worker at the layers clients want, never paused: producers' ingress, consumers'
	 * egress, one transport per receiver. No pipes, no per-worker factor or jitter.
	 */
	roomDemand?: ReadonlyMap<string, number>;
}

export const SIM_DEFAULTS: Readonly<SimOptions> = Object.freeze({ overloadPct: 85, measurementSigma: 0.02, observationSigma: 0.05 });

/**
 * One-off CPU of setting up a transport on a worker (ICE, DTLS handshake, SRTP keys), %
 * of a core for one second. An assumption of the simulator, not a measurement.
 */
const TRANSPORT_SETUP_PCT = 1;

interface SimPeer {
	id: string;
	roomId: string;
	/** Where its send transport (and producers) live. */
	workerId: string;
	/** Where its receive transport lives; new consumers are created there. */
	recvWorkerId: string;
	consumes: boolean;
	priority: number;
	producers: SimProducer[];
	consumers: Set<SimConsumer>;
}

interface SimProducer {
	id: string;
	peer: SimPeer;
	workerId: string;
	originWorkerId: string;
	truth: ProducerTruth;
	/** Whether the sender has more than one simulcast layer (what the SFU negotiated). */
	layers: number;
	rates: number[];
	observed: number[];
	consumers: Set<SimConsumer>;
}

interface SimConsumer {
	id: string;
	peer: SimPeer;
	producer: SimProducer;
	workerId: string;
	originWorkerId: string;
	wanted: LayerChoice;
	current: LayerChoice;
	paused: boolean;
	/** Paused by the app (off screen): sends nothing, costs nothing, not the policy's to weigh. */
	appPaused: boolean;
	dropped: boolean;
	priority: number;
	costFactor: number;
	trueRate: number;
	/** Until when (s) the receiver gets no media because the consumer or its producer moved. */
	disruptedUntil: number;
}

interface Want {
	spatial?: number;
	paused: boolean;
}

interface SimRoom {
	id: string;
	peers: Set<SimPeer>;
	speakerPeerId: string | null;
}

export interface SimResult {
	metrics: ScenarioMetrics;
	/** Per decision wall time, ms. */
	decisionMs: number[];
}

class World {
	readonly peers = new Map<string, SimPeer>();
	readonly rooms = new Map<string, SimRoom>();
	readonly producers = new Map<string, SimProducer>();
	readonly consumers = new Map<string, SimConsumer>();
	readonly workerIds: string[];
	readonly workerFactor: Map<string, number>;
	readonly machine: Machine;
	/** Subscriptions by consuming peer: producer id → what it wants (subscription scenarios only). */
	readonly wants = new Map<string, Map<string, Want>>();
	/** One-off CPU charged this second (transport setup, keyframe bursts of moves), % of a core before the worker factor. */
	readonly burst = new Map<string, number>();
	private readonly links = new Map<string, SimConsumer>();
	private seq = 0;

	constructor(
		workers: number,
		readonly rng: Rng,
		readonly subscriptions: boolean,
	) {
		this.workerIds = Array.from({ length: workers }, (_, i) => `w${i}`);
		this.workerFactor = new Map(this.workerIds.map((id) => [id, rng.lognormal(TRUTH.workerFactorSigma)]));
		this.machine = drawMachine(rng);
	}

	charge(workerId: string, pctOfCore: number): void {
		if (pctOfCore > 0) this.burst.set(workerId, (this.burst.get(workerId) ?? 0) + pctOfCore);
	}

	/** Sets (or changes) a subscription; the consumer exists once both peers are placed and the producer is live. */
	subscribe(peerId: string, producerId: string, want: Want): void {
		let mine = this.wants.get(peerId);
		if (!mine) this.wants.set(peerId, (mine = new Map()));
		mine.set(producerId, want);
		const peer = this.peers.get(peerId);
		const producer = this.producers.get(producerId);
		if (!peer || !producer || producer.peer === peer) return;
		const existing = this.links.get(linkKey(peer.id, producer.id));
		if (existing) {
			const wanted = wantedLayers(producer, want);
			// Lowered by the policy: stays lowered (at most the new wish); else follows the wish.
			const lowered = existing.current.spatial < existing.wanted.spatial || existing.current.temporal < existing.wanted.temporal;
			existing.current = lowered ? { spatial: Math.min(existing.current.spatial, wanted.spatial), temporal: Math.min(existing.current.temporal, wanted.temporal) } : wanted;
			existing.wanted = wanted;
			existing.appPaused = want.paused;
		} else this.addConsumer(peer, producer, want);
	}

	unsubscribe(peerId: string, producerId: string): void {
		this.wants.get(peerId)?.delete(producerId);
		const c = this.links.get(linkKey(peerId, producerId));
		if (c) this.removeConsumer(c);
	}

	room(id: string): SimRoom {
		let room = this.rooms.get(id);
		if (!room) this.rooms.set(id, (room = { id, peers: new Set(), speakerPeerId: null }));
		return room;
	}

	addPeer(join: PendingJoin, workerId: string, t: number, tracks: readonly SimTrack[]): void {
		const peer: SimPeer = { id: join.peerId, roomId: join.roomId, workerId, recvWorkerId: workerId, consumes: join.consumes, priority: join.priority, producers: [], consumers: new Set() };
		const room = this.room(join.roomId);
		this.peers.set(peer.id, peer);
		if (this.subscriptions) {
			for (const [producerId, want] of this.wants.get(peer.id) ?? []) {
				const producer = this.producers.get(producerId);
				if (producer && producer.peer !== peer) this.addConsumer(peer, producer, want);
			}
		} else if (peer.consumes) for (const other of room.peers) for (const p of other.producers) this.addConsumer(peer, p, { paused: false });
		room.peers.add(peer);
		for (const track of tracks) this.addProducer(peer, track, t);
	}

	addProducer(peer: SimPeer, track: SimTrack, t: number): void {
		const cls = track.mediaClass;
		if (peer.producers.some((p) => p.truth.mediaClass === cls)) return;
		const layers = cls === 'video' ? Math.max(1, Math.min(3, track.layers ?? 3)) : 1;
		const producer: SimProducer = {
			id: `${peer.id}-${cls}`,
			peer,
			workerId: peer.workerId,
			originWorkerId: peer.workerId,
			truth: drawProducerTruth(cls, t, this.rng, track.recording, layers),
			layers,
			rates: [],
			observed: [],
			consumers: new Set(),
		};
		peer.producers.push(producer);
		this.producers.set(producer.id, producer);
		for (const other of this.room(peer.roomId).peers) {
			if (other === peer) continue;
			if (this.subscriptions) {
				const want = this.wants.get(other.id)?.get(producer.id);
				if (want) this.addConsumer(other, producer, want);
			} else if (other.consumes) this.addConsumer(other, producer, { paused: false });
		}
	}

	private addConsumer(peer: SimPeer, producer: SimProducer, want: Want): void {
		// Screen shares are what everyone came to see; some tiles are background.
		const priority = producer.truth.mediaClass === 'screen' ? 220 : peer.priority;
		const wanted = wantedLayers(producer, want);
		const consumer: SimConsumer = {
			id: `c${this.seq++}`,
			peer,
			producer,
			workerId: peer.recvWorkerId,
			originWorkerId: peer.recvWorkerId,
			wanted,
			current: wanted,
			paused: false,
			appPaused: want.paused,
			dropped: false,
			priority,
			costFactor: this.rng.lognormal(TRUTH.streamFactorSigma),
			trueRate: 0,
			disruptedUntil: 0,
		};
		producer.consumers.add(consumer);
		peer.consumers.add(consumer);
		this.consumers.set(consumer.id, consumer);
		this.links.set(linkKey(peer.id, producer.id), consumer);
	}

	removeConsumer(c: SimConsumer): void {
		c.producer.consumers.delete(c);
		c.peer.consumers.delete(c);
		this.consumers.delete(c.id);
		if (this.links.get(linkKey(c.peer.id, c.producer.id)) === c) this.links.delete(linkKey(c.peer.id, c.producer.id));
	}

	removeProducer(p: SimProducer): void {
		for (const c of [...p.consumers]) this.removeConsumer(c);
		p.peer.producers = p.peer.producers.filter((x) => x !== p);
		this.producers.delete(p.id);
	}

	removePeer(peer: SimPeer): void {
		for (const p of [...peer.producers]) this.removeProducer(p);
		for (const c of [...peer.consumers]) this.removeConsumer(c);
		this.room(peer.roomId).peers.delete(peer);
		this.peers.delete(peer.id);
		this.wants.delete(peer.id);
	}
}

function linkKey(peerId: string, producerId: string): string {
	return `${peerId}\u0000${producerId}`;
}

/** The layers a receiver wants: its wish (unset = the top), within what the sender offers. */
function wantedLayers(producer: SimProducer, want: Want): LayerChoice {
	const top = producer.layers - 1;
	return { spatial: Math.max(0, Math.min(top, want.spatial ?? top)), temporal: 2 };
}

/** True packet rate a consumer receives: the chosen layer, or the best active one below it. */
function consumerTrueRate(c: SimConsumer, choice: LayerChoice): number {
	const rates = c.producer.rates;
	if (c.producer.truth.mediaClass === 'audio') return rates[0] ?? 0;
	let spatial = Math.min(choice.spatial, rates.length - 1);
	while (spatial > 0 && rates[spatial] === 0) spatial--;
	return (rates[spatial] ?? 0) * temporalShare(choice.temporal);
}

function downgraded(c: SimConsumer): boolean {
	return c.producer.truth.mediaClass !== 'audio' && (c.current.spatial < c.wanted.spatial || c.current.temporal < c.wanted.temporal);
}

export function simulate<S>(scenario: Scenario, policy: AllocationPolicy<S>, overrides: Partial<SimOptions> = {}): SimResult {
	const options: SimOptions = { ...SIM_DEFAULTS, ...overrides };
	// Truth and policy-visible noise come from one seeded stream: the same seed replays exactly.
	const rng = new Rng(scenario.seed * 31 + 17);
	const world = new World(scenario.workers, rng, scenario.subscriptions === true);
	const view = new SimLiveView({ predict: options.predict !== false, ...(options.model ? { model: options.model } : {}) });
	const metrics = emptyMetrics(scenario.name, policy.name);
	const leadTimes = new LeadTimeTracker(options.overloadPct);
	const decisionMs: number[] = [];
	let state = policy.initialState();
	// Before the first measurement the policy sees idle workers.
	let seen: Seen = { nowMs: 0, workers: world.workerIds.map((id) => idleWorker(id)), producers: [], consumers: [] };
	const refused = new Set<string>();
	const tracksOf = new Map<string, SimTrack[]>();
	let next = 0;
	const events = scenario.events;

	for (let t = 0; t < scenario.durationS; t++) {
		const pending: PendingJoin[] = [];
		for (; next < events.length && events[next]!.t <= t; next++) applyEvent(world, events[next]!, t, pending, refused, tracksOf);

		const snapshot = view.snapshot({ ...seen, nowMs: t * 1000 }, pending);
		const started = performance.now();
		const decision = policy.decide(snapshot, state);
		decisionMs.push(performance.now() - started);
		state = decision.state;
		applyActions(world, decision.actions, pending, t, metrics, leadTimes, refused, tracksOf);

		const truth = groundTruth(world, rng, t, options.roomDemand === true);
		const hosting = account(world, truth, t, options, metrics, leadTimes);
		options.onTick?.({ t, demand: truth.demand, counterfactual: truth.counterfactual, hosting, snapshot, actions: decision.actions, roomDemand: truth.roomDemand });
		const measured = new Map<string, number>();
		for (const id of world.workerIds) measured.set(id, Math.min(TRUTH.saturationPct, truth.demand.get(id)!) * (1 + rng.normal(0, options.measurementSigma)));
		seen = observe(world, t, measured, options, rng);
	}
	finishMetrics(metrics, leadTimes, decisionMs);
	return { metrics, decisionMs };
}

function idleWorker(id: string): SeenWorker {
	return { id, cpuPct: TRUTH.workerBasePct, routers: 0, transports: 0, producers: 0, consumers: 0 };
}

function applyEvent(world: World, event: SimEvent, t: number, pending: PendingJoin[], refused: Set<string>, tracksOf: Map<string, SimTrack[]>): void {
	switch (event.type) {
		case 'join':
			pending.push({ peerId: event.peerId, roomId: event.roomId, sends: event.sends, consumes: event.consumes, priority: event.priority });
			tracksOf.set(event.peerId, event.tracks ?? event.sends.map((mediaClass) => ({ mediaClass })));
			return;
		case 'leave': {
			const peer = world.peers.get(event.peerId);
			if (peer) world.removePeer(peer);
			world.wants.delete(event.peerId);
			tracksOf.delete(event.peerId);
			const i = pending.findIndex((j) => j.peerId === event.peerId);
			if (i >= 0) pending.splice(i, 1);
			return;
		}
		case 'startProducer': {
			const peer = world.peers.get(event.peerId);
			if (peer && !refused.has(peer.id)) world.addProducer(peer, { mediaClass: event.mediaClass, ...(event.recording ? { recording: event.recording } : {}), ...(event.layers ? { layers: event.layers } : {}) }, t);
			return;
		}
		case 'stopProducer': {
			const producer = world.peers.get(event.peerId)?.producers.find((p) => p.truth.mediaClass === event.mediaClass);
			if (producer) world.removeProducer(producer);
			return;
		}
		case 'speaker':
			world.room(event.roomId).speakerPeerId = event.peerId;
			return;
		case 'subscribe':
			if (!refused.has(event.peerId)) world.subscribe(event.peerId, `${event.publisherId}-${event.mediaClass}`, { ...(event.spatial !== undefined ? { spatial: event.spatial } : {}), paused: event.paused });
			return;
		case 'unsubscribe':
			world.unsubscribe(event.peerId, `${event.publisherId}-${event.mediaClass}`);
			return;
	}
}

function applyActions(world: World, actions: readonly AllocationAction[], pending: PendingJoin[], t: number, metrics: ScenarioMetrics, leadTimes: LeadTimeTracker, refused: Set<string>, tracksOf: Map<string, SimTrack[]>): void {
	const answered = new Set<string>();
	const joins = new Map(pending.map((j) => [j.peerId, j]));
	for (const action of actions) {
		const cls = actionClass(action);
		if (cls !== 'admission') {
			if (!applyCorrective(world, action, metrics, t)) continue;
			metrics.actions++;
			// Lead time counts only actions that take load off a worker under pressure: not restores, not consolidation of a light worker.
			if ((cls === 'rebalance' || cls === 'degrade') && !isConsolidation(action)) leadTimes.acted(action.workerId, t);
			continue;
		}
		if (action.type !== 'place' && action.type !== 'refuse' && action.type !== 'redirect') continue;
		const join = joins.get(action.peerId);
		if (!join || answered.has(join.peerId)) continue;
		answered.add(join.peerId);
		if (action.type === 'place' && world.workerIds.includes(action.workerId)) {
			world.addPeer(join, action.workerId, t, tracksOf.get(join.peerId) ?? []);
			continue;
		}
		refused.add(join.peerId);
		let lost = 0;
		if (world.subscriptions) {
			for (const [producerId, want] of world.wants.get(join.peerId) ?? []) if (!want.paused && world.producers.has(producerId)) lost++;
		} else if (join.consumes) lost = [...world.room(join.roomId).peers].reduce((n, p) => n + p.producers.length, 0);
		world.wants.delete(join.peerId);
		if (action.type === 'redirect') metrics.redirectedPeers++;
		else metrics.refusedPeers++;
		metrics.refusedConsumers += lost;
	}
	// A policy that leaves a join unanswered gets it placed on the first worker, and is told so in the metrics.
	for (const join of pending) {
		if (answered.has(join.peerId)) continue;
		metrics.unansweredJoins++;
		world.addPeer(join, world.workerIds[0]!, t, tracksOf.get(join.peerId) ?? []);
	}
}

/** Keyframe packets a receiver gets at `layer` of `p` after a move (audio: none). */
function keyframePackets(p: SimProducer, layer: number): number {
	if (p.truth.mediaClass === 'audio') return 0;
	return TRUTH.keyframePackets[Math.max(0, Math.min(p.layers - 1, layer))] ?? 0;
}

/**
 * Applies one corrective action; false when it no longer applies (entity gone, bad target).
 * Moves are priced here: the receivers' disruption, and the one-off CPU on the workers
 * that set up the new transports and send the keyframes.
 */
function applyCorrective(world: World, action: AllocationAction, metrics: ScenarioMetrics, t: number): boolean {
	const m = world.machine;
	switch (action.type) {
		case 'spreadFanout': {
			if (!world.workerIds.includes(action.toWorkerId)) return false;
			let moved = 0;
			for (const id of action.consumerIds) {
				const c = world.consumers.get(id);
				if (!c || c.producer.id !== action.producerId || c.workerId === action.toWorkerId) continue;
				const hadTransport = [...c.peer.consumers].some((x) => x !== c && !x.dropped && x.workerId === action.toWorkerId);
				c.workerId = action.toWorkerId;
				c.peer.recvWorkerId = action.toWorkerId;
				if (!c.appPaused) c.disruptedUntil = Math.max(c.disruptedUntil, t + TRUTH.consumerMoveDisruptionS);
				if (!hadTransport) world.charge(action.toWorkerId, TRANSPORT_SETUP_PCT);
				world.charge(action.toWorkerId, pct(keyframePackets(c.producer, c.current.spatial), m.srtpEgressUs));
				moved++;
			}
			metrics.movedConsumers += moved;
			return moved > 0;
		}
		case 'migrateProducer': {
			const p = world.producers.get(action.producerId);
			if (!p || !world.workerIds.includes(action.toWorkerId) || p.workerId === action.toWorkerId) return false;
			const hadTransport = p.peer.producers.some((x) => x !== p && x.workerId === action.toWorkerId);
			p.workerId = action.toWorkerId;
			// Its send transport goes along once nothing it sends stays behind: later producers of the peer start there.
			if (p.peer.producers.every((x) => x.workerId === action.toWorkerId)) p.peer.workerId = action.toWorkerId;
			if (!hadTransport) world.charge(action.toWorkerId, TRANSPORT_SETUP_PCT);
			// The sender starts over with a keyframe on every layer; every receiver waits for it.
			let ingressBurst = 0;
			for (let layer = 0; layer < p.layers; layer++) ingressBurst += keyframePackets(p, layer);
			world.charge(action.toWorkerId, pct(ingressBurst, m.ingressUs));
			for (const c of p.consumers) {
				if (c.dropped || c.appPaused) continue;
				c.disruptedUntil = Math.max(c.disruptedUntil, t + TRUTH.producerMoveDisruptionS);
				world.charge(c.workerId, pct(keyframePackets(p, c.current.spatial), m.srtpEgressUs));
			}
			metrics.migrations++;
			metrics.migratedProducerConsumers += [...p.consumers].filter((c) => !c.dropped && !c.appPaused).length;
			return true;
		}
		case 'place':
		case 'refuse':
		case 'redirect':
		case 'cannotRelieve':
			return false;
		default: {
			const c = world.consumers.get(action.consumerId);
			if (!c || c.dropped) return false;
			switch (action.type) {
				case 'setConsumerLayers':
					c.current = { spatial: Math.max(0, Math.min(c.wanted.spatial, action.spatial)), temporal: Math.max(0, Math.min(c.wanted.temporal, action.temporal)) };
					return true;
				case 'restoreLayers':
					c.current = c.wanted;
					return true;
				case 'pauseConsumer':
					c.paused = true;
					return true;
				case 'resumeConsumer':
					c.paused = false;
					return true;
				case 'dropConsumer':
					// Kept, marked, so the counterfactual still knows what it would have cost.
					c.dropped = true;
					metrics.droppedConsumers++;
					return true;
			}
		}
	}
}

interface Truth {
	/** Worker CPU demand (may exceed saturation). */
	demand: Map<string, number>;
	/** Demand each worker would carry with every stream on its first worker, at wanted layers, never paused. */
	counterfactual: Map<string, number>;
	roomDemand?: Map<string, number>;
}

/** Rooms with streams on more than one worker, and pipes (producer × other worker consuming it), as the world stands. */
function splitCounts(world: World): { rooms: number; pipes: number } {
	const roomWorkers = new Map<string, Set<string>>();
	let pipes = 0;
	for (const p of world.producers.values()) {
		let workers = roomWorkers.get(p.peer.roomId);
		if (!workers) roomWorkers.set(p.peer.roomId, (workers = new Set()));
		workers.add(p.workerId);
		const piped = new Set<string>();
		for (const c of p.consumers) if (!c.dropped && !c.appPaused && c.workerId !== p.workerId) piped.add(c.workerId);
		pipes += piped.size;
		for (const w of piped) workers.add(w);
	}
	let rooms = 0;
	for (const workers of roomWorkers.values()) if (workers.size > 1) rooms++;
	return { rooms, pipes };
}

function groundTruth(world: World, rng: Rng, t: number, withRooms: boolean): Truth {
	const m = world.machine;
	const load = new Map<string, number>();
	const counterfactual = new Map<string, number>();
	const rooms = withRooms ? new Map<string, number>() : undefined;
	const addRoom = (roomId: string, v: number): void => {
		if (rooms) rooms.set(roomId, (rooms.get(roomId) ?? 0) + v);
	};
	for (const id of world.workerIds) {
		load.set(id, TRUTH.workerBasePct + (world.burst.get(id) ?? 0));
		counterfactual.set(id, TRUTH.workerBasePct);
	}
	world.burst.clear();
	const add = (map: Map<string, number>, id: string, v: number): void => {
		map.set(id, map.get(id)! + v * world.workerFactor.get(id)!);
	};
	for (const p of world.producers.values()) {
		trueLayerRates(p.truth, t, rng, p.rates);
		let total = 0;
		for (const r of p.rates) total += r;
		add(load, p.workerId, pct(total, m.ingressUs) * p.truth.costFactor);
		add(counterfactual, p.originWorkerId, pct(total, m.ingressUs) * p.truth.costFactor);
		addRoom(p.peer.roomId, pct(total, m.ingressUs) * p.truth.costFactor);
		const piped = new Set<string>();
		for (const c of p.consumers) if (!c.dropped && !c.appPaused && c.workerId !== p.workerId) piped.add(c.workerId);
		for (const w of piped) {
			add(load, w, pct(total, m.pipeIngressUs));
			add(load, p.workerId, pct(total, m.pipeEgressUs));
		}
	}
	for (const c of world.consumers.values()) {
		if (c.appPaused) {
			c.trueRate = 0;
			continue;
		}
		c.trueRate = c.dropped || c.paused ? 0 : consumerTrueRate(c, c.current);
		if (c.trueRate > 0) add(load, c.workerId, pct(c.trueRate, m.srtpEgressUs) * c.costFactor);
		const wanted = pct(consumerTrueRate(c, c.wanted), m.srtpEgressUs) * c.costFactor;
		add(counterfactual, c.originWorkerId, wanted);
		addRoom(c.peer.roomId, wanted);
	}
	for (const peer of world.peers.values()) {
		const live = new Set<string>();
		const origin = new Set<string>();
		for (const c of peer.consumers) {
			origin.add(c.originWorkerId);
			if (!c.dropped) live.add(c.workerId);
		}
		for (const w of live) add(load, w, m.transportPct);
		for (const w of origin) add(counterfactual, w, m.transportPct);
		if (origin.size > 0) addRoom(peer.roomId, m.transportPct);
	}
	const demand = new Map<string, number>();
	for (const [id, v] of load) demand.set(id, v * Math.max(0.5, 1 + rng.normal(0, TRUTH.workerJitterSigma)));
	return { demand, counterfactual, roomDemand: rooms };
}

/** Accounts one second; returns the workers hosting any stream (what slack is averaged over). */
function account(world: World, truth: Truth, t: number, options: SimOptions, metrics: ScenarioMetrics, leadTimes: LeadTimeTracker): Set<string> {
	const consumersOn = new Map<string, number>();
	const hosting = new Set<string>();
	let streams = world.producers.size;
	for (const p of world.producers.values()) hosting.add(p.workerId);
	for (const c of world.consumers.values()) {
		if (c.dropped || c.appPaused) continue;
		streams++;
		hosting.add(c.workerId);
		if (t < c.disruptedUntil) metrics.disruptionConsumerS++;
		if (c.paused) metrics.pausedConsumerS++;
		else {
			consumersOn.set(c.workerId, (consumersOn.get(c.workerId) ?? 0) + 1);
			if (downgraded(c)) metrics.layerDowngradeS++;
		}
	}
	metrics.peakStreams = Math.max(metrics.peakStreams, streams);
	const split = splitCounts(world);
	metrics.peakSplitRooms = Math.max(metrics.peakSplitRooms, split.rooms);
	metrics.peakPipes = Math.max(metrics.peakPipes, split.pipes);
	let slack = 0;
	let slack85 = 0;
	for (const id of world.workerIds) {
		const demand = truth.demand.get(id)!;
		if (demand > options.overloadPct) {
			metrics.exposureConsumerS += consumersOn.get(id) ?? 0;
			metrics.overloadWorkerS++;
		}
		if (demand >= TRUTH.saturationPct) metrics.overloadLossConsumerS += consumersOn.get(id) ?? 0;
		if (hosting.has(id)) {
			slack += workerSlack(demand, TRUTH.saturationPct);
			slack85 += s85(demand, options.overloadPct);
		}
		leadTimes.sample(id, t, truth.counterfactual.get(id)!);
	}
	if (hosting.size > 0) {
		metrics.slackSum += slack / hosting.size;
		metrics.s85Sum += slack85 / hosting.size;
		metrics.slackTicks++;
	}
	return hosting;
}

/** What a deployment observes at the end of second `t`: noisy stream rates, measured CPU, counts. */
function observe(world: World, t: number, measured: Map<string, number>, options: SimOptions, rng: Rng): Seen {
	const noisy = (v: number): number => Math.max(0, v * (1 + rng.normal(0, options.observationSigma)));
	const counts = new Map<string, { producers: number; consumers: number; sendPeers: Set<string>; recvPeers: Set<string>; rooms: Set<string> }>();
	const countsOf = (id: string) => {
		let c = counts.get(id);
		if (!c) counts.set(id, (c = { producers: 0, consumers: 0, sendPeers: new Set(), recvPeers: new Set(), rooms: new Set() }));
		return c;
	};
	const producers: SeenProducer[] = [];
	for (const p of world.producers.values()) {
		p.observed = p.rates.map(noisy);
		const room = world.room(p.peer.roomId);
		producers.push({
			id: p.id,
			workerId: p.workerId,
			roomId: p.peer.roomId,
			peerId: p.peer.id,
			kind: p.truth.mediaClass === 'audio' ? 'audio' : 'video',
			screen: p.truth.mediaClass === 'screen',
			layerRates: p.observed,
			activeSpeaker: room.speakerPeerId === p.peer.id,
		});
		const c = countsOf(p.workerId);
		c.producers++;
		c.sendPeers.add(p.peer.id);
		c.rooms.add(p.peer.roomId);
	}
	const consumers: SeenConsumer[] = [];
	for (const c of world.consumers.values()) {
		// App-paused consumers are not the manager's to weigh (the live manager skips them too).
		if (c.dropped || c.appPaused) continue;
		consumers.push({
			id: c.id,
			workerId: c.workerId,
			producerId: c.producer.id,
			peerId: c.peer.id,
			priority: c.priority,
			pausedByManager: c.paused,
			wanted: c.wanted,
			current: c.current,
			packetRate: noisy(c.trueRate),
		});
		const k = countsOf(c.workerId);
		k.consumers++;
		k.recvPeers.add(c.peer.id);
		k.rooms.add(c.peer.roomId);
	}
	const workers = world.workerIds.map((id): SeenWorker => {
		const k = counts.get(id);
		return {
			id,
			cpuPct: measured.get(id)!,
			routers: k?.rooms.size ?? 0,
			transports: (k?.sendPeers.size ?? 0) + (k?.recvPeers.size ?? 0),
			producers: k?.producers ?? 0,
			consumers: k?.consumers ?? 0,
		};
	});
	return { nowMs: (t + 1) * 1000, workers, producers, consumers };
}
