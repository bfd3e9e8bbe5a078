import { binRates, describeSeries, TimeSeriesWindow } from '../../../plugin/profile/features/windows';
import { burstiness, varianceProfile } from '../../../plugin/profile/features/variance';
import { varianceSchema } from '../../../plugin/profile/schema';
import { gaussian, rng } from './helpers';

function naive(values: number[]): { mean: number; std: number } {
	const mean = values.reduce((a, b) => a + b, 0) / values.length;
	return { mean, std: Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length) };
}

describe('TimeSeriesWindow', () => {
	it('keeps the newest samples when it wraps and answers window queries', () => {
		const w = new TimeSeriesWindow(5);
		for (let i = 1; i <= 8; i++) w.add(i * 1000, i);
		expect(w.size).toBe(5);
		expect(w.valuesSince(-Infinity)).toEqual([4, 5, 6, 7, 8]);
		expect(w.valuesSince(5000)).toEqual([6, 7, 8]);
		expect(w.valuesSince(5000, 7000)).toEqual([6, 7]);
		const s = w.stats(3000, 8000);
		expect(s).toMatchObject({ count: 3, mean: 7, min: 6, max: 8 });
		expect(s.std).toBeCloseTo(Math.sqrt(2 / 3));
		expect(s.cv).toBeCloseTo(Math.sqrt(2 / 3) / 7);
	});

	it('counts and sums a window as valuesSince() would return it, wrapped or not, equal times included', () => {
		const w = new TimeSeriesWindow(7);
		const times = [1000, 2000, 2000, 3000, 4500, 5000, 5000, 6000, 7000, 8000, 8000];
		times.forEach((t, i) => w.add(t, 0.1 * (i + 1)));
		for (const [from, to] of [[-Infinity, Infinity], [2000, 8000], [3000, 5000], [4999, 4999], [5000, 7500], [8000, Infinity], [0, 1000]] as const) {
			const values = w.valuesSince(from, to);
			expect(w.countAndSumSince(from, to)).toEqual({ count: values.length, sum: values.reduce((a, b) => a + b, 0) });
		}
		expect(w.countAndSumSince(5000, 8000).count).toBe(4);
	});

	it('drops out-of-order and non-finite samples', () => {
		const w = new TimeSeriesWindow(4);
		expect(w.add(1000, 1)).toBe(true);
		expect(w.add(500, 2)).toBe(false);
		expect(w.add(2000, Number.NaN)).toBe(false);
		expect(w.add(2000, 3)).toBe(true);
		expect(w.valuesSince(-Infinity)).toEqual([1, 3]);
		w.clear();
		expect(w.size).toBe(0);
		expect(() => new TimeSeriesWindow(0)).toThrow(RangeError);
	});

	it('matches a naive mean and σ over 10 s and 60 s windows of 1 s samples', () => {
		const noise = gaussian(rng(3));
		const w = new TimeSeriesWindow(120);
		const all: number[] = [];
		for (let s = 1; s <= 100; s++) {
			const v = 1e6 + 2e5 * noise();
			all.push(v);
			w.add(s * 1000, v);
		}
		for (const windowS of [10, 60]) {
			const expected = naive(all.slice(-windowS));
			const got = w.stats(windowS * 1000, 100_000);
			expect(got.count).toBe(windowS);
			expect(got.mean).toBeCloseTo(expected.mean, 6);
			expect(got.std).toBeCloseTo(expected.std, 6);
		}
	});
});

describe('binRates', () => {
	it('turns events into per-bin rates, zeros included', () => {
		const rates = binRates([{ timeMs: 0, size: 100 }, { timeMs: 50, size: 100 }, { timeMs: 250, size: 50 }, { timeMs: 400, size: 999 }], 100, 0, 400);
		expect(rates).toEqual([2000, 0, 500, 0]);
	});
});

/** 1 s bitrate samples (bps) and 100 ms bins of three kinds of stream. */
function streams(): Record<'audio' | 'camera' | 'screen', { seconds: number[]; bins: number[] }> {
	const random = rng(11);
	const noise = gaussian(random);
	const bin = (perBinBytes: (i: number) => number): { seconds: number[]; bins: number[] } => {
		const bins = Array.from({ length: 600 }, (_, i) => Math.max(0, perBinBytes(i)) * 80);
		const seconds = Array.from({ length: 60 }, (_, s) => bins.slice(s * 10, s * 10 + 10).reduce((a, b) => a + b, 0) / 10);
		return { seconds, bins };
	};
	return {
		// Opus 20 ms packets of ~160 bytes ±3 %: 5 per 100 ms.
		audio: bin(() => 5 * 160 * (1 + 0.03 * noise())),
		// 30 fps camera: 3 frames per bin, ±25 % sizes, a keyframe (8×) every 3 s.
		camera: bin((i) => 3 * 4000 * (1 + 0.25 * noise()) + (i % 30 === 0 ? 28_000 : 0)),
		// Static screen: a few hundred bytes per bin, and 150 kB bursts when a slide changes (every ~6 s).
		screen: bin((i) => 300 * (1 + 0.2 * noise()) + (i % 60 === 17 ? 150_000 : 0) + (i % 60 === 18 ? 40_000 : 0)),
	};
}

describe('burstiness', () => {
	it('is 0 for a constant series and 1 − duty cycle for on/off traffic', () => {
		expect(burstiness([5, 5, 5, 5])).toBe(0);
		expect(burstiness([])).toBe(0);
		// On/off traffic: 1 − duty cycle.
		expect(burstiness([0, 0, 0, 0, 0, 0, 0, 0, 0, 1e9])).toBeCloseTo(0.9, 10);
		expect(burstiness([0, 7, 0, 7])).toBeCloseTo(0.5, 10);
	});

	it('separates smooth audio from camera video from bursty screen share, at 100 ms and at 1 s', () => {
		const s = streams();
		for (const resolution of ['bins', 'seconds'] as const) {
			const audio = burstiness(s.audio[resolution]);
			const camera = burstiness(s.camera[resolution]);
			const screen = burstiness(s.screen[resolution]);
			expect(audio).toBeLessThan(0.01);
			expect(camera).toBeGreaterThan(audio);
			expect(camera).toBeLessThan(0.3);
			expect(screen).toBeGreaterThan(0.8);
		}
	});
});

describe('varianceProfile', () => {
	it('fills the schema’s variance block from 1 s samples, bursting from sub-second bins when given', () => {
		const { screen } = streams();
		const w = new TimeSeriesWindow(60);
		screen.seconds.forEach((bps, s) => w.add((s + 1) * 1000, bps));
		const profile = varianceProfile(w, 60_000, { subSecondBps: screen.bins });
		expect(varianceSchema.safeParse(profile).success).toBe(true);
		expect(profile.windows.map((x) => x.windowS)).toEqual([10, 60]);
		const last10 = describeSeries(screen.seconds.slice(-10));
		expect(profile.windows[0]).toEqual({ windowS: 10, meanBps: last10.mean, stdBps: last10.std, cv: last10.cv });
		expect(profile.burstiness).toBe(burstiness(screen.bins));
		expect(varianceProfile(w, 60_000).burstiness).toBe(burstiness(screen.seconds));
	});
});
