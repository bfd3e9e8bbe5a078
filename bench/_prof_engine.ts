import { performance } from 'node:perf_hooks';
import { AnchoredPredictor } from '../plugin/predict/anchored';
import { PredictionEngine } from '../plugin/predict/engine';
import { KnnPredictor } from '../plugin/predict/knn';
import { audioRoom, rng, syntheticSession, videoRoom } from '../test/predict/synthetic';
import type { WorkerSnapshot } from '../plugin/predict/types';
function workload(): WorkerSnapshot[] {
	const random = rng(2024);
	const snapshots: WorkerSnapshot[] = [];
	const template = syntheticSession(77, { workers: 1, steps: 31 })[0]!.snapshot;
	let remaining = 1000;
	for (let w = 0; w < 16; w++) {
		const target = Math.round(remaining / (16 - w));
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
const snaps = workload();
console.log('events per worker', snaps[0]!.events.length, 'samples', snaps[0]!.samples.length);
const a = new AnchoredPredictor();
const e = new PredictionEngine({ primary: new AnchoredPredictor(), fallback: new KnnPredictor([]) });
const med = (f: () => void, n: number) => { for (let i = 0; i < 100; i++) f(); const w: number[] = []; for (let i = 0; i < n; i++) { const t = performance.now(); f(); w.push(performance.now() - t); } w.sort((x, y) => x - y); return `median ${w[n >> 1]!.toFixed(3)} p99 ${w[Math.floor(n * 0.99)]!.toFixed(3)}`; };
const n = Number(process.argv[2] ?? 300);
console.log('anchored', med(() => a.predict(snaps), n));
console.log('engine', med(() => e.predict(snaps), n));
