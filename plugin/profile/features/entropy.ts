/**
 * Predictive entropy of a stream's series (bitrate, frame size): how surprised a
 * light online forecaster is by what arrives, in [0, 1].
 *
 * Forecaster. An AR(2) model with intercept, fitted online by recursive least
 * squares with forgetting factor λ; AR(2) follows levels, trends and
 * oscillations (a sinusoid is exactly AR(2)). Its predictive distribution for
 * the next sample is N(x̂ₜ, vₜ), where vₜ is an EWMA of past squared one-step
 * errors, floored at ε² (ε = resolution floor, a fraction of the series level):
 * calibrated because vₜ is estimated from the forecaster's own past errors.
 *
 * Surprise. Each arrival's negative log-likelihood NLLₜ = ½ ln(2π vₜ) +
 * (xₜ − x̂ₜ)² / (2 vₜ). Over a window, the mean NLL H is converted to an entropy
 * power N = e^{2H} / (2πe) — the variance of a calibrated Gaussian forecast that
 * would be exactly that surprised (miscalibration is therefore penalised). The
 * score compares it with the entropy power of the window's own marginal
 * distribution, which is all an i.i.d. series lets anyone know:
 *
 *     predictive entropy = clamp₀₁( (N_pred − ε²) / max(Var(window), ε²) )
 *
 * ε defaults to 5 % of the mean level: fluctuations smaller than that (a CBR
 * stream's per-second packetisation wobble) are immaterial for load prediction.
 * A constant series is forecast to within ε (score 0); an i.i.d. series whose
 * spread is well above ε cannot be forecast better than its marginal (score
 * ≈ 1); in between the score is ≈ 1 − R² of the forecaster, and for a constant
 * plus noise of spread s > ε it is ≈ 1 − ε²/s², so it rises monotonically
 * with the share of unpredictable variance.
 *
 * Permutation entropy (Bandt & Pompe 2002) is provided alongside: the Shannon
 * entropy of ordinal patterns of `order` consecutive samples, normalised by
 * ln(order!). It ignores amplitudes, so it also flags tiny-noise series as
 * random; values within ε of each other count as ties (kept in time order) so
 * a quantised constant series scores 0.
 */
import { clamp01, mean } from './stats';

export interface EntropyOptions {
	/** Samples in the scoring window. */
	window?: number;
	/** RLS forgetting factor. */
	forgetting?: number;
	/** EWMA weight of the newest squared error in the predictive variance. */
	varianceAlpha?: number;
	/** ε as a fraction of the series' mean absolute level. */
	relativeFloor?: number;
	/** Initial samples not scored while the forecaster converges. */
	warmup?: number;
	/** Fewer scored samples than this: no score. */
	minSamples?: number;
	/** Order of the permutation entropy (3–5; ≥ order! · 3 samples wanted for a fair estimate). */
	permutationOrder?: number;
}

const DEFAULTS: Required<EntropyOptions> = {
	window: 60,
	forgetting: 0.98,
	varianceAlpha: 0.1,
	relativeFloor: 0.05,
	warmup: 10,
	minSamples: 10,
	permutationOrder: 3,
};

const AR_TERMS = 3; // intercept, x[t−1], x[t−2]
/** Covariance trace bound: stops RLS wind-up on series that excite no direction (constant input). */
const MAX_COVARIANCE_TRACE = 1e6;
const INITIAL_COVARIANCE = 1e3;

/**
 * Online AR(2) forecaster over values divided by a scale fixed at the first
 * non-zero sample, so bitrates (1e6) and frame sizes (1e3) behave alike.
 */
export class Ar2Forecaster {
	private readonly theta = new Float64Array(AR_TERMS);
	private readonly p = new Float64Array(AR_TERMS * AR_TERMS);
	// Scratch vectors: one forecaster per stream observes every stats round.
	private readonly phi = new Float64Array(AR_TERMS);
	private readonly pPhi = new Float64Array(AR_TERMS);
	private scale = 0;
	private prev1: number | undefined;
	private prev2: number | undefined;
	private errVariance: number | undefined;
	private level = 0;
	private seen = 0;

	constructor(
		private readonly forgetting: number,
		private readonly varianceAlpha: number,
		private readonly relativeFloor: number,
	) {
		for (let i = 0; i < AR_TERMS; i++) this.p[i * AR_TERMS + i] = INITIAL_COVARIANCE;
	}

	/** Predicts x, scores it, learns from it; returns the NLL (in the scaled units) once a forecast existed. */
	observe(x: number): number | undefined {
		if (this.scale === 0 && x !== 0) this.scale = Math.abs(x);
		const y = this.scale === 0 ? 0 : x / this.scale;
		this.level += (Math.abs(y) - this.level) / Math.min(++this.seen, 50);
		let nll: number | undefined;
		if (this.prev1 !== undefined && this.prev2 !== undefined) {
			const phi = this.phi;
			phi[0] = 1;
			phi[1] = this.prev1;
			phi[2] = this.prev2;
			const forecast = dot(this.theta, phi);
			const error = y - forecast;
			const floor = this.floorVariance();
			if (this.errVariance !== undefined) {
				const v = Math.max(this.errVariance, floor);
				nll = 0.5 * Math.log(2 * Math.PI * v) + (error * error) / (2 * v);
				this.errVariance += this.varianceAlpha * (error * error - this.errVariance);
			} else {
				this.errVariance = Math.max(error * error, floor);
			}
			this.rlsUpdate(phi, error);
		}
		this.prev2 = this.prev1;
		this.prev1 = y;
		return nll;
	}

	/** ε² in scaled units. */
	floorVariance(): number {
		const eps = Math.max(this.relativeFloor * this.level, 1e-9);
		return eps * eps;
	}

	private rlsUpdate(phi: Float64Array, error: number): void {
		const n = AR_TERMS;
		const pPhi = this.pPhi.fill(0);
		for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) pPhi[i] = (pPhi[i] as number) + (this.p[i * n + j] as number) * (phi[j] as number);
		const denom = this.forgetting + dot(pPhi, phi);
		if (!(denom > 0) || !Number.isFinite(denom)) return;
		let trace = 0;
		for (let i = 0; i < n; i++) {
			const gain = (pPhi[i] as number) / denom;
			this.theta[i] = (this.theta[i] as number) + gain * error;
			for (let j = 0; j < n; j++) {
				const k = i * n + j;
				this.p[k] = ((this.p[k] as number) - gain * (pPhi[j] as number)) / this.forgetting;
			}
			trace += this.p[i * n + i] as number;
		}
		if (trace > MAX_COVARIANCE_TRACE) for (let k = 0; k < n * n; k++) this.p[k] = ((this.p[k] as number) * MAX_COVARIANCE_TRACE) / trace;
	}

	/** Maps a raw value into the forecaster's scaled units. */
	scaled(x: number): number {
		return this.scale === 0 ? 0 : x / this.scale;
	}
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
	let sum = 0;
	for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
	return sum;
}

export interface EntropyScores {
	/** The profile's `entropy`: predictive surprise in [0, 1]. */
	predictive: number;
	permutation: number;
}

/** One per series per stream: feed every sample, read scores at profile time. */
export class EntropyTracker {
	private readonly options: Required<EntropyOptions>;
	private readonly forecaster: Ar2Forecaster;
	private readonly nlls: number[] = [];
	private readonly values: number[] = [];
	private observed = 0;

	constructor(options: EntropyOptions = {}) {
		this.options = { ...DEFAULTS, ...options };
		this.forecaster = new Ar2Forecaster(this.options.forgetting, this.options.varianceAlpha, this.options.relativeFloor);
	}

	add(x: number): void {
		if (!Number.isFinite(x)) return;
		const nll = this.forecaster.observe(x);
		this.observed++;
		if (nll === undefined || this.observed <= this.options.warmup) return;
		this.nlls.push(nll);
		this.values.push(this.forecaster.scaled(x));
		if (this.nlls.length > this.options.window) {
			this.nlls.shift();
			this.values.shift();
		}
	}

	/** Undefined until minSamples have been scored. */
	scores(): EntropyScores | undefined {
		const predictive = this.predictive();
		if (predictive === undefined) return undefined;
		return { predictive, permutation: permutationEntropy(this.values, this.options.permutationOrder, this.options.relativeFloor) };
	}

	/** The predictive score alone (the profile's `entropy`); permutation entropy's sorts are most of scores()' cost. */
	predictive(): number | undefined {
		if (this.nlls.length < this.options.minSamples) return undefined;
		return predictiveScore(mean(this.nlls), this.values, this.options.relativeFloor);
	}
}

/** The normalisation described at the top of this file. */
export function predictiveScore(meanNll: number, values: readonly number[], relativeFloor: number): number {
	const m = mean(values);
	let variance = 0;
	let level = 0;
	for (const v of values) {
		variance += (v - m) * (v - m);
		level += Math.abs(v);
	}
	variance /= Math.max(values.length, 1);
	level /= Math.max(values.length, 1);
	const eps2 = Math.max(relativeFloor * level, 1e-9) ** 2;
	const entropyPower = Math.exp(2 * meanNll) / (2 * Math.PI * Math.E);
	return clamp01((entropyPower - eps2) / Math.max(variance, eps2));
}

/** Normalised permutation entropy in [0, 1]; 0 for fewer than `order` + 1 samples. */
export function permutationEntropy(values: ArrayLike<number>, order = 3, relativeTieTolerance = 0): number {
	const m = Math.max(2, Math.min(7, Math.floor(order)));
	const patterns = values.length - m + 1;
	if (patterns < 2) return 0;
	let level = 0;
	for (let i = 0; i < values.length; i++) level += Math.abs(values[i] as number);
	const tolerance = (relativeTieTolerance * level) / values.length;
	const counts = new Map<number, number>();
	const idx = new Array<number>(m);
	for (let s = 0; s < patterns; s++) {
		for (let k = 0; k < m; k++) idx[k] = k;
		// Stable sort by value with ties (within tolerance) in time order.
		idx.sort((a, b) => {
			const d = (values[s + a] as number) - (values[s + b] as number);
			return Math.abs(d) <= tolerance ? a - b : d;
		});
		const code = lehmerCode(idx);
		counts.set(code, (counts.get(code) ?? 0) + 1);
	}
	let h = 0;
	for (const c of counts.values()) {
		const p = c / patterns;
		h -= p * Math.log(p);
	}
	return clamp01(h / Math.log(factorial(m)));
}

function lehmerCode(permutation: number[]): number {
	let code = 0;
	for (let i = 0; i < permutation.length; i++) {
		let smaller = 0;
		for (let j = i + 1; j < permutation.length; j++) if ((permutation[j] as number) < (permutation[i] as number)) smaller++;
		code = code * (permutation.length - i) + smaller;
	}
	return code;
}

function factorial(n: number): number {
	return n <= 1 ? 1 : n * factorial(n - 1);
}
