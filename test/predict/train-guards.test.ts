import { TrainingDivergedError, trainModel } from '../../plugin/predict/train';
import { syntheticSession } from './synthetic';

/**
 * A worker with no streams (just created, or emptied) is a valid example. Adam keeps its
 * moments by the position of each variable in the gradient list, so a mini-batch whose
 * graph left the stream net out would shift the worker net's variables onto the stream
 * net's moments and fail on their shapes.
 */
test('mini-batches without any stream train alongside batches with streams', () => {
	const examples = syntheticSession(3, { workers: 2, steps: 40, stride: 2 });
	expect(examples.length).toBeGreaterThan(4);
	const mixed = examples.map((e, i) => (i % 2 === 0 ? { ...e, snapshot: { ...e.snapshot, streams: [] } } : e));
	const { predictor } = trainModel(mixed, { name: 'empty-batches', version: 1, epochs: 2, batchSize: 1, streamHidden: [4], workerHidden: [4] });
	predictor.dispose();
});

test('a model trained with stream-less batches predicts finite values and finite p95 bands', () => {
	const examples = syntheticSession(4, { workers: 2, steps: 40, stride: 2 });
	const mixed = examples.map((e, i) => (i % 3 === 0 ? { ...e, snapshot: { ...e.snapshot, streams: [] } } : e));
	const { predictor } = trainModel(mixed, { name: 'empty-batches', version: 1, epochs: 3, batchSize: 4, streamHidden: [4], workerHidden: [4] });
	try {
		for (const band of Object.values(predictor.manifest.p95Z)) for (const z of Object.values(band)) expect(Number.isFinite(z)).toBe(true);
		const [p] = predictor.predict([mixed[0]!.snapshot, mixed[1]!.snapshot]);
		expect(Number.isFinite(p!.horizons[15].total.cpuPct.mean)).toBe(true);
	} finally {
		predictor.dispose();
	}
});

test('a training that blows up is an error, never a model with non-finite weights or bands', () => {
	const examples = syntheticSession(5, { workers: 2, steps: 40, stride: 2 });
	expect(() => trainModel(examples, { name: 'diverges', version: 1, epochs: 3, batchSize: 2, learningRate: 1e9, streamHidden: [4], workerHidden: [4] })).toThrow(TrainingDivergedError);
});

test('a target whose level is thousands of times its spread (a worker RSS that barely moves) trains to finite weights', () => {
	const examples = syntheticSession(6, { workers: 2, steps: 40, stride: 2 }).map((e, i) => {
		const targets = { ...e.targets };
		for (const h of Object.keys(targets) as unknown as Array<keyof typeof targets>) targets[h] = { ...targets[h], rssBytes: 60e6 + (i % 3) * 1000 };
		return { ...e, targets };
	});
	const { predictor } = trainModel(examples, { name: 'flat-rss', version: 1, epochs: 2, batchSize: 4, streamHidden: [4], workerHidden: [4] });
	predictor.dispose();
});
