/**
 * The I/O of live retraining: history from the profile store, training in a
 * worker thread, and the model directories a candidate is staged in and kept in.
 */
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ProfileStore } from '../store/types';
import { timelinesByWorker, type WorkerTimeline } from './dataset';
import { TfPredictor } from './model';
import { TooLittleDataError, type TrainedCandidate, type TrainJob } from './retrainer';
import type { WorkerJob, WorkerReply } from './retrainer.worker';

/** Every worker's load and stream profiles in [fromMs, toMs], one timeline per worker. */
export async function storeTimelines(store: ProfileStore, fromMs: number, toMs: number): Promise<WorkerTimeline[]> {
	// What is still buffered for InfluxDB would be missing from the newest window.
	await store.flush(2000);
	const [samples, profiles] = await Promise.all([store.workerLoadHistory(fromMs, toMs), store.streamHistory(fromMs, toMs)]);
	return timelinesByWorker(samples, profiles, (workerId) => `live:${workerId}`);
}

export interface ThreadTrainerOptions {
	/** Where a deployed candidate is kept: next to it (same file system, so the final rename is atomic). */
	modelDir?: string;
	/** A training thread still running after this is terminated. Default 10 min. */
	timeoutMs?: number;
	/** Heap cap of the training thread. Default 1024 MiB. */
	maxHeapMb?: number;
}

/**
 * Running from TypeScript sources (tests, tsx) the entry is a .ts file that node cannot
 * load by itself: tsx's require hook is registered in the thread first. Built, it is .js.
 */
function workerEntry(): { code: string; eval: boolean } {
	const entry = path.join(__dirname, `retrainer.worker${path.extname(__filename)}`);
	if (entry.endsWith('.js')) return { code: entry, eval: false };
	return { code: `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nrequire(${JSON.stringify(entry)});`, eval: true };
}

/**
 * Trains one candidate in a worker thread: the timelines go in, the model files come
 * back through a staging directory (validated by TfPredictor.load like any model).
 */
export class ThreadTrainer {
	private worker: Worker | undefined;

	constructor(private readonly options: ThreadTrainerOptions = {}) {}

	async train(job: TrainJob): Promise<TrainedCandidate<TfPredictor>> {
		const stagedDir = await this.stagingDir();
		try {
			const reply = await this.runThread({ ...job, stagedDir });
			if (!reply.ok) throw reply.tooLittleData ? new TooLittleDataError(reply.trainExamples) : new Error(`training thread failed: ${reply.error}`);
			const candidate = await TfPredictor.load(stagedDir);
			return { candidate, trainExamples: reply.trainExamples, trainMs: reply.trainMs, threadId: reply.threadId, stagedDir };
		} catch (e) {
			await rm(stagedDir, { recursive: true, force: true });
			throw e;
		}
	}

	/**
	 * A deployed candidate becomes `<modelDir>-v<version>` next to the model directory (a
	 * timestamp is appended if that exists): the directory in use is never written to.
	 * Without a model directory, or when rejected, the staged files are removed.
	 */
	async settle(stagedDir: string, keep: boolean, version: number): Promise<string | undefined> {
		if (!keep || !this.options.modelDir) {
			await rm(stagedDir, { recursive: true, force: true });
			return undefined;
		}
		const base = path.resolve(this.options.modelDir);
		let target = `${base}-v${version}`;
		if (await exists(target)) target = `${target}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
		await rename(stagedDir, target);
		return target;
	}

	/** Stops a running training thread (detach). */
	async close(): Promise<void> {
		await this.worker?.terminate();
	}

	private async stagingDir(): Promise<string> {
		if (!this.options.modelDir) return mkdtemp(path.join(os.tmpdir(), 'foresight-retrain-'));
		const base = path.resolve(this.options.modelDir);
		return mkdtemp(path.join(path.dirname(base), `.${path.basename(base)}.staging-`));
	}

	private runThread(job: WorkerJob): Promise<WorkerReply> {
		const { code, eval: isEval } = workerEntry();
		const timeoutMs = this.options.timeoutMs ?? 600_000;
		return new Promise<WorkerReply>((resolve, reject) => {
			const worker = new Worker(code, {
				eval: isEval,
				workerData: job,
				resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb ?? 1024 },
				// The thread's tfjs and the app's stdout are not to be mixed.
				stdout: true,
				stderr: true,
			});
			// Drained, not shown: plugin code never prints, nor does its training thread.
			worker.stdout.resume();
			worker.stderr.resume();
			this.worker = worker;
			let settled = false;
			const finish = (f: () => void) => {
				if (settled) return;
				settled = true;
				clearTimeout(timer);
				this.worker = undefined;
				f();
			};
			const timer = setTimeout(() => {
				finish(() => reject(new Error(`training thread still running after ${timeoutMs} ms; terminated`)));
				void worker.terminate();
			}, timeoutMs);
			timer.unref();
			worker.once('message', (reply: WorkerReply) => {
				finish(() => resolve(reply));
				void worker.terminate();
			});
			worker.once('error', (e) => finish(() => reject(new Error(`training thread crashed: ${e.message}`))));
			worker.once('exit', (code) => finish(() => reject(new Error(`training thread exited with code ${code} before replying`))));
		});
	}
}

async function exists(p: string): Promise<boolean> {
	return stat(p).then(
		() => true,
		() => false,
	);
}
