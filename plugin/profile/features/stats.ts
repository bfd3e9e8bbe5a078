/**
 * Small descriptive statistics shared by the feature extractors. All functions
 * accept empty input and return 0 (or undefined where 0 would be a lie).
 */

export function mean(values: ArrayLike<number>): number {
	if (values.length === 0) return 0;
	let sum = 0;
	for (let i = 0; i < values.length; i++) sum += values[i] as number;
	return sum / values.length;
}

/** Population standard deviation: the windows describe what happened, not a sample of a larger population. */
export function std(values: ArrayLike<number>): number {
	if (values.length === 0) return 0;
	const m = mean(values);
	let sum = 0;
	for (let i = 0; i < values.length; i++) {
		const d = (values[i] as number) - m;
		sum += d * d;
	}
	return Math.sqrt(sum / values.length);
}

/** Coefficient of variation σ/μ, 0 when μ = 0 (as the schema documents). */
export function cv(values: ArrayLike<number>): number {
	const m = mean(values);
	return m === 0 ? 0 : std(values) / Math.abs(m);
}

/** Linearly interpolated quantile (Hyndman–Fan type 7, like numpy's default) of unsorted values. */
export function quantile(values: ArrayLike<number>, q: number): number {
	if (values.length === 0) return 0;
	const sorted = Float64Array.from(values).sort();
	const pos = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
	const lo = Math.floor(pos);
	const hi = Math.min(lo + 1, sorted.length - 1);
	const a = sorted[lo] as number;
	const b = sorted[hi] as number;
	return a + (b - a) * (pos - lo);
}

export function median(values: ArrayLike<number>): number {
	return quantile(values, 0.5);
}

/** Median absolute deviation, scaled by 1.4826 so it estimates σ for Gaussian data. */
export function scaledMad(values: ArrayLike<number>): number {
	if (values.length === 0) return 0;
	const m = median(values);
	const deviations = Array.from(values, (v) => Math.abs(v - m));
	return 1.4826 * median(deviations);
}

export function max(values: ArrayLike<number>): number {
	let best = values.length === 0 ? 0 : -Infinity;
	for (let i = 0; i < values.length; i++) best = Math.max(best, values[i] as number);
	return best;
}

export function clamp01(value: number): number {
	if (!(value > 0)) return 0;
	return value > 1 ? 1 : value;
}

/**
 * The last `capacity` values kept both in arrival order and sorted, so the
 * median and MAD of a sliding window cost O(n) without sorting or allocating
 * per sample (the spike detector asks for both on every frame).
 */
export class SortedWindow {
	private readonly fifo: number[] = [];
	private readonly sorted: number[] = [];

	constructor(readonly capacity: number) {}

	get size(): number {
		return this.fifo.length;
	}

	/** Adds a value; returns the one evicted to stay within capacity, if any. */
	push(value: number): number | undefined {
		this.fifo.push(value);
		this.sorted.splice(lowerBound(this.sorted, value), 0, value);
		if (this.fifo.length <= this.capacity) return undefined;
		const oldest = this.fifo.shift() as number;
		this.sorted.splice(lowerBound(this.sorted, oldest), 1);
		return oldest;
	}

	/** Arithmetic mean of the window. */
	mean(): number {
		return mean(this.sorted);
	}

	/** Same definition as median(). */
	median(): number {
		const n = this.sorted.length;
		if (n === 0) return 0;
		return ((this.sorted[(n - 1) >> 1] as number) + (this.sorted[n >> 1] as number)) / 2;
	}

	/** Same definition as quantile(). */
	quantile(q: number): number {
		const s = this.sorted;
		if (s.length === 0) return 0;
		const pos = Math.min(Math.max(q, 0), 1) * (s.length - 1);
		const lo = Math.floor(pos);
		const a = s[lo] as number;
		const b = s[Math.min(lo + 1, s.length - 1)] as number;
		return a + (b - a) * (pos - lo);
	}

	/** Same definition as scaledMad(): deviations from the median are visited in increasing order by walking outwards. */
	scaledMad(): number {
		const s = this.sorted;
		const n = s.length;
		if (n === 0) return 0;
		const m = this.median();
		let left = lowerBound(s, m) - 1;
		let right = left + 1;
		const lo = (n - 1) >> 1;
		const hi = n >> 1;
		let loValue = 0;
		for (let k = 0; k <= hi; k++) {
			const leftDev = left >= 0 ? m - (s[left] as number) : Infinity;
			const rightDev = right < n ? (s[right] as number) - m : Infinity;
			let dev: number;
			if (leftDev <= rightDev) {
				dev = leftDev;
				left--;
			} else {
				dev = rightDev;
				right++;
			}
			if (k === lo) loValue = dev;
			if (k === hi) return (1.4826 * (loValue + dev)) / 2;
		}
		return 0;
	}

	clear(): void {
		this.fifo.length = 0;
		this.sorted.length = 0;
	}
}

function lowerBound(sorted: readonly number[], value: number): number {
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >> 1;
		if ((sorted[mid] as number) < value) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}
