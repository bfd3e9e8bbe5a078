/**
 * The anchored predictor: forecasts the change of each worker's load from its latest
 * measured level, adding only what is known to be coming, priced by the host's own
 * calibrated per-stream costs (calibration.ts).
 *
 *     cpu(now + h) = level + Σ_streams θ·(x_s(now + h) − x_s(now)) + Σ_pending joins θ·x̂
 *
 * - level: the latest measured CPU, with the part the cost model does not explain
 *   smoothed over `levelHalfLifeS` (measurement noise is not carried into every
 *   horizon; a change the streams explain is followed at once). 0 = exactly last value.
 * - known changes: consumers still ramping (joined less than `rampWindowS` ago and below
 *   what the settled consumers of their producer receive — the median; without settled
 *   consumers nothing is forecast) close part of the gap to their steady rate with time
 *   constant `rampTimeConstantS`; streams that have left (a leave event after their last
 *   profile) stop costing; streams that joined but are not profiled yet cost what the
 *   settled streams of their entity cost on this worker (median).
 * - With nothing known, every stream's future equals its present and the forecast is the
 *   level: last value (smoothed), never a learned level that can be biased.
 *
 * The p95 is the forecast plus the 95th percentile of this predictor's own matured CPU
 * errors on the worker (split-conformal on the live stream); for a worker too new to have
 * enough, those of every worker of the host; before any, Z95·σ of past h-second changes
 * and at least half the level plus 1 pp.
 *
 * Attribution is exact: a stream's cost is θ·x_s at the horizon; the base is the level
 * minus the streams' present costs, plus pending joins.
 *
 * Stateful per worker (the smoothed level, its own matured errors) and per host (the
 * calibration): feed snapshots of a worker in time order, as the engine does.
 */
import type { StreamProfile, WorkerLoadSample } from '../profile/schema';
import { asStreamList, perHorizon, sumNeeds, type PerHorizon, type StreamCost } from './assemble';
import { laggedSpread } from './baselines';
import { COST_TERM_COUNT, dot, dotVector, HostCalibration, TRANSPORT_TERM, writeStreamTerms, type CalibrationOptions, type CostCoefficients } from './calibration';
import { leastSquares, quantile } from './stats';
import { HORIZONS_S, zeroResources, type HorizonS, type Predictor, type ResourceNeeds, type StreamAttribution, type StreamContext, type WorkerPrediction, type WorkerSnapshot } from './types';

export interface AnchoredOptions {
	/** The host's calibration; shared by every worker of the host. Default: a fresh one with `calibrationOptions`. */
	calibration?: HostCalibration;
	calibrationOptions?: CalibrationOptions;
	/** Feed each new load sample to the calibration (off: coefficients stay as given). Default true. */
	learn?: boolean;
	/** Half-life of the unexplained level, seconds; 0 = last value. Default 1.5. */
	levelHalfLifeS?: number;
	/** Streams younger than this are ramping. Default 10 s. */
	rampWindowS?: number;
	/** Time constant of a ramping stream's approach to its steady rate. Default 3 s. */
	rampTimeConstantS?: number;
	/**
	 * Share of a ramping consumer's gap that is forecast to come. A new consumer's profiled
	 * rate lags what it already sends (consumer stats are staggered; in between its flow is
	 * derived), so part of the gap is already in the measured level. Default 0.5.
	 */
	rampShare?: number;
	/**
	 * Weight of the recent trend of the *explained* load (what the streams cost, not the noisy
	 * measurement) extrapolated over the horizon: arrivals in waves keep arriving for a while.
	 * 0 (default) = off: only known changes move the forecast.
	 */
	trendWeight?: number;
	/** Window of that trend, seconds. Default 10. */
	trendWindowS?: number;
	/**
	 * Scale each kind's profiled terms by the load sample's count of that kind over the number
	 * profiled (see workerTermsNow). Default true.
	 */
	scaleByCounts?: boolean;
	/** Largest upward scale (counted/profiled) applied. Default: no limit. */
	countScaleMax?: number;
	/**
	 * Matured CPU errors (actual − forecast) seen elsewhere, e.g. on recorded sessions: the
	 * host's band before its own workers have matured enough.
	 */
	priorErrors?: Partial<Record<HorizonS, readonly number[]>>;
	/**
	 * 'worker': a worker's own band once it has enough errors, else the host's; 'max': the wider
	 * of the two (a worker's calm past does not narrow the band below what the host has seen).
	 * Default 'max'.
	 */
	bandCombine?: 'worker' | 'max';
	/** Matured errors kept per worker and horizon for the p95. Default 300. */
	bandSamples?: number;
	/** Below this many matured errors the p95 comes from past h-second changes. Default 20. */
	minBandSamples?: number;
	name?: string;
}

interface PendingForecast {
	/** The instant the forecast is for, ms. */
	dueTs: number;
	h: HorizonS;
	cpu: number;
}

interface WorkerState {
	lastSampleTs: number;
	/** Smoothed (measured − explained) CPU. */
	residual: number;
	pending: PendingForecast[];
	errors: Record<HorizonS, number[]>;
	/** The 95th percentile of `errors`, cached until the next matured error. */
	band: Partial<Record<HorizonS, number>>;
	/** Explained CPU at recent samples, oldest first (for the trend). */
	explained: Array<{ ts: number; v: number }>;
	/** Load samples seen, oldest first: snapshots may carry less history than the band needs. */
	samples: WorkerLoadSample[];
}

/**
 * Before any of its own errors have matured on the host, the band is at least this share of
 * the level plus COLD_BAND_PP: a worker in its first minute is usually still filling, and a
 * spread of past changes measured over a few samples says nothing yet.
 */
const COLD_BAND_SHARE = 0.5;
const COLD_BAND_PP = 1;

/** Matured errors kept for the host's band: many workers' recent minutes. */
const HOST_ERRORS_KEPT = 2000;

/** Samples kept per worker: 30 s horizon changes over the last minutes at 1 Hz. */
const SAMPLES_KEPT = 240;

const ENTITY_INDEX: Readonly<Record<StreamProfile['entity'], number>> = { producer: 0, consumer: 1, dataProducer: 2, dataConsumer: 3 };
const ENTITY_KINDS = 4;

/** An observation matches a forecast due within half a second of it. */
const MATCH_TOLERANCE_MS = 500;

export class AnchoredPredictor implements Predictor {
	readonly name: string;
	readonly calibration: HostCalibration;
	private readonly learn: boolean;
	private readonly levelHalfLifeS: number;
	private readonly rampWindowS: number;
	private readonly rampTimeConstantS: number;
	private readonly rampShare: number;
	private readonly bandSamples: number;
	private readonly minBandSamples: number;
	private readonly trendWeight: number;
	private readonly trendWindowS: number;
	private readonly scaleByCounts: boolean;
	private readonly countScaleMax: number;
	private readonly workers = new Map<string, WorkerState>();
	/** Matured errors of every worker of the host: the band of a worker too new to have its own. */
	private readonly hostErrors: Record<HorizonS, number[]>;
	private readonly bandCombine: 'worker' | 'max';
	private readonly hostBand: Partial<Record<HorizonS, number>> = {};

	constructor(options: AnchoredOptions = {}) {
		this.name = options.name ?? 'anchored';
		this.calibration = options.calibration ?? new HostCalibration(options.calibrationOptions);
		this.learn = options.learn ?? true;
		this.levelHalfLifeS = options.levelHalfLifeS ?? 1.5;
		this.rampWindowS = options.rampWindowS ?? 10;
		this.rampTimeConstantS = options.rampTimeConstantS ?? 3;
		this.rampShare = options.rampShare ?? 0.5;
		if (!(this.rampShare >= 0 && this.rampShare <= 1)) throw new RangeError(`rampShare must be in [0, 1], got ${this.rampShare}`);
		this.bandSamples = options.bandSamples ?? 300;
		this.minBandSamples = options.minBandSamples ?? 20;
		this.trendWeight = options.trendWeight ?? 0;
		this.bandCombine = options.bandCombine ?? 'max';
		const prior = (h: HorizonS): number[] => [...(options.priorErrors?.[h] ?? [])].slice(-HOST_ERRORS_KEPT);
		this.hostErrors = { 5: prior(5), 15: prior(15), 30: prior(30) };
		this.trendWindowS = options.trendWindowS ?? 10;
		this.scaleByCounts = options.scaleByCounts ?? true;
		this.countScaleMax = options.countScaleMax ?? Number.POSITIVE_INFINITY;
		if (!(this.levelHalfLifeS >= 0)) throw new RangeError(`levelHalfLifeS must be ≥ 0, got ${this.levelHalfLifeS}`);
		if (!(this.rampTimeConstantS > 0)) throw new RangeError(`rampTimeConstantS must be > 0, got ${this.rampTimeConstantS}`);
	}

	forgetWorker(workerId: string): void {
		this.workers.delete(workerId);
	}

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		return snapshots.map((snap) => this.predictOne(snap));
	}

	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[], _contexts?: ReadonlyMap<string, StreamContext>): ResourceNeeds {
		const coef = this.calibration.coefficients();
		const x = new Float64Array(COST_TERM_COUNT);
		const costs: StreamCost[] = asStreamList(streams).map((s) => {
			writeStreamTerms(s, x);
			const cpu = dot(coef.theta, x);
			const net = networkOf(s, s.flow.bitrateBps);
			return { streamId: s.streamId, transportId: s.transportId, cost: perHorizon(() => ({ cpuPct: cpu, rssBytes: 0, ...net })), spread: perHorizon(zeroResources) };
		});
		return sumNeeds(costs);
	}

	private predictOne(snap: WorkerSnapshot): WorkerPrediction {
		const coef = this.calibration.vector();
		const streams = snap.streams;
		const n = streams.length;
		const x = new Float64Array(n * COST_TERM_COUNT);
		const costNow = new Float64Array(n);
		// Terms summed per entity kind, and how many streams of each kind are profiled.
		const Xe = new Float64Array(ENTITY_KINDS * COST_TERM_COUNT);
		const profiled = [0, 0, 0, 0];
		for (let i = 0; i < n; i++) {
			writeStreamTerms(streams[i]!, x, i * COST_TERM_COUNT);
			costNow[i] = dotVector(coef, x, i * COST_TERM_COUNT);
			const e = ENTITY_INDEX[streams[i]!.entity];
			profiled[e]!++;
			for (let k = 0; k < COST_TERM_COUNT; k++) Xe[e * COST_TERM_COUNT + k]! += x[i * COST_TERM_COUNT + k]!;
		}
		const last = snap.samples[snap.samples.length - 1];
		const transports = last?.transports ?? new Set(streams.map((s) => s.transportId)).size;
		const X = this.workerTermsNow(Xe, profiled, last);
		X[TRANSPORT_TERM] = transports / 10;
		const explained = coef[0]! + dotVector(coef, X);

		const state = this.state(snap.workerId);
		// A snapshot older than what this worker has shown (e.g. held-out examples scored for a
		// model replacement) is answered from itself alone and leaves the live state untouched.
		const past = last !== undefined && last.ts < state.lastSampleTs;
		const fresh = last !== undefined && last.ts > state.lastSampleTs;
		if (last && fresh) {
			this.matureErrors(state, last.ts, last.cpuPct);
			if (this.learn) this.calibration.add(last.ts, X, last.cpuPct);
			const r = last.cpuPct - explained;
			if (!Number.isFinite(state.lastSampleTs) || this.levelHalfLifeS === 0) state.residual = r;
			else state.residual += (1 - Math.pow(0.5, (last.ts - state.lastSampleTs) / 1000 / this.levelHalfLifeS)) * (r - state.residual);
			state.lastSampleTs = last.ts;
			state.explained.push({ ts: last.ts, v: explained });
			state.samples.push(last);
			if (state.samples.length > SAMPLES_KEPT) state.samples.splice(0, state.samples.length - SAMPLES_KEPT);
			const cutoff = last.ts - this.trendWindowS * 1000;
			while (state.explained.length > 0 && state.explained[0]!.ts < cutoff) state.explained.shift();
		}
		const slope = this.trendWeight > 0 && !past && state.explained.length >= 3 ? leastSquares(state.explained.map((e) => ({ x: e.ts / 1000, y: e.v }))).slope : 0;
		// Without a sample the level is what the cost model explains.
		const level = !last ? explained : past ? last.cpuPct : state.residual + explained;

		const future = this.futureRates(snap);
		const pendingJoins = this.pendingJoinCost(snap, costNow);
		let costNowSum = 0;
		for (let i = 0; i < n; i++) costNowSum += costNow[i]!;
		const xf = new Float64Array(COST_TERM_COUNT);
		const costs: StreamAttribution[] = streams.map((s, i) => {
			const f = future?.get(i);
			if (!f) {
				// Nothing known about this stream: the same cost at every horizon (one object: this runs per stream per prediction).
				const flat = { cpuPct: costNow[i]!, rssBytes: 0, ...networkOf(s, s.flow.bitrateBps) };
				return { streamId: s.streamId, transportId: s.transportId, cost: { 5: flat, 15: flat, 30: flat } };
			}
			const cost = perHorizon((h) => {
				const g = f.gone ? 0 : f.gap === 0 ? 1 : this.rampShare * (1 - Math.exp(-h / this.rampTimeConstantS));
				const pps = f.gone ? 0 : s.flow.packetRate + g * (f.packetRate - s.flow.packetRate);
				const bps = f.gone ? 0 : s.flow.bitrateBps + g * (f.bitrateBps - s.flow.bitrateBps);
				writeStreamTerms(s, xf, 0, pps, bps);
				return { cpuPct: dotVector(coef, xf), rssBytes: 0, ...networkOf(s, bps) };
			});
			return { streamId: s.streamId, transportId: s.transportId, cost };
		});
		const rss = last?.rssBytes ?? 0;
		const base: PerHorizon = perHorizon((h) => ({
			cpuPct: level - costNowSum + pendingJoins * (1 - Math.exp(-h / this.rampTimeConstantS)) + this.trendWeight * slope * h,
			rssBytes: rss,
			ingressBps: 0,
			egressBps: 0,
		}));
		// Totals in the order attribution is checked in: base first, then the streams as listed.
		const sums = perHorizon((h) => {
			const t = { ...base[h] };
			for (const c of costs) {
				const v = c.cost[h];
				t.cpuPct += v.cpuPct;
				t.rssBytes += v.rssBytes;
				t.ingressBps += v.ingressBps;
				t.egressBps += v.egressBps;
			}
			return t;
		});
		const totals = { 5: sums[5].cpuPct, 15: sums[15].cpuPct, 30: sums[30].cpuPct } as Record<HorizonS, number>;
		const history = !past && state.samples.length > snap.samples.length ? state.samples : snap.samples;
		const spread: PerHorizon = perHorizon((h) => {
			const own = state.errors[h].length >= this.minBandSamples ? (state.band[h] ??= quantile(state.errors[h], 0.95)) : undefined;
			const host = this.hostErrors[h].length >= this.minBandSamples ? (this.hostBand[h] ??= quantile(this.hostErrors[h], 0.95)) : undefined;
			const learned = own === undefined ? host : host === undefined || this.bandCombine === 'worker' ? own : Math.max(own, host);
			const cpuSpread = learned !== undefined ? Math.max(0, learned) : Math.max(laggedSpread(history, 'cpuPct', h), COLD_BAND_SHARE * Math.max(level, 0) + COLD_BAND_PP);
			return { cpuPct: cpuSpread, rssBytes: laggedSpread(history, 'rssBytes', h), ingressBps: 0, egressBps: 0 };
		});
		if (fresh) for (const h of HORIZONS_S) state.pending.push({ dueTs: snap.now + h * 1000, h, cpu: totals[h] });
		// Streams carry no spread of their own, so the worker's p95 is its mean plus the band.
		const horizons = {} as WorkerPrediction['horizons'];
		for (const h of HORIZONS_S) {
			const m = sums[h];
			const sp = spread[h];
			horizons[h] = {
				base: base[h],
				total: {
					cpuPct: { mean: m.cpuPct, p95: m.cpuPct + sp.cpuPct },
					rssBytes: { mean: m.rssBytes, p95: m.rssBytes + sp.rssBytes },
					ingressBps: { mean: m.ingressBps, p95: m.ingressBps },
					egressBps: { mean: m.egressBps, p95: m.egressBps },
				},
			};
		}
		return { workerId: snap.workerId, predictor: this.name, horizons, streams: costs };
	}

	/**
	 * The worker's terms as its load sample counts them. Profiles trail the worker: a consumer
	 * is profiled a refresh after it exists, and a closed one stays in the profile set until it
	 * is stale (up to two slow-tier refreshes). The sample's own counters say how many of each
	 * kind exist at that instant, so each kind's terms are scaled by counted/profiled: the level
	 * the forecast is anchored to and the calibration both see what the measured CPU was for.
	 */
	private workerTermsNow(Xe: Float64Array, profiled: readonly number[], last: WorkerLoadSample | undefined): Float64Array {
		const X = new Float64Array(COST_TERM_COUNT);
		// A sample that counts no stream at all is taken as not counting (feeds without a registry
		// report zeros): it would otherwise erase every profiled stream.
		const counted = last && this.scaleByCounts && last.producers + last.consumers + last.dataProducers + last.dataConsumers > 0 ? [last.producers, last.consumers, last.dataProducers, last.dataConsumers] : undefined;
		for (let e = 0; e < ENTITY_KINDS; e++) {
			const c = counted?.[e];
			const p = profiled[e]!;
			const scale = c === undefined || p === 0 ? 1 : Math.min(c / p, this.countScaleMax);
			for (let k = 0; k < COST_TERM_COUNT; k++) X[k]! += scale * Xe[e * COST_TERM_COUNT + k]!;
		}
		return X;
	}

	/** Signed errors (actual − forecast) of this worker's forecasts due at `ts`. */
	private matureErrors(state: WorkerState, ts: number, cpu: number): void {
		const keep: PendingForecast[] = [];
		for (const p of state.pending) {
			if (Math.abs(p.dueTs - ts) <= MATCH_TOLERANCE_MS) {
				const errs = state.errors[p.h];
				state.band[p.h] = undefined;
				errs.push(cpu - p.cpu);
				if (errs.length > this.bandSamples) errs.shift();
				const host = this.hostErrors[p.h];
				this.hostBand[p.h] = undefined;
				host.push(cpu - p.cpu);
				if (host.length > HOST_ERRORS_KEPT) host.shift();
			} else if (p.dueTs > ts) keep.push(p);
		}
		state.pending = keep;
	}

	/**
	 * Steady packet and bit rates of the streams whose future is known to differ from their
	 * present (by index into snap.streams), and whether they are gone; undefined when none is.
	 * Every other stream keeps its present rates.
	 */
	private futureRates(snap: WorkerSnapshot): Map<number, { packetRate: number; bitrateBps: number; gap: number; gone: boolean }> | undefined {
		const rampMs = this.rampWindowS * 1000;
		let joined: Map<string, number> | undefined;
		let left: Map<string, number> | undefined;
		for (const e of snap.events) {
			// Only joins within the ramp window make a stream young; any leave may make one gone.
			if (e.type === 'join') {
				if (snap.now - e.ts < rampMs) (joined ??= new Map()).set(e.streamId, e.ts);
			} else (left ??= new Map()).set(e.streamId, e.ts);
		}
		if (!joined && !left) return undefined;
		const isYoung = (s: StreamProfile): boolean => joined?.has(s.streamId) === true;
		let out: Map<number, { packetRate: number; bitrateBps: number; gap: number; gone: boolean }> | undefined;
		if (left) {
			snap.streams.forEach((s, i) => {
				const leftAt = left.get(s.streamId);
				if (leftAt !== undefined && leftAt >= s.ts) (out ??= new Map()).set(i, { packetRate: 0, bitrateBps: 0, gap: 0, gone: true });
			});
		}
		if (!joined) return out;
		// What settled consumers of each producer receive: the layer a newcomer will most likely get
		// (apps limit layers by tile size, and paused consumers receive nothing).
		const settled = new Map<string, StreamProfile[]>();
		for (const s of snap.streams) {
			if (s.entity !== 'consumer' || s.producerId === undefined || isYoung(s)) continue;
			let list = settled.get(s.producerId);
			if (!list) settled.set(s.producerId, (list = []));
			list.push(s);
		}
		snap.streams.forEach((s, i) => {
			if (out?.has(i) || !isYoung(s) || s.entity !== 'consumer' || s.producerId === undefined) return;
			// Without settled peers nothing says which layer it will get (tile size, bandwidth
			// estimation and pauses all decide): no ramp is forecast.
			const peers = settled.get(s.producerId);
			if (!peers || peers.length === 0) return;
			const target = medianFlow(peers);
			// Only a young stream below that ramps: an old consumer below its producer's top layer chose a lower one (or is paused).
			if (target.packetRate <= s.flow.packetRate) return;
			(out ??= new Map()).set(i, { ...target, gap: target.packetRate - s.flow.packetRate, gone: false });
		});
		return out;
	}

	/** Cost of streams that joined but have no profile yet: the median cost of settled streams of the same entity. */
	private pendingJoinCost(snap: WorkerSnapshot, costNow: Float64Array): number {
		const rampMs = this.rampWindowS * 1000;
		if (!snap.events.some((e) => e.type === 'join' && snap.now - e.ts <= rampMs)) return 0;
		const listed = new Set(snap.streams.map((s) => s.streamId));
		const left = new Set(snap.events.filter((e) => e.type === 'leave').map((e) => e.streamId));
		const byEntity = new Map<string, number[]>();
		snap.streams.forEach((s, i) => {
			if (s.flow.packetRate > 0) {
				let list = byEntity.get(s.entity);
				if (!list) byEntity.set(s.entity, (list = []));
				list.push(costNow[i]!);
			}
		});
		const medians = new Map<string, number>();
		let total = 0;
		for (const e of snap.events) {
			if (e.type !== 'join' || listed.has(e.streamId) || left.has(e.streamId) || snap.now - e.ts > this.rampWindowS * 1000) continue;
			let m = medians.get(e.entity);
			if (m === undefined) {
				const costs = byEntity.get(e.entity);
				medians.set(e.entity, (m = costs && costs.length > 0 ? quantile(costs, 0.5) : 0));
			}
			total += m;
		}
		return total;
	}

	private state(workerId: string): WorkerState {
		let s = this.workers.get(workerId);
		if (!s) {
			s = { lastSampleTs: Number.NEGATIVE_INFINITY, residual: 0, pending: [], errors: { 5: [], 15: [], 30: [] }, band: {}, explained: [], samples: [] };
			this.workers.set(workerId, s);
		}
		return s;
	}

	/** The host's matured CPU errors per horizon (a prior for another predictor's band). */
	errorSample(): Record<HorizonS, number[]> {
		return { 5: [...this.hostErrors[5]], 15: [...this.hostErrors[15]], 30: [...this.hostErrors[30]] };
	}

	coefficients(): CostCoefficients {
		return this.calibration.coefficients();
	}
}

/** The consumer with the median packet rate among `consumers`: its packet and bit rates. */
function medianFlow(consumers: readonly StreamProfile[]): { packetRate: number; bitrateBps: number } {
	const sorted = [...consumers].sort((a, b) => a.flow.packetRate - b.flow.packetRate);
	const m = sorted[(sorted.length - 1) >> 1]!;
	return { packetRate: m.flow.packetRate, bitrateBps: m.flow.bitrateBps };
}

function networkOf(s: StreamProfile, bps: number): { ingressBps: number; egressBps: number } {
	const incoming = s.entity === 'producer' || s.entity === 'dataProducer';
	return { ingressBps: incoming ? bps : 0, egressBps: incoming ? 0 : bps };
}
