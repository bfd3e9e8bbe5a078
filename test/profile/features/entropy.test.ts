import { EntropyTracker, permutationEntropy, type EntropyScores } from '../../../plugin/profile/features/entropy';
import { gaussian, rng } from './helpers';

const FRACTIONS = [0, 0.1, 0.25, 0.5, 1];

function score(series: (i: number) => number, samples = 300): EntropyScores {
	const tracker = new EntropyTracker();
	for (let i = 0; i < samples; i++) tracker.add(series(i));
	const scores = tracker.scores();
	if (!scores) throw new Error('no score after 300 samples');
	return scores;
}

/** A bitrate-like series: base level 2 Mb/s, a pattern of unit amplitude mixed with i.i.d. noise of the same spread. */
function mixed(pattern: (i: number) => number, fraction: number, seed: number): (i: number) => number {
	const noise = gaussian(rng(seed));
	return (i) => 1e6 * (2 + (1 - fraction) * pattern(i) + fraction * 0.7 * noise());
}

const sine = (i: number): number => Math.sin((2 * Math.PI * i) / 20);
const constant = (): number => 0;

describe('predictive entropy', () => {
	it('is near 0 for a constant bitrate', () => {
		expect(score(() => 1_500_000).predictive).toBeLessThan(0.05);
		expect(score(() => 0).predictive).toBeLessThan(0.05);
	});

	it('is near 0 for a CBR stream with sub-floor packetisation wobble', () => {
		const noise = gaussian(rng(1));
		expect(score(() => 32_000 * (1 + 0.01 * noise())).predictive).toBeLessThan(0.05);
	});

	it('is near 1 for i.i.d. bitrates (uniform, Gaussian, log-normal)', () => {
		const uniform = rng(2);
		const normal = gaussian(rng(3));
		const logNormal = gaussian(rng(4));
		expect(score(() => 2e6 * uniform()).predictive).toBeGreaterThan(0.9);
		expect(score(() => 1e6 * (3 + normal())).predictive).toBeGreaterThan(0.9);
		expect(score(() => 1e6 * Math.exp(logNormal())).predictive).toBeGreaterThan(0.9);
	});

	it.each([
		['sine', sine],
		['constant', constant],
	])('rises monotonically with the injected noise fraction (%s)', (_name, pattern) => {
		for (const seed of [1, 2, 3]) {
			const scores = FRACTIONS.map((f) => score(mixed(pattern, f, seed)).predictive);
			for (let k = 1; k < scores.length; k++) expect(scores[k]!).toBeGreaterThanOrEqual(scores[k - 1]!);
			expect(scores[0]!).toBeLessThan(0.05);
			expect(scores[scores.length - 1]!).toBeGreaterThan(0.9);
			if (pattern === sine) for (let k = 1; k < scores.length; k++) expect(scores[k]!).toBeGreaterThan(scores[k - 1]!);
		}
	});

	it('forecasts a trend and a sinusoid (AR(2)) rather than calling them random', () => {
		expect(score((i) => 1e5 + 1e3 * i).predictive).toBeLessThan(0.05);
		expect(score((i) => 1e6 * (2 + sine(i))).predictive).toBeLessThan(0.05);
	});

	it('stays numerically sound over a long constant run and then notices randomness', () => {
		const tracker = new EntropyTracker();
		for (let i = 0; i < 50_000; i++) tracker.add(800_000);
		expect(tracker.scores()!.predictive).toBe(0);
		const uniform = rng(6);
		for (let i = 0; i < 120; i++) tracker.add(800_000 * (0.5 + uniform()));
		expect(tracker.scores()!.predictive).toBeGreaterThan(0.9);
	});

	it('has no score before enough samples and ignores non-finite ones', () => {
		const tracker = new EntropyTracker();
		for (let i = 0; i < 15; i++) tracker.add(i % 2 ? Number.NaN : 100);
		expect(tracker.scores()).toBeUndefined();
	});
});

describe('permutation entropy', () => {
	it('is 0 for constant and monotone series, near 1 for i.i.d. noise', () => {
		expect(permutationEntropy(new Array(100).fill(7), 3)).toBe(0);
		expect(permutationEntropy(Array.from({ length: 100 }, (_, i) => i), 4)).toBe(0);
		const random = rng(8);
		const iid = Array.from({ length: 5000 }, random);
		for (const order of [3, 4, 5]) expect(permutationEntropy(iid, order)).toBeGreaterThan(0.97);
	});

	it('rises with injected randomness and is reported by the tracker', () => {
		const values = FRACTIONS.map((f) => score(mixed(sine, f, 5), 300).permutation);
		expect(values[0]!).toBeLessThan(values[values.length - 1]!);
		for (const v of values) expect(v).toBeGreaterThanOrEqual(0);
		expect(values[values.length - 1]!).toBeGreaterThan(0.9);
	});

	it('treats values within the relative tolerance as ties', () => {
		const wobble = Array.from({ length: 200 }, (_, i) => 1000 + (i * 7919) % 3);
		expect(permutationEntropy(wobble, 3, 0.01)).toBe(0);
		expect(permutationEntropy(wobble, 3, 0)).toBeGreaterThan(0.3);
	});
});
