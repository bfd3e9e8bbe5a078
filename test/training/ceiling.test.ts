import { rm } from 'node:fs/promises';
import { ceilingKeys, measureCeiling } from '../../training/ceiling';
import { BROWSER_FAMILY } from '../../training/loadgen/browserFamily';
import { evaluateLoso } from '../../training/loso';
import { relabelledSessions } from './relabelled';

/**
 * The ceiling analysis scores the same folds and examples as the leave-one-family-out
 * evaluation: its last-value and served columns must be the evaluation's own figures, or the
 * oracles' gains would not be comparable with the acceptance keys.
 */
let dir: string;

beforeAll(async () => {
	dir = await relabelledSessions('foresight-ceiling-', [
		[0, 'x', 10_001],
		[1, 'x', 1],
		[2, 'y', 2],
		[1, 'y', 10_003],
	]);
});

afterAll(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

test('last value and the served engine are scored exactly as the evaluation scores them', async () => {
	const ceiling = await measureCeiling({ sessionsDir: dir, seeds: 'evaluation', firstEvalSeed: 10_000, announceLeadS: 2 });
	const { families } = await evaluateLoso({ sessionsDir: dir, score: 'evaluation', biasAlpha: 0, levelHalfLifeS: 1.5, trendWeight: 0, guard: true, bandCombine: 'max', bandPrior: true, firstEvalSeed: 10_000 });
	expect(ceiling.map((f) => f.family)).toEqual(families.map((f) => f.family));
	ceiling.forEach((c, i) => {
		const f = families[i]!;
		expect(c.examples).toBe(f.examples);
		expect(c.mae_15s.last).toBeCloseTo(f.mae_15s.last, 12);
		expect(c.mae_15s.served).toBeCloseTo(f.mae_15s.served, 12);
		for (const [k, v] of Object.entries(c.mae_15s)) if (k !== 'noise_floor') expect([k, Number.isFinite(v) && v >= 0]).toEqual([k, true]);
	});
	const keys = ceilingKeys(ceiling);
	expect(keys.families).toBe(2);
	expect(keys.min_gain_served).toBeCloseTo(Math.min(...ceiling.map((f) => 1 - f.mae_15s.served / f.mae_15s.last)), 12);
});

test('the browser family stays out of the min and mean, as in the loso_* keys, and has keys of its own', async () => {
	const ceiling = await measureCeiling({ sessionsDir: dir, seeds: 'evaluation', firstEvalSeed: 10_000, announceLeadS: 2 });
	const replayed = ceilingKeys(ceiling);
	const worst = ceiling[0]!;
	const browser = { ...worst, family: BROWSER_FAMILY, gain_vs_last_15s: { ...worst.gain_vs_last_15s, served: -5, known_oracle: -6, future_oracle: -7 } };
	const keys = ceilingKeys([...ceiling, browser]);
	expect(keys.families).toBe(replayed.families);
	expect(keys.min_gain_served).toBe(replayed.min_gain_served);
	expect(keys.mean_gain_known_oracle).toBe(replayed.mean_gain_known_oracle);
	expect([keys.browser_gain_served, keys.browser_gain_known_oracle, keys.browser_gain_future_oracle]).toEqual([-5, -6, -7]);
	expect(replayed.browser_gain_served).toBeNull();
});
