import path from 'node:path';
import { FeatureBuffers, featureBatch, TfPredictor, type InferencePath } from '../../plugin/predict/model';
import { DenseKernel, wasmSimdSupported, type DenseWeights } from '../../plugin/predict/kernel';
import { softplus } from '../../plugin/predict/softplus';
import { HORIZONS_S, TARGETS, type WorkerPrediction, type WorkerSnapshot } from '../../plugin/predict/types';
import { Rng } from '../../plugin/util/rng';
import { audioRoom, onPath, rng, syntheticSession, videoRoom } from './synthetic';

/**
 * The fast inference path (WebAssembly SIMD nets with softplus, flat per-stream costs)
 * against the plain-JS loop it replaces and against the tfjs tensor path, on the model
 * shipped in models/default (trained on recorded sessions on this machine).
 */

const SHIPPED_MODEL = path.resolve(__dirname, '../../models/default');

/** Workers carrying many rooms, the shape of the inference benchmark. */
function busyWorkers(workers: number, streamsPerWorker: number, seed: number): WorkerSnapshot[] {
	const random = rng(seed);
	const template = syntheticSession(seed, { workers: 1, steps: 31 })[0]!.snapshot;
	return Array.from({ length: workers }, (_, w) => {
		const streams = [];
		let room = 0;
		while (streams.length < streamsPerWorker) {
			const consumers = Math.min(streamsPerWorker - streams.length - 1, 2 + Math.floor(random() * 10));
			streams.push(...(random() < 0.6 ? videoRoom : audioRoom)(`w${w}-r${room++}`, Math.max(0, consumers), 1, `w${w}`));
		}
		return { ...template, workerId: `w${w}`, streams };
	});
}


/** Every number of two predictions, side by side, with where it sits. */
function numbers(a: WorkerPrediction, b: WorkerPrediction): Array<[string, number, number]> {
	const out: Array<[string, number, number]> = [];
	for (const h of HORIZONS_S) {
		for (const t of TARGETS) {
			out.push([`${h}.base.${t}`, a.horizons[h].base[t], b.horizons[h].base[t]]);
			out.push([`${h}.total.${t}.mean`, a.horizons[h].total[t].mean, b.horizons[h].total[t].mean]);
			out.push([`${h}.total.${t}.p95`, a.horizons[h].total[t].p95, b.horizons[h].total[t].p95]);
			a.streams.forEach((s, i) => out.push([`${s.streamId}.${h}.${t}`, s.cost[h][t], b.streams[i]!.cost[h][t]]));
		}
	}
	return out;
}

const relativeError = (a: number, b: number): number => Math.abs(a - b) / Math.max(1, Math.abs(b));

describe('softplus', () => {
	const reference = (v: number): number => (v > 20 ? v : Math.log1p(Math.exp(v)));

	test('matches log1p(exp(v)) to 1e-12 relative over the range the nets produce and beyond', () => {
		const random = new Rng(11);
		for (let i = 0; i < 20_000; i++) {
			const v = i % 2 ? random.uniform(-60, 40) : random.uniform(-1, 1) * 10 ** random.uniform(-12, 1);
			const want = reference(v);
			expect(Math.abs(softplus(v) - want)).toBeLessThanOrEqual(1e-12 * want);
		}
	});

	test('edge values', () => {
		for (const v of [0, -0, 20, 20.000002, 36, -36, -36.5, -745, -800, Number.MAX_VALUE, -Number.MAX_VALUE]) {
			expect(Math.abs(softplus(v) - reference(v))).toBeLessThanOrEqual(1e-12 * Math.abs(reference(v)));
		}
		expect(softplus(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
		expect(softplus(Number.NEGATIVE_INFINITY)).toBe(0);
		expect(softplus(Number.NaN)).toBeNaN();
	});
});

describe('DenseKernel (WebAssembly SIMD)', () => {
	const simd = wasmSimdSupported();

	function randomStack(random: Rng, dims: number[]): DenseWeights[] {
		return dims.slice(1).map((outDim, i) => ({
			kernel: Float32Array.from({ length: dims[i]! * outDim }, () => random.uniform(-1, 1)),
			bias: Float32Array.from({ length: outDim }, () => random.uniform(-0.5, 0.5)),
			inDim: dims[i]!,
			outDim,
			relu: i < dims.length - 2,
		}));
	}

	/** The plain-JS arithmetic: float64 sums in input order, float32 activations. */
	function reference(stack: readonly DenseWeights[], input: Float32Array, rows: number, withSoftplus: boolean): Float32Array {
		let x = input;
		for (const l of stack) {
			const out = new Float32Array(rows * l.outDim);
			for (let r = 0; r < rows; r++) {
				for (let j = 0; j < l.outDim; j++) {
					let s = l.bias[j]!;
					for (let i = 0; i < l.inDim; i++) s += x[r * l.inDim + i]! * l.kernel[i * l.outDim + j]!;
					out[r * l.outDim + j] = l.relu && s < 0 ? 0 : s;
				}
			}
			x = out;
		}
		return withSoftplus ? x.map((v) => softplus(v)) : x;
	}

	/** The kernel's rows without their padding lanes. */
	function unpadded(out: Float32Array, rows: number, width: number, outDim: number): Float32Array {
		const result = new Float32Array(rows * outDim);
		for (let r = 0; r < rows; r++) result.set(out.subarray(r * width, r * width + outDim), r * outDim);
		return result;
	}

	test('this runtime compiles WebAssembly SIMD (else predictions silently take the slower js path)', () => {
		expect(simd).toBe(true);
	});

	const shapes: Array<[string, number[], boolean]> = [
		['stream-net shape 30→16→24', [30, 16, 24], false],
		['stream-net shape with softplus', [30, 16, 24], true],
		['odd widths and two hidden layers', [7, 5, 9, 3], false],
		['odd widths with softplus', [12, 8, 5], true],
		['a hidden layer wider than 127 vectors of locals', [10, 300, 6], true],
	];
	test.each(shapes)('%s: bit-identical to the plain-JS arithmetic', (_label, dims, withSoftplus) => {
		const random = new Rng(dims.reduce((a, b) => a * 31 + b, 7));
		const stack = randomStack(random, dims);
		const kernel = new DenseKernel(stack, { softplusOutput: withSoftplus });
		const outDim = dims[dims.length - 1]!;
		for (const rows of [0, 1, 37, 700]) {
			// 700 rows of the stream-net shape need more than the one page of memory the kernel starts with.
			const input = Float32Array.from({ length: rows * dims[0]! }, () => random.uniform(-4, 4));
			if (rows > 2) {
				input[0] = Number.NaN;
				input[dims[0]! + 1] = Number.POSITIVE_INFINITY;
			}
			const got = unpadded(kernel.run(input, rows), rows, kernel.outputWidth, outDim);
			expect(got).toEqual(reference(stack, input, rows, withSoftplus));
		}
	});

	test('softplus outputs follow log1p(exp(v)) through its regimes, exactly as the JS softplus rounds them', () => {
		// One identity layer, so the inputs are the softplus arguments.
		const kernel = new DenseKernel([{ kernel: Float32Array.of(1, 0), bias: Float32Array.of(0, 0), inDim: 1, outDim: 2, relu: false }], { softplusOutput: true });
		const args = [0, -0, 1e-30, -1e-30, 0.3466, -0.3466, 5, -5, 19.99, 20, 20.01, 1e6, -20, -36, -50, -103, -110, -1e6, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
		const out = kernel.run(Float32Array.from(args), args.length);
		args.forEach((v, i) => expect(out[i * kernel.outputWidth]).toBe(Math.fround(softplus(Math.fround(v)))));
	});
});

describe('fast inference path on the shipped model', () => {
	let model: TfPredictor;
	const snapshots = busyWorkers(6, 70, 41);
	beforeAll(async () => {
		model = await TfPredictor.load(SHIPPED_MODEL);
	});
	afterAll(() => model?.dispose());

	test('the pure-JS build picks the wasm path', () => {
		expect(model.inference).toBe('wasm');
	});

	test('wasm and plain-JS paths give identical predictions, worker and per stream', () => {
		const wasm = onPath(model, 'wasm', () => model.predict(snapshots));
		const js = onPath(model, 'js', () => model.predict(snapshots));
		expect(wasm).toEqual(js);
		const needs = (p: InferencePath) => onPath(model, p, () => model.predictResourceNeeds(videoRoom('v', 10)));
		expect(needs('wasm')).toEqual(needs('js'));
	});

	test('wasm path agrees with the tfjs tensor path to float32 accumulation error', () => {
		const wasm = onPath(model, 'wasm', () => model.predict(snapshots));
		const tensor = onPath(model, 'tensor', () => model.predict(snapshots));
		expect(wasm.map((p) => p.streams.map((s) => s.streamId))).toEqual(tensor.map((p) => p.streams.map((s) => s.streamId)));
		let worstStream = 0;
		let worstTotal = 0;
		wasm.forEach((p, w) => {
			for (const [where, a, b] of numbers(p, tensor[w]!)) {
				const e = relativeError(a, b);
				if (where.includes('.total.')) worstTotal = Math.max(worstTotal, e);
				else worstStream = Math.max(worstStream, e);
			}
		});
		// tfjs sums in float32, the fast path in float64: per-stream costs agree to ~1e-6;
		// worker totals (a base that partly cancels the streams' sum) to ~3e-5.
		expect(worstStream).toBeLessThan(1e-5);
		expect(worstTotal).toBeLessThan(1e-4);
		const needs = (p: InferencePath) => onPath(model, p, () => model.predictResourceNeeds(audioRoom('a', 4)));
		const [a, b] = [needs('wasm'), needs('tensor')];
		for (const h of HORIZONS_S) for (const t of TARGETS) expect(relativeError(a[h][t].mean, b[h][t].mean)).toBeLessThan(1e-5);
	});

	test('nothing carries over between calls: fresh profile objects and other workloads give the same answers', () => {
		const first = model.predict(snapshots);
		model.predict(busyWorkers(20, 90, 5));
		model.predict([]);
		const fresh = snapshots.map((s) => structuredClone(s));
		expect(model.predict(fresh)).toEqual(first);
	});

	test('featureBatch into reused buffers equals a freshly allocated batch, also after a larger one', () => {
		const { streamNormalization: sn, workerNormalization: wn } = model.manifest;
		const buffers = new FeatureBuffers();
		featureBatch(busyWorkers(8, 120, 9), sn, wn, undefined, buffers);
		const reused = featureBatch(snapshots, sn, wn, undefined, buffers);
		const fresh = featureBatch(snapshots, sn, wn);
		expect(reused).toEqual(fresh);
		expect(reused.streams).toHaveLength(fresh.streamCount * model.manifest.streamNormalization.names.length);
	});
});
