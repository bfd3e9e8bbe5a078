import { trainModel } from '../../plugin/predict/train';
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
