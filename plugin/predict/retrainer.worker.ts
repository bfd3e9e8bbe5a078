/**
 * Worker-thread entry of live retraining (started by retrainer.io.ts): builds the
 * training examples from the timelines it is given, trains with pure tfjs here, off
 * the SFU's event loop, and writes the candidate's files to the staging directory.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { trainingExamples, type TrainJob } from './retrainer';
import { trainModel } from './train';

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
	const { predictor } = trainModel(examples, {
		name: job.name,
		version: job.version,
		epochs: job.epochs,
		...(job.architecture ?? {}),
	});
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
