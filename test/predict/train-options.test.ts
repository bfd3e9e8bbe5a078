import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { evaluatePredictor } from '../../plugin/predict/evaluate';
import { OUTPUTS, TfPredictor } from '../../plugin/predict/model';
import { loadTf } from '../../plugin/predict/tf';
import { meanLoss, rowWeightsOf, trainModel, type EpochLog } from '../../plugin/predict/train';
import type { TrainingExample } from '../../plugin/predict/types';
import { syntheticSession } from './synthetic';
import { runTrainingFixture } from './trainingFixture';

// The fixture's validation set, rebuilt here (syntheticSession is deterministic per seed).
const validation = syntheticSession(2, { workers: 2, steps: 50, stride: 2 });
let dir: string;
let fixture: { robust: { history: EpochLog[]; keptEpoch: number }; plain: { history: EpochLog[]; keptEpoch: number } };

beforeAll(async () => {
	dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-train-options-'));
	fixture = await runTrainingFixture<typeof fixture>('train-options.ts', dir);
}, 180_000);
afterAll(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

describe('mean loss', () => {
	const { tf } = loadTf();
	// Row 0: residual 0.5 on every output; row 1: −3 on every output.
	const diff = () => tf.tensor2d([...new Array<number>(OUTPUTS).fill(0.5), ...new Array<number>(OUTPUTS).fill(-3)], [2, OUTPUTS]);
	const value = (...args: Parameters<typeof meanLoss> extends [unknown, unknown, ...infer R] ? R : never): number =>
		tf.tidy(() => meanLoss(tf, diff(), ...args).dataSync()[0]!);

	test('squared error without a Huber threshold', () => {
		expect(value(undefined, undefined, undefined)).toBeCloseTo((0.25 + 9) / 2, 6);
	});

	test('Huber: d² inside the threshold, 2δ|d| − δ² beyond it', () => {
		expect(value(1, undefined, undefined)).toBeCloseTo((0.25 + (2 * 3 - 1)) / 2, 6);
		// A threshold above every residual is the squared error.
		expect(value(10, undefined, undefined)).toBeCloseTo((0.25 + 9) / 2, 6);
	});

	test('row and output weights multiply the per-element loss', () => {
		expect(value(undefined, undefined, Float32Array.of(2, 0))).toBeCloseTo((2 * 0.25 + 0) / 2, 6);
		const outputs = new Float32Array(OUTPUTS);
		outputs[0] = OUTPUTS; // all the weight on one output: the mean is that output's loss
		expect(value(undefined, outputs, undefined)).toBeCloseTo((0.25 + 9) / 2, 5);
	});
});

describe('session weighting', () => {
	const fake = (sessionId: string) => ({ sessionId }) as TrainingExample;

	test('every session weighs alike and the weights average 1', () => {
		const examples = [fake('a'), fake('a'), fake('a'), fake('b')];
		const w = rowWeightsOf(examples, 'session')!;
		expect(w[0]! * 3).toBeCloseTo(w[3]!, 6);
		expect(Array.from(w).reduce((s, v) => s + v, 0)).toBeCloseTo(examples.length, 6);
	});

	test('per-example weighting needs no weights', () => {
		expect(rowWeightsOf([fake('a'), fake('b')], 'example')).toBeUndefined();
	});
});

describe('training with the robust options', () => {
	test('the loss is finite and falls', () => {
		const losses = fixture.robust.history.map((h) => h.loss);
		for (const l of losses) expect(Number.isFinite(l)).toBe(true);
		expect(losses[losses.length - 1]!).toBeLessThan(losses[0]!);
	});

	test("'best-validation' keeps the epoch with the lowest validation 15 s CPU MAE, and the saved model has its weights", async () => {
		const maes = fixture.robust.history.map((h) => h.validationCpuMae15!);
		expect(maes).toHaveLength(12);
		for (const m of maes) expect(Number.isFinite(m)).toBe(true);
		const best = Math.min(...maes);
		expect(fixture.robust.keptEpoch).toBe(maes.indexOf(best) + 1);
		const model = await TfPredictor.load(path.join(dir, 'robust'));
		try {
			// Training scores with tfjs tensors, the loaded model with float32 kernels: equal to rounding.
			expect(evaluatePredictor(model, validation).mae[15].cpuPct).toBeCloseTo(best, 3);
		} finally {
			model.dispose();
		}
	});

	test("'last' (the default) keeps the last epoch and scores no validation per epoch", () => {
		expect(fixture.plain.keptEpoch).toBe(3);
		for (const h of fixture.plain.history) expect(h.validationCpuMae15).toBeUndefined();
	});

	test("'average' keeps the mean weights of the second half: one epoch's own weights, not the last of several", async () => {
		const predictionsOf = async (name: string) => {
			const model = await TfPredictor.load(path.join(dir, name));
			try {
				return model.predict(validation.map((e) => e.snapshot)).map((p) => p.horizons[15].total.cpuPct.mean);
			} finally {
				model.dispose();
			}
		};
		const [average1, last1, average4, last4] = await Promise.all(['average1', 'last1', 'average4', 'last4'].map(predictionsOf));
		average1!.forEach((v, i) => expect(v).toBeCloseTo(last1![i]!, 9));
		for (const v of average4!) expect(Number.isFinite(v)).toBe(true);
		const largest = Math.max(...average4!.map((v, i) => Math.abs(v - last4![i]!)));
		expect(largest).toBeGreaterThan(1e-3);
	});

	test('invalid options are refused before training', () => {
		const train = syntheticSession(1, { workers: 1, steps: 40, stride: 4 });
		expect(() => trainModel(train, { epochs: 1, huberDelta: 0 })).toThrow(RangeError);
		expect(() => trainModel(train, { epochs: 1, keepEpoch: 'best-validation' })).toThrow(/validation/);
		expect(() => trainModel(train, { epochs: 1, targetWeights: { cpuPct: -1 } })).toThrow(RangeError);
	});
});
