import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as mediasoup from 'mediasoup';
import pino from 'pino';
import { attach, type Foresight, type GuardSwitch, type WorkerPrediction } from '../../plugin';
import { LAST_VALUE_NAME } from '../../plugin/predict/engine';
import { outputIndex, TfPredictor } from '../../plugin/predict/model';
import { HORIZONS_S, TARGETS } from '../../plugin/predict/types';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';
import { videoRoom } from './synthetic';

const SHIPPED = path.join(__dirname, '..', '..', 'models', 'default');
const BIAS_PP = 20;
const SAMPLE_MS = 250;
const GUARD_HORIZON_MS = 15_000;
const SWITCH_AFTER_MS = 60_000;

/**
 * Copies the shipped model with its worker net's CPU base output raised by BIAS_PP at
 * every horizon (the last dense layer's bias, in target-scale units) and the manifest's
 * hash updated, so that it loads like any model file.
 */
async function biasedModel(dir: string): Promise<string> {
	const out = path.join(dir, 'biased');
	await cp(SHIPPED, out, { recursive: true });
	const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
		targetScale: Record<string, number>;
		files: { worker: { weights: string; weightsSha256: string } };
	};
	const topology = JSON.parse(await readFile(path.join(out, 'worker.model.json'), 'utf8')) as {
		weightsManifest: Array<{ weights: Array<{ name: string; shape: number[] }> }>;
	};
	const weights = topology.weightsManifest.flatMap((g) => g.weights);
	let offset = 0;
	for (const w of weights.slice(0, -1)) offset += w.shape.reduce((a, b) => a * b, 1);
	const last = weights.at(-1)!;
	expect(last.name).toMatch(/bias$/);
	const file = path.join(out, manifest.files.worker.weights);
	const bytes = await readFile(file);
	const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
	const cpu = TARGETS.indexOf('cpuPct');
	HORIZONS_S.forEach((_h, hi) => (floats[offset + outputIndex(hi, cpu)]! += BIAS_PP / manifest.targetScale.cpuPct!));
	await writeFile(file, bytes);
	manifest.files.worker.weightsSha256 = createHash('sha256').update(bytes).digest('hex');
	await writeFile(path.join(out, 'manifest.json'), JSON.stringify(manifest));
	return out;
}

describe('forecast guard on a real worker', () => {
	let dir: string;
	let foresight: Foresight | undefined;
	beforeAll(async () => {
		dir = await mkdtemp(path.join(os.tmpdir(), 'foresight-guard-it-'));
	});
	afterAll(async () => {
		await foresight?.detach();
		await rm(dir, { recursive: true, force: true });
	});

	test(`a model biased by +${BIAS_PP} pp is switched out for last value within ${SWITCH_AFTER_MS / 1000} s of its first matured forecast`, async () => {
		const modelDir = await biasedModel(dir);
		// The fixture is what it claims: the same snapshot, 20 pp more CPU at every horizon.
		const [shipped, biased] = await Promise.all([TfPredictor.load(SHIPPED), TfPredictor.load(modelDir)]);
		const snapshot = { workerId: 'w', now: 1e12, samples: [], streams: videoRoom('v', 3), events: [] };
		const [a, b] = [shipped.predict([snapshot])[0]!, biased.predict([snapshot])[0]!];
		for (const h of HORIZONS_S) expect(b.horizons[h].total.cpuPct.mean - a.horizons[h].total.cpuPct.mean).toBeCloseTo(BIAS_PP, 3);
		shipped.dispose();
		biased.dispose();

		const logLines: string[] = [];
		const logger = pino({ level: 'info' }, { write: (l: string) => logLines.push(l) });
		// The online correction would learn a constant offset away within ~20 samples; it is off
		// so that the guard, not the correction, has to deal with the bias.
		foresight = attach(mediasoup, {
			useEnv: false,
			logger,
			dryRun: true,
			modelDir,
			loadSampleIntervalMs: SAMPLE_MS,
			statsIntervalMs: 500,
			prediction: { biasAlpha: 0 },
			retraining: { enabled: false },
		});
		const switches: GuardSwitch[] = [];
		const served: Array<{ ts: number; p: WorkerPrediction }> = [];
		foresight.on('guard', (e) => switches.push(e));
		foresight.on('predictions', (ps) => {
			for (const p of ps) served.push({ ts: Date.now(), p });
		});
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const workerId = String(worker.pid);
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 60_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		try {
			await waitFor(() => foresight!.predictor.active.name === 'tfjs:default@4', 10_000, 'biased model loaded');
			await waitFor(() => served.some((s) => s.p.workerId === workerId && s.p.predictor === 'tfjs:default@4'), 10_000, 'first model forecast');
			const firstForecastTs = served.find((s) => s.p.workerId === workerId && s.p.predictor === 'tfjs:default@4')!.ts;
			await waitFor(() => switches.length > 0, GUARD_HORIZON_MS + SWITCH_AFTER_MS + 15_000, 'guard switch');
			const [event] = switches;
			expect(event).toMatchObject({ workerId, from: 'tfjs:default@4', to: LAST_VALUE_NAME, mode: 'last-value', horizonS: 15 });
			// It waited the full minute of evidence, and not much more: the first forecast can be
			// judged 15 s after it was made; a few samples of slack for minMatured and timer slip.
			expect(event!.heldMs).toBeGreaterThanOrEqual(SWITCH_AFTER_MS);
			expect(event!.ts - (firstForecastTs + GUARD_HORIZON_MS)).toBeLessThanOrEqual(SWITCH_AFTER_MS + 10 * SAMPLE_MS);
			expect(event!.errors.predictor! - event!.errors.lastValue!).toBeGreaterThan(BIAS_PP / 2);

			// Every later forecast of that worker is last value's, naming the guarded model.
			const switchedAt = Date.now();
			await waitFor(() => served.filter((s) => s.ts > switchedAt + 2 * SAMPLE_MS && s.p.workerId === workerId).length >= 4, 5000, 'forecasts after the switch');
			const after = served.filter((s) => s.ts > switchedAt && s.p.workerId === workerId).map((s) => s.p);
			for (const p of after) {
				expect(p.predictor).toBe(LAST_VALUE_NAME);
				expect(p.guardedPredictor).toBe('tfjs:default@4');
			}
			const latest = foresight.predictor.guardStatus().find((g) => g.workerId === workerId)!;
			expect(latest).toMatchObject({ mode: 'last-value', serving: LAST_VALUE_NAME, guarded: 'tfjs:default@4', horizonS: 15 });
			// Served level is the measured one, not the model's.
			const measured = foresight.predictions.find((p) => p.workerId === workerId)!;
			expect(measured.horizons[15].total.cpuPct.mean).toBeLessThan(BIAS_PP);
			expect(logLines.some((l) => l.includes('forecast guard: predictor worse than last value'))).toBe(true);
		} finally {
			send.sender.stop();
			recv.sink.close();
			worker.close();
		}
	}, 150_000);
});
