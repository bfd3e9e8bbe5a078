/**
 * The rising-CPU trigger of the tiered schedule: whether a worker's CPU is rising for real,
 * so that its producers should be watched in the fast tier.
 *
 * A worker's 1 s CPU readings wobble by a few points of a core (keyframes, packet bursts,
 * the profiler's own slow-tier rounds, a neighbour on a shared host). A least-squares slope
 * over a few seconds of them exceeds any useful threshold now and then by chance, and each
 * time the whole worker went to the fast tier. So a rise counts only when it is:
 *  - sustained: the slope is fitted over RISE_WINDOW_MS (at least RISE_MIN_SAMPLES readings);
 *  - large: at least RISING_CPU_PCT_PER_S, i.e. 10 points of a core over the window;
 *  - significant: the slope is at least RISE_MIN_T standard errors from zero, so a window
 *    whose readings scatter widely needs a clearer trend than a quiet one;
 *  - a slope, not a jump: the line must fit the window's readings better than the best single
 *    step between two flat levels does. A load that moved once (a neighbour's process on a
 *    shared host, a batch of joins that is over, a phase of the app) fits a step, and a line
 *    through a step is steep for the whole window it spends in it (a jump of 7 points of a
 *    core in mid-window fits 1 %/s). The fast tier is there for a load that keeps
 *    rising; a settled one is seen at the slow tier's next round;
 *  - not one reading's doing: the start conditions must hold with the reading farthest from
 *    the line left out. One second in which the worker was starved of the CPU (a low reading,
 *    then the usual level) at the window's edge tilts a 10-reading line past 1 %/s.
 * A rise is one episode: it fires once when it starts, and renews the fast tier every
 * renewEveryMs while it goes on (the slope stays above RISE_END_PCT_PER_S: hysteresis, so a
 * rise that flattens near the threshold does not start a new episode at every wobble).
 * A new episode needs the previous one to have ended.
 */

/** Long enough that one-second noise averages out, short enough that a ramp of joins shows within it. */
export const RISE_WINDOW_MS = 10_000;
/** A fit needs this many readings (the window holds more at the default 1 s sampling; sparser sampling uses the last ones). */
export const RISE_MIN_SAMPLES = 6;
/** Readings kept at most (fine sampling periods would otherwise keep hundreds per window). */
const RISE_MAX_SAMPLES = 120;
/** Percent of a core per second: 10 points in the 10 s window, a load step sampling noise does not make. */
export const RISING_CPU_PCT_PER_S = 1;
/** An episode lasts while the slope stays above this (half the start threshold). */
export const RISE_END_PCT_PER_S = 0.5;
/**
 * Slope over its standard error for a start. With 10 readings (8 degrees of freedom) a
 * t of 3 happens by chance in under 1 % of windows of trendless noise.
 */
export const RISE_MIN_T = 3;

export interface LineFit {
	/** Percent of a core per second. */
	slopePerS: number;
	/** Standard error of the slope (Infinity with fewer than 3 readings or all at one time). */
	slopeStdErrPerS: number;
	/** Sum of squared residuals about the line (points of a core squared). */
	residualSs: number;
	/** The line passes through the readings' mean time (seconds after the first reading) and mean percent. */
	meanTimeS: number;
	meanPct: number;
}

/** Least-squares line through the readings, with its slope's standard error. One pass for the sums. */
export function fitLine(samples: ReadonlyArray<{ ts: number; pct: number }>): LineFit {
	const n = samples.length;
	if (n < 2) return { slopePerS: 0, slopeStdErrPerS: Infinity, residualSs: 0, meanTimeS: 0, meanPct: n === 1 ? samples[0]!.pct : 0 };
	// Times relative to the first reading in seconds: epoch milliseconds squared lose precision.
	const t0 = samples[0]!.ts;
	let st = 0;
	let sp = 0;
	let stt = 0;
	let stp = 0;
	let spp = 0;
	for (const s of samples) {
		const t = (s.ts - t0) / 1000;
		st += t;
		sp += s.pct;
		stt += t * t;
		stp += t * s.pct;
		spp += s.pct * s.pct;
	}
	const meanTimeS = st / n;
	const meanPct = sp / n;
	const sxx = stt - (st * st) / n;
	const syy = Math.max(0, spp - (sp * sp) / n);
	if (!(sxx > 0)) return { slopePerS: 0, slopeStdErrPerS: Infinity, residualSs: syy, meanTimeS, meanPct };
	const sxy = stp - (st * sp) / n;
	const slope = sxy / sxx;
	const residual = Math.max(0, syy - slope * sxy);
	const slopeStdErrPerS = n < 3 ? Infinity : Math.sqrt(residual / (n - 2) / sxx);
	return { slopePerS: slope, slopeStdErrPerS, residualSs: residual, meanTimeS, meanPct };
}

/**
 * Sum of squared residuals of the best fit of the readings, in time order, by two flat levels
 * (one step between consecutive readings, at least two readings on each side). Infinity with
 * fewer than four readings. Prefix sums: one pass, then one per split.
 */
export function bestStepSs(samples: ReadonlyArray<{ ts: number; pct: number }>): number {
	const n = samples.length;
	if (n < 4) return Infinity;
	let total = 0;
	let totalSq = 0;
	for (const s of samples) {
		total += s.pct;
		totalSq += s.pct * s.pct;
	}
	let best = Infinity;
	let left = 0;
	let leftSq = 0;
	for (let k = 1; k <= n - 2; k++) {
		const x = samples[k - 1]!.pct;
		left += x;
		leftSq += x * x;
		if (k < 2) continue;
		const right = total - left;
		const ss = leftSq - (left * left) / k + (totalSq - leftSq - (right * right) / (n - k));
		if (ss < best) best = ss;
	}
	return Math.max(0, best);
}

/** The readings without the one farthest from `fit` (their least-squares line, whose means it reuses). */
export function withoutFarthest(samples: ReadonlyArray<{ ts: number; pct: number }>, fit: LineFit): Array<{ ts: number; pct: number }> {
	const n = samples.length;
	if (n === 0) return [];
	const t0 = samples[0]!.ts;
	const { meanTimeS, meanPct } = fit;
	let worst = 0;
	let worstAbs = -1;
	for (let i = 0; i < n; i++) {
		const s = samples[i]!;
		const r = Math.abs(s.pct - (meanPct + fit.slopePerS * ((s.ts - t0) / 1000 - meanTimeS)));
		if (r > worstAbs) {
			worstAbs = r;
			worst = i;
		}
	}
	return samples.filter((_, i) => i !== worst);
}

export type RiseSignal = 'start' | 'renew' | undefined;

/** One worker's rise detector; feed it every load reading in time order. */
export class CpuRise {
	private readonly samples: Array<{ ts: number; pct: number }> = [];
	private inEpisode = false;
	private lastFireMs = -Infinity;

	/** @param renewEveryMs how long one trigger holds the fast tier: a going rise renews it this often. */
	constructor(private readonly renewEveryMs: number) {}

	/** Whether the worker's producers should be hurried on this reading: at a rise's start, and to renew it while it goes on. */
	observe(ts: number, pct: number): RiseSignal {
		const samples = this.samples;
		samples.push({ ts, pct });
		while (samples.length > RISE_MIN_SAMPLES && (ts - samples[0]!.ts > RISE_WINDOW_MS || samples.length > RISE_MAX_SAMPLES)) samples.shift();
		if (samples.length < RISE_MIN_SAMPLES) return undefined;
		const fit = fitLine(samples);
		if (this.inEpisode) {
			if (fit.slopePerS < RISE_END_PCT_PER_S) {
				this.inEpisode = false;
				return undefined;
			}
			if (ts - this.lastFireMs < this.renewEveryMs) return undefined;
			this.lastFireMs = ts;
			return 'renew';
		}
		if (fit.slopePerS < RISING_CPU_PCT_PER_S || fit.slopePerS < RISE_MIN_T * fit.slopeStdErrPerS) return undefined;
		if (bestStepSs(samples) <= fit.residualSs) return undefined;
		const rest = fitLine(withoutFarthest(samples, fit));
		if (rest.slopePerS < RISING_CPU_PCT_PER_S || rest.slopePerS < RISE_MIN_T * rest.slopeStdErrPerS) return undefined;
		this.inEpisode = true;
		this.lastFireMs = ts;
		return 'start';
	}

	/** Whether a rise is going on (for tests and diagnostics). */
	get rising(): boolean {
		return this.inEpisode;
	}
}
