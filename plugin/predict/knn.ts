import type { StreamProfile } from '../profile/schema';
import { assembleWorkerPrediction, asStreamList, connectionContexts, perHorizon, sumNeeds, type StreamCost } from './assemble';
import { fitNormalization, normalizeInPlace, STREAM_FEATURE_COUNT, STREAM_FEATURES, streamContexts, streamFeatures, type Normalization } from './features';
import { Z95 } from './stats';
import {
	TARGETS,
	type Predictor,
	type ResourceEstimate,
	type ResourceNeeds,
	type ResourceVector,
	type StreamContext,
	type WorkerPrediction,
	type WorkerSnapshot,
} from './types';

/** A historical stream with the resources it was observed to use (supplied by the store). */
export interface ObservedProfile {
	profile: StreamProfile;
	/** Fan-out and age when it was observed; settled with no fan-out when absent. */
	context?: StreamContext;
	usage: ResourceVector;
}

export type KnnEstimateSource = 'neighbours' | 'nearest' | 'prior';

export interface KnnStreamEstimate {
	estimate: ResourceEstimate;
	source: KnnEstimateSource;
	/** Candidates that contributed a weight. */
	neighbours: number;
	totalWeight: number;
}

export interface KnnOptions {
	/** Neighbours that get a weight (the "similar profiles" fetched). Default 16. */
	k?: number;
	/**
	 * Kernel bandwidth in RMS z-score units. 'adaptive' (default) uses the distance to
	 * the k-th nearest candidate, so weights adapt to how dense the history is around
	 * the query and the nearest one always weighs ≥ e^-½; a fixed number can underflow
	 * every weight for a query far from all candidates (then the nearest is used alone).
	 */
	bandwidth?: number | 'adaptive';
	/** Floor of the adaptive bandwidth, so identical candidates do not divide by zero. Default 0.05. */
	minBandwidth?: number;
	/** β in mean × (1 + β·entropy). Default 0.25. */
	entropyFactor?: number;
	/** Worker cost outside its streams. Default DEFAULT_WORKER_BASE. */
	base?: ResourceVector;
	/** Per-kind priors used when no candidate exists. Default streamPrior. */
	prior?: (profile: StreamProfile) => ResourceVector;
	/** Fit on the history by default; pass one to share a model's. */
	normalization?: Normalization;
}

/**
 * Idle mediasoup-worker, an assumption rather than a measurement; the engine's online
 * bias correction replaces it with each worker's observed level.
 */
export const DEFAULT_WORKER_BASE: ResourceVector = { cpuPct: 0.5, rssBytes: 20e6, ingressBps: 0, egressBps: 0 };

/**
 * Order-of-magnitude per-stream priors for when the history has nothing of this
 * entity and kind. CPU scales with packets (µs of one core per packet: receiving and
 * routing ~2.5, encrypting and sending ~13, per data message ~5); memory is mostly the
 * retransmission buffer of video; network is the stream's own bitrate in its direction.
 * They are assumptions to be replaced by history, not measurements.
 */
export function streamPrior(p: StreamProfile): ResourceVector {
	const packetRate = Number.isFinite(p.flow.packetRate) ? p.flow.packetRate : 0;
	const bitrate = Number.isFinite(p.flow.bitrateBps) ? p.flow.bitrateBps : 0;
	const inbound = p.entity === 'producer' || p.entity === 'dataProducer';
	const isData = p.entity === 'dataProducer' || p.entity === 'dataConsumer';
	const usPerUnit = isData ? 5 : inbound ? 2.5 : 13;
	const units = isData ? (p.data?.messagesPerS ?? packetRate) : packetRate;
	const rssBytes = p.kind === 'video' ? (inbound ? 2e6 : 1e6) : isData ? 1e5 : inbound ? 2e5 : 1e5;
	return {
		cpuPct: units * usPerUnit * 1e-4,
		rssBytes,
		ingressBps: inbound ? bitrate : 0,
		egressBps: inbound ? 0 : bitrate,
	};
}

/** Relative p95 margin of a prior (we know little): 50%, widened by entropy like any estimate. */
const PRIOR_RELATIVE_SPREAD = 0.5;

interface Candidate {
	features: Float32Array;
	usage: ResourceVector;
}

const usable = (u: ResourceVector): boolean => TARGETS.every((t) => Number.isFinite(u[t]));
const groupKey = (p: StreamProfile): string => `${p.entity}:${p.kind}`;
const settled: StreamContext = { fanOut: 0, ageS: Number.POSITIVE_INFINITY };

/**
 * The specification's algorithm: fetch historical profiles similar to the stream's,
 * weight their usage by similarity, divide by the total weight, multiply by
 * (1 + β·entropy). Similarity is a Gaussian kernel exp(−d²/2h²) over the RMS distance d
 * of z-scored features, among candidates of the same entity and kind only (a consumer is
 * never "similar" to a producer whatever its numbers).
 */
export class KnnPredictor implements Predictor {
	readonly name = 'knn';
	readonly normalization: Normalization;
	private readonly groups = new Map<string, Candidate[]>();
	private readonly k: number;
	private readonly bandwidth: number | 'adaptive';
	private readonly minBandwidth: number;
	private readonly entropyFactor: number;
	private readonly base: ResourceVector;
	private readonly prior: (p: StreamProfile) => ResourceVector;

	constructor(history: readonly ObservedProfile[], options: KnnOptions = {}) {
		this.k = Math.max(1, options.k ?? 16);
		this.bandwidth = options.bandwidth ?? 'adaptive';
		this.minBandwidth = options.minBandwidth ?? 0.05;
		this.entropyFactor = options.entropyFactor ?? 0.25;
		this.base = options.base ?? DEFAULT_WORKER_BASE;
		this.prior = options.prior ?? streamPrior;
		if (typeof this.bandwidth === 'number' && !(this.bandwidth > 0)) throw new RangeError(`knn bandwidth must be > 0, got ${this.bandwidth}`);
		const kept = history.filter((o) => usable(o.usage));
		const raw = kept.map((o) => streamFeatures(o.profile, o.context ?? settled));
		this.normalization = options.normalization ?? fitNormalization(STREAM_FEATURES, raw);
		kept.forEach((o, i) => {
			const features = Float32Array.from(raw[i]!);
			normalizeInPlace(this.normalization, features);
			const key = groupKey(o.profile);
			let group = this.groups.get(key);
			if (!group) this.groups.set(key, (group = []));
			group.push({ features, usage: o.usage });
		});
	}

	get historySize(): number {
		let n = 0;
		for (const g of this.groups.values()) n += g.length;
		return n;
	}

	estimateStream(profile: StreamProfile, context: StreamContext = settled): KnnStreamEstimate {
		const entropy = Number.isFinite(profile.entropy) ? Math.min(1, Math.max(0, profile.entropy)) : 0;
		const inflate = 1 + this.entropyFactor * entropy;
		const widen = 1 + entropy;
		const candidates = this.groups.get(groupKey(profile)) ?? [];
		if (candidates.length === 0) return this.fromPrior(profile, inflate, widen);

		const q = Float32Array.from(streamFeatures(profile, context));
		normalizeInPlace(this.normalization, q);
		const nearest = nearestK(q, candidates, this.k);
		const h = this.bandwidth === 'adaptive' ? Math.max(this.minBandwidth, nearest[nearest.length - 1]!.d) : this.bandwidth;

		const sum = { cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 };
		const sumSq = { cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 };
		let totalWeight = 0;
		let neighbours = 0;
		for (const { c, d } of nearest) {
			const w = Math.exp(-(d * d) / (2 * h * h));
			if (!(w > 0)) continue;
			neighbours++;
			totalWeight += w;
			for (const t of TARGETS) {
				sum[t] += w * c.usage[t];
				sumSq[t] += w * c.usage[t] ** 2;
			}
		}
		if (!(totalWeight > 0)) {
			// Every weight underflowed (fixed bandwidth, query far from all history): the
			// nearest candidate is still the most similar thing we know.
			const only = nearest[0]!.c.usage;
			const estimate = {} as ResourceEstimate;
			for (const t of TARGETS) {
				const m = only[t] * inflate;
				estimate[t] = { mean: m, p95: m + PRIOR_RELATIVE_SPREAD * Math.abs(m) * widen };
			}
			return { estimate, source: 'nearest', neighbours: 1, totalWeight: 0 };
		}
		const estimate = {} as ResourceEstimate;
		for (const t of TARGETS) {
			const m = sum[t] / totalWeight;
			const variance = Math.max(0, sumSq[t] / totalWeight - m * m);
			const mean = m * inflate;
			estimate[t] = { mean, p95: mean + Z95 * Math.sqrt(variance) * widen };
		}
		return { estimate, source: 'neighbours', neighbours, totalWeight };
	}

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		return snapshots.map((snap) => {
			const contexts = streamContexts(snap.streams, snap.events, snap.now);
			const base = perHorizon(() => ({ ...this.base }));
			const noSpread = perHorizon(() => ({ cpuPct: 0, rssBytes: 0, ingressBps: 0, egressBps: 0 }));
			return assembleWorkerPrediction(snap.workerId, this.name, base, noSpread, this.streamCosts(snap.streams, contexts));
		});
	}

	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[], contexts?: ReadonlyMap<string, StreamContext>): ResourceNeeds {
		const list = asStreamList(streams);
		return sumNeeds(this.streamCosts(list, connectionContexts(list, contexts)));
	}

	private streamCosts(streams: readonly StreamProfile[], contexts: ReadonlyMap<string, StreamContext>): StreamCost[] {
		return streams.map((s) => {
			const { estimate } = this.estimateStream(s, contexts.get(s.streamId));
			const cost = {} as ResourceVector;
			const spread = {} as ResourceVector;
			for (const t of TARGETS) {
				cost[t] = estimate[t].mean;
				spread[t] = Math.max(0, estimate[t].p95 - estimate[t].mean);
			}
			// The kNN looks only at the present: the same estimate serves every horizon.
			return { streamId: s.streamId, transportId: s.transportId, cost: perHorizon(() => ({ ...cost })), spread: perHorizon(() => ({ ...spread })) };
		});
	}

	private fromPrior(profile: StreamProfile, inflate: number, widen: number): KnnStreamEstimate {
		const usage = this.prior(profile);
		const estimate = {} as ResourceEstimate;
		for (const t of TARGETS) {
			const m = usage[t] * inflate;
			estimate[t] = { mean: m, p95: m + PRIOR_RELATIVE_SPREAD * Math.abs(m) * widen };
		}
		return { estimate, source: 'prior', neighbours: 0, totalWeight: 0 };
	}
}

/** The k nearest candidates, ascending: one pass with insertion into a k-long list (no full sort per query). */
function nearestK(q: Float32Array, candidates: readonly Candidate[], k: number): Array<{ c: Candidate; d: number }> {
	const best: Array<{ c: Candidate; d: number }> = [];
	for (const c of candidates) {
		const d = rmsDistance(q, c.features);
		if (best.length === k && !(d < best[k - 1]!.d)) continue;
		let i = best.length === k ? k - 1 : best.length;
		while (i > 0 && best[i - 1]!.d > d) {
			best[i] = best[i - 1]!;
			i--;
		}
		best[i] = { c, d };
	}
	return best;
}

function rmsDistance(a: Float32Array, b: Float32Array): number {
	let s = 0;
	for (let i = 0; i < STREAM_FEATURE_COUNT; i++) s += (a[i]! - b[i]!) ** 2;
	return Math.sqrt(s / STREAM_FEATURE_COUNT);
}
