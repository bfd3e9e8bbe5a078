/**
 * Worker-thread entry of live retraining (started by retrainer.io.ts): builds the
 * training examples from the timelines it is given, trains with pure tfjs here, off
 * the SFU's event loop, and writes the candidate's files to the staging directory.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { trainingExamples, type TrainJob } from './retrainer';
import { DEFAULT_LEARNING_RATE, TrainingDivergedError, trainModel } from './train';

/** Retries of a diverged training, each with a third of the learning rate before. */
const DIVERGED_RETRIES = 2;

export interface WorkerJob extends TrainJob {
	stagedDir: string;
}

export type WorkerReply =
	| { ok: true; trainExamples: number; trainMs: number; threadId: number }
	| { ok: false; tooLittleData: boolean; trainExamples: number; error: string };

async function main(job: WorkerJob): Promise<WorkerReply> {
	const examples = trainingExamples(job.timelines, job.window, job.examples);
	if (examples.length < job.minTrainExamples) {
		return { ok: false, tooLittleData: true, trainExamples: examples.length, error: `${examples.length} training examples (need ${job.minTrainExamples})` };
	}
	const started = Date.now();
	// A step that blows up on a small live window is retried with a smaller learning rate
	// and another initialization; after the last attempt the error stands.
	let predictor: ReturnType<typeof trainModel>['predictor'] | undefined;
	for (let attempt = 0; predictor === undefined; attempt++) {
		try {
			predictor = trainModel(examples, {
				name: job.name,
				version: job.version,
				epochs: job.epochs,
				...(job.architecture ?? {}),
				learningRate: DEFAULT_LEARNING_RATE / 3 ** attempt,
				seed: 1 + attempt,
			}).predictor;
		} catch (error) {
			if (!(error instanceof TrainingDivergedError) || attempt >= DIVERGED_RETRIES) throw error;
		}
	}
	await predictor.save(job.stagedDir);
	predictor.dispose();
	return { ok: true, trainExamples: examples.length, trainMs: Date.now() - started, threadId };
}

if (parentPort) {
	const port = parentPort;
	main(workerData as WorkerJob).then(
		(reply) => port.postMessage(reply),
		(e: unknown) => port.postMessage({ ok: false, tooLittleData: false, trainExamples: 0, error: (e as Error).stack ?? String(e) } satisfies WorkerReply),
	);
}
