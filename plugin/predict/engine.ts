import type { Logger } from '../log';
import type { StreamProfile } from '../profile/schema';
import { ewmaLevel, laggedSpread } from './baselines';
import { evaluatePredictor } from './evaluate';
import { ForecastGuard, type GuardErrors, type GuardMode, type GuardOptions, type GuardStatus, type GuardSwitch } from './guard';
import { ModelLoadError, TfPredictor } from './model';
import { loadTf } from './tf';
import {
	HORIZONS_S,
	networkOfStreams,
	TARGETS,
	zeroResources,
	type HorizonS,
	type Predictor,
	type ResourceNeeds,
	type ResourceVector,
	type StreamContext,
	type TrainingExample,
	type WorkerPrediction,
	type WorkerSnapshot,
} from './types';

/**
 * Page-Hinkley test for an increase in the mean of a series (here: the live absolute
 * CPU error). It accumulates x − x̄ − δ and fires when the sum rises λ above its
 * running minimum: δ is the change too small to care about, λ trades detection delay
 * for false alarms (units of x × observations).
 */
export class PageHinkley {
	private n = 0;
	private mean = 0;
	private cumulative = 0;
	private minimum = 0;
	/** Statistic at the last alarm. */
	lastAlarm = Number.NaN;

	constructor(
		readonly delta: number,
		readonly lambda: number,
	) {
		if (!(delta >= 0) || !(lambda > 0)) throw new RangeError(`Page-Hinkley needs δ ≥ 0 and λ > 0, got δ=${delta}, λ=${lambda}`);
	}

	/** Adds one value; true when drift is detected (the detector then restarts). */
	update(x: number): boolean {
		if (!Number.isFinite(x)) return false;
		this.n++;
		this.mean += (x - this.mean) / this.n;
		this.cumulative += x - this.mean - this.delta;
		this.minimum = Math.min(this.minimum, this.cumulative);
		if (this.statistic > this.lambda) {
			this.lastAlarm = this.statistic;
			this.reset();
			return true;
		}
		return false;
	}

	get statistic(): number {
		return this.cumulative - this.minimum;
	}

	reset(): void {
		this.n = 0;
		this.mean = 0;
		this.cumulative = 0;
		this.minimum = 0;
	}
}

export interface Observation {
	workerId: string;
	/** Milliseconds since the epoch. */
	ts: number;
	actual: ResourceVector;
}

export interface DriftEvent {
	workerId: string;
	ts: number;
	predictor: string;
	statistic: number;
}

export interface EngineOptions {
	/** The specification's kNN (or any model-free predictor): used whenever neither the model nor the primary is usable. */
	fallback: Predictor;
	/**
	 * Served when no model is loaded (e.g. the anchored predictor); the fallback takes over
	 * for a call in which it throws or answers non-finite values.
	 */
	primary?: Predictor & { forgetWorker?(workerId: string): void };
	/** The engine owns it: replaced models are disposed. */
	model?: TfPredictor;
	logger?: Logger;
	/** EWMA weight of each new residual in the per-worker bias; 0 turns the correction off. Default 0.1. */
	biasAlpha?: number;
	/** Page-Hinkley δ in CPU percentage points. Default 0.5. */
	driftDelta?: number;
	/** Page-Hinkley λ in percentage points × observations. Default 50. */
	driftLambda?: number;
	/** Horizon whose CPU error is watched for drift. Default 15. */
	driftHorizon?: HorizonS;
	/** An observation matches a prediction made h s earlier within this many ms. Default 500 (half the default sampling period). */
	matchToleranceMs?: number;
	onDrift?: (event: DriftEvent) => void;
	/** The forecast guard (see guard.ts); false turns it off. Default: on with GUARD_DEFAULTS. */
	guard?: GuardOptions | false;
	/** Half-life of the EWMA the guard scores beside last value. Default 10 s (the evaluation's ewma-10s). */
	guardEwmaHalfLifeS?: number;
	/** Called on every switch of a worker between its predictor and last value. */
	onGuardSwitch?: (event: GuardSwitch) => void;
}

export interface ReplaceDecision {
	replaced: boolean;
	metric: string;
	deployed: { name: string; score: number };
	candidate: { name: string; score: number };
	examples: number;
}

interface Pending {
	madeAt: number;
	predictor: string;
	/** Uncorrected worker means, so the bias learns the model's own error. */
	means: Record<HorizonS, ResourceVector>;
	/** The guarded predictor's means as served (bias-corrected), scored by the guard whether or not they were served. */
	guarded: Record<HorizonS, ResourceVector>;
	/** Last value and EWMA at the same instant; absent without load samples. */
	lastValue?: Record<HorizonS, ResourceVector>;
	ewma?: Record<HorizonS, ResourceVector>;
	/** Horizons already scored, so dense observations do not count one prediction twice. */
	scored: Set<HorizonS>;
}

interface WorkerState {
	bias: Record<HorizonS, ResourceVector>;
	pending: Pending[];
	drift: PageHinkley;
	/** Name of the predictor the guard last watched on this worker. */
	guardedName: string;
	/** Name of the predictor that served this worker's latest prediction. */
	servingName: string;
}

/** Name under which the guard's stand-in serves. */
export const LAST_VALUE_NAME = 'last-value';

/** Pending predictions per worker before old ones are dropped in predict() too. */
const PENDING_SOFT_LIMIT = 256;

/** Replacement is judged on this one figure: the acceptance metric of the issue. */
const REPLACE_METRIC = 'mae_cpuPct_15s';

/** Mean absolute CPU error at 15 s of a predictor on examples. */
export function scoreCpuMae15(predictor: Predictor, examples: readonly TrainingExample[]): number {
	return evaluatePredictor(predictor, examples).mae[15].cpuPct;
}

const finitePrediction = (p: WorkerPrediction): boolean =>
	HORIZONS_S.every((h) => TARGETS.every((t) => Number.isFinite(p.horizons[h].total[t].mean) && Number.isFinite(p.horizons[h].total[t].p95)));

/**
 * Serves predictions from the trained model when one is loaded and healthy, else from
 * the fallback; corrects each worker's predictions by the EWMA of its past residuals
 * (added to the base term, so attribution still sums), watches the live error for
 * drift, and swaps models only on evidence.
 */
export class PredictionEngine {
	private model: TfPredictor | undefined;
	private readonly fallback: Predictor;
	private readonly primary: (Predictor & { forgetWorker?(workerId: string): void }) | undefined;
	private readonly logger: Logger | undefined;
	private readonly biasAlpha: number;
	private readonly driftDelta: number;
	private readonly driftLambda: number;
	private readonly driftHorizon: HorizonS;
	private readonly matchToleranceMs: number;
	private readonly onDrift: ((event: DriftEvent) => void) | undefined;
	private readonly workers = new Map<string, WorkerState>();
	private readonly guard: ForecastGuard | undefined;
	private readonly guardEwmaHalfLifeS: number;
	private readonly onGuardSwitch: ((event: GuardSwitch) => void) | undefined;

	constructor(options: EngineOptions) {
		this.fallback = options.fallback;
		this.primary = options.primary;
		this.model = options.model;
		this.logger = options.logger;
		this.biasAlpha = options.biasAlpha ?? 0.1;
		this.driftDelta = options.driftDelta ?? 0.5;
		this.driftLambda = options.driftLambda ?? 50;
		this.driftHorizon = options.driftHorizon ?? 15;
		this.matchToleranceMs = options.matchToleranceMs ?? 500;
		this.onDrift = options.onDrift;
		this.guard = options.guard === false ? undefined : new ForecastGuard(options.guard ?? {});
		this.guardEwmaHalfLifeS = options.guardEwmaHalfLifeS ?? 10;
		this.onGuardSwitch = options.onGuardSwitch;
		if (!(this.biasAlpha >= 0 && this.biasAlpha <= 1)) throw new RangeError(`biasAlpha must be in [0, 1], got ${this.biasAlpha}`);
		if (!(this.guardEwmaHalfLifeS > 0)) throw new RangeError(`guardEwmaHalfLifeS must be > 0, got ${this.guardEwmaHalfLifeS}`);
	}

	get active(): Predictor {
		return this.model ?? this.primary ?? this.fallback;
	}

	/** No model is loaded (the primary or, without one, the fallback serves). */
	get usingFallback(): boolean {
		return this.model === undefined;
	}

	/**
	 * Loads a model directory. On any problem the error is logged and returned, and the
	 * engine keeps serving from its current predictor (the fallback when none is loaded).
	 */
	async loadModel(dir: string): Promise<{ ok: true; name: string } | { ok: false; error: ModelLoadError }> {
		try {
			const model = await TfPredictor.load(dir);
			this.setModel(model);
			const { flavour, nodeRejected } = loadTf();
			this.logger?.info({ dir, model: model.name, tfjs: flavour }, 'prediction model loaded');
			// The app installed tfjs-node but it failed its first real operation (4.22 on Node ≥ 23): say why the slower build serves.
			if (nodeRejected !== undefined) this.logger?.warn({ reason: nodeRejected }, '@tensorflow/tfjs-node failed on this Node; pure @tensorflow/tfjs serves');
			return { ok: true, name: model.name };
		} catch (e) {
			const error = e instanceof ModelLoadError ? e : new ModelLoadError('corrupt', dir, (e as Error).message);
			this.logger?.error({ dir, problem: error.problem, file: error.file, err: error.message, serving: this.active.name }, 'prediction model unusable; keeping current predictor');
			return { ok: false, error };
		}
	}

	/** Installs a model (or removes it: undefined); biases, drift and guard state restart since they belong to the old one. */
	setModel(model: TfPredictor | undefined): void {
		if (this.model && this.model !== model) this.model.dispose();
		this.model = model;
		this.workers.clear();
		this.guard?.clear();
	}

	/** Drops a worker's state (it is gone). */
	forgetWorker(workerId: string): void {
		this.workers.delete(workerId);
		this.guard?.forget(workerId);
		this.primary?.forgetWorker?.(workerId);
	}

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		let raw: WorkerPrediction[] | undefined;
		if (this.model) {
			try {
				raw = this.model.predict(snapshots);
				if (!raw.every(finitePrediction)) {
					this.logger?.warn({ model: this.model.name }, 'model produced non-finite predictions; using fallback for this call');
					raw = undefined;
				}
			} catch (e) {
				this.logger?.warn({ model: this.model.name, err: (e as Error).message }, 'model prediction failed; using fallback for this call');
				raw = undefined;
			}
		}
		if (!raw && this.primary) {
			try {
				raw = this.primary.predict(snapshots);
				if (!raw.every(finitePrediction)) {
					this.logger?.warn({ predictor: this.primary.name }, 'predictor produced non-finite predictions; using fallback for this call');
					raw = undefined;
				}
			} catch (e) {
				this.logger?.warn({ predictor: this.primary.name, err: (e as Error).message }, 'prediction failed; using fallback for this call');
				raw = undefined;
			}
		}
		raw ??= this.fallback.predict(snapshots);
		return raw.map((p, i) => {
			const snap = snapshots[i]!;
			const state = this.state(p.workerId);
			const means = {} as Record<HorizonS, ResourceVector>;
			for (const h of HORIZONS_S) {
				means[h] = zeroResources();
				for (const t of TARGETS) means[h][t] = p.horizons[h].total[t].mean;
			}
			const corrected = this.corrected(p, state);
			const guarded = {} as Record<HorizonS, ResourceVector>;
			for (const h of HORIZONS_S) {
				guarded[h] = zeroResources();
				for (const t of TARGETS) guarded[h][t] = corrected.horizons[h].total[t].mean;
			}
			const madeAt = snap.now;
			const pending: Pending = { madeAt, predictor: p.predictor, means, guarded, scored: new Set() };
			const naive = this.guard ? naiveForecasts(snap, this.guardEwmaHalfLifeS) : undefined;
			if (naive) {
				pending.lastValue = naive.lastValue;
				pending.ewma = naive.ewma;
			}
			// A second prediction for the same instant supersedes the first: observations match by
			// instant, so only the one served last is scored (and pending cannot grow without bound).
			const previous = state.pending[state.pending.length - 1];
			if (previous && previous.madeAt === madeAt) {
				pending.scored = previous.scored;
				state.pending[state.pending.length - 1] = pending;
			}
			else state.pending.push(pending);
			// Without observations nothing else would ever drop them.
			if (state.pending.length > PENDING_SOFT_LIMIT) state.pending = state.pending.filter((x) => x.madeAt >= madeAt - this.pendingWindowMs());
			state.guardedName = p.predictor;
			const served = naive && this.guard?.mode(p.workerId) === 'last-value' ? this.lastValueServed(corrected, snap, naive.lastValue) : corrected;
			state.servingName = served.predictor;
			return served;
		});
	}

	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[], contexts?: ReadonlyMap<string, StreamContext>): ResourceNeeds {
		if (this.model) {
			try {
				return this.model.predictResourceNeeds(streams, contexts);
			} catch (e) {
				this.logger?.warn({ model: this.model.name, err: (e as Error).message }, 'model needs estimate failed; using fallback');
			}
		}
		if (this.primary) {
			try {
				return this.primary.predictResourceNeeds(streams, contexts);
			} catch (e) {
				this.logger?.warn({ predictor: this.primary.name, err: (e as Error).message }, 'needs estimate failed; using fallback');
			}
		}
		return this.fallback.predictResourceNeeds(streams, contexts);
	}

	/**
	 * Feeds what actually happened. Each horizon's residual against the prediction made
	 * h seconds earlier updates the worker's bias; the CPU error at the drift horizon
	 * feeds Page-Hinkley.
	 */
	observe(obs: Observation): { matchedHorizons: HorizonS[]; drift: boolean } {
		const state = this.state(obs.workerId);
		const matchedHorizons: HorizonS[] = [];
		let drift = false;
		for (const h of HORIZONS_S) {
			const p = this.match(state.pending, obs.ts, h);
			if (!p) continue;
			p.scored.add(h);
			matchedHorizons.push(h);
			if (h === this.driftHorizon) {
				const liveError = Math.abs(obs.actual.cpuPct - (p.means[h].cpuPct + state.bias[h].cpuPct));
				if (state.drift.update(liveError)) {
					drift = true;
					const event = { workerId: obs.workerId, ts: obs.ts, predictor: p.predictor, statistic: state.drift.lastAlarm };
					this.logger?.warn(event, 'prediction drift detected');
					this.onDrift?.(event);
				}
			}
			for (const t of TARGETS) {
				const residual = obs.actual[t] - p.means[h][t];
				if (Number.isFinite(residual)) state.bias[h][t] += this.biasAlpha * (residual - state.bias[h][t]);
			}
			const change = this.guard?.observe(obs.workerId, obs.ts, obs.actual, { horizonS: h, predictor: p.guarded[h], ...(p.lastValue ? { lastValue: p.lastValue[h] } : {}), ...(p.ewma ? { ewma: p.ewma[h] } : {}) });
			if (change) this.reportSwitch(obs, state, change.to, change.heldMs);
		}
		const oldest = obs.ts - this.pendingWindowMs();
		state.pending = state.pending.filter((p) => p.madeAt >= oldest);
		return { matchedHorizons, drift };
	}

	/** Predictions of a worker still waiting for their actuals. */
	pendingPredictions(workerId: string): number {
		return this.workers.get(workerId)?.pending.length ?? 0;
	}

	bias(workerId: string): Record<HorizonS, ResourceVector> | undefined {
		return this.workers.get(workerId)?.bias;
	}

	/** Per worker: who serves, who is guarded, and the rolling errors the guard decides on (empty when the guard is off). */
	guardStatus(): GuardStatus[] {
		const guard = this.guard;
		if (!guard) return [];
		return guard.workerIds().map((workerId) => {
			const s = guard.status(workerId);
			const state = this.workers.get(workerId);
			const guarded = state?.guardedName ?? this.active.name;
			return {
				workerId,
				horizonS: guard.horizonS,
				mode: s.mode,
				guarded,
				serving: state?.servingName ?? (s.mode === 'last-value' ? LAST_VALUE_NAME : guarded),
				errors: s.errors,
				matured: s.matured,
				conditionSince: s.conditionSince,
			};
		});
	}

	/** Rolling guard errors of one worker (nulls before any forecast matured or with the guard off). */
	guardErrors(workerId: string): GuardErrors {
		return this.guard?.errors(workerId) ?? { predictor: null, lastValue: null, ewma: null };
	}

	/**
	 * Swaps in `candidate` only if its 15 s CPU MAE on the most recent held-out examples
	 * is strictly lower than the serving predictor's; logs both scores either way.
	 * A rejected candidate is disposed.
	 */
	maybeReplace(candidate: TfPredictor, recentHeldOut: readonly TrainingExample[]): ReplaceDecision {
		const deployed = this.active;
		const deployedScore = scoreCpuMae15(deployed, recentHeldOut);
		const candidateScore = scoreCpuMae15(candidate, recentHeldOut);
		const replaced = recentHeldOut.length > 0 && Number.isFinite(candidateScore) && !(candidateScore >= deployedScore);
		const decision: ReplaceDecision = {
			replaced,
			metric: REPLACE_METRIC,
			deployed: { name: deployed.name, score: deployedScore },
			candidate: { name: candidate.name, score: candidateScore },
			examples: recentHeldOut.length,
		};
		this.logger?.info(decision, replaced ? 'candidate model deployed' : 'candidate model rejected');
		if (replaced) this.setModel(candidate);
		else candidate.dispose();
		return decision;
	}

	private reportSwitch(obs: Observation, state: WorkerState, mode: GuardMode, heldMs: number): void {
		const guard = this.guard!;
		const guarded = state.guardedName;
		const event: GuardSwitch = {
			workerId: obs.workerId,
			ts: obs.ts,
			from: mode === 'last-value' ? guarded : LAST_VALUE_NAME,
			to: mode === 'last-value' ? LAST_VALUE_NAME : guarded,
			mode,
			horizonS: guard.horizonS,
			errors: guard.errors(obs.workerId),
			heldMs,
		};
		if (mode === 'last-value') this.logger?.warn(event, 'forecast guard: predictor worse than last value; serving last value');
		else this.logger?.info(event, 'forecast guard: predictor recovered; serving it again');
		this.onGuardSwitch?.(event);
	}

	/**
	 * Last value in place of the guarded prediction: totals are the latest measured level
	 * with an upper band from last value's own past residuals; the guarded predictor's
	 * per-stream costs are kept (they are what the policies act on) and the base absorbs
	 * the difference, so attribution still sums exactly.
	 */
	private lastValueServed(p: WorkerPrediction, snap: WorkerSnapshot, level: Record<HorizonS, ResourceVector>): WorkerPrediction {
		const horizons = {} as WorkerPrediction['horizons'];
		for (const h of HORIZONS_S) {
			const band = this.guard!.lastValueBand(snap.workerId, h);
			const base = zeroResources();
			const total = {} as WorkerPrediction['horizons'][HorizonS]['total'];
			for (const t of TARGETS) {
				let attributed = 0;
				for (const s of p.streams) attributed += s.cost[h][t];
				const mean = level[h][t];
				base[t] = mean - attributed;
				const spread = band ? band[t] : t === 'cpuPct' || t === 'rssBytes' ? laggedSpread(snap.samples, t, h) : 0;
				total[t] = { mean, p95: Math.max(mean, mean + spread) };
			}
			horizons[h] = { base, total };
		}
		return { ...p, predictor: LAST_VALUE_NAME, guardedPredictor: p.predictor, horizons };
	}

	/** A prediction older than this can no longer match any observation. */
	private pendingWindowMs(): number {
		return HORIZONS_S[HORIZONS_S.length - 1]! * 1000 + this.matchToleranceMs;
	}

	private state(workerId: string): WorkerState {
		let s = this.workers.get(workerId);
		if (!s) {
			const bias = {} as Record<HorizonS, ResourceVector>;
			for (const h of HORIZONS_S) bias[h] = zeroResources();
			s = { bias, pending: [], drift: new PageHinkley(this.driftDelta, this.driftLambda), guardedName: this.active.name, servingName: this.active.name };
			this.workers.set(workerId, s);
		}
		return s;
	}

	private match(pending: readonly Pending[], ts: number, h: HorizonS): Pending | undefined {
		let best: Pending | undefined;
		let bestGap = Number.POSITIVE_INFINITY;
		for (const p of pending) {
			const gap = Math.abs(p.madeAt + h * 1000 - ts);
			if (!p.scored.has(h) && gap <= this.matchToleranceMs && gap < bestGap) {
				best = p;
				bestGap = gap;
			}
		}
		return best;
	}

	private corrected(p: WorkerPrediction, state: WorkerState): WorkerPrediction {
		const horizons = {} as WorkerPrediction['horizons'];
		for (const h of HORIZONS_S) {
			const hp = p.horizons[h];
			const base = { ...hp.base };
			const total = { ...hp.total };
			for (const t of TARGETS) {
				const b = state.bias[h][t];
				base[t] += b;
				total[t] = { mean: hp.total[t].mean + b, p95: hp.total[t].p95 + b };
			}
			horizons[h] = { base, total };
		}
		return { ...p, horizons };
	}
}

/** Last value and EWMA of a worker's load at every horizon; undefined without load samples. Network is the present streams' (no history). */
function naiveForecasts(snap: WorkerSnapshot, halfLifeS: number): { lastValue: Record<HorizonS, ResourceVector>; ewma: Record<HorizonS, ResourceVector> } | undefined {
	const last = snap.samples[snap.samples.length - 1];
	if (!last) return undefined;
	const net = networkOfStreams(snap.streams);
	const lv: ResourceVector = { cpuPct: last.cpuPct, rssBytes: last.rssBytes, ...net };
	const ew: ResourceVector = { cpuPct: ewmaLevel(snap.samples, 'cpuPct', halfLifeS)!, rssBytes: ewmaLevel(snap.samples, 'rssBytes', halfLifeS)!, ...net };
	const lastValue = {} as Record<HorizonS, ResourceVector>;
	const ewma = {} as Record<HorizonS, ResourceVector>;
	for (const h of HORIZONS_S) {
		lastValue[h] = lv;
		ewma[h] = ew;
	}
	return { lastValue, ewma };
}
