import { bestStepSs, CpuRise, fitLine, withoutFarthest, type RiseSignal } from '../../plugin/profile/cpuRise';
import { Rng } from '../../plugin/util/rng';

/** Feeds one reading per second from `fromS` to `toS` (exclusive); returns the signals with their second. */
function feed(rise: CpuRise, fromS: number, toS: number, pct: (s: number) => number): Array<[number, Exclude<RiseSignal, undefined>]> {
	const out: Array<[number, Exclude<RiseSignal, undefined>]> = [];
	for (let s = fromS; s < toS; s++) {
		const signal = rise.observe(1_700_000_000_000 + s * 1000, pct(s));
		if (signal) out.push([s, signal]);
	}
	return out;
}

const starts = (signals: Array<[number, string]>): number[] => signals.filter(([, k]) => k === 'start').map(([s]) => s);

describe('fitLine', () => {
	test('slope of a line in percent per second, with no error on an exact line', () => {
		const fit = fitLine([0, 1, 2, 3, 4].map((s) => ({ ts: 1_700_000_000_000 + s * 1000, pct: 10 + 2 * s })));
		expect(fit.slopePerS).toBeCloseTo(2, 9);
		expect(fit.slopeStdErrPerS).toBeCloseTo(0, 6);
	});

	test('standard error of the slope as the textbook formula gives it', () => {
		// 31, 29, 31, 29, 31: no slope; residuals about the mean 30.2 sum to 3·0.8² + 2·1.2² = 4.8
		// over n − 2 = 3 degrees of freedom, and the times' spread Σ(t − t̄)² is 10 s².
		const fit = fitLine([0, 1, 2, 3, 4].map((s) => ({ ts: s * 1000, pct: 30 + (s % 2 ? -1 : 1) })));
		expect(fit.slopePerS).toBeCloseTo(0, 9);
		expect(fit.slopeStdErrPerS).toBeCloseTo(Math.sqrt(4.8 / 3 / 10), 9);
	});

	test('no slope from fewer than two distinct times', () => {
		expect(fitLine([{ ts: 0, pct: 5 }]).slopePerS).toBe(0);
		expect(fitLine([{ ts: 0, pct: 5 }, { ts: 0, pct: 9 }]).slopeStdErrPerS).toBe(Infinity);
	});
});

describe('bestStepSs', () => {
	const at = (pcts: number[]): Array<{ ts: number; pct: number }> => pcts.map((pct, s) => ({ ts: s * 1000, pct }));

	test('an exact step fits with no residual; a line does not fit a step, nor a step a line', () => {
		expect(bestStepSs(at([10, 10, 10, 25, 25, 25, 25]))).toBeCloseTo(0, 9);
		// 0..5: best split 3|3, each half 0,1,2 about its mean 1: 2 + 2.
		expect(bestStepSs(at([0, 1, 2, 3, 4, 5]))).toBeCloseTo(4, 9);
		expect(fitLine(at([10, 10, 10, 25, 25, 25])).residualSs).toBeGreaterThan(50);
		expect(fitLine(at([0, 1, 2, 3, 4, 5])).residualSs).toBeCloseTo(0, 9);
	});

	test('at least two readings on each side of the step; none with fewer than four readings', () => {
		// A lone first or last reading is no level: 50, 0, 0, 0 fits 50, 0 | 0, 0 best (1250).
		expect(bestStepSs(at([50, 0, 0, 0]))).toBeCloseTo(1250, 9);
		expect(bestStepSs(at([1, 2, 3]))).toBe(Infinity);
	});
});

describe('CpuRise (the rising-CPU trigger)', () => {
	test('an hour of trendless noise, with the slow tier\'s 5 s request bursts on top, starts a rise at most a few times', () => {
		const rng = new Rng(11);
		const rise = new CpuRise(5000);
		// σ 3 points of a core around 30 % (1 s readings of a bench worker scatter by 2–3 points),
		// +4 points every 5th second. A 5-reading slope over 1 %/s fires on such noise 200+ times an hour.
		const signals = feed(rise, 0, 3600, (s) => 30 + rng.normal(0, 3) + (s % 5 === 0 ? 4 : 0));
		expect(starts(signals).length).toBeLessThanOrEqual(3);
		// A chance start is short: the slope falls back under the end threshold within the window.
		expect(signals.filter(([, k]) => k === 'renew').length).toBeLessThanOrEqual(3);
	});

	test('a jump is no rise: a load that moved once and stayed starts nothing, a ramp to the same level does', () => {
		// 12 points of a core at once: a line through the window that holds the step is 1.8 %/s,
		// well over the start threshold and significant, but a step fits the readings better.
		for (let seed = 20; seed < 30; seed++) {
			const rng = new Rng(seed);
			expect(starts(feed(new CpuRise(5000), 0, 60, (s) => 20 + (s >= 30 ? 12 : 0) + rng.normal(0, 0.5)))).toEqual([]);
		}
		// The same 12 points over 10 s: one rise, started while it goes on.
		for (let seed = 30; seed < 40; seed++) {
			const rng = new Rng(seed);
			const ramp = starts(feed(new CpuRise(5000), 0, 60, (s) => 20 + 1.2 * Math.min(10, Math.max(0, s - 30)) + rng.normal(0, 0.5)));
			expect(ramp).toHaveLength(1);
			expect(ramp[0]).toBeLessThan(40);
		}
	});

	test('one starved second at the window\'s edge is no rise (the fit must hold without its farthest reading)', () => {
		// A worker's readings from the overhead bench on a loaded host (20:00 UTC run, worker 1 at
		// 35–45 s): one second at 17 % between readings near 30, then a drift of a few points.
		const series = (pcts: number[]): Array<[number, number]> => pcts.map((pct, i) => [30_130 + i * 1002.8, pct]);
		const observe = (rows: Array<[number, number]>): Array<RiseSignal> => {
			const rise = new CpuRise(5000);
			return rows.map(([ts, pct]) => rise.observe(ts, pct)).filter((x) => x !== undefined);
		};
		expect(observe(series([30.8, 31.2, 25.5, 29.3, 27.4, 25.0, 17.2, 27.7, 27.1, 31.3, 30.0, 29.0, 31.4, 35.2, 32.5, 32.5]))).toEqual([]);
		// A real ramp after the same starved second is one.
		expect(observe(series([30.8, 31.2, 25.5, 29.3, 27.4, 25.0, 17.2, 27.7, 29.1, 31.3, 33.0, 35.0, 37.4, 39.2, 41.5, 43.5]))).toEqual(['start']);
	});

	test('withoutFarthest measures distances from the fit it is given, through that fit\'s means', () => {
		const pts = [0, 1, 2, 9, 4, 5].map((pct, s) => ({ ts: s * 1000, pct }));
		// A flat line at 1 through t = 2.5 s: the reading farthest from it is 9, then 5; moved to 5,
		// the farthest is 0. Its own means would put the line at 3.5 and leave out 9 both times.
		const flat = { slopePerS: 0, slopeStdErrPerS: 0, residualSs: 0, meanTimeS: 2.5, meanPct: 1 };
		expect(withoutFarthest(pts, flat).map((p) => p.pct)).toEqual([0, 1, 2, 4, 5]);
		expect(withoutFarthest(pts, { ...flat, meanPct: 5 }).map((p) => p.pct)).toEqual([1, 2, 9, 4, 5]);
	});

	test('fitLine returns the means its line passes through', () => {
		const fit = fitLine([0, 1, 2, 3].map((s) => ({ ts: 5000 + s * 2000, pct: 10 + s })));
		expect(fit.meanTimeS).toBeCloseTo(3, 9);
		expect(fit.meanPct).toBeCloseTo(11.5, 9);
	});

	test('withoutFarthest leaves out the reading farthest from the line', () => {
		const pts = [0, 1, 2, 9, 4, 5].map((pct, s) => ({ ts: s * 1000, pct }));
		expect(withoutFarthest(pts, fitLine(pts)).map((p) => p.pct)).toEqual([0, 1, 2, 4, 5]);
	});

	test('a lone spike is no rise, however high', () => {
		const rise = new CpuRise(5000);
		expect(feed(rise, 0, 30, (s) => (s === 20 ? 70 : 30))).toEqual([]);
	});

	test('a ramp starts one episode within a few seconds, renews it while it goes on, and ends after it', () => {
		const rng = new Rng(12);
		const rise = new CpuRise(5000);
		// Flat until 60 s, +2 points per second for 30 s, flat again.
		const pct = (s: number): number => 20 + 2 * Math.min(30, Math.max(0, s - 60)) + rng.normal(0, 2);
		const signals = feed(rise, 0, 150, pct);
		const first = starts(signals);
		expect(first).toHaveLength(1);
		expect(first[0]).toBeGreaterThanOrEqual(61);
		expect(first[0]).toBeLessThanOrEqual(67);
		const renewals = signals.filter(([, k]) => k === 'renew').map(([s]) => s);
		// Every 5 s while the ramp goes on (it ends at 90 s; the window sees it for up to 10 s more).
		expect(renewals.length).toBeGreaterThanOrEqual(4);
		for (let i = 1; i < renewals.length; i++) expect(renewals[i]! - renewals[i - 1]!).toBeGreaterThanOrEqual(5);
		expect(Math.max(...renewals)).toBeLessThanOrEqual(100);
		expect(rise.rising).toBe(false);
	});

	test('hysteresis: a rise that slows below the start threshold stays one episode; a later ramp is a new one', () => {
		const rng = new Rng(13);
		const rise = new CpuRise(5000);
		// 2 %/s for 10 s, then 0.8 %/s (below the start threshold, above the end) for 40 s, then flat, then a second ramp.
		const level = (s: number): number => {
			if (s < 30) return 20;
			if (s < 40) return 20 + 2 * (s - 30);
			if (s < 80) return 40 + 0.8 * (s - 40);
			if (s < 120) return 72;
			return 72 + 2 * Math.min(15, s - 120);
		};
		const signals = feed(rise, 0, 160, (s) => level(s) + rng.normal(0, 1));
		const first = starts(signals);
		expect(first).toHaveLength(2);
		expect(first[0]).toBeLessThan(40);
		expect(first[1]).toBeGreaterThanOrEqual(120);
		// The slow stretch renewed the first episode instead of ending it.
		expect(signals.some(([s, k]) => k === 'renew' && s > 60 && s < 80)).toBe(true);
	});

	test('a noisy window needs a clearer trend than a quiet one (the significance test)', () => {
		// The same 1.2 %/s trend: clear in quiet readings, lost in readings scattered by ±12 points.
		const quiet = new CpuRise(5000);
		expect(starts(feed(quiet, 0, 10, (s) => 30 + 1.2 * s + (s % 2 ? 0.5 : -0.5)))).toEqual([5]);
		const noisy = new CpuRise(5000);
		expect(starts(feed(noisy, 0, 10, (s) => 30 + 1.2 * s + (s % 2 ? 12 : -12)))).toEqual([]);
	});
});
