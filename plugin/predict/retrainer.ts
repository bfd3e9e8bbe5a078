/**
 * Retraining from what a running Foresight observed: the orchestration and the
 * time split, kept apart from the store, the worker thread and the file system
 * (those are injected; see retrainer.io.ts) so the decision logic is unit-testable.
 */
import type { Logger } from '../log';
import { buildExamples, deriveEvents, type ExampleOptions, type WorkerTimeline } from './dataset';
import type { ReplaceDecision } from './engine';
import { HORIZONS_S, type TrainingExample } from './types';

const MAX_HORIZON_MS = HORIZONS_S[HORIZONS_S.length - 1]! * 1000;

/** Below these a score or a fit says more about noise than about the model. */
export const MIN_TRAIN_EXAMPLES = 20;
export const MIN_HELD_OUT_EXAMPLES = 10;
/**
 * engine.maybeReplace scores both predictors in one go on the event loop (0.2–0.8 ms per
 * example and predictor measured on this loaded 2-core host): beyond this the held-out
 * window is thinned evenly (16 workers × 5 min at 1 Hz would be ≈4,800), keeping the
 * stall to a few hundred ms once per retraining.
 */
export const MAX_HELD_OUT_EXAMPLES = 300;
/**
 * Bounds a training's CPU: 20 epochs over 1,000 examples took ≈55 s of one core on this
 * 2-core host, so 2,000 is ≈2 min per retraining, at most one per minIntervalMs.
 */
export const MAX_TRAIN_EXAMPLES = 2000;

/** At most `max` of `items`, evenly spaced (they are in time order per worker). */
export function thinEvenly<T>(items: readonly T[], max: number): T[] {
	if (items.length <= max) return [...items];
	const step = items.length / max;
	return Array.from({ length: max }, (_, i) => items[Math.floor(i * step)]!);
}

export type RetrainTrigger = 'manual' | 'drift' | 'period';

export interface RetrainWindow {
	/** Oldest data used (ms since the epoch). */
	fromMs: number;
	/** Training data is every sample and profile strictly before this instant. */
	trainBeforeMs: number;
	/** Held-out examples are the instants in [heldOutFromMs, heldOutToMs]; their targets reach heldOutToMs + the longest horizon. */
	heldOutFromMs: number;
	heldOutToMs: number;
}

/**
 * Splits the recent past by time. The held-out instants are the latest ones whose
 * every horizon has already happened; the training data ends where they begin, so no
 * training target (at most now + 30 s of its own instant) was measured at or after a
 * held-out instant and none of the held-out actuals is seen in training.
 */
export function retrainWindow(nowMs: number, historyMs: number, heldOutMs: number): RetrainWindow {
	const heldOutToMs = nowMs - MAX_HORIZON_MS;
	const heldOutFromMs = heldOutToMs - heldOutMs;
	return { fromMs: nowMs - historyMs, trainBeforeMs: heldOutFromMs, heldOutFromMs, heldOutToMs };
}

/**
 * The part of a timeline within [fromMs, toMs). Joins and leaves are derived from the
 * whole timeline first (a stream's age must not restart at the cut), then cut too.
 */
export function clipTimeline(timeline: WorkerTimeline, fromMs: number, toMs: number, staleProfileMs = 3000): WorkerTimeline {
	const inside = (ts: number) => ts >= fromMs && ts < toMs;
	const events = timeline.events ?? deriveEvents(timeline.profiles, staleProfileMs);
	return {
		workerId: timeline.workerId,
		sessionId: timeline.sessionId,
		samples: timeline.samples.filter((s) => inside(s.ts)),
		profiles: timeline.profiles.filter((p) => inside(p.ts)),
		events: events.filter((e) => inside(e.ts)),
	};
}

/** Training examples: every instant whose targets all lie before the held-out window. */
export function trainingExamples(
	timelines: readonly WorkerTimeline[],
	window: RetrainWindow,
	options: ExampleOptions,
	maxExamples = MAX_TRAIN_EXAMPLES,
): TrainingExample[] {
	return thinEvenly(
		timelines.flatMap((t) => buildExamples(clipTimeline(t, window.fromMs, window.trainBeforeMs, options.staleProfileMs), options)),
		maxExamples,
	);
}

/**
 * Held-out examples: the instants of the held-out window, with the input history
 * before them (inputs from before the window are what a live prediction sees too).
 */
export function heldOutExamples(
	timelines: readonly WorkerTimeline[],
	window: RetrainWindow,
	options: ExampleOptions,
	maxExamples = MAX_HELD_OUT_EXAMPLES,
): TrainingExample[] {
	const lookBackMs = Math.max((options.historyS ?? 30) * 1000, (options.eventsS ?? 60) * 1000, options.staleProfileMs ?? 3000);
	const all = timelines.flatMap((t) =>
		buildExamples(clipTimeline(t, window.heldOutFromMs - lookBackMs, Number.POSITIVE_INFINITY, options.staleProfileMs), options).filter(
			(e) => e.snapshot.now >= window.heldOutFromMs && e.snapshot.now <= window.heldOutToMs,
		),
	);
	return thinEvenly(all, maxExamples);
}

/** What a worker thread is asked to do: build its examples from the timelines and train. */
export interface TrainJob {
	timelines: WorkerTimeline[];
	window: RetrainWindow;
	examples: ExampleOptions;
	epochs: number;
	/** Name and version of the candidate's manifest. */
	name: string;
	version: number;
	/** The deployed model's, so a candidate is comparable and loads where it did. */
	architecture?: { streamHidden: number[]; workerHidden: number[]; varianceWeight: number };
	minTrainExamples: number;
}

export interface TrainedCandidate<M> {
	candidate: M;
	trainExamples: number;
	/** Wall time of the worker thread's training, ms. */
	trainMs: number;
	/** The worker thread it ran in (never 0, the main thread). */
	threadId: number;
	/** Where its files are staged until the decision. */
	stagedDir: string;
}

/** Training found fewer examples than a fit needs. */
export class TooLittleDataError extends Error {
	constructor(readonly trainExamples: number) {
		super(`${trainExamples} training examples (need ${MIN_TRAIN_EXAMPLES})`);
		this.name = 'TooLittleDataError';
	}
}

export interface RetrainDeps<M> {
	/** Every worker's recorded load and profiles between the two instants. */
	history(fromMs: number, toMs: number): Promise<WorkerTimeline[]>;
	/** Name, version and architecture of the deployed model (kNN: none). */
	deployed(): { name: string; version: number; architecture?: TrainJob['architecture'] };
	/** Trains off the event loop; rejects with TooLittleDataError when there is nothing to fit. */
	train(job: TrainJob): Promise<TrainedCandidate<M>>;
	/** engine.maybeReplace: swaps in the candidate only if it scores better. */
	replace(candidate: M, heldOut: readonly TrainingExample[]): ReplaceDecision;
	/** Keeps the staged files as a new model version (returns where) or removes them. */
	settle(stagedDir: string, keep: boolean, version: number): Promise<string | undefined>;
	now(): number;
}

export interface RetrainerOptions {
	historyMs: number;
	heldOutMs: number;
	epochs: number;
	/** Automatic triggers (drift, period) wait at least this long after a training. */
	minIntervalMs: number;
	examples: ExampleOptions;
}

export type RetrainResult =
	| { outcome: 'skipped'; trigger: RetrainTrigger; reason: 'busy' | 'too-soon' | 'too-little-data'; detail: string }
	| { outcome: 'failed'; trigger: RetrainTrigger; error: string }
	| {
			outcome: 'decided';
			trigger: RetrainTrigger;
			/** Both scores on the held-out window, and whether the candidate now serves. */
			decision: ReplaceDecision;
			trainExamples: number;
			trainMs: number;
			threadId: number;
			/** Directory of the new model version, when one was deployed and a model directory is configured. */
			savedTo?: string;
	  };

/**
 * One retraining at a time. Automatic triggers respect the minimum interval after the
 * last training (training costs CPU next to the SFU); a manual call is the operator's
 * decision and only waits for a running one. Any failure leaves the serving model as is.
 */
export class Retrainer<M> {
	private running: Promise<RetrainResult> | undefined;
	private lastTrainingAt = Number.NEGATIVE_INFINITY;

	constructor(
		private readonly deps: RetrainDeps<M>,
		private readonly options: RetrainerOptions,
		private readonly logger?: Logger,
	) {}

	get busy(): boolean {
		return this.running !== undefined;
	}

	retrain(trigger: RetrainTrigger = 'manual'): Promise<RetrainResult> {
		const now = this.deps.now();
		if (this.running) return Promise.resolve(this.skip(trigger, 'busy', 'a retraining is already running'));
		if (trigger !== 'manual' && now - this.lastTrainingAt < this.options.minIntervalMs) {
			return Promise.resolve(this.skip(trigger, 'too-soon', `last training ${now - this.lastTrainingAt} ms ago (minimum ${this.options.minIntervalMs} ms)`));
		}
		const run = this.run(trigger, now).finally(() => (this.running = undefined));
		this.running = run;
		return run;
	}

	private async run(trigger: RetrainTrigger, now: number): Promise<RetrainResult> {
		const window = retrainWindow(now, this.options.historyMs, this.options.heldOutMs);
		let staged: { dir: string; version: number } | undefined;
		try {
			const timelines = await this.deps.history(window.fromMs, now);
			const heldOut = heldOutExamples(timelines, window, this.options.examples);
			if (heldOut.length < MIN_HELD_OUT_EXAMPLES) {
				return this.skip(trigger, 'too-little-data', `${heldOut.length} held-out examples (need ${MIN_HELD_OUT_EXAMPLES})`);
			}
			const deployed = this.deps.deployed();
			const version = deployed.version + 1;
			this.lastTrainingAt = now;
			const trained = await this.deps.train({
				timelines,
				window,
				examples: this.options.examples,
				epochs: this.options.epochs,
				name: deployed.name,
				version,
				...(deployed.architecture ? { architecture: deployed.architecture } : {}),
				minTrainExamples: MIN_TRAIN_EXAMPLES,
			});
			staged = { dir: trained.stagedDir, version };
			const decision = this.deps.replace(trained.candidate, heldOut);
			staged = undefined;
			// The decision stands either way: a candidate that won serves even if its files cannot be kept.
			const savedTo = await this.deps.settle(trained.stagedDir, decision.replaced, version).catch((err: unknown) => {
				this.logger?.error({ err, stagedDir: trained.stagedDir, replaced: decision.replaced }, 'retrained model files not kept');
				return undefined;
			});
			const result: RetrainResult = {
				outcome: 'decided',
				trigger,
				decision,
				trainExamples: trained.trainExamples,
				trainMs: trained.trainMs,
				threadId: trained.threadId,
				...(savedTo !== undefined ? { savedTo } : {}),
			};
			this.logger?.info({ ...result, window }, decision.replaced ? 'retrained model deployed' : 'retrained model rejected; keeping the deployed one');
			return result;
		} catch (e) {
			if (e instanceof TooLittleDataError) return this.skip(trigger, 'too-little-data', e.message);
			const error = (e as Error).message ?? String(e);
			this.logger?.error({ trigger, err: e, serving: this.deps.deployed().name }, 'retraining failed; keeping the current model');
			return { outcome: 'failed', trigger, error };
		} finally {
			if (staged) await this.deps.settle(staged.dir, false, staged.version).catch(() => undefined);
		}
	}

	private skip(trigger: RetrainTrigger, reason: 'busy' | 'too-soon' | 'too-little-data', detail: string): RetrainResult {
		this.logger?.info({ trigger, reason, detail }, 'retraining skipped');
		return { outcome: 'skipped', trigger, reason, detail };
	}
}
