import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { TfPredictor } from '../../plugin/predict/model';
import { MIN_TRAIN_EXAMPLES, retrainWindow, TooLittleDataError, type TrainJob } from '../../plugin/predict/retrainer';
import { ThreadTrainer } from '../../plugin/predict/retrainer.io';
import { syntheticTimelines } from './synthetic';

/** A job over synthetic live history: 2 workers, 1 Hz, its last sample is "now". */
function job(steps: number): TrainJob {
	const timelines = syntheticTimelines(11, { workers: 2, steps });
	const now = Math.max(...timelines.flatMap((t) => t.samples.map((s) => s.ts)));
	return { timelines, window: retrainWindow(now, 600_000, 10_000), examples: { strideS: 1, historyS: 10 }, epochs: 3, name: 'live', version: 2, minTrainExamples: MIN_TRAIN_EXAMPLES };
}

describe('ThreadTrainer (real worker thread, real tfjs, real files)', () => {
	let dir: string;
	beforeEach(async () => {
		dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-thread-'));
	});
	afterEach(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	test('trains off the main thread, stages a loadable model next to the model directory, keeps it as a new version', async () => {
		const modelDir = path.join(dir, 'default');
		const trainer = new ThreadTrainer({ modelDir });
		const trained = await trainer.train(job(80));
		expect(trained.threadId).toBeGreaterThan(0);
		expect(trained.threadId).not.toBe(threadId);
		expect(trained.trainExamples).toBeGreaterThanOrEqual(MIN_TRAIN_EXAMPLES);
		expect(trained.candidate).toBeInstanceOf(TfPredictor);
		expect(trained.candidate.manifest).toMatchObject({ name: 'live', version: 2, training: { examples: trained.trainExamples, epochs: 3 } });
		expect(path.dirname(trained.stagedDir)).toBe(dir);
		trained.candidate.dispose();

		expect(await trainer.settle(trained.stagedDir, true, 2)).toBe(`${modelDir}-v2`);
		(await TfPredictor.load(`${modelDir}-v2`)).dispose();
		// The same version kept again never overwrites the first.
		const again = await trainer.train(job(80));
		again.candidate.dispose();
		const second = await trainer.settle(again.stagedDir, true, 2);
		expect(second).toMatch(new RegExp(`^${modelDir}-v2-\\d{4}-`));
		expect((await readdir(dir)).sort()).toEqual(['default-v2', path.basename(second!)].sort());
	}, 60_000);

	test('a rejected candidate leaves nothing behind', async () => {
		const trainer = new ThreadTrainer({ modelDir: path.join(dir, 'default') });
		const trained = await trainer.train(job(80));
		trained.candidate.dispose();
		expect(await trainer.settle(trained.stagedDir, false, 2)).toBeUndefined();
		expect(await readdir(dir)).toEqual([]);
	}, 60_000);

	test('too little history is reported as such, a stuck thread is terminated with a clear error; neither leaves files', async () => {
		const trainer = new ThreadTrainer({ modelDir: path.join(dir, 'default') });
		await expect(trainer.train(job(25))).rejects.toBeInstanceOf(TooLittleDataError);
		await expect(new ThreadTrainer({ modelDir: path.join(dir, 'default'), timeoutMs: 50 }).train(job(80))).rejects.toThrow(
			'training thread still running after 50 ms; terminated',
		);
		expect(await readdir(dir)).toEqual([]);
	}, 60_000);
});
