import { rm } from 'node:fs/promises';
import { acceptanceKeys, evaluateLoso, type FamilyFigures, type Fold } from '../../training/loso';
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
