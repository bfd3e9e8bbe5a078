import { performance } from 'node:perf_hooks';
import { actionClass, isConsolidation, type AllocationAction, type AllocationPolicy } from '../actions';
import { temporalShare } from '../estimate';
import {
	MEASURED_COST_MODEL,
	type AllocationSnapshot,
	type ConsumerView,
	type LayerChoice,
	type LoadForecast,
	type MediaClass,
	type PendingJoin,
	type ProducerView,
	type RoomView,
	type WorkerView,
} from '../snapshot';
import { drawProducerTruth, pct, trueLayerRates, TRUTH, type ProducerTruth } from './groundTruth';
import { emptyMetrics, finishMetrics, LeadTimeTracker, workerSlack, type ScenarioMetrics } from './metrics';
import { SpecPredictor } from './predictor';
import { Rng } from '../../util/rng';
import type { Scenario, SimEvent } from './scenarios';

/**
 * Trace-driven simulator: plays a scenario against a policy one second at a time. The
 * policy gets a snapshot built only from noisy, lagged observations and the predictor;
 * ground truth (per-stream and per-worker cost factors, exact rates) stays in here.
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
	dropped: boolean;
	priority: number;
	costFactor: number;
	trueRate: number;
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

const FULL: LayerChoice = Object.freeze({ spatial: 2, temporal: 2 });

class World {
	readonly peers = new Map<string, SimPeer>();
	readonly rooms = new Map<string, SimRoom>();
	readonly producers = new Map<string, SimProducer>();
	readonly consumers = new Map<string, SimConsumer>();
	readonly workerIds: string[];
	readonly workerFactor: Map<string, number>;
	private seq = 0;

	constructor(
		workers: number,
		readonly rng: Rng,
	) {
		this.workerIds = Array.from({ length: workers }, (_, i) => `w${i}`);
		this.workerFactor = new Map(this.workerIds.map((id) => [id, rng.lognormal(TRUTH.workerFactorSigma)]));
	}

	room(id: string): SimRoom {
		let room = this.rooms.get(id);
		if (!room) this.rooms.set(id, (room = { id, peers: new Set(), speakerPeerId: null }));
		return room;
	}

	addPeer(join: PendingJoin, workerId: string, t: number): void {
		const peer: SimPeer = { id: join.peerId, roomId: join.roomId, workerId, recvWorkerId: workerId, consumes: join.consumes, priority: join.priority, producers: [], consumers: new Set() };
		const room = this.room(join.roomId);
		this.peers.set(peer.id, peer);
		if (peer.consumes) for (const other of room.peers) for (const p of other.producers) this.addConsumer(peer, p);
		room.peers.add(peer);
		for (const cls of join.sends) this.addProducer(peer, cls, t);
	}

	addProducer(peer: SimPeer, cls: MediaClass, t: number): void {
		if (peer.producers.some((p) => p.truth.mediaClass === cls)) return;
		const producer: SimProducer = {
			id: `${peer.id}-${cls}`,
			peer,
			workerId: peer.workerId,
			originWorkerId: peer.workerId,
			truth: drawProducerTruth(cls, t, this.rng),
			rates: [],
			observed: [],
			consumers: new Set(),
		};
		peer.producers.push(producer);
		this.producers.set(producer.id, producer);
		for (const other of this.room(peer.roomId).peers) if (other !== peer && other.consumes) this.addConsumer(other, producer);
	}

	private addConsumer(peer: SimPeer, producer: SimProducer): void {
		// Screen shares are what everyone came to see; some tiles are background.
		const priority = producer.truth.mediaClass === 'screen' ? 220 : peer.priority;
		const consumer: SimConsumer = {
			id: `c${this.seq++}`,
			peer,
			producer,
			workerId: peer.recvWorkerId,
			originWorkerId: peer.recvWorkerId,
			wanted: FULL,
			current: FULL,
			paused: false,
			dropped: false,
			priority,
			costFactor: this.rng.lognormal(TRUTH.streamFactorSigma),
			trueRate: 0,
		};
		producer.consumers.add(consumer);
		peer.consumers.add(consumer);
		this.consumers.set(consumer.id, consumer);
	}

	removeConsumer(c: SimConsumer): void {
		c.producer.consumers.delete(c);
		c.peer.consumers.delete(c);
		this.consumers.delete(c.id);
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
	}
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
	const world = new World(scenario.workers, rng);
	const predictor = new SpecPredictor(MEASURED_COST_MODEL);
	const metrics = emptyMetrics(scenario.name, policy.name);
	const leadTimes = new LeadTimeTracker(options.overloadPct);
	const decisionMs: number[] = [];
	let state = policy.initialState();
	let views = { workers: [] as WorkerView[], producers: [] as ProducerView[], consumers: [] as ConsumerView[], rooms: [] as RoomView[] };
	// Before the first measurement the predictor and the policy see idle workers.
	views.workers = world.workerIds.map((id) => idleWorker(id));
	const refused = new Set<string>();
	let next = 0;
	const events = scenario.events;

	for (let t = 0; t < scenario.durationS; t++) {
		const pending: PendingJoin[] = [];
		for (; next < events.length && events[next]!.t <= t; next++) applyEvent(world, events[next]!, t, pending, refused);

		const snapshot: AllocationSnapshot = { t, costModel: MEASURED_COST_MODEL, ...views, pendingJoins: pending };
		const started = performance.now();
		const decision = policy.decide(snapshot, state);
		decisionMs.push(performance.now() - started);
		state = decision.state;
		applyActions(world, decision.actions, pending, t, metrics, leadTimes, refused);

		const truth = groundTruth(world, rng, t, options.roomDemand === true);
		const hosting = account(world, truth, t, options, metrics, leadTimes);
		options.onTick?.({ t, demand: truth.demand, counterfactual: truth.counterfactual, hosting, snapshot, actions: decision.actions, roomDemand: truth.roomDemand });
		const measured = new Map<string, number>();
		for (const id of world.workerIds) measured.set(id, Math.min(TRUTH.saturationPct, truth.demand.get(id)!) * (1 + rng.normal(0, options.measurementSigma)));
		views = observe(world, t, measured, predictor, options, rng);
	}
	finishMetrics(metrics, leadTimes, decisionMs);
	return { metrics, decisionMs };
}

function idleWorker(id: string): WorkerView {
	return { id, capacityPct: 100, cpuPct: TRUTH.workerBasePct, forecast: [], rssBytes: 0, routers: 0, transports: 0, producers: 0, consumers: 0 };
}

function applyEvent(world: World, event: SimEvent, t: number, pending: PendingJoin[], refused: Set<string>): void {
	switch (event.type) {
		case 'join':
			pending.push({ peerId: event.peerId, roomId: event.roomId, sends: event.sends, consumes: event.consumes, priority: event.priority });
			return;
		case 'leave': {
			const peer = world.peers.get(event.peerId);
			if (peer) world.removePeer(peer);
			const i = pending.findIndex((j) => j.peerId === event.peerId);
			if (i >= 0) pending.splice(i, 1);
			return;
		}
		case 'startProducer': {
			const peer = world.peers.get(event.peerId);
			if (peer && !refused.has(peer.id)) world.addProducer(peer, event.mediaClass, t);
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
	}
}

function applyActions(world: World, actions: readonly AllocationAction[], pending: PendingJoin[], t: number, metrics: ScenarioMetrics, leadTimes: LeadTimeTracker, refused: Set<string>): void {
	const answered = new Set<string>();
	const joins = new Map(pending.map((j) => [j.peerId, j]));
	for (const action of actions) {
		const cls = actionClass(action);
		if (cls !== 'admission') {
			if (!applyCorrective(world, action, metrics)) continue;
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
			world.addPeer(join, action.workerId, t);
			continue;
		}
		refused.add(join.peerId);
		const lost = join.consumes ? [...world.room(join.roomId).peers].reduce((n, p) => n + p.producers.length, 0) : 0;
		if (action.type === 'redirect') metrics.redirectedPeers++;
		else metrics.refusedPeers++;
		metrics.refusedConsumers += lost;
	}
	// A policy that leaves a join unanswered gets it placed on the first worker, and is told so in the metrics.
	for (const join of pending) {
		if (answered.has(join.peerId)) continue;
		metrics.unansweredJoins++;
		world.addPeer(join, world.workerIds[0]!, t);
	}
}

/** Applies one corrective action; false when it no longer applies (entity gone, bad target). */
function applyCorrective(world: World, action: AllocationAction, metrics: ScenarioMetrics): boolean {
	switch (action.type) {
		case 'spreadFanout': {
			if (!world.workerIds.includes(action.toWorkerId)) return false;
			let moved = 0;
			for (const id of action.consumerIds) {
				const c = world.consumers.get(id);
				if (!c || c.producer.id !== action.producerId || c.workerId === action.toWorkerId) continue;
				c.workerId = action.toWorkerId;
				c.peer.recvWorkerId = action.toWorkerId;
				moved++;
			}
			metrics.movedConsumers += moved;
			return moved > 0;
		}
		case 'migrateProducer': {
			const p = world.producers.get(action.producerId);
			if (!p || !world.workerIds.includes(action.toWorkerId) || p.workerId === action.toWorkerId) return false;
			p.workerId = action.toWorkerId;
			// Its send transport goes along once nothing it sends stays behind: later producers of the peer start there.
			if (p.peer.producers.every((x) => x.workerId === action.toWorkerId)) p.peer.workerId = action.toWorkerId;
			metrics.migrations++;
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

function groundTruth(world: World, rng: Rng, t: number, withRooms: boolean): Truth {
	const load = new Map<string, number>();
	const counterfactual = new Map<string, number>();
	const rooms = withRooms ? new Map<string, number>() : undefined;
	const addRoom = (roomId: string, v: number): void => {
		if (rooms) rooms.set(roomId, (rooms.get(roomId) ?? 0) + v);
	};
	for (const id of world.workerIds) {
		load.set(id, TRUTH.workerBasePct);
		counterfactual.set(id, TRUTH.workerBasePct);
	}
	const add = (map: Map<string, number>, id: string, v: number): void => {
		map.set(id, map.get(id)! + v * world.workerFactor.get(id)!);
	};
	for (const p of world.producers.values()) {
		trueLayerRates(p.truth, t, rng, p.rates);
		let total = 0;
		for (const r of p.rates) total += r;
		add(load, p.workerId, pct(total, TRUTH.ingressUs) * p.truth.costFactor);
		add(counterfactual, p.originWorkerId, pct(total, TRUTH.ingressUs) * p.truth.costFactor);
		addRoom(p.peer.roomId, pct(total, TRUTH.ingressUs) * p.truth.costFactor);
		const piped = new Set<string>();
		for (const c of p.consumers) if (!c.dropped && c.workerId !== p.workerId) piped.add(c.workerId);
		for (const w of piped) {
			add(load, w, pct(total, TRUTH.pipeIngressUs));
			add(load, p.workerId, pct(total, TRUTH.pipeEgressUs));
		}
	}
	for (const c of world.consumers.values()) {
		c.trueRate = c.dropped || c.paused ? 0 : consumerTrueRate(c, c.current);
		if (c.trueRate > 0) add(load, c.workerId, pct(c.trueRate, TRUTH.srtpEgressUs) * c.costFactor);
		const wanted = pct(consumerTrueRate(c, c.wanted), TRUTH.srtpEgressUs) * c.costFactor;
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
		for (const w of live) add(load, w, TRUTH.transportPct);
		for (const w of origin) add(counterfactual, w, TRUTH.transportPct);
		if (origin.size > 0) addRoom(peer.roomId, TRUTH.transportPct);
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
		if (c.dropped) continue;
		streams++;
		hosting.add(c.workerId);
		if (c.paused) metrics.pausedConsumerS++;
		else {
			consumersOn.set(c.workerId, (consumersOn.get(c.workerId) ?? 0) + 1);
			if (downgraded(c)) metrics.layerDowngradeS++;
		}
	}
	metrics.peakStreams = Math.max(metrics.peakStreams, streams);
	let slack = 0;
	for (const id of world.workerIds) {
		const demand = truth.demand.get(id)!;
		if (demand > options.overloadPct) metrics.exposureConsumerS += consumersOn.get(id) ?? 0;
		if (demand >= TRUTH.saturationPct) metrics.overloadLossConsumerS += consumersOn.get(id) ?? 0;
		if (hosting.has(id)) slack += workerSlack(demand, TRUTH.saturationPct);
		leadTimes.sample(id, t, truth.counterfactual.get(id)!);
	}
	if (hosting.size > 0) {
		metrics.slackSum += slack / hosting.size;
		metrics.slackTicks++;
	}
	return hosting;
}

function observe(world: World, t: number, measured: Map<string, number>, predictor: SpecPredictor, options: SimOptions, rng: Rng): { workers: WorkerView[]; producers: ProducerView[]; consumers: ConsumerView[]; rooms: RoomView[] } {
	const noisy = (v: number): number => Math.max(0, v * (1 + rng.normal(0, options.observationSigma)));
	const producers: ProducerView[] = [];
	const counts = new Map<string, { producers: number; consumers: number; sendPeers: Set<string>; recvPeers: Set<string>; rooms: Set<string> }>();
	const countsOf = (id: string) => {
		let c = counts.get(id);
		if (!c) counts.set(id, (c = { producers: 0, consumers: 0, sendPeers: new Set(), recvPeers: new Set(), rooms: new Set() }));
		return c;
	};
	for (const p of world.producers.values()) {
		p.observed = p.rates.map(noisy);
		const room = world.room(p.peer.roomId);
		producers.push({
			id: p.id,
			peerId: p.peer.id,
			roomId: p.peer.roomId,
			workerId: p.workerId,
			mediaClass: p.truth.mediaClass,
			layers: p.observed.map((rate, spatial) => ({ spatial, packetRate: rate, active: rate > 0 })),
			packetRate: p.observed.reduce((a, b) => a + b, 0),
			expectedPacketRate: 0,
			activeSpeaker: room.speakerPeerId === p.peer.id,
			ageS: t + 1 - p.truth.startT,
		});
		const c = countsOf(p.workerId);
		c.producers++;
		c.sendPeers.add(p.peer.id);
		c.rooms.add(p.peer.roomId);
	}
	const consumers: ConsumerView[] = [];
	for (const c of world.consumers.values()) {
		if (c.dropped) continue;
		consumers.push({
			id: c.id,
			peerId: c.peer.id,
			producerId: c.producer.id,
			workerId: c.workerId,
			priority: c.priority,
			paused: c.paused,
			wanted: c.wanted,
			current: c.current,
			packetRate: noisy(c.trueRate),
		});
		const k = countsOf(c.workerId);
		k.consumers++;
		k.recvPeers.add(c.peer.id);
		k.rooms.add(c.peer.roomId);
	}
	const forecasts = predictor.update(world.workerIds, measured, producers, consumers);
	const workers = world.workerIds.map((id): WorkerView => {
		const k = counts.get(id);
		const forecast: LoadForecast[] = forecasts.get(id) ?? [];
		const streams = (k?.producers ?? 0) + (k?.consumers ?? 0);
		return {
			id,
			capacityPct: 100,
			cpuPct: measured.get(id)!,
			forecast,
			rssBytes: 30e6 + streams * 50e3,
			routers: k?.rooms.size ?? 0,
			transports: (k?.sendPeers.size ?? 0) + (k?.recvPeers.size ?? 0),
			producers: k?.producers ?? 0,
			consumers: k?.consumers ?? 0,
		};
	});
	const roomWorkers = new Map<string, Set<string>>();
	for (const peer of world.peers.values()) {
		let set = roomWorkers.get(peer.roomId);
		if (!set) roomWorkers.set(peer.roomId, (set = new Set()));
		set.add(peer.workerId);
	}
	const rooms: RoomView[] = [...world.rooms.values()]
		.filter((r) => r.peers.size > 0)
		.map((r) => ({ id: r.id, workerIds: [...(roomWorkers.get(r.id) ?? [])], peers: r.peers.size }));
	return { workers, producers, consumers, rooms };
}
