/**
 * Fixed-capacity ring buffer of (time, value) samples, queried by time window.
 * One per series per stream: memory is bounded whatever the sampling rate.
 */

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

/**
 * Count, mean, variance (Welford), min and max in one pass: the variance windows run over
 * every stream's series at each rebuild, and the separate passes of mean, std, cv, min and
 * max (and the arrays the windows were copied into) were most of that work.
 */
class Moments {
	count = 0;
	private mean = 0;
	private m2 = 0;
	private min = Infinity;
	private max = -Infinity;

	add(x: number): void {
		this.count++;
		const d = x - this.mean;
		this.mean += d / this.count;
		this.m2 += d * (x - this.mean);
		if (x < this.min) this.min = x;
		if (x > this.max) this.max = x;
	}

	stats(): WindowStats {
		if (this.count === 0) return { count: 0, mean: 0, std: 0, cv: 0, min: 0, max: 0, peakToMean: 0 };
		// Population σ: the windows describe what happened, not a sample of a larger population.
		const std = Math.sqrt(Math.max(0, this.m2 / this.count));
		const m = this.mean;
		return { count: this.count, mean: m, std, cv: m === 0 ? 0 : std / Math.abs(m), min: this.min, max: this.max, peakToMean: m === 0 ? 0 : this.max / m };
	}
}

export function describeSeries(values: ArrayLike<number>): WindowStats {
	const m = new Moments();
	for (let i = 0; i < values.length; i++) m.add(values[i] as number);
	return m.stats();
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

	/** How many samples have fromMs < t ≤ toMs, and their sum (added oldest first, as over valuesSince()), without copying them. */
	countAndSumSince(fromMs: number, toMs = Infinity): { count: number; sum: number } {
		let k = 0;
		while (k < this.count && (this.times[(this.next - k - 1 + this.capacity) % this.capacity] as number) > fromMs) k++;
		let count = 0;
		let sum = 0;
		for (; k >= 1; k--) {
			const i = (this.next - k + this.capacity) % this.capacity;
			if ((this.times[i] as number) > toMs) break;
			count++;
			sum += this.values[i] as number;
		}
		return { count, sum };
	}

	/** Statistics of the samples in the windowMs ending at nowMs. */
	stats(windowMs: number, nowMs: number): WindowStats {
		return this.statsOfWindows([windowMs], nowMs)[0]!;
	}

	/**
	 * Statistics of the samples in each of the windows ending at nowMs (fromMs < t ≤ nowMs),
	 * in one walk back from the newest sample and without copying the series.
	 */
	statsOfWindows(windowsMs: readonly number[], nowMs: number): WindowStats[] {
		const moments = windowsMs.map(() => new Moments());
		let longest = -Infinity;
		for (const w of windowsMs) longest = Math.max(longest, w);
		const oldest = nowMs - longest;
		// Back to the oldest sample in the longest window, then forward: oldest first, as describeSeries() of valuesSince().
		let k = 0;
		while (k < this.count && (this.times[(this.next - k - 1 + this.capacity) % this.capacity] as number) > oldest) k++;
		for (; k >= 1; k--) {
			const i = (this.next - k + this.capacity) % this.capacity;
			const t = this.times[i] as number;
			if (t > nowMs) break;
			const v = this.values[i] as number;
			for (let j = 0; j < windowsMs.length; j++) if (t > nowMs - windowsMs[j]!) moments[j]!.add(v);
		}
		return moments.map((m) => m.stats());
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
