/**
 * Builds the policy's AllocationSnapshot from what Foresight observes live:
 * worker load samples, the prediction engine's forecasts and the stream profiles.
 * Pure: the manager (plugin/act/manager.ts) reads mediasoup and hands plain data in.
 */
import type { HorizonS, WorkerPrediction } from '../predict/types';
import type { StreamProfile, WorkerLoadSample } from '../profile/schema';
import { TYPICAL_LAYER_RATES } from './estimate';
import {
	MEASURED_COST_MODEL,
	type AllocationSnapshot,
	type ConsumerView,
	type LayerChoice,
	type MediaClass,
	type PendingJoin,
	type ProducerView,
	type RoomView,
	type WorkerView,
} from './snapshot';

export interface LiveWorker {
	id: string;
	sample: WorkerLoadSample | undefined;
	prediction: WorkerPrediction | undefined;
	/** % of one core one worker may use (a mediasoup worker is single-threaded). */
	capacityPct?: number;
}

export interface LiveProducer {
	id: string;
	workerId: string;
	roomId: string;
	peerId: string;
	kind: 'audio' | 'video';
	profile: StreamProfile | undefined;
	/** Milliseconds since the epoch when it appeared. */
	seenAt: number;
	activeSpeaker: boolean;
	/** See ProducerView.movable. */
	movable?: boolean;
}

export interface LiveConsumer {
	id: string;
	workerId: string;
	producerId: string;
	peerId: string;
	priority: number;
	pausedByManager: boolean;
	wanted: LayerChoice;
	current: LayerChoice;
	profile: StreamProfile | undefined;
	/** See ConsumerView.movable. */
	movable?: boolean;
}

export interface LiveInputs {
	nowMs: number;
	workers: LiveWorker[];
	producers: LiveProducer[];
	consumers: LiveConsumer[];
	pendingJoins?: PendingJoin[];
}

/** A young video producer is still ramping up: its layers that are not on yet soon will be. */
const RAMP_UP_S = 15;

export function mediaClassOf(kind: 'audio' | 'video', profile: StreamProfile | undefined): MediaClass {
	if (kind === 'audio') return 'audio';
	return profile?.dataType === 'screen' ? 'screen' : 'video';
}

function producerView(p: LiveProducer, nowMs: number): ProducerView {
	const mediaClass = mediaClassOf(p.kind, p.profile);
	const typical = TYPICAL_LAYER_RATES[mediaClass];
	const ageS = Math.max(0, (nowMs - p.seenAt) / 1000);
	const profiled = p.profile?.layers ?? [];
	const layers =
		profiled.length > 0
			? profiled.map((l) => ({ spatial: l.spatialLayer, packetRate: l.active ? l.packetRate : (typical[l.spatialLayer] ?? 0), active: l.active }))
			: typical.map((rate, spatial) => ({ spatial, packetRate: rate, active: false }));
	const packetRate = p.profile?.flow.packetRate ?? 0;
	// Expected: what it sends once every layer it negotiated is on.
	const expectedPacketRate = ageS < RAMP_UP_S ? Math.max(packetRate, layers.reduce((a, l) => a + l.packetRate, 0)) : packetRate;
	return { id: p.id, peerId: p.peerId, roomId: p.roomId, workerId: p.workerId, mediaClass, layers, packetRate, expectedPacketRate, activeSpeaker: p.activeSpeaker, ageS, ...(p.movable === false ? { movable: false } : {}) };
}

function workerView(w: LiveWorker): WorkerView {
	const forecast = w.prediction
		? ([5, 15, 30] as const).map((h) => ({ horizonS: h, meanPct: w.prediction!.horizons[h].total.cpuPct.mean, p95Pct: w.prediction!.horizons[h].total.cpuPct.p95 }))
		: [];
	const s = w.sample;
	return {
		id: w.id,
		capacityPct: w.capacityPct ?? 100,
		cpuPct: s?.cpuPct ?? 0,
		forecast,
		rssBytes: s?.rssBytes ?? 0,
		routers: s?.routers ?? 0,
		transports: s?.transports ?? 0,
		producers: s?.producers ?? 0,
		consumers: s?.consumers ?? 0,
	};
}

/** The predictor's first horizon (as workerView reads them): the cost a stream has about now. */
const FIRST_HORIZON_S: HorizonS = 5;

/** streamId → CPU the worker's prediction attributes to it at its first horizon, % of a core. */
function attributedCpu(workers: readonly LiveWorker[]): Map<string, number> {
	const out = new Map<string, number>();
	for (const w of workers) {
		const p = w.prediction;
		if (!p) continue;
		for (const s of p.streams) {
			const cpu = s.cost[FIRST_HORIZON_S]?.cpuPct;
			if (cpu !== undefined && Number.isFinite(cpu)) out.set(s.streamId, Math.max(0, cpu));
		}
	}
	return out;
}

export function buildLiveSnapshot(inputs: LiveInputs): AllocationSnapshot {
	const producers = inputs.producers.map((p) => producerView(p, inputs.nowMs));
	const attributed = attributedCpu(inputs.workers);
	const consumers: ConsumerView[] = inputs.consumers.map((c) => ({
		id: c.id,
		peerId: c.peerId,
		producerId: c.producerId,
		workerId: c.workerId,
		priority: c.priority,
		paused: c.pausedByManager,
		wanted: c.wanted,
		current: c.current,
		packetRate: c.profile?.flow.packetRate ?? 0,
		...(attributed.has(c.id) ? { attributedPct: attributed.get(c.id)! } : {}),
		...(c.movable === false ? { movable: false } : {}),
	}));
	const rooms = new Map<string, { workers: Set<string>; peers: Set<string> }>();
	for (const p of producers) {
		const r = rooms.get(p.roomId) ?? { workers: new Set(), peers: new Set() };
		r.workers.add(p.workerId);
		r.peers.add(p.peerId);
		rooms.set(p.roomId, r);
	}
	const roomViews: RoomView[] = [...rooms].map(([id, r]) => ({ id, workerIds: [...r.workers], peers: r.peers.size }));
	return {
		t: inputs.nowMs / 1000,
		costModel: MEASURED_COST_MODEL,
		workers: inputs.workers.map(workerView),
		producers,
		consumers,
		rooms: roomViews,
		pendingJoins: inputs.pendingJoins ?? [],
	};
}
