/**
 * One prediction for 16 workers carrying 1,000 streams (features → nets → per-stream
 * attribution), median over many runs. `median_ms` is the model's production path (the
 * default inference path of a loaded model: WebAssembly SIMD on the pure-JS tfjs build).
 * In the same run: the shipped model (models/default) on the same workload, the other
 * inference paths of the same model (plain JS, tfjs tensors on the cpu backend and, last,
 * on the tfjs wasm backend), the features alone, and the kNN (the specification's
 * predictor, the fallback) and last-value baselines, and the anchored predictor (what serves
 * without a model) alone and through the engine with its forecast guard. Every call gets the same snapshot
 * objects, but nothing in the predictors is keyed on them: each call recomputes features,
 * nets and attribution from scratch.
 * Last line: {"median_ms": …} plus the other figures.
 */
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AnchoredPredictor } from '../plugin/predict/anchored';
import { LastValuePredictor } from '../plugin/predict/baselines';
import { PredictionEngine } from '../plugin/predict/engine';
import { KnnPredictor, type ObservedProfile } from '../plugin/predict/knn';
import { featureBatch, TfPredictor, type InferencePath } from '../plugin/predict/model';
import { loadTf } from '../plugin/predict/tf';
import { trainModel } from '../plugin/predict/train';
import { audioRoom, lawResources, onPath, rng, syntheticSession, videoRoom } from '../test/predict/synthetic';
import type { Predictor, WorkerSnapshot } from '../plugin/predict/types';

const WORKERS = 16;
const STREAMS = 1000;
const SHIPPED_MODEL = path.resolve(__dirname, '../models/default');

function workload(): WorkerSnapshot[] {
	const random = rng(2024);
	const snapshots: WorkerSnapshot[] = [];
	const template = syntheticSession(77, { workers: 1, steps: 31 })[0]!.snapshot;
	let remaining = STREAMS;
	for (let w = 0; w < WORKERS; w++) {
		const target = Math.round(remaining / (WORKERS - w));
		const streams = [];
		let room = 0;
		while (streams.length < target) {
			const consumers = Math.min(target - streams.length - 1, 2 + Math.floor(random() * 10));
			streams.push(...(random() < 0.6 ? videoRoom : audioRoom)(`w${w}-r${room++}`, consumers, 1, `w${w}`));
		}
		remaining -= streams.length;
		snapshots.push({ ...template, workerId: `w${w}`, streams });
	}
	return snapshots;
}

function median(values: number[]): number {
	const s = [...values].sort((a, b) => a - b);
	const mid = s.length >> 1;
	return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Timing {
	wallMs: number;
	/** Process CPU time per run: on this shared 2-core machine wall time also counts waiting for a core. */
	cpuMs: number;
	p99Ms: number;
}

const round3 = (v: number): number => Number(v.toFixed(3));
const loadAverage = (): number => Number(os.loadavg()[0]!.toFixed(2));

function measure(label: string, runs: number, f: () => void): Timing {
	// Enough warm-up calls for V8 to optimize the JS and tier the wasm up.
	for (let i = 0; i < Math.min(100, runs); i++) f();
	const wall: number[] = [];
	const cpu: number[] = [];
	for (let i = 0; i < runs; i++) {
		const c = process.cpuUsage();
		const t = performance.now();
		f();
		wall.push(performance.now() - t);
		const used = process.cpuUsage(c);
		cpu.push((used.user + used.system) / 1000);
	}
	const sorted = [...wall].sort((a, b) => a - b);
	const p90 = sorted[Math.floor(runs * 0.9)]!;
	const timing = { wallMs: median(wall), cpuMs: median(cpu), p99Ms: sorted[Math.min(runs - 1, Math.floor(runs * 0.99))]! };
	process.stdout.write(
		`${label.padEnd(44)} median ${timing.wallMs.toFixed(3)} ms (cpu ${timing.cpuMs.toFixed(3)} ms)  p90 ${p90.toFixed(3)} ms  p99 ${timing.p99Ms.toFixed(3)} ms  (${runs} runs, load ${loadAverage()})\n`,
	);
	return timing;
}


/** The tfjs wasm backend, if installed; undefined (with the reason printed) otherwise. */
async function useWasmBackend(): Promise<boolean> {
	const { tf } = loadTf();
	try {
		require('@tensorflow/tfjs-backend-wasm');
		const ok = await tf.setBackend('wasm');
		await tf.ready();
		if (ok && tf.getBackend() === 'wasm') return true;
		process.stdout.write(`tfjs wasm backend: setBackend('wasm') failed, now on ${tf.getBackend()}\n`);
	} catch (e) {
		process.stdout.write(`tfjs wasm backend unavailable: ${(e as Error).message.split('\n')[0]}\n`);
	}
	return false;
}

async function main(): Promise<void> {
	const { tf, flavour } = loadTf();
	const snapshots = workload();
	const streamCount = snapshots.reduce((n, s) => n + s.streams.length, 0);
	const loadBefore = loadAverage();
	process.stdout.write(`tfjs ${tf.version.tfjs} (${flavour}), backend ${tf.getBackend()}\n`);
	process.stdout.write(`workload: ${snapshots.length} workers, ${streamCount} streams; load average ${loadBefore} on ${os.cpus().length} cores (shared machine: figures scale with it)\n`);

	const { predictor: model } = trainModel(syntheticSession(5, { workers: 2, steps: 40 }), { epochs: 1, name: 'bench' });
	const shipped = await TfPredictor.load(SHIPPED_MODEL);
	const history: ObservedProfile[] = syntheticSession(6, { workers: 4, steps: 40, stride: 5 }).flatMap((e) =>
		e.snapshot.streams.map((profile) => ({ profile, usage: lawResources([profile]) })),
	);
	const knn = new KnnPredictor(history);
	const lastValue = new LastValuePredictor();
	const production = model.inference;
	process.stdout.write(`production inference path: ${production}\n`);

	// Training just filled the heap and V8's background compilers are still busy: warm both
	// models up before timing anything, or whichever is timed first pays for it.
	for (let i = 0; i < 300; i++) {
		model.predict(snapshots);
		shipped.predict(snapshots);
	}
	const timed = (label: string, p: Predictor, runs: number): Timing => measure(label, runs, () => p.predict(snapshots));
	const modelMs = timed(`${model.name}.predict (${production})`, model, 500);
	const shippedMs = timed(`${shipped.name}.predict (${shipped.inference})`, shipped, 500);
	const knnMs = timed(`${knn.name}.predict`, knn, 10);
	const lastValueMs = timed(`${lastValue.name}.predict`, lastValue, 300);
	const anchoredMs = timed('anchored.predict (default without a model)', new AnchoredPredictor(), 300);
	const engine = new PredictionEngine({ primary: new AnchoredPredictor(), fallback: knn });
	const servedMs = measure('  engine: anchored + forecast guard', 300, () => engine.predict(snapshots));
	const otherPaths = (['js', 'tensor'] as const).filter((p) => p !== production);
	const pathMs = new Map<InferencePath, Timing>();
	for (const p of otherPaths) pathMs.set(p, onPath(model, p, () => timed(`  same model, ${p} path (${tf.getBackend()} backend)`, model, 100)));
	const features = measure('  of which: features only', 300, () => featureBatch(snapshots, model.manifest.streamNormalization, model.manifest.workerNormalization));

	// Last: switching the backend moves every tensor over to it.
	let wasmBackendMs: Timing | undefined;
	if (await useWasmBackend()) wasmBackendMs = onPath(model, 'tensor', () => timed('  same model, tensor path (tfjs wasm backend)', model, 100));

	process.stdout.write(`kNN history: ${knn.historySize} observed profiles; model/kNN time ratio ${(modelMs.wallMs / knnMs.wallMs).toFixed(4)}\n`);
	const pathFigures: Record<string, number> = {};
	for (const [p, t] of pathMs) pathFigures[`${p}_path_median_ms`] = round3(t.wallMs);
	process.stdout.write(
		`${JSON.stringify({
			median_ms: round3(modelMs.wallMs),
			median_cpu_ms: round3(modelMs.cpuMs),
			inference_path: production,
			shipped_model_median_ms: round3(shippedMs.wallMs),
			shipped_model_median_cpu_ms: round3(shippedMs.cpuMs),
			shipped_model: shipped.name,
			...pathFigures,
			tfjs_wasm_backend_tensor_median_ms: wasmBackendMs ? round3(wasmBackendMs.wallMs) : null,
			features_ms: round3(features.wallMs),
			knn_median_ms: round3(knnMs.wallMs),
			last_value_median_ms: round3(lastValueMs.wallMs),
			anchored_median_ms: round3(anchoredMs.wallMs),
			anchored_engine_median_ms: round3(servedMs.wallMs),
			anchored_engine_median_cpu_ms: round3(servedMs.cpuMs),
			anchored_engine_p99_ms: round3(servedMs.p99Ms),
			ratio_vs_knn: Number((modelMs.wallMs / knnMs.wallMs).toFixed(4)),
			ratio_vs_last_value: Number((modelMs.wallMs / lastValueMs.wallMs).toFixed(2)),
			workers: snapshots.length,
			streams: streamCount,
			loadavg_1m_before: loadBefore,
			loadavg_1m_after: loadAverage(),
			cores: os.cpus().length,
		})}\n`,
	);
	model.dispose();
	shipped.dispose();
}

main().catch((e: unknown) => {
	process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
	process.exit(1);
});
