import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import * as mediasoup from 'mediasoup';
import pino from 'pino';
import { attach, type Foresight } from '../../plugin';
import { buildExamples } from '../../plugin/predict/dataset';
import { TfPredictor } from '../../plugin/predict/model';
import { MIN_HELD_OUT_EXAMPLES, MIN_TRAIN_EXAMPLES } from '../../plugin/predict/retrainer';
import { storeTimelines } from '../../plugin/predict/retrainer.io';
import { trainModel } from '../../plugin/predict/train';
import { HORIZONS_S, TARGETS, type TrainingExample } from '../../plugin/predict/types';
import { MemoryStore } from '../../plugin/store/memoryStore';
import type { ProfileStore } from '../../plugin/store/types';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';

const RETRAINING = { enabled: false, epochs: 5, strideMs: 200, inputHistoryMs: 1000, heldOutMs: 4000, historyMs: 300_000, minIntervalMs: 0 };
const MAX_H_MS = HORIZONS_S[HORIZONS_S.length - 1]! * 1000;
/** Recorded span the first full retraining needs: input history, the training instants and their 30 s targets, the held-out instants and theirs. */
const NEEDED_MS = RETRAINING.inputHistoryMs + MAX_H_MS + (MIN_TRAIN_EXAMPLES + 5) * RETRAINING.strideMs + RETRAINING.heldOutMs + MAX_H_MS + 1000;

/**
 * A real MemoryStore whose writes can be stopped, so that what the test trains its
 * reference model on is exactly what retrain() reads afterwards.
 */
function freezableStore(): { store: ProfileStore; freeze(): void } {
	const inner = new MemoryStore();
	let frozen = false;
	const store: ProfileStore = {
		writeStreamProfiles: (p) => (frozen ? Promise.resolve() : inner.writeStreamProfiles(p)),
		writeConnectionProfiles: (p) => (frozen ? Promise.resolve() : inner.writeConnectionProfiles(p)),
		writeWorkerLoad: (s) => (frozen ? Promise.resolve() : inner.writeWorkerLoad(s)),
		writeAction: (a) => inner.writeAction(a),
		latestStreamProfiles: (q) => inner.latestStreamProfiles(q),
		workerLoadHistory: (from, to, w) => inner.workerLoadHistory(from, to, w),
		streamHistory: (from, to, w) => inner.streamHistory(from, to, w),
		connectionHistory: (from, to, w) => inner.connectionHistory(from, to, w),
		actionHistory: (from, to) => inner.actionHistory(from, to),
		similarityCandidates: (q) => inner.similarityCandidates(q),
		flush: () => inner.flush(),
		stats: () => inner.stats(),
		close: () => inner.close(),
	};
	return { store, freeze: () => (frozen = true) };
}

/** Live examples (built as retrain() builds them) whose instant is at or after `sinceMs`. */
async function liveExamples(store: ProfileStore, sinceMs: number): Promise<TrainingExample[]> {
	const timelines = await storeTimelines(store, 0, Date.now());
	return timelines
		.flatMap((t) => buildExamples(t, { strideS: RETRAINING.strideMs / 1000, historyS: RETRAINING.inputHistoryMs / 1000 }))
		.filter((e) => e.snapshot.now >= sinceMs);
}

/** Everything but Date keeps running for real. */
const REAL_TIMERS = [
	'hrtime',
	'nextTick',
	'performance',
	'queueMicrotask',
	'setImmediate',
	'clearImmediate',
	'setInterval',
	'clearInterval',
	'setTimeout',
	'clearTimeout',
] as const;

/** Small and quick (it runs on the test's event loop, where it would also stall load sampling). */
const QUICK_FIT = { batchSize: 64, learningRate: 0.03, streamHidden: [16], workerHidden: [16] };

describe('Foresight.retrain() on a real worker', () => {
	let dir: string;
	let foresight: Foresight;
	const logLines: string[] = [];

	beforeAll(async () => {
		dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-retrain-it-'));
	});
	afterAll(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	test('too little data keeps the kNN; a candidate trained in a worker thread replaces a poor model and is saved as a new version; a worse one is rejected', async () => {
		const modelDir = path.join(dir, 'live');
		const { store, freeze } = freezableStore();
		const logger = pino({ level: 'info' }, { write: (l: string) => logLines.push(l) });
		foresight = attach(mediasoup, { useEnv: false, logger, store, loadSampleIntervalMs: 100, statsIntervalMs: 200, modelDir, retraining: RETRAINING });
		// Load samples, hence history, start with the worker.
		const started = Date.now();
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 40_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		let second: Awaited<ReturnType<typeof startSendingPeer>> | undefined;
		let fanOut: Awaited<ReturnType<typeof startReceivingPeer>>[] = [];
		try {
			// The model directory does not exist yet: the kNN serves.
			await waitFor(() => foresight.predictor.usingFallback && logLines.some((l) => l.includes('prediction model unusable')), 5000, 'model load attempt');
			const early = await foresight.retrain();
			expect(early).toMatchObject({ outcome: 'skipped', trigger: 'manual', reason: 'too-little-data' });
			expect(foresight.predictor.usingFallback).toBe(true);

			// Load changes halfway: a second sender with three receivers joins.
			await new Promise((r) => setTimeout(r, NEEDED_MS / 2));
			second = await startSendingPeer(router, 50_000);
			fanOut = await Promise.all([0, 1, 2].map(() => startReceivingPeer(router, [second!.video, second!.audio])));
			await new Promise((r) => setTimeout(r, Math.max(0, started + NEEDED_MS - Date.now())));

			// A poor deployed model: trained on the live examples with CPU targets ten times too high.
			const poorExamples = (await liveExamples(store, Date.now() - MAX_H_MS - 10_000)).map((e) => {
				const targets = { ...e.targets };
				for (const h of HORIZONS_S) targets[h] = { ...targets[h], cpuPct: targets[h].cpuPct * 10 };
				return { ...e, targets };
			});
			const poor = trainModel(poorExamples, { ...QUICK_FIT, name: 'live', version: 1, epochs: 2 }).predictor;
			await poor.save(modelDir);
			const deployedManifest = await readFile(path.join(modelDir, 'manifest.json'), 'utf8');
			expect(await foresight.predictor.loadModel(modelDir)).toEqual({ ok: true, name: 'tfjs:live@1' });
			poor.dispose();

			const lag = monitorEventLoopDelay({ resolution: 10 });
			lag.enable();
			const better = await foresight.retrain();
			lag.disable();
			if (better.outcome !== 'decided') throw new Error(`expected a decision, got ${JSON.stringify(better)}`);
			expect(better.threadId).toBeGreaterThan(0);
			expect(better.threadId).not.toBe(threadId);
			expect(better.trainExamples).toBeGreaterThanOrEqual(MIN_TRAIN_EXAMPLES);
			expect(better.decision.examples).toBeGreaterThanOrEqual(MIN_HELD_OUT_EXAMPLES);
			expect(better.decision).toMatchObject({ replaced: true, metric: 'mae_cpuPct_15s', deployed: { name: 'tfjs:live@1' }, candidate: { name: 'tfjs:live@2' } });
			expect(better.decision.candidate.score).toBeLessThan(better.decision.deployed.score);
			expect(foresight.predictor.active.name).toBe('tfjs:live@2');
			// Saved as a new version next to the deployed directory, whose files are untouched.
			expect(better.savedTo).toBe(`${modelDir}-v2`);
			const reloaded = await TfPredictor.load(better.savedTo!);
			expect(reloaded.manifest).toMatchObject({ name: 'live', version: 2, training: { examples: better.trainExamples, epochs: RETRAINING.epochs } });
			reloaded.dispose();
			expect(await readFile(path.join(modelDir, 'manifest.json'), 'utf8')).toBe(deployedManifest);
			// The served candidate predicts the live worker.
			const [prediction] = foresight.predictNow();
			expect(prediction?.predictor).toBe('tfjs:live@2');
			for (const t of TARGETS) expect(Number.isFinite(prediction!.horizons[15].total[t].mean)).toBe(true);
			console.info(
				JSON.stringify({
					retrain_ms_in_thread: better.trainMs,
					train_examples: better.trainExamples,
					held_out_examples: better.decision.examples,
					event_loop_delay_max_ms: Math.round(lag.max / 1e6),
					deployed_mae: better.decision.deployed.score,
					candidate_mae: better.decision.candidate.score,
				}),
			);

			// A deployed model fitted on everything retrain() is about to read, held-out window
			// included, is better than any candidate that must not see that window.
			// The store stops and the wall clock (Date only; timers run) is pinned there, so the
			// next retrain()'s held-out window, [frozenAt − 30 s − heldOutMs, frozenAt − 30 s], is
			// inside what the reference model is fitted on however long fitting takes.
			freeze();
			const frozenAt = Date.now();
			jest.useFakeTimers({ now: frozenAt, doNotFake: [...REAL_TIMERS] });
			const oracleExamples = await liveExamples(store, frozenAt - MAX_H_MS - RETRAINING.heldOutMs - 1000);
			const oracle = trainModel(oracleExamples, { ...QUICK_FIT, name: 'oracle', version: 9, epochs: 100 }).predictor;
			foresight.predictor.setModel(oracle);
			const worse = await foresight.retrain();
			if (worse.outcome !== 'decided') throw new Error(`expected a decision, got ${JSON.stringify(worse)}`);
			expect(worse.decision).toMatchObject({ replaced: false, deployed: { name: 'tfjs:oracle@9' }, candidate: { name: 'tfjs:oracle@10' } });
			expect(worse.decision.candidate.score).toBeGreaterThan(worse.decision.deployed.score);
			expect(worse).not.toHaveProperty('savedTo');
			expect(foresight.predictor.active).toBe(oracle);
			// Nothing staged is left behind, nothing new is kept.
			expect((await readdir(dir)).sort()).toEqual(['live', 'live-v2']);
			const logged = logLines.map((l) => JSON.parse(l) as { msg: string; decision?: { deployed: { score: number }; candidate: { score: number } } });
			expect(logged.filter((l) => l.msg === 'retrained model rejected; keeping the deployed one').map((l) => l.decision)).toEqual([
				{ ...worse.decision },
			]);
		} finally {
			jest.useRealTimers();
			for (const r of [recv, ...fanOut]) r.sink.close();
			send.sender.stop();
			second?.sender.stop();
			worker.close();
			await foresight.detach();
		}
	}, 180_000);
});
