import { rm } from 'node:fs/promises';
import { acceptanceKeys, evaluateLoso, type FamilyFigures, type Fold } from '../../training/loso';
import { BROWSER_FAMILY } from '../../training/loadgen/browserFamily';
import { relabelledSessions } from './relabelled';

/**
 * The leave-one-family-out protocol on three recorded sessions relabelled as three
 * families: each fold learns only from the other families' seeds < 10000 and scores only
 * its own seeds ≥ 10000 (or < 10000 when asked for the tuning figures).
 */
let dir: string;

beforeAll(async () => {
	// (scenario, seed) per copy: family x has an evaluation and a tuning session, y and z one each.
	dir = await relabelledSessions('foresight-loso-', [
		[0, 'x', 10_001],
		[1, 'x', 1],
		[2, 'y', 2],
		[0, 'z', 10_002],
		[1, 'y', 10_003],
	]);
});

afterAll(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

const options = { score: 'evaluation' as const, biasAlpha: 0, levelHalfLifeS: 1.5, trendWeight: 0, guard: true, bandCombine: 'max' as const, bandPrior: true, firstEvalSeed: 10_000 };

test('each family is scored on its evaluation seeds by what the other families taught', async () => {
	const folds: Fold[] = [];
	const { families, pooledP90 } = await evaluateLoso({ ...options, sessionsDir: dir }, (f) => folds.push(f));
	expect(folds).toEqual([
		{ family: 'x', train: ['y-seed2'], scored: ['x-seed10001'] },
		{ family: 'y', train: ['x-seed1'], scored: ['y-seed10003'] },
		{ family: 'z', train: ['x-seed1', 'y-seed2'], scored: ['z-seed10002'] },
	]);
	expect(families.map((f) => f.family)).toEqual(['x', 'y', 'z']);
	for (const f of families) {
		expect(f.examples).toBeGreaterThan(10);
		expect(f.mae_gain_vs_last_15s).toBeCloseTo(1 - f.mae_15s.served / f.mae_15s.last, 12);
		expect(f.p95_coverage_15s).toBeGreaterThanOrEqual(0);
		expect(f.p95_coverage_15s).toBeLessThanOrEqual(1);
	}
	// x and z are the same recording: scored alike by last value.
	expect(families[0]!.mae_15s.last).toBeCloseTo(families[2]!.mae_15s.last, 12);
	expect(pooledP90).toBeGreaterThan(0);
});

test('evaluation can be limited to seeds recorded after the design was frozen', async () => {
	const folds: Fold[] = [];
	await evaluateLoso({ ...options, sessionsDir: dir, firstEvalSeed: 10_002 }, (f) => folds.push(f));
	expect(folds.map((f) => [f.family, f.scored])).toEqual([
		['y', ['y-seed10003']],
		['z', ['z-seed10002']],
	]);
});

test('the tuning figures score the seeds below 10000 only', async () => {
	const folds: Fold[] = [];
	await evaluateLoso({ ...options, sessionsDir: dir, score: 'tuning' }, (f) => folds.push(f));
	expect(folds.map((f) => [f.family, f.scored])).toEqual([
		['x', ['x-seed1']],
		['y', ['y-seed2']],
	]);
});

test('acceptance keys are the minimum, mean and extremes over families', () => {
	const fam = (gainLast: number, gainEwma: number, gainKnn: number, coverage: number) => ({ mae_gain_vs_last_15s: gainLast, mae_gain_vs_ewma_15s: gainEwma, mae_gain_vs_knn_15s: gainKnn, p95_coverage_15s: coverage }) as FamilyFigures;
	const keys = acceptanceKeys([fam(0.1, 0.2, 0.5, 0.9), fam(0.3, -0.1, 0.1, 0.99)], 4.5);
	expect(keys).toMatchObject({
		loso_families: 2,
		loso_min_mae_gain_vs_last_15s: 0.1,
		loso_mean_mae_gain_vs_last_15s: 0.2,
		loso_min_mae_gain_vs_ewma_15s: -0.1,
		loso_p90_abs_err_pp_15s: 4.5,
		loso_p95_coverage_min: 0.9,
		loso_p95_coverage_max: 0.99,
		browser_mae_gain_vs_last_15s: null,
	});
	expect(keys.loso_mean_mae_gain_vs_knn_15s).toBeCloseTo(0.3, 12);
});

describe('the browser family', () => {
	// Fixture copies: replayed families x (tuning + evaluation seed) and y (tuning), and the
	// browser family with an evaluation seed and a stray tuning seed that must teach and choose nothing.
	let withBrowser: string;
	let without: string;
	const replayed: Array<readonly [number, string, number]> = [
		[0, 'x', 1],
		[1, 'y', 2],
		[2, 'x', 10_002],
	];

	beforeAll(async () => {
		withBrowser = await relabelledSessions('foresight-loso-browser-', [...replayed, [0, BROWSER_FAMILY, 10_201], [1, BROWSER_FAMILY, 3]]);
		without = await relabelledSessions('foresight-loso-nobrowser-', replayed);
	});

	afterAll(async () => {
		for (const d of [withBrowser, without]) if (d) await rm(d, { recursive: true, force: true });
	});

	test('is scored on its own, never trained on, and outside the loso_* keys', async () => {
		const folds: Fold[] = [];
		const { families, pooledP90 } = await evaluateLoso({ ...options, sessionsDir: withBrowser, firstEvalSeed: 10_002 }, (f) => folds.push(f));
		expect(folds).toEqual([
			{ family: BROWSER_FAMILY, train: ['x-seed1', 'y-seed2'], scored: [`${BROWSER_FAMILY}-seed10201`] },
			{ family: 'x', train: ['y-seed2'], scored: ['x-seed10002'] },
		]);
		const browser = families.find((f) => f.family === BROWSER_FAMILY)!;
		const x = families.find((f) => f.family === 'x')!;
		expect(browser.examples).toBeGreaterThan(10);

		const keys = acceptanceKeys(families, pooledP90);
		expect(keys.browser_mae_gain_vs_last_15s).toBe(browser.mae_gain_vs_last_15s);
		expect(keys.browser_mae_gain_vs_last_15s).toBeCloseTo(1 - browser.mae_15s.served / browser.mae_15s.last, 12);
		expect(keys.loso_families).toBe(1);
		expect(keys.loso_min_mae_gain_vs_last_15s).toBe(x.mae_gain_vs_last_15s);

		// The replayed families' figures and pooled p90 are what they are without any browser session.
		const alone = await evaluateLoso({ ...options, sessionsDir: without, firstEvalSeed: 10_002 });
		expect(alone.families).toEqual([x]);
		expect(pooledP90).toBe(alone.pooledP90);
	});

	test('has no tuning figures, whatever its seeds', async () => {
		const folds: Fold[] = [];
		await evaluateLoso({ ...options, sessionsDir: withBrowser, score: 'tuning' }, (f) => folds.push(f));
		expect(folds.map((f) => f.family)).toEqual(['x', 'y']);
		for (const f of folds) expect(f.train.some((id) => id.startsWith(BROWSER_FAMILY))).toBe(false);
	});

	test('its key is null when no browser session was scored, and never mixes into the minimum', () => {
		const fam = (family: string, gainLast: number) => ({ family, mae_gain_vs_last_15s: gainLast, mae_gain_vs_ewma_15s: 0, mae_gain_vs_knn_15s: 0, p95_coverage_15s: 0.95 }) as FamilyFigures;
		expect(acceptanceKeys([fam('x', 0.4)], 3).browser_mae_gain_vs_last_15s).toBeNull();
		const keys = acceptanceKeys([fam('x', 0.4), fam(BROWSER_FAMILY, -0.5), fam('y', 0.2)], 3);
		expect(keys).toMatchObject({ loso_families: 2, loso_min_mae_gain_vs_last_15s: 0.2, browser_mae_gain_vs_last_15s: -0.5 });
		expect(keys.loso_mean_mae_gain_vs_last_15s).toBeCloseTo(0.3, 12);
	});
});
