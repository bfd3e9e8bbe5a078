import { mean } from '../profile/features/stats';

/** Small numeric helpers shared by features, baselines and evaluation. */

export interface Point {
	x: number;
	y: number;
}

/** Ordinary least squares y = a + b·x; slope 0 with fewer than two distinct x. */
export function leastSquares(points: readonly Point[]): { intercept: number; slope: number } {
	const n = points.length;
	if (n === 0) return { intercept: 0, slope: 0 };
	let sx = 0;
	let sy = 0;
	for (const p of points) {
		sx += p.x;
		sy += p.y;
	}
	const mx = sx / n;
	const my = sy / n;
	let sxx = 0;
	let sxy = 0;
	for (const p of points) {
		sxx += (p.x - mx) ** 2;
		sxy += (p.x - mx) * (p.y - my);
	}
	const slope = sxx > 0 ? sxy / sxx : 0;
	return { intercept: my - slope * mx, slope };
}

export { mean };

/**
 * Sample standard deviation (n − 1): here values are residuals or training rows, a
 * sample of what the predictor will meet (the profile features' std is a population one).
 */
export function std(values: readonly number[]): number {
	if (values.length < 2) return 0;
	const m = mean(values);
	let s = 0;
	for (const v of values) s += (v - m) ** 2;
	return Math.sqrt(s / (values.length - 1));
}

/** Linear-interpolated quantile of unsorted values; NaN for an empty list, so a missing calibration cannot pass for 0. */
export function quantile(values: readonly number[], q: number): number {
	if (values.length === 0) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const pos = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
	const lo = Math.floor(pos);
	const hi = Math.ceil(pos);
	return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** One-sided standard-normal quantile for 95%. */
export const Z95 = 1.6448536269514722;
