/**
 * What a policy sees in the simulator, built by the live code path: the simulator hands
 * over only what a deployment observes (noisy stream rates, measured worker CPU, counts,
 * who is where); this turns it into stream profiles and load samples, feeds them to the
 * prediction engine Foresight serves with its default options (plugin/predict/serving.ts:
 * the primary predictor, kNN fallback, forecast guard; or a loaded model) exactly as
 * Foresight's timers do, and builds the
 * snapshot with the live builder (plugin/allocate/live.ts). It must never import the
 * simulator's ground truth (test/allocate/importGraph.test.ts checks that).
 */
import { buildLiveSnapshot, type LiveConsumer, type LiveProducer, type LiveWorker } from '../live';
import type { AllocationSnapshot, PendingJoin } from '../snapshot';
import { optionsFromEnv } from '../../config';
import type { PredictionEngine } from '../../predict/engine';
import { servingEngine } from '../../predict/serving';
import { LiveHistory } from '../../predict/live';
import type { TfPredictor } from '../../predict/model';
import type { WorkerPrediction } from '../../predict/types';
import { PROFILE_SCHEMA_VERSION, type StreamProfile, type WorkerLoadSample } from '../../profile/schema';

/** Bytes per RTP packet the profiles report bitrates with (video near the MTU, Opus small). */
const VIDEO_PACKET_BYTES = 1100;
const AUDIO_PACKET_BYTES = 120;
/** The simulator observes once per simulated second. */
const SAMPLE_INTERVAL_MS = 1000;
/** EWMA weight of one second in a producer's rate variance (the profiler's 10 s window). */
const VARIANCE_ALPHA = 0.1;

export interface SeenWorker {
	id: string;
	/** Measured CPU, % of one core (noisy, saturated at a core). */
	cpuPct: number;
	routers: number;
	transports: number;
	producers: number;
	consumers: number;
}

export interface SeenProducer {
	id: string;
	workerId: string;
	roomId: string;
	peerId: string;
	kind: 'audio' | 'video';
	/** A screen share (the profiler tells it from its content; here the app's label). */
	screen: boolean;
	/** Observed packet rate per spatial layer (0 = not active). */
	layerRates: readonly number[];
	activeSpeaker: boolean;
}

/** A consumer as the live plugin sees it, with its observed packet rate in place of a profile. */
export interface SeenConsumer extends Omit<LiveConsumer, 'profile' | 'movable'> {
	packetRate: number;
}

export interface Seen {
	nowMs: number;
	workers: SeenWorker[];
	producers: SeenProducer[];
	consumers: SeenConsumer[];
}

export interface SimLiveViewOptions {
	/** Run the prediction engine (Foresight); without it workers carry no forecast (baselines read measured CPU only). */
	predict: boolean;
	/** A trained model to serve from instead of the kNN fallback (the engine owns it). */
	model?: TfPredictor;
	capacityPct?: number;
}

export class SimLiveView {
	private readonly history = new LiveHistory();
	private readonly engine: PredictionEngine | undefined;
	private readonly firstSeen = new Map<string, number>();
	/** streamId → worker it was on at the last observation (for join/leave events). */
	private readonly placed = new Map<string, { workerId: string; entity: 'producer' | 'consumer' }>();
	private readonly variance = new Map<string, { mean: number; sq: number }>();
	private predictions = new Map<string, WorkerPrediction>();

	constructor(private readonly options: SimLiveViewOptions) {
		// The plugin's defaults, not the environment: a simulation must not depend on the shell it runs in.
		const defaults = optionsFromEnv({}, {});
		this.engine = options.predict
			? servingEngine(defaults.prediction, { hasModel: options.model !== undefined, loadSampleIntervalMs: SAMPLE_INTERVAL_MS, ...(options.model ? { model: options.model } : {}) })
			: undefined;
	}

	/** The predictor serving Foresight's forecasts (undefined when not predicting). */
	get predictor(): string | undefined {
		return this.engine?.active.name;
	}

	/** Feeds this second's observations, predicts, and returns the policy's snapshot. */
	snapshot(seen: Seen, pendingJoins: PendingJoin[]): AllocationSnapshot {
		const { nowMs } = seen;
		const producerProfiles = new Map<string, StreamProfile>();
		const byWorker = new Map<string, StreamProfile[]>();
		const onWorker = (id: string): StreamProfile[] => {
			let list = byWorker.get(id);
			if (!list) byWorker.set(id, (list = []));
			return list;
		};
		const present = new Set<string>();
		const ingressBps = new Map<string, number>();
		const egressBps = new Map<string, number>();
		for (const p of seen.producers) {
			const profile = this.producerProfile(p, nowMs);
			producerProfiles.set(p.id, profile);
			onWorker(p.workerId).push(profile);
			ingressBps.set(p.workerId, (ingressBps.get(p.workerId) ?? 0) + profile.flow.bitrateBps);
			this.track(p.id, p.workerId, 'producer', nowMs, present);
		}
		const consumerProfiles = new Map<string, StreamProfile>();
		for (const c of seen.consumers) {
			const producer = producerProfiles.get(c.producerId);
			const profile = consumerProfile(c, producer, nowMs);
			consumerProfiles.set(c.id, profile);
			onWorker(c.workerId).push(profile);
			egressBps.set(c.workerId, (egressBps.get(c.workerId) ?? 0) + profile.flow.bitrateBps);
			this.track(c.id, c.workerId, 'consumer', nowMs, present);
		}
		for (const [id, was] of this.placed) {
			if (present.has(id)) continue;
			this.history.addEvent(was.workerId, nowMs, 'leave', id, was.entity);
			this.placed.delete(id);
			this.firstSeen.delete(id);
			this.variance.delete(id);
		}
		for (const w of seen.workers) {
			const sample: WorkerLoadSample = {
				ts: nowMs,
				workerId: w.id,
				pid: 0,
				cpuPct: w.cpuPct,
				rssBytes: 30e6 + (w.producers + w.consumers) * 50e3,
				routers: w.routers,
				transports: w.transports,
				producers: w.producers,
				consumers: w.consumers,
				dataProducers: 0,
				dataConsumers: 0,
			};
			this.history.addSample(sample);
			this.history.setStreams(w.id, byWorker.get(w.id) ?? []);
			this.engine?.observe({ workerId: w.id, ts: nowMs, actual: { cpuPct: w.cpuPct, rssBytes: sample.rssBytes, ingressBps: ingressBps.get(w.id) ?? 0, egressBps: egressBps.get(w.id) ?? 0 } });
		}
		if (this.engine) this.predictions = new Map(this.engine.predict(this.history.snapshots(nowMs)).map((p) => [p.workerId, p]));

		const workers: LiveWorker[] = seen.workers.map((w) => ({
			id: w.id,
			capacityPct: this.options.capacityPct ?? 100,
			sample: this.history.latestSample(w.id),
			prediction: this.predictions.get(w.id),
		}));
		const producers: LiveProducer[] = seen.producers.map((p) => ({
			id: p.id,
			workerId: p.workerId,
			roomId: p.roomId,
			peerId: p.peerId,
			kind: p.kind,
			profile: producerProfiles.get(p.id),
			seenAt: this.firstSeen.get(p.id) ?? nowMs,
			activeSpeaker: p.activeSpeaker,
		}));
		const consumers: LiveConsumer[] = seen.consumers.map((c) => ({
			id: c.id,
			workerId: c.workerId,
			producerId: c.producerId,
			peerId: c.peerId,
			priority: c.priority,
			pausedByManager: c.pausedByManager,
			wanted: c.wanted,
			current: c.current,
			profile: consumerProfiles.get(c.id),
		}));
		return buildLiveSnapshot({ nowMs, workers, producers, consumers, pendingJoins });
	}

	private track(id: string, workerId: string, entity: 'producer' | 'consumer', nowMs: number, present: Set<string>): void {
		present.add(id);
		if (!this.firstSeen.has(id)) this.firstSeen.set(id, nowMs);
		const was = this.placed.get(id);
		if (was?.workerId === workerId) return;
		if (was) this.history.addEvent(was.workerId, nowMs, 'leave', id, entity);
		this.history.addEvent(workerId, nowMs, 'join', id, entity);
		this.placed.set(id, { workerId, entity });
	}

	private producerProfile(p: SeenProducer, nowMs: number): StreamProfile {
		const bytes = p.kind === 'audio' ? AUDIO_PACKET_BYTES : VIDEO_PACKET_BYTES;
		let packetRate = 0;
		for (const r of p.layerRates) packetRate += r;
		const bitrateBps = packetRate * bytes * 8;
		// The profiler's variance window, as an EWMA of the observed bitrate.
		let v = this.variance.get(p.id);
		if (!v) this.variance.set(p.id, (v = { mean: bitrateBps, sq: bitrateBps * bitrateBps }));
		v.mean += VARIANCE_ALPHA * (bitrateBps - v.mean);
		v.sq += VARIANCE_ALPHA * (bitrateBps * bitrateBps - v.sq);
		const std = Math.sqrt(Math.max(0, v.sq - v.mean * v.mean));
		const cv = v.mean > 0 ? std / v.mean : 0;
		const activeLayers = p.layerRates.filter((r) => r > 0).length;
		return {
			schemaVersion: PROFILE_SCHEMA_VERSION,
			ts: nowMs,
			streamId: p.id,
			entity: 'producer',
			kind: p.kind,
			dataType: p.kind === 'audio' ? 'audio' : p.screen ? 'screen' : 'video',
			workerId: p.workerId,
			routerId: `${p.workerId}/${p.roomId}`,
			transportId: `${p.peerId}/send`,
			mimeType: p.kind === 'audio' ? 'audio/opus' : 'video/VP8',
			flow: { bitrateBps, packetRate, lossFraction: 0, jitterMs: 0, nackCount: 0, pliCount: 0, firCount: 0 },
			layers: p.kind === 'audio' ? [] : p.layerRates.map((r, spatialLayer) => ({ spatialLayer, bitrateBps: r * bytes * 8, packetRate: r, active: r > 0 })),
			variance: { windows: [{ windowS: 10, meanBps: v.mean, stdBps: std, cv }], burstiness: Math.min(1, cv) },
			...(p.kind === 'video' ? { video: { activeLayers, sceneChanges: { count: 0, perMin: 0, meanMagnitude: 0 } } } : { audio: { clockRate: 48000, channels: 1 } }),
			complexity: 0,
			entropy: Math.min(1, cv),
		};
	}
}

function consumerProfile(c: SeenConsumer, producer: StreamProfile | undefined, nowMs: number): StreamProfile {
	const kind = producer?.kind === 'audio' ? 'audio' : 'video';
	const bytes = kind === 'audio' ? AUDIO_PACKET_BYTES : VIDEO_PACKET_BYTES;
	return {
		schemaVersion: PROFILE_SCHEMA_VERSION,
		ts: nowMs,
		streamId: c.id,
		entity: 'consumer',
		kind,
		dataType: producer?.dataType ?? 'video',
		workerId: c.workerId,
		routerId: c.workerId,
		transportId: `${c.peerId}/recv@${c.workerId}`,
		producerId: c.producerId,
		mimeType: producer?.mimeType,
		flow: { bitrateBps: c.packetRate * bytes * 8, packetRate: c.packetRate, lossFraction: 0, jitterMs: 0, nackCount: 0, pliCount: 0, firCount: 0 },
		layers: [],
		variance: { windows: [], burstiness: producer?.variance.burstiness ?? 0 },
		complexity: 0,
		entropy: producer?.entropy ?? 0,
	};
}
