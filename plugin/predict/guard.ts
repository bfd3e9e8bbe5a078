/**
 * The forecast guard: per worker, the rolling error of matured forecasts of the guarded
 * predictor (whatever the engine would serve: the model or its fallback, with the online
 * correction), of last value and of EWMA. When the guarded predictor has been worse than
 * last value for `switchAfterMs`, the worker is served last value with an empirical
 * quantile band until the guarded predictor has been at least as good for `recoverAfterMs`.
 *
 * Pure: time comes from the observations, nothing here reads a clock.
 */
import { quantile } from './stats';
import { HORIZONS_S, TARGETS, zeroResources, type HorizonS, type ResourceVector, type Target } from './types';

/** Who serves a worker: the guarded predictor, or last value in its place. */
export type GuardMode = 'predictor' | 'last-value';

/** Rolling mean absolute CPU error (% of one core) at the guard's horizon; null before any forecast matured. */
export interface GuardErrors {
	predictor: number | null;
	lastValue: number | null;
	ewma: number | null;
}

export interface GuardStatus {
	workerId: string;
	horizonS: HorizonS;
	mode: GuardMode;
	/** Name of the predictor being guarded (the one the engine serves when the guard does not step in). */
	guarded: string;
	/** Name of the predictor serving now. */
	serving: string;
	errors: GuardErrors;
	/** Matured forecasts in the rolling window. */
	matured: number;
	/** Since when (ms since the epoch) the condition that would flip the mode has held; null when it does not. */
	conditionSince: number | null;
}

export interface GuardSwitch {
	workerId: string;
	/** Time of the observation that decided it, ms since the epoch. */
	ts: number;
	from: string;
	to: string;
	mode: GuardMode;
	horizonS: HorizonS;
	errors: GuardErrors;
	/** How long the condition held before the switch, ms. */
	heldMs: number;
}

export interface GuardOptions {
	/** Horizon whose matured CPU forecasts are compared. Default 15. */
	horizonS?: HorizonS;
	/** Matured forecasts older than this leave the rolling error. Default 60 s. */
	windowMs?: number;
	/** The guarded predictor is switched out once it has been worse than last value this long. Default 60 s. */
	switchAfterMs?: number;
	/** It is served again once it has been at least as good as last value this long. Default 60 s. */
	recoverAfterMs?: number;
	/**
	 * No decision on fewer matured forecasts in the window: one or two errors say little
	 * about which of two forecasts is better. Default 5.
	 */
	minMatured?: number;
	/** Residuals of last value kept per horizon and target for its quantile band. Default 600. */
	bandSamples?: number;
}

export const GUARD_DEFAULTS = {
	horizonS: 15 as HorizonS,
	windowMs: 60_000,
	switchAfterMs: 60_000,
	recoverAfterMs: 60_000,
	minMatured: 5,
	bandSamples: 600,
};

/** Below this many residuals the band falls back to the spread of past h-second changes. */
const MIN_BAND_SAMPLES = 20;

interface MaturedError {
	ts: number;
	predictor: number;
	lastValue: number;
	ewma: number;
}

interface WorkerGuard {
	mode: GuardMode;
	matured: MaturedError[];
	/** Signed residuals (actual − last value) per horizon and target, oldest first. */
	residuals: Record<HorizonS, Record<Target, number[]>>;
	conditionSince: number | null;
}

/** What one matured forecast said, per forecaster (undefined: that forecaster had nothing to say). */
export interface MaturedForecast {
	horizonS: HorizonS;
	predictor?: ResourceVector;
	lastValue?: ResourceVector;
	ewma?: ResourceVector;
}

const mean = (xs: readonly number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

export class ForecastGuard {
	readonly horizonS: HorizonS;
	readonly windowMs: number;
	readonly switchAfterMs: number;
	readonly recoverAfterMs: number;
	readonly minMatured: number;
	readonly bandSamples: number;
	private readonly workers = new Map<string, WorkerGuard>();

	constructor(options: GuardOptions = {}) {
		this.horizonS = options.horizonS ?? GUARD_DEFAULTS.horizonS;
		this.windowMs = options.windowMs ?? GUARD_DEFAULTS.windowMs;
		this.switchAfterMs = options.switchAfterMs ?? GUARD_DEFAULTS.switchAfterMs;
		this.recoverAfterMs = options.recoverAfterMs ?? GUARD_DEFAULTS.recoverAfterMs;
		this.minMatured = options.minMatured ?? GUARD_DEFAULTS.minMatured;
		this.bandSamples = options.bandSamples ?? GUARD_DEFAULTS.bandSamples;
		if (!HORIZONS_S.includes(this.horizonS)) throw new RangeError(`guard horizon must be one of ${HORIZONS_S.join(', ')}, got ${this.horizonS}`);
		for (const [name, v] of [
			['windowMs', this.windowMs],
			['switchAfterMs', this.switchAfterMs],
			['recoverAfterMs', this.recoverAfterMs],
		] as const) {
			if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`guard ${name} must be a finite number ≥ 0, got ${v}`);
		}
		if (!(this.minMatured >= 1)) throw new RangeError(`guard minMatured must be ≥ 1, got ${this.minMatured}`);
		if (!(this.bandSamples >= MIN_BAND_SAMPLES)) throw new RangeError(`guard bandSamples must be ≥ ${MIN_BAND_SAMPLES}, got ${this.bandSamples}`);
	}

	mode(workerId: string): GuardMode {
		return this.workers.get(workerId)?.mode ?? 'predictor';
	}

	forget(workerId: string): void {
		this.workers.delete(workerId);
	}

	clear(): void {
		this.workers.clear();
	}

	/**
	 * Records one matured forecast. Returns the mode change it caused, if any (`from`/`to`
	 * carry the mode names; the engine replaces them with predictor names).
	 */
	observe(workerId: string, ts: number, actual: ResourceVector, forecast: MaturedForecast): { from: GuardMode; to: GuardMode; heldMs: number } | undefined {
		const g = this.state(workerId);
		if (forecast.lastValue) {
			const r = g.residuals[forecast.horizonS];
			for (const t of TARGETS) {
				const residual = actual[t] - forecast.lastValue[t];
				if (!Number.isFinite(residual)) continue;
				r[t].push(residual);
				if (r[t].length > this.bandSamples) r[t].splice(0, r[t].length - this.bandSamples);
			}
		}
		if (forecast.horizonS !== this.horizonS || !forecast.predictor || !forecast.lastValue || !forecast.ewma) return undefined;
		const err = (v: ResourceVector): number => Math.abs(actual.cpuPct - v.cpuPct);
		const e = { ts, predictor: err(forecast.predictor), lastValue: err(forecast.lastValue), ewma: err(forecast.ewma) };
		if (![e.predictor, e.lastValue, e.ewma].every(Number.isFinite)) return undefined;
		g.matured.push(e);
		const cutoff = ts - this.windowMs;
		while (g.matured.length > 0 && g.matured[0]!.ts < cutoff) g.matured.shift();
		if (g.matured.length < this.minMatured) {
			g.conditionSince = null;
			return undefined;
		}
		const errors = this.errorsOf(g);
		const worse = errors.predictor! > errors.lastValue!;
		// In predictor mode the condition to act on is "worse"; in last-value mode it is "not worse".
		const condition = g.mode === 'predictor' ? worse : !worse;
		if (!condition) {
			g.conditionSince = null;
			return undefined;
		}
		g.conditionSince ??= ts;
		const heldMs = ts - g.conditionSince;
		const needed = g.mode === 'predictor' ? this.switchAfterMs : this.recoverAfterMs;
		if (heldMs < needed) return undefined;
		const from = g.mode;
		g.mode = from === 'predictor' ? 'last-value' : 'predictor';
		g.conditionSince = null;
		return { from, to: g.mode, heldMs };
	}

	errors(workerId: string): GuardErrors {
		const g = this.workers.get(workerId);
		return g ? this.errorsOf(g) : { predictor: null, lastValue: null, ewma: null };
	}

	status(workerId: string): { mode: GuardMode; errors: GuardErrors; matured: number; conditionSince: number | null } {
		const g = this.workers.get(workerId);
		return { mode: g?.mode ?? 'predictor', errors: this.errors(workerId), matured: g?.matured.length ?? 0, conditionSince: g?.conditionSince ?? null };
	}

	workerIds(): string[] {
		return [...this.workers.keys()];
	}

	/**
	 * Upper 95 % band of last value at horizon h: the 95th percentile of its own past
	 * residuals (actual − last value), undefined while too few have matured.
	 */
	lastValueBand(workerId: string, h: HorizonS): ResourceVector | undefined {
		const g = this.workers.get(workerId);
		if (!g) return undefined;
		const out = zeroResources();
		for (const t of TARGETS) {
			const r = g.residuals[h][t];
			if (r.length < MIN_BAND_SAMPLES) return undefined;
			out[t] = quantile(r, 0.95);
		}
		return out;
	}

	private errorsOf(g: WorkerGuard): GuardErrors {
		return {
			predictor: mean(g.matured.map((m) => m.predictor)),
			lastValue: mean(g.matured.map((m) => m.lastValue)),
			ewma: mean(g.matured.map((m) => m.ewma)),
		};
	}

	private state(workerId: string): WorkerGuard {
		let g = this.workers.get(workerId);
		if (!g) {
			const residuals = {} as WorkerGuard['residuals'];
			for (const h of HORIZONS_S) residuals[h] = { cpuPct: [], rssBytes: [], ingressBps: [], egressBps: [] };
			g = { mode: 'predictor', matured: [], residuals, conditionSince: null };
			this.workers.set(workerId, g);
		}
		return g;
	}
}
