import type { StreamProfile } from '../profile/schema';
import { streamContexts } from './features';
import {
	HORIZONS_S,
	TARGETS,
	zeroResources,
	type HorizonS,
	type ResourceEstimate,
	type ResourceNeeds,
	type ResourceVector,
	type StreamAttribution,
	type StreamContext,
	type WorkerPrediction,
} from './types';

/**
 * Every predictor reduces to per-stream mean costs plus a spread (p95 − mean) and a
 * worker base; this is the one place they are combined. Spreads add in quadrature
 * (stream fluctuations treated as independent), so the worker p95 is wider than its
 * mean by less than the sum of the streams' margins.
 */
export interface StreamCost {
	streamId: string;
	transportId: string;
	cost: Record<HorizonS, ResourceVector>;
	/** p95 − mean, ≥ 0. */
	spread: Record<HorizonS, ResourceVector>;
}

export type PerHorizon = Record<HorizonS, ResourceVector>;

/**
 * Values per stream in the flat form: horizon-major, then target, in HORIZONS_S and
 * TARGETS order (the trained model's output order).
 */
export const FLAT_WIDTH = HORIZONS_S.length * TARGETS.length;

// Offsets into a flat row. Object literals with fixed keys (rather than keyed stores in
// a loop) give V8 one hidden class per shape: this builds ~5 objects per stream per prediction.
const CPU = TARGETS.indexOf('cpuPct');
const RSS = TARGETS.indexOf('rssBytes');
const INGRESS = TARGETS.indexOf('ingressBps');
const EGRESS = TARGETS.indexOf('egressBps');
const H5 = HORIZONS_S.indexOf(5) * TARGETS.length;
const H15 = HORIZONS_S.indexOf(15) * TARGETS.length;
const H30 = HORIZONS_S.indexOf(30) * TARGETS.length;

export function perHorizon(make: (h: HorizonS) => ResourceVector): PerHorizon {
	return { 5: make(5), 15: make(15), 30: make(30) };
}

function vectorAt(values: ArrayLike<number>, o: number): ResourceVector {
	return { cpuPct: values[o + CPU]!, rssBytes: values[o + RSS]!, ingressBps: values[o + INGRESS]!, egressBps: values[o + EGRESS]! };
}

function perHorizonAt(values: ArrayLike<number>, o: number): PerHorizon {
	return { 5: vectorAt(values, o + H5), 15: vectorAt(values, o + H15), 30: vectorAt(values, o + H30) };
}

/**
 * A stream's attribution that builds its per-horizon cost objects on first read:
 * a prediction for 1,000 streams then allocates 1,000 small objects instead of
 * 5,000 (a tenth of its time went to building and collecting them), and callers
 * that only use worker totals never pay for per-stream objects. Private state is
 * in #fields and toJSON gives the plain shape; `cost` being an accessor, an object
 * spread of an attribution does not carry it (read it by name).
 */
class FlatAttribution implements StreamAttribution {
	readonly #costs: Float64Array;
	readonly #offset: number;
	#cost: PerHorizon | undefined;

	constructor(
		readonly streamId: string,
		readonly transportId: string,
		costs: Float64Array,
		offset: number,
	) {
		this.#costs = costs;
		this.#offset = offset;
	}

	get cost(): PerHorizon {
		return (this.#cost ??= perHorizonAt(this.#costs, this.#offset));
	}

	toJSON(): StreamAttribution {
		return { streamId: this.streamId, transportId: this.transportId, cost: this.cost };
	}
}

function writeFlat(p: PerHorizon, out: Float64Array, o: number): void {
	HORIZONS_S.forEach((h, hi) => TARGETS.forEach((t, ti) => (out[o + hi * TARGETS.length + ti] = p[h][t])));
}

/**
 * The combining rule on flat figures: streams[i]'s mean cost and spread are the
 * FLAT_WIDTH values at (first + i)·FLAT_WIDTH of `cost` and `spread`; `base` and
 * `baseSpread` hold FLAT_WIDTH values. This is what a predictor with per-stream figures in
 * typed arrays calls, without building an intermediate object per stream.
 */
export function assembleFlat(
	workerId: string,
	predictor: string,
	streams: readonly Pick<StreamProfile, 'streamId' | 'transportId'>[],
	base: ArrayLike<number>,
	baseSpread: ArrayLike<number>,
	cost: Float64Array,
	spread: Float64Array,
	first = 0,
): WorkerPrediction {
	const n = streams.length;
	const start = first * FLAT_WIDTH;
	const end = start + n * FLAT_WIDTH;
	const mean = new Float64Array(FLAT_WIDTH);
	const p95 = new Float64Array(FLAT_WIDTH);
	for (let k = 0; k < FLAT_WIDTH; k++) {
		let m = base[k]!;
		let v = baseSpread[k]! ** 2;
		for (let o = start + k; o < end; o += FLAT_WIDTH) {
			m += cost[o]!;
			v += spread[o]! ** 2;
		}
		mean[k] = m;
		p95[k] = m + Math.sqrt(v);
	}
	const estimate = (o: number): ResourceEstimate => ({
		cpuPct: { mean: mean[o + CPU]!, p95: p95[o + CPU]! },
		rssBytes: { mean: mean[o + RSS]!, p95: p95[o + RSS]! },
		ingressBps: { mean: mean[o + INGRESS]!, p95: p95[o + INGRESS]! },
		egressBps: { mean: mean[o + EGRESS]!, p95: p95[o + EGRESS]! },
	});
	// The caller's arrays are reused across predictions: the attributions read a copy.
	const costs = cost.slice(start, end);
	const attribution = new Array<StreamAttribution>(n);
	for (let i = 0; i < n; i++) {
		const s = streams[i]!;
		attribution[i] = new FlatAttribution(s.streamId, s.transportId, costs, i * FLAT_WIDTH);
	}
	return {
		workerId,
		predictor,
		horizons: {
			5: { base: vectorAt(base, H5), total: estimate(H5) },
			15: { base: vectorAt(base, H15), total: estimate(H15) },
			30: { base: vectorAt(base, H30), total: estimate(H30) },
		},
		streams: attribution,
	};
}

export function assembleWorkerPrediction(
	workerId: string,
	predictor: string,
	base: PerHorizon,
	baseSpread: PerHorizon,
	streams: readonly StreamCost[],
): WorkerPrediction {
	const flatBase = new Float64Array(FLAT_WIDTH);
	const flatBaseSpread = new Float64Array(FLAT_WIDTH);
	const cost = new Float64Array(streams.length * FLAT_WIDTH);
	const spread = new Float64Array(streams.length * FLAT_WIDTH);
	writeFlat(base, flatBase, 0);
	writeFlat(baseSpread, flatBaseSpread, 0);
	streams.forEach((s, i) => {
		writeFlat(s.cost, cost, i * FLAT_WIDTH);
		writeFlat(s.spread, spread, i * FLAT_WIDTH);
	});
	return assembleFlat(workerId, predictor, streams, flatBase, flatBaseSpread, cost, spread);
}

/** The totals of a prediction without a base: what a set of streams needs. */
export function needsOf(prediction: WorkerPrediction): ResourceNeeds {
	const out = {} as ResourceNeeds;
	for (const h of HORIZONS_S) out[h] = prediction.horizons[h].total;
	return out;
}

/** Needs of a set of streams: the worker rule without a base. */
export function sumNeeds(streams: readonly StreamCost[]): ResourceNeeds {
	const zero = perHorizon(zeroResources);
	return needsOf(assembleWorkerPrediction('', '', zero, zero, streams));
}

export function asStreamList(streams: StreamProfile | readonly StreamProfile[]): readonly StreamProfile[] {
	return Array.isArray(streams) ? (streams as readonly StreamProfile[]) : [streams as StreamProfile];
}

/** Contexts for a bare connection: derived from the given streams, overridden by the caller's. */
export function connectionContexts(streams: readonly StreamProfile[], given?: ReadonlyMap<string, StreamContext>): Map<string, StreamContext> {
	return streamContexts(streams, [], Number.NaN, given);
}
