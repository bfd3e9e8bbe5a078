import pino from 'pino';
import { deriveEvents, type WorkerTimeline } from '../../plugin/predict/dataset';
import type { ReplaceDecision } from '../../plugin/predict/engine';
import {
	clipTimeline,
	heldOutExamples,
	MIN_HELD_OUT_EXAMPLES,
	Retrainer,
	retrainWindow,
	TooLittleDataError,
	trainingExamples,
	type RetrainDeps,
	type TrainedCandidate,
	type TrainJob,
} from '../../plugin/predict/retrainer';
import { HORIZONS_S, type TrainingExample } from '../../plugin/predict/types';
import { syntheticTimelines } from './synthetic';

const MAX_H_MS = HORIZONS_S[HORIZONS_S.length - 1]! * 1000;
const EXAMPLES = { strideS: 1, historyS: 10 };

/** Synthetic live history: 2 workers, 1 Hz, `steps` + 30 s long; its end is "now". */
function liveHistory(steps: number): { timelines: WorkerTimeline[]; now: number } {
	const timelines = syntheticTimelines(7, { workers: 2, steps });
	const now = Math.max(...timelines.flatMap((t) => t.samples.map((s) => s.ts)));
	return { timelines, now };
}

describe('time split of live history', () => {
	const { timelines, now } = liveHistory(150);
	const window = retrainWindow(now, 10 * 60_000, 20_000);
	const train = trainingExamples(timelines, window, EXAMPLES);
	const held = heldOutExamples(timelines, window, EXAMPLES);

	test('held-out instants are the most recent ones whose every horizon has happened', () => {
		expect(window.heldOutToMs).toBe(now - MAX_H_MS);
		expect(window.heldOutFromMs).toBe(now - MAX_H_MS - 20_000);
		// 21 instants per worker at 1 s stride, both ends included.
		expect(held).toHaveLength(2 * 21);
		for (const e of held) {
			expect(e.snapshot.now).toBeGreaterThanOrEqual(window.heldOutFromMs);
			expect(e.snapshot.now).toBeLessThanOrEqual(window.heldOutToMs);
		}
	});

	test('a large held-out window is thinned evenly, keeping every worker', () => {
		const thinned = heldOutExamples(timelines, window, EXAMPLES, 10);
		expect(thinned).toHaveLength(10);
		expect(new Set(thinned.map((e) => e.snapshot.workerId)).size).toBe(2);
		expect(thinned.every((e) => held.includes(e) || held.some((h) => h.snapshot.workerId === e.snapshot.workerId && h.snapshot.now === e.snapshot.now))).toBe(true);
	});

	test('training examples are thinned evenly too', () => {
		const thinned = trainingExamples(timelines, window, EXAMPLES, 25);
		expect(thinned).toHaveLength(25);
		expect(new Set(thinned.map((e) => e.snapshot.workerId)).size).toBe(2);
		expect(thinned.every((e) => train.some((x) => x.snapshot.workerId === e.snapshot.workerId && x.snapshot.now === e.snapshot.now))).toBe(true);
	});

	test('no training target or input was measured at or after the first held-out instant', () => {
		expect(train.length).toBeGreaterThan(50);
		for (const e of train) {
			expect(e.snapshot.now + MAX_H_MS).toBeLessThan(window.trainBeforeMs);
			expect(e.snapshot.samples.every((s) => s.ts < window.trainBeforeMs)).toBe(true);
		}
		const heldInstants = new Set(held.map((e) => `${e.snapshot.workerId}@${e.snapshot.now}`));
		expect(train.some((e) => heldInstants.has(`${e.snapshot.workerId}@${e.snapshot.now}`))).toBe(false);
		// Held-out targets are the recorded samples (nothing was cut from the end).
		const w0 = timelines[0]!;
		const e = held.find((x) => x.snapshot.workerId === w0.workerId)!;
		expect(e.targets[30].cpuPct).toBe(w0.samples.find((s) => s.ts === e.snapshot.now + MAX_H_MS)!.cpuPct);
	});

	test('stream ages survive the cut: joins are derived from the whole timeline', () => {
		const withoutEvents = { ...timelines[0]!, events: undefined };
		const clipped = clipTimeline(withoutEvents, window.heldOutFromMs - 5000, Number.POSITIVE_INFINITY);
		const firstProfile = Math.min(...withoutEvents.profiles.map((p) => p.ts));
		// Streams present from the start and still there after the cut joined before it: no join inside.
		const fromStart = new Set(withoutEvents.profiles.filter((p) => p.ts === firstProfile).map((p) => p.streamId));
		const survivors = new Set(clipped.profiles.filter((p) => fromStart.has(p.streamId)).map((p) => p.streamId));
		expect(survivors.size).toBeGreaterThan(0);
		expect(clipped.events!.some((ev) => survivors.has(ev.streamId) && ev.type === 'join')).toBe(false);
		// Cutting the timeline first would have made them join at the cut.
		const naive = deriveEvents(clipped.profiles, 3000);
		expect(naive.some((ev) => survivors.has(ev.streamId) && ev.type === 'join')).toBe(true);
		expect(clipped.samples.every((s) => s.ts >= window.heldOutFromMs - 5000)).toBe(true);
	});
});

interface FakeModel {
	name: string;
	score: number;
}

/** Deps whose replace() applies maybeReplace's rule to preset scores. */
function fakeDeps(timelines: WorkerTimeline[], now: number, candidateScore: number, deployedScore = 5) {
	const calls = { train: [] as TrainJob[], replace: [] as number[], settle: [] as [string, boolean, number][] };
	let clock = now;
	let serving: FakeModel = { name: 'tfjs:default@3', score: deployedScore };
	const deps: RetrainDeps<FakeModel> & { calls: typeof calls; serving: () => FakeModel; setNow(t: number): void } = {
		calls,
		serving: () => serving,
		setNow: (t) => (clock = t),
		history: (from, to) => Promise.resolve(timelines.map((t) => clipTimeline(t, from, to + 1))),
		deployed: () => ({ name: 'default', version: 3, architecture: { streamHidden: [16], workerHidden: [8], varianceWeight: 0.2 } }),
		train: (job): Promise<TrainedCandidate<FakeModel>> => {
			calls.train.push(job);
			return Promise.resolve({ candidate: { name: `tfjs:${job.name}@${job.version}`, score: candidateScore }, trainExamples: 99, trainMs: 12, threadId: 4, stagedDir: `/stage/${calls.train.length}` });
		},
		replace: (candidate, heldOut): ReplaceDecision => {
			calls.replace.push(heldOut.length);
			const replaced = heldOut.length > 0 && candidate.score < serving.score;
			const decision = { replaced, metric: 'mae_cpuPct_15s', deployed: { name: serving.name, score: serving.score }, candidate: { name: candidate.name, score: candidate.score }, examples: heldOut.length };
			if (replaced) serving = candidate;
			return decision;
		},
		settle: (dir, keep, version) => {
			calls.settle.push([dir, keep, version]);
			return Promise.resolve(keep ? `/models/default-v${version}` : undefined);
		},
		now: () => clock,
	};
	return deps;
}

const OPTIONS = { historyMs: 10 * 60_000, heldOutMs: 20_000, epochs: 3, minIntervalMs: 60_000, examples: EXAMPLES };

describe('Retrainer', () => {
	const { timelines, now } = liveHistory(150);

	test('a better candidate is deployed as the next version, trained on the older part only', async () => {
		const deps = fakeDeps(timelines, now, 2);
		const result = await new Retrainer(deps, OPTIONS).retrain();
		expect(result).toMatchObject({
			outcome: 'decided',
			trigger: 'manual',
			decision: { replaced: true, deployed: { name: 'tfjs:default@3', score: 5 }, candidate: { name: 'tfjs:default@4', score: 2 }, examples: 42 },
			trainExamples: 99,
			threadId: 4,
			savedTo: '/models/default-v4',
		});
		const job = deps.calls.train[0]!;
		expect(job.window).toEqual(retrainWindow(now, OPTIONS.historyMs, OPTIONS.heldOutMs));
		expect(job.architecture).toEqual({ streamHidden: [16], workerHidden: [8], varianceWeight: 0.2 });
		expect(job.epochs).toBe(3);
		expect(deps.calls.settle).toEqual([['/stage/1', true, 4]]);
		expect(deps.serving().name).toBe('tfjs:default@4');
	});

	test('a worse candidate is rejected, its staged files removed, the deployed model kept; both scores logged', async () => {
		const lines: string[] = [];
		const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
		const deps = fakeDeps(timelines, now, 8);
		const result = await new Retrainer(deps, OPTIONS, logger).retrain();
		expect(result).toMatchObject({ outcome: 'decided', decision: { replaced: false, deployed: { score: 5 }, candidate: { score: 8 } } });
		expect(result).not.toHaveProperty('savedTo');
		expect(deps.calls.settle).toEqual([['/stage/1', false, 4]]);
		expect(deps.serving().name).toBe('tfjs:default@3');
		const logged = lines.map((l) => JSON.parse(l) as { msg: string; decision?: ReplaceDecision }).find((l) => l.decision);
		expect(logged).toMatchObject({ msg: 'retrained model rejected; keeping the deployed one', decision: { deployed: { score: 5 }, candidate: { score: 8 } } });
	});

	test('too little recent history: nothing is trained', async () => {
		// 35 s: the held-out window ends 30 s back and has only ~5 instants per worker.
		const short = liveHistory(5);
		const deps = fakeDeps(short.timelines, short.now, 1);
		const result = await new Retrainer(deps, OPTIONS).retrain();
		expect(result).toMatchObject({ outcome: 'skipped', reason: 'too-little-data' });
		expect(result.outcome === 'skipped' && result.detail).toMatch(new RegExp(`need ${MIN_HELD_OUT_EXAMPLES}`));
		expect(deps.calls.train).toHaveLength(0);
		expect(deps.serving().name).toBe('tfjs:default@3');
	});

	test('too few training examples reported by the thread: skipped, not failed', async () => {
		const deps = fakeDeps(timelines, now, 1);
		deps.train = () => Promise.reject(new TooLittleDataError(3));
		const result = await new Retrainer(deps, OPTIONS).retrain();
		expect(result).toMatchObject({ outcome: 'skipped', reason: 'too-little-data', detail: expect.stringContaining('3 training examples') });
		expect(deps.calls.replace).toHaveLength(0);
	});

	test('a failing training thread is logged and keeps the serving model', async () => {
		const lines: string[] = [];
		const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
		const deps = fakeDeps(timelines, now, 1);
		deps.train = () => Promise.reject(new Error('training thread crashed: out of memory'));
		const result = await new Retrainer(deps, OPTIONS, logger).retrain();
		expect(result).toEqual({ outcome: 'failed', trigger: 'manual', error: 'training thread crashed: out of memory' });
		expect(deps.serving().name).toBe('tfjs:default@3');
		const errorLine = lines.map((l) => JSON.parse(l) as { level: number; msg: string; serving?: string }).find((l) => l.level === 50);
		expect(errorLine).toMatchObject({ msg: 'retraining failed; keeping the current model', serving: 'default' });
	});

	test('a deployed candidate whose files cannot be kept still serves; the failure is logged', async () => {
		const lines: string[] = [];
		const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
		const deps = fakeDeps(timelines, now, 1);
		deps.settle = () => Promise.reject(new Error('EROFS: read-only file system'));
		const result = await new Retrainer(deps, OPTIONS, logger).retrain();
		expect(result).toMatchObject({ outcome: 'decided', decision: { replaced: true } });
		expect(result).not.toHaveProperty('savedTo');
		expect(deps.serving().name).toBe('tfjs:default@4');
		expect(lines.some((l) => l.includes('retrained model files not kept') && l.includes('EROFS'))).toBe(true);
	});

	test('a decision that throws still removes the staged candidate', async () => {
		const deps = fakeDeps(timelines, now, 1);
		deps.replace = () => {
			throw new Error('scoring failed');
		};
		const result = await new Retrainer(deps, OPTIONS).retrain();
		expect(result).toMatchObject({ outcome: 'failed', error: 'scoring failed' });
		expect(deps.calls.settle).toEqual([['/stage/1', false, 4]]);
	});

	test('one at a time; automatic triggers wait the minimum interval, a manual call does not', async () => {
		const deps = fakeDeps(timelines, now, 9);
		// Short enough that the shifted clock's held-out window still lies in the recorded history.
		const options = { ...OPTIONS, minIntervalMs: 5000 };
		const retrainer = new Retrainer(deps, options);
		const first = retrainer.retrain('drift');
		expect(retrainer.busy).toBe(true);
		await expect(retrainer.retrain('manual')).resolves.toMatchObject({ outcome: 'skipped', reason: 'busy' });
		await expect(first).resolves.toMatchObject({ outcome: 'decided', trigger: 'drift' });
		expect(retrainer.busy).toBe(false);

		deps.setNow(now + options.minIntervalMs - 1);
		await expect(retrainer.retrain('period')).resolves.toMatchObject({ outcome: 'skipped', reason: 'too-soon' });
		await expect(retrainer.retrain('drift')).resolves.toMatchObject({ outcome: 'skipped', reason: 'too-soon' });
		await expect(retrainer.retrain('manual')).resolves.toMatchObject({ outcome: 'decided', trigger: 'manual' });
		deps.setNow(now + 2 * options.minIntervalMs);
		await expect(retrainer.retrain('period')).resolves.toMatchObject({ outcome: 'decided', trigger: 'period' });
		expect(deps.calls.train).toHaveLength(3);
	});
});

// Keeps the fixture honest: the held-out examples really are TrainingExamples of the live workers.
test('held-out examples carry the live workers and their session', () => {
	const { timelines, now } = liveHistory(60);
	const held: TrainingExample[] = heldOutExamples(timelines, retrainWindow(now, 600_000, 10_000), EXAMPLES);
	expect(new Set(held.map((e) => e.snapshot.workerId))).toEqual(new Set(timelines.map((t) => t.workerId)));
	expect(new Set(held.map((e) => e.sessionId))).toEqual(new Set(['session-7']));
});
