import type { StreamEntityKind, StreamProfile, WorkerLoadSample } from '../profile/schema';

/** Forecast horizons in seconds; every predictor answers all of them. */
export const HORIZONS_S = [5, 15, 30] as const;
export type HorizonS = (typeof HORIZONS_S)[number];

/**
 * Predicted resources. Network is what the worker moves for its streams: ingress is
 * the sum of its producers' bitrates, egress the sum of its consumers' (worker load
 * samples carry no byte counters, so that is also how training targets are derived).
 */
export const TARGETS = ['cpuPct', 'rssBytes', 'ingressBps', 'egressBps'] as const;
export type Target = (typeof TARGETS)[number];
export type ResourceVector = Record<Target, number>;

export interface Estimate {
	mean: number;
	/** Upper 95th percentile: the value the actual should stay below 95% of the time. */
	p95: number;
}
export type ResourceEstimate = Record<Target, Estimate>;

/** A stream appearing on or leaving a worker. */
export interface StreamEvent {
	/** Milliseconds since the epoch. */
	ts: number;
	type: 'join' | 'leave';
	streamId: string;
	entity: StreamEntityKind;
}

/** Everything a predictor may look at for one worker at one instant. */
export interface WorkerSnapshot {
	workerId: string;
	/** Milliseconds since the epoch: the instant the horizons count from. */
	now: number;
	/** Recent load samples of this worker, oldest first. */
	samples: readonly WorkerLoadSample[];
	/** Latest profile of every stream currently on the worker. */
	streams: readonly StreamProfile[];
	/** Recent joins and leaves, oldest first (used for stream age and churn). */
	events: readonly StreamEvent[];
}

export interface StreamAttribution {
	streamId: string;
	transportId: string;
	/** Mean cost of this stream per horizon. */
	cost: Record<HorizonS, ResourceVector>;
}

export interface HorizonPrediction {
	/** Worker cost not attributed to any stream (idle process, unexplained level, bias correction). */
	base: ResourceVector;
	total: ResourceEstimate;
}

/**
 * Attribution identity, for every horizon h and target t:
 *
 *     horizons[h].total[t].mean === horizons[h].base[t] + Σ_s streams[s].cost[h][t]
 *
 * (checked to floating-point rounding by `attributionResidual`). Only means are
 * additive: a p95 of a sum is not the sum of p95s, so p95s are not attributed.
 */
export interface WorkerPrediction {
	workerId: string;
	/** Which predictor produced it (e.g. "tfjs:default@3", "knn", "last-value" when the engine's guard stepped in). */
	predictor: string;
	/** Set while the engine's forecast guard serves last value: the predictor it switched out. */
	guardedPredictor?: string;
	horizons: Record<HorizonS, HorizonPrediction>;
	streams: StreamAttribution[];
}

/** Resource needs of one stream or one connection (its set of streams). */
export type ResourceNeeds = Record<HorizonS, ResourceEstimate>;

/** Facts about a stream that its own profile does not carry. */
export interface StreamContext {
	/** Consumers of this producer (for producers); 0 otherwise. */
	fanOut: number;
	/** Seconds since the stream joined; Infinity when unknown (treated as settled). */
	ageS: number;
}

export interface Predictor {
	readonly name: string;
	/** One prediction per snapshot, in the same order. */
	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[];
	/**
	 * What one connection (or a single stream) will cost wherever it is placed. Pass
	 * contexts keyed by streamId for fan-out and age; missing ones are derived from the
	 * given streams themselves (consumers among them) and assumed settled.
	 */
	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[], contexts?: ReadonlyMap<string, StreamContext>): ResourceNeeds;
}

/** A snapshot with what actually happened h seconds later: one supervised example. */
export interface TrainingExample {
	snapshot: WorkerSnapshot;
	/** Actual worker resources at now + h for each horizon. */
	targets: Record<HorizonS, ResourceVector>;
	/** Recorded session it came from; splits are made by session, never by row. */
	sessionId?: string;
}

export function zeroResources(): ResourceVector {
	return { cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 };
}

/** Largest |total − (base + Σ costs)| over every horizon and target, relative to max(1, |total|). */
export function attributionResidual(prediction: WorkerPrediction): number {
	let worst = 0;
	for (const h of HORIZONS_S) {
		const hp = prediction.horizons[h];
		for (const t of TARGETS) {
			let sum = hp.base[t];
			for (const s of prediction.streams) sum += s.cost[h][t];
			worst = Math.max(worst, Math.abs(hp.total[t].mean - sum) / Math.max(1, Math.abs(hp.total[t].mean)));
		}
	}
	return worst;
}

/** Network the worker moves for its current streams (the definition of the network targets). */
export function networkOfStreams(streams: readonly StreamProfile[]): { ingressBps: number; egressBps: number } {
	let ingressBps = 0;
	let egressBps = 0;
	for (const s of streams) {
		const bps = Number.isFinite(s.flow.bitrateBps) ? s.flow.bitrateBps : 0;
		if (s.entity === 'producer' || s.entity === 'dataProducer') ingressBps += bps;
		else egressBps += bps;
	}
	return { ingressBps, egressBps };
}
