/**
 * Fixed-capacity ring buffer of (time, value) samples, queried by time window.
 * One per series per stream: memory is bounded whatever the sampling rate.
 */
import { cv, max, mean, std } from './stats';

export interface WindowStats {
	count: number;
	mean: number;
	std: number;
	/** σ/μ, 0 when μ = 0. */
	cv: number;
	min: number;
	max: number;
	/** max/μ, 1 for a constant series, 0 when μ = 0. */
	peakToMean: number;
}

export function describeSeries(values: ArrayLike<number>): WindowStats {
	const m = mean(values);
	let min = values.length === 0 ? 0 : Infinity;
	for (let i = 0; i < values.length; i++) min = Math.min(min, values[i] as number);
	const peak = max(values);
	return { count: values.length, mean: m, std: std(values), cv: cv(values), min, max: peak, peakToMean: m === 0 ? 0 : peak / m };
}

export class TimeSeriesWindow {
	private readonly times: Float64Array;
	private readonly values: Float64Array;
	private next = 0;
	private count = 0;

	constructor(readonly capacity: number) {
		if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
		this.times = new Float64Array(capacity);
		this.values = new Float64Array(capacity);
	}

	get size(): number {
		return this.count;
	}

	get latestTime(): number | undefined {
		return this.count === 0 ? undefined : this.times[(this.next - 1 + this.capacity) % this.capacity];
	}

	/**
	 * Samples must arrive in time order; one older than the newest is dropped (so
	 * window queries can stop at the first sample outside the window). Non-finite
	 * values are dropped too. Returns whether the sample was kept.
	 */
	add(timeMs: number, value: number): boolean {
		if (!Number.isFinite(timeMs) || !Number.isFinite(value)) return false;
		const latest = this.latestTime;
		if (latest !== undefined && timeMs < latest) return false;
		this.times[this.next] = timeMs;
		this.values[this.next] = value;
		this.next = (this.next + 1) % this.capacity;
		this.count = Math.min(this.count + 1, this.capacity);
		return true;
	}

	/** Values with fromMs < t ≤ toMs, oldest first. */
	valuesSince(fromMs: number, toMs = Infinity): number[] {
		const out: number[] = [];
		for (let k = 1; k <= this.count; k++) {
			const i = (this.next - k + this.capacity) % this.capacity;
			const t = this.times[i] as number;
			if (t <= fromMs) break;
			if (t <= toMs) out.push(this.values[i] as number);
		}
		return out.reverse();
	}

	/** Statistics of the samples in the windowMs ending at nowMs. */
	stats(windowMs: number, nowMs: number): WindowStats {
		return describeSeries(this.valuesSince(nowMs - windowMs, nowMs));
	}

	clear(): void {
		this.next = 0;
		this.count = 0;
	}
}

/**
 * Sums event sizes into fixed bins over [startMs, endMs) and returns each bin as a
 * rate in units per second (bytes → B/s). Bins with no events are zeros, which is
 * what makes sub-second burstiness visible.
 */
export function binRates(events: ReadonlyArray<{ timeMs: number; size: number }>, binMs: number, startMs: number, endMs: number): number[] {
	if (!(binMs > 0) || !(endMs > startMs)) return [];
	const bins = new Array<number>(Math.ceil((endMs - startMs) / binMs)).fill(0);
	for (const { timeMs, size } of events) {
		if (!(timeMs >= startMs && timeMs < endMs) || !Number.isFinite(size)) continue;
		const bin = Math.floor((timeMs - startMs) / binMs);
		bins[bin] = (bins[bin] as number) + size;
	}
	return bins.map((sum) => (sum * 1000) / binMs);
}
