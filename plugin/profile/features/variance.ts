/**
 * Temporal variance of a stream's bitrate over several windows, and one
 * burstiness score.
 *
 * Burstiness, in [0, 1):
 *     burstiness = cv² / (1 + cv²) = 1 − μ² / E[x²]
 * the share of the series' second moment that is fluctuation rather than level,
 * over the finest series available (sub-second bins from sampled packets, else
 * the 1 s bitrate samples of the longest window). It ties CV to peak-to-mean:
 * for on/off traffic with duty cycle d (bursts at a constant peak, silence
 * otherwise) it equals 1 − d = 1 − mean/peak, and unlike the raw peak it is not
 * set by one outlier (a camera's occasional keyframe). 0 for a constant series;
 * smooth Opus ≈ 0.001, camera video ≈ 0.03 (1 s) to 0.1–0.3 (100 ms bins), a
 * mostly static screen share with slide/scroll bursts ≥ 0.8 (see the tests).
 */
import type { VarianceProfile } from '../schema';
import { clamp01 } from './stats';
import { describeSeries, type TimeSeriesWindow, type WindowStats } from './windows';

export const DEFAULT_VARIANCE_WINDOWS_S: readonly number[] = [10, 60];

/** Fewer sub-second bins than this say too little about bursts; fall back to 1 s samples. */
const MIN_SUBSECOND_BINS = 5;

export function burstiness(values: ArrayLike<number>): number {
	return burstinessOf(describeSeries(values));
}

export interface VarianceOptions {
	windowsS?: readonly number[];
	/** Rates from sub-second bins of sampled packets/frames (see binRates), if any. */
	subSecondBps?: ArrayLike<number>;
}

/**
 * The profile's variance block from a series of 1 s bitrate samples (bps).
 * Windows longer than the data report what there is.
 */
export function varianceProfile(bitrateBps: TimeSeriesWindow, nowMs: number, options: VarianceOptions = {}): VarianceProfile {
	const windowsS = options.windowsS ?? DEFAULT_VARIANCE_WINDOWS_S;
	const longest = Math.max(0, ...windowsS);
	const subSecond = options.subSecondBps;
	const useSubSecond = subSecond !== undefined && subSecond.length >= MIN_SUBSECOND_BINS;
	// The windows and, without sub-second bins, the burstiness series (the longest window) in one walk over the series.
	const stats = bitrateBps.statsOfWindows(useSubSecond ? windowsS.map((w) => w * 1000) : [...windowsS.map((w) => w * 1000), longest * 1000], nowMs);
	const windows = windowsS.map((windowS, i) => {
		const d = stats[i]!;
		return { windowS, meanBps: Math.max(0, d.mean), stdBps: d.std, cv: d.cv };
	});
	return { windows, burstiness: useSubSecond ? burstiness(subSecond) : burstinessOf(stats[windowsS.length]!) };
}

function burstinessOf(d: WindowStats): number {
	if (d.count < 2 || d.mean <= 0) return 0;
	const cv2 = d.cv * d.cv;
	return clamp01(cv2 / (1 + cv2));
}
