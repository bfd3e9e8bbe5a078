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

// Module-local copies for the per-stream loops (imported bindings are property reads).
const HORIZON_LIST: readonly HorizonS[] = [...HORIZONS_S];
const TARGET_LIST = [...TARGETS];

export function perHorizon(make: (h: HorizonS) => ResourceVector): PerHorizon {
	return { 5: make(5), 15: make(15), 30: make(30) };
}

export function assembleWorkerPrediction(
	workerId: string,
	predictor: string,
	base: PerHorizon,
	baseSpread: PerHorizon,
	streams: readonly StreamCost[],
): WorkerPrediction {
	const horizons = {} as WorkerPrediction['horizons'];
	for (const h of HORIZON_LIST) {
		const total = {} as ResourceEstimate;
		for (const t of TARGET_LIST) {
			let m = base[h][t];
			let v = baseSpread[h][t] ** 2;
			for (const s of streams) {
				m += s.cost[h][t];
				v += s.spread[h][t] ** 2;
			}
			total[t] = { mean: m, p95: m + Math.sqrt(v) };
		}
		horizons[h] = { base: { ...base[h] }, total };
	}
	return { workerId, predictor, horizons, streams: streams.map((s) => ({ streamId: s.streamId, transportId: s.transportId, cost: s.cost })) };
}

/** Needs of a set of streams: the worker rule without a base. */
export function sumNeeds(streams: readonly StreamCost[]): ResourceNeeds {
	const zero = perHorizon(zeroResources);
	const p = assembleWorkerPrediction('', '', zero, zero, streams);
	const out = {} as ResourceNeeds;
	for (const h of HORIZONS_S) out[h] = p.horizons[h].total;
	return out;
}

export function asStreamList(streams: StreamProfile | readonly StreamProfile[]): readonly StreamProfile[] {
	return Array.isArray(streams) ? (streams as readonly StreamProfile[]) : [streams as StreamProfile];
}

/** Contexts for a bare connection: derived from the given streams, overridden by the caller's. */
export function connectionContexts(streams: readonly StreamProfile[], given?: ReadonlyMap<string, StreamContext>): Map<string, StreamContext> {
	return streamContexts(streams, [], Number.NaN, given);
}
