/**
 * One prediction for 16 workers carrying 1,000 streams (features → batched tensor
 * forward → per-stream attribution), median over many runs. The kNN (the
 * specification's predictor, the fallback) and last-value are measured in the same run
 * as baselines. Last line: {"median_ms": …} plus the other figures.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { LastValuePredictor } from '../plugin/predict/baselines';
import { KnnPredictor, type ObservedProfile } from '../plugin/predict/knn';
import { featureBatch } from '../plugin/predict/model';
import { loadTf } from '../plugin/predict/tf';
import { trainModel } from '../plugin/predict/train';
import { audioRoom, lawResources, rng, syntheticSession, videoRoom } from '../test/predict/synthetic';
import type { Predictor, WorkerSnapshot } from '../plugin/predict/types';

const WORKERS = 16;
const STREAMS = 1000;

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
}

function measure(label: string, runs: number, f: () => void): Timing {
	for (let i = 0; i < Math.min(20, runs); i++) f();
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
	const timing = { wallMs: median(wall), cpuMs: median(cpu) };
	const p90 = [...wall].sort((a, b) => a - b)[Math.floor(runs * 0.9)]!;
	process.stdout.write(`${label.padEnd(40)} median ${timing.wallMs.toFixed(3)} ms (cpu ${timing.cpuMs.toFixed(3)} ms)  p90 ${p90.toFixed(3)} ms  (${runs} runs)\n`);
	return timing;
}

function main(): void {
	const { tf, flavour } = loadTf();
	let wasm = 'not installed';
	try {
		require.resolve('@tensorflow/tfjs-backend-wasm');
		wasm = 'installed but not measured';
	} catch {
		// Measuring it needs the package: @tensorflow/tfjs-backend-wasm@4.22.0.
	}
	const snapshots = workload();
	const streamCount = snapshots.reduce((n, s) => n + s.streams.length, 0);
	process.stdout.write(`tfjs ${tf.version.tfjs} (${flavour}), backend ${tf.getBackend()}; wasm backend: ${wasm}\n`);
	process.stdout.write(`workload: ${snapshots.length} workers, ${streamCount} streams; load average ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores (shared machine: figures scale with it)\n`);

	const { predictor: model } = trainModel(syntheticSession(5, { workers: 2, steps: 40 }), { epochs: 1, name: 'bench' });
	const history: ObservedProfile[] = syntheticSession(6, { workers: 4, steps: 40, stride: 5 }).flatMap((e) =>
		e.snapshot.streams.map((profile) => ({ profile, usage: lawResources([profile]) })),
	);
	const knn = new KnnPredictor(history);
	const predictors: Array<[Predictor, number]> = [
		[model, 300],
		[knn, 10],
		[new LastValuePredictor(), 300],
	];
	const medians = new Map<string, Timing>();
	for (const [p, runs] of predictors) medians.set(p.name, measure(`${p.name}.predict(16 workers)`, runs, () => p.predict(snapshots)));
	const chosenPath = model.inference;
	model.inference = chosenPath === 'js' ? 'tensor' : 'js';
	const otherPathMs = measure(`  same model, ${model.inference} path`, 100, () => model.predict(snapshots));
	const otherPath = model.inference;
	model.inference = chosenPath;
	const features = measure('  of which: features only', 300, () => featureBatch(snapshots, model.manifest.streamNormalization, model.manifest.workerNormalization));
	const modelMs = medians.get(model.name)!.wallMs;
	const knnMs = medians.get(knn.name)!.wallMs;
	process.stdout.write(`kNN history: ${knn.historySize} observed profiles; model/kNN time ratio ${(modelMs / knnMs).toFixed(4)}\n`);
	process.stdout.write(
		`${JSON.stringify({
			median_ms: Number(modelMs.toFixed(3)),
			median_cpu_ms: Number(medians.get(model.name)!.cpuMs.toFixed(3)),
			inference_path: chosenPath,
			[`${otherPath}_path_median_ms`]: Number(otherPathMs.wallMs.toFixed(3)),
			features_ms: Number(features.wallMs.toFixed(3)),
			knn_median_ms: Number(knnMs.toFixed(3)),
			last_value_median_ms: Number(medians.get('last-value')!.wallMs.toFixed(3)),
			ratio_vs_knn: Number((modelMs / knnMs).toFixed(4)),
			workers: snapshots.length,
			streams: streamCount,
			backend: tf.getBackend(),
			wasm,
			loadavg_1m: Number(os.loadavg()[0]!.toFixed(2)),
			cores: os.cpus().length,
		})}\n`,
	);
	model.dispose();
}

main();
