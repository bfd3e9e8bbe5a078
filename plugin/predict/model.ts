import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as Tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { PROFILE_SCHEMA_VERSION, type StreamProfile } from '../profile/schema';
import { assembleFlat, asStreamList, connectionContexts, FLAT_WIDTH, needsOf } from './assemble';
import {
	featureBatch,
	FeatureBuffers,
	normalizationMismatch,
	normalizationSchema,
	STREAM_FEATURE_COUNT,
	STREAM_FEATURES,
	WORKER_FEATURE_COUNT,
	WORKER_FEATURES,
	type FeatureBatch,
} from './features';
import { DenseKernel, wasmSimdSupported, type DenseWeights } from './kernel';
import { softplusInPlace } from './softplus';
import { loadTf, type TfModule } from './tf';
import { HORIZONS_S, TARGETS, type HorizonS, type Predictor, type ResourceNeeds, type StreamContext, type WorkerPrediction, type WorkerSnapshot } from './types';

/**
 * The trained predictor. Two small MLPs:
 *
 * - the stream net maps one stream's features to, per horizon and target, a
 *   non-negative cost (softplus) and a non-negative variance (softplus × (1 + entropy),
 *   so an unpredictable stream widens the band rather than only the mean);
 * - the worker net maps worker features (trends, counts, churn; not the current CPU
 *   level, which would let it explain everything and attribute nothing) to a base cost
 *   and a base log-variance.
 *
 * Worker mean = base + Σ stream costs, worker variance = exp(base log-var) + Σ stream
 * variances; both are trained on worker-level targets only. p95 = mean + z·σ with z
 * calibrated per horizon and target on the validation set (the training set when none is
 * given). Outputs are in units of each target's training spread (targetScale), so CPU %
 * and RSS bytes weigh alike in the loss.
 */

export const MODEL_FORMAT = 'mediasoup-foresight-model';
/** Bump on any change a previous build could misread; loaders reject other versions. */
export const MODEL_SCHEMA_VERSION = 1;
/** Outputs per net half: horizons × targets, horizon-major. */
export const OUTPUTS = HORIZONS_S.length * TARGETS.length;
export const outputIndex = (hi: number, ti: number): number => hi * TARGETS.length + ti;
/** Base log-variance is clipped identically in training and inference. */
export const LOG_VARIANCE_RANGE = [-20, 10] as const;
export const VARIANCE_FLOOR = 1e-6;

const perTargetSchema = z.object({ cpuPct: z.number(), rssBytes: z.number(), ingressBps: z.number(), egressBps: z.number() }).strict();
const positivePerTarget = z
	.object({ cpuPct: z.number().positive(), rssBytes: z.number().positive(), ingressBps: z.number().positive(), egressBps: z.number().positive() })
	.strict();
const netFileSchema = z.object({
	topology: z.string().regex(/^[\w.-]+\.json$/, 'a plain file name'),
	weights: z.string().regex(/^[\w.-]+\.bin$/, 'a plain file name'),
	weightsBytes: z.int().min(0),
	weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const modelManifestSchema = z.object({
	format: z.literal(MODEL_FORMAT),
	schemaVersion: z.int(),
	profileSchemaVersion: z.int(),
	name: z.string().regex(/^[\w.-]+$/),
	version: z.int().min(1),
	createdAt: z.string(),
	horizonsS: z.array(z.int()),
	targets: z.array(z.string()),
	streamNormalization: normalizationSchema,
	workerNormalization: normalizationSchema,
	/** Outputs are in these units: prediction = output × scale. */
	targetScale: positivePerTarget,
	/** Calibrated p95 multiplier per horizon ("5", "15", "30") and target. */
	p95Z: z.record(z.string(), perTargetSchema),
	architecture: z.object({ streamHidden: z.array(z.int().min(1)), workerHidden: z.array(z.int().min(1)), varianceWeight: z.number().min(0) }),
	files: z.object({ stream: netFileSchema, worker: netFileSchema }),
	training: z.object({
		examples: z.int().min(0),
		validationExamples: z.int().min(0),
		sessions: z.array(z.string()),
		streams: z.int().min(0),
		epochs: z.int().min(0),
		wallMs: z.number().min(0),
		finalLoss: z.number(),
	}),
	metrics: z.record(z.string(), z.number()),
	host: z.object({
		cpuModel: z.string(),
		cores: z.int(),
		cpuMHz: z.number(),
		platform: z.string(),
		arch: z.string(),
		node: z.string(),
		tfjs: z.string(),
		backend: z.string(),
	}),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;

const modelJsonSchema = z.object({
	format: z.literal('layers-model'),
	modelTopology: z.record(z.string(), z.unknown()),
	weightsManifest: z
		.array(
			z.object({
				paths: z.array(z.string()),
				weights: z.array(z.object({ name: z.string(), shape: z.array(z.int().min(0)), dtype: z.literal('float32') })),
			}),
		)
		.length(1),
});

export type ModelLoadProblem = 'missing' | 'corrupt' | 'incompatible';

/** Why a model directory cannot be used; `file` names the offending file. */
export class ModelLoadError extends Error {
	constructor(
		readonly problem: ModelLoadProblem,
		readonly file: string,
		detail: string,
	) {
		super(`model ${problem}: ${file}: ${detail}`);
		this.name = 'ModelLoadError';
	}
}

export interface HostDescription {
	cpuModel: string;
	cores: number;
	cpuMHz: number;
	platform: string;
	arch: string;
	node: string;
	tfjs: string;
	backend: string;
}

export function describeHost(): HostDescription {
	const { tf, flavour } = loadTf();
	const cpus = os.cpus();
	return {
		cpuModel: cpus[0]?.model.trim() ?? 'unknown',
		cores: cpus.length,
		cpuMHz: cpus[0]?.speed ?? 0,
		platform: os.platform(),
		arch: os.arch(),
		node: process.version,
		tfjs: `${flavour} ${tf.version.tfjs}`,
		backend: tf.getBackend(),
	};
}

/** Sequential stack of Dense layers: ReLU hidden layers, a linear output. */
export function buildNet(tf: TfModule, inputDim: number, hidden: readonly number[], outputDim: number, seed: number): Tf.Sequential {
	const net = tf.sequential();
	[...hidden, outputDim].forEach((units, i) => {
		net.add(
			tf.layers.dense({
				units,
				activation: i < hidden.length ? 'relu' : 'linear',
				kernelInitializer: tf.initializers.heNormal({ seed: seed + i }),
				...(i === 0 ? { inputShape: [inputDim] } : {}),
			}),
		);
	});
	return net;
}

interface DenseLayer {
	kernel: Tf.Tensor2D;
	bias: Tf.Tensor1D;
	relu: boolean;
}

/**
 * The nets' weights as plain tensors for inference: one fused matMul+bias+activation
 * per layer, without the Layers API's per-call bookkeeping.
 */
function denseStack(tf: TfModule, net: Tf.LayersModel, label: string): DenseLayer[] {
	return net.layers.map((layer, i) => {
		const activation = layer.getConfig().activation;
		const weights = layer.getWeights();
		if (layer.getClassName() !== 'Dense' || weights.length !== 2 || (activation !== 'relu' && activation !== 'linear')) {
			throw new Error(`${label} layer ${i} is ${layer.getClassName()}/${String(activation)}; only Dense relu/linear layers are supported`);
		}
		return {
			kernel: tf.keep(weights[0]!.clone()) as Tf.Tensor2D,
			bias: tf.keep(weights[1]!.clone()) as Tf.Tensor1D,
			relu: activation === 'relu',
		};
	});
}

/** The weights of a stack as plain arrays, kernels row-major [in][out] as tfjs stores them. */
function plainWeights(stack: readonly DenseLayer[]): DenseWeights[] {
	return stack.map((l) => {
		const [inDim, outDim] = l.kernel.shape;
		return { kernel: Float32Array.from(l.kernel.dataSync()), bias: Float32Array.from(l.bias.dataSync()), inDim, outDim, relu: l.relu };
	});
}

/** A Dense layer for the plain-JS path: weights transposed to [out][in] so the inner loop is contiguous. */
interface JsDenseLayer {
	weights: Float32Array;
	bias: Float32Array;
	inDim: number;
	outDim: number;
	relu: boolean;
}

function jsStack(stack: readonly DenseWeights[]): JsDenseLayer[] {
	return stack.map(({ kernel, bias, inDim, outDim, relu }) => {
		const weights = new Float32Array(inDim * outDim);
		for (let i = 0; i < inDim; i++) for (let j = 0; j < outDim; j++) weights[j * inDim + i] = kernel[i * outDim + j]!;
		return { weights, bias, inDim, outDim, relu };
	});
}

/**
 * Reusable activation buffers, one per layer: a prediction for 1,000 streams would
 * otherwise allocate ~200 kB of short-lived arrays per call and pay for it in GC.
 * The returned array is valid until the next call with the same scratch.
 */
type Scratch = Float32Array[];

function scratchBuffer(scratch: Scratch, layer: number, size: number): Float32Array {
	let buf = scratch[layer];
	if (!buf || buf.length < size) scratch[layer] = buf = new Float32Array(Math.max(size, (buf?.length ?? 0) * 2));
	return buf.length === size ? buf : buf.subarray(0, size);
}

function runJsStack(stack: readonly JsDenseLayer[], input: Float32Array, rows: number, scratch: Scratch): Float32Array {
	let x = input;
	for (let li = 0; li < stack.length; li++) {
		const l = stack[li]!;
		const out = scratchBuffer(scratch, li, rows * l.outDim);
		const { weights, bias, inDim, outDim, relu } = l;
		// Four output units per pass reuse each loaded input four times.
		const blocked = outDim - (outDim % 4);
		for (let r = 0; r < rows; r++) {
			const xo = r * inDim;
			const oo = r * outDim;
			for (let j = 0; j < blocked; j += 4) {
				const w0 = j * inDim;
				const w1 = w0 + inDim;
				const w2 = w1 + inDim;
				const w3 = w2 + inDim;
				let s0 = bias[j]!;
				let s1 = bias[j + 1]!;
				let s2 = bias[j + 2]!;
				let s3 = bias[j + 3]!;
				for (let i = 0; i < inDim; i++) {
					const xi = x[xo + i]!;
					s0 += xi * weights[w0 + i]!;
					s1 += xi * weights[w1 + i]!;
					s2 += xi * weights[w2 + i]!;
					s3 += xi * weights[w3 + i]!;
				}
				out[oo + j] = relu && s0 < 0 ? 0 : s0;
				out[oo + j + 1] = relu && s1 < 0 ? 0 : s1;
				out[oo + j + 2] = relu && s2 < 0 ? 0 : s2;
				out[oo + j + 3] = relu && s3 < 0 ? 0 : s3;
			}
			for (let j = blocked; j < outDim; j++) {
				const wo = j * inDim;
				let s = bias[j]!;
				for (let i = 0; i < inDim; i++) s += x[xo + i]! * weights[wo + i]!;
				out[oo + j] = relu && s < 0 ? 0 : s;
			}
		}
		x = out;
	}
	return x;
}

/**
 * How the nets are evaluated. 'tensor': batched fused matMuls in tf.tidy on the active
 * tfjs backend (the fast path with tfjs-node). 'js': the same arithmetic as plain loops
 * over Float32Arrays; on the pure-JS cpu backend this is several times faster for nets
 * this small, because tfjs-cpu's matMul pays per-op overhead that dwarfs ~1 M
 * multiply-adds. 'wasm': the same arithmetic again as WebAssembly SIMD (kernel.ts),
 * softplus included: bit-identical to 'js', and the stream net plus softplus take about
 * half the time of the JS loops (see bench/inference.ts).
 */
export type InferencePath = 'tensor' | 'js' | 'wasm';

function runStack(tf: TfModule, stack: readonly DenseLayer[], x: Tf.Tensor2D): Tf.Tensor2D {
	let out = x;
	for (const l of stack) out = tf.fused.matMul({ a: out, b: l.kernel, bias: l.bias, activation: l.relu ? 'relu' : 'linear' }) as Tf.Tensor2D;
	return out;
}

export const horizonKey = (h: HorizonS): string => String(h);

// Batched features live with the features (their per-stream loop then makes no cross-module calls); re-exported for existing importers.
export { allocateFeatureBatch, featureBatch, FeatureBuffers, type FeatureBatch } from './features';

export class TfPredictor implements Predictor {
	readonly name: string;
	private readonly tf: TfModule;
	private readonly streamStack: DenseLayer[];
	private readonly workerStack: DenseLayer[];
	private readonly streamJs: JsDenseLayer[];
	private readonly workerJs: JsDenseLayer[];
	/** Undefined where WebAssembly SIMD is unavailable. */
	private readonly streamWasm: DenseKernel | undefined;
	private readonly workerWasm: DenseKernel | undefined;
	private readonly streamScratch: Scratch = [];
	private readonly workerScratch: Scratch = [];
	private readonly features = new FeatureBuffers();
	/** Per-stream mean costs and spreads in assembleFlat's layout, reused across calls. */
	private flatCost = new Float64Array(0);
	private flatSpread = new Float64Array(0);
	/** Defaults to 'wasm' (else 'js' without WebAssembly SIMD) on the pure-JS cpu backend, 'tensor' on any other. */
	inference: InferencePath;
	/** Target scale per output index. */
	private readonly scale: Float64Array;
	/** z per output index. */
	private readonly z: Float64Array;

	constructor(
		readonly manifest: ModelManifest,
		/** Kept for saving and retraining; inference runs on copies of their weights. */
		readonly streamNet: Tf.LayersModel,
		readonly workerNet: Tf.LayersModel,
	) {
		this.tf = loadTf().tf;
		this.name = `tfjs:${manifest.name}@${manifest.version}`;
		this.streamStack = denseStack(this.tf, streamNet, 'stream net');
		this.workerStack = denseStack(this.tf, workerNet, 'worker net');
		const streamWeights = plainWeights(this.streamStack);
		const workerWeights = plainWeights(this.workerStack);
		this.streamJs = jsStack(streamWeights);
		this.workerJs = jsStack(workerWeights);
		const simd = wasmSimdSupported();
		this.streamWasm = simd ? new DenseKernel(streamWeights, { softplusOutput: true }) : undefined;
		this.workerWasm = simd ? new DenseKernel(workerWeights) : undefined;
		this.inference = this.tf.getBackend() !== 'cpu' ? 'tensor' : simd ? 'wasm' : 'js';
		this.scale = new Float64Array(OUTPUTS);
		this.z = new Float64Array(OUTPUTS);
		HORIZONS_S.forEach((h, hi) =>
			TARGETS.forEach((t, ti) => {
				this.scale[outputIndex(hi, ti)] = manifest.targetScale[t];
				this.z[outputIndex(hi, ti)] = manifest.p95Z[horizonKey(h)]?.[t] ?? 0;
			}),
		);
	}

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		const batch = featureBatch(snapshots, this.manifest.streamNormalization, this.manifest.workerNormalization, undefined, this.features);
		const { streamOut, workerOut, streamStride, workerStride } = this.run(batch);
		this.writeStreamCosts(batch, streamOut, streamStride);
		const base = new Float64Array(OUTPUTS);
		const baseSpread = new Float64Array(OUTPUTS);
		const out = new Array<WorkerPrediction>(snapshots.length);
		let row = 0;
		for (let w = 0; w < snapshots.length; w++) {
			const snap = snapshots[w]!;
			const o = w * workerStride;
			for (let k = 0; k < OUTPUTS; k++) {
				const logVar = Math.min(LOG_VARIANCE_RANGE[1], Math.max(LOG_VARIANCE_RANGE[0], workerOut[o + OUTPUTS + k]!));
				base[k] = workerOut[o + k]! * this.scale[k]!;
				baseSpread[k] = this.z[k]! * Math.sqrt(Math.exp(logVar) + VARIANCE_FLOOR) * this.scale[k]!;
			}
			out[w] = assembleFlat(snap.workerId, this.name, snap.streams, base, baseSpread, this.flatCost, this.flatSpread, row);
			row += snap.streams.length;
		}
		return out;
	}

	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[], contexts?: ReadonlyMap<string, StreamContext>): ResourceNeeds {
		const list = asStreamList(streams);
		const ctx = connectionContexts(list, contexts);
		const snap: WorkerSnapshot = { workerId: '', now: Number.NaN, samples: [], streams: list, events: [] };
		const batch = featureBatch([snap], this.manifest.streamNormalization, this.manifest.workerNormalization, () => ctx, this.features);
		const { streamOut, streamStride } = this.run(batch, false);
		this.writeStreamCosts(batch, streamOut, streamStride);
		const zero = new Float64Array(OUTPUTS);
		return needsOf(assembleFlat('', '', list, zero, zero, this.flatCost, this.flatSpread));
	}

	/**
	 * Softplus'd stream outputs and raw worker outputs, `streamStride` and `workerStride`
	 * values per row (2·OUTPUTS, or more when a kernel pads its rows). Valid until the next call.
	 */
	private run(batch: FeatureBatch, withWorkers = true): { streamOut: Float32Array; workerOut: Float32Array; streamStride: number; workerStride: number } {
		if (this.inference === 'wasm' && this.streamWasm && this.workerWasm) {
			const streamOut = this.streamWasm.run(batch.streams, batch.streamCount);
			const workerOut = withWorkers ? this.workerWasm.run(batch.workers, batch.workerCount) : new Float32Array(0);
			return { streamOut, workerOut, streamStride: this.streamWasm.outputWidth, workerStride: this.workerWasm.outputWidth };
		}
		if (this.inference !== 'tensor') {
			const streamOut = runJsStack(this.streamJs, batch.streams, batch.streamCount, this.streamScratch);
			softplusInPlace(streamOut);
			const workerOut = withWorkers ? runJsStack(this.workerJs, batch.workers, batch.workerCount, this.workerScratch) : new Float32Array(0);
			return { streamOut, workerOut, streamStride: 2 * OUTPUTS, workerStride: 2 * OUTPUTS };
		}
		const tf = this.tf;
		const [s, w] = tf.tidy(() => {
			const streamT =
				batch.streamCount > 0
					? tf.softplus(runStack(tf, this.streamStack, tf.tensor2d(batch.streams, [batch.streamCount, STREAM_FEATURE_COUNT])))
					: tf.zeros([0, 2 * OUTPUTS]);
			const workerT =
				withWorkers && batch.workerCount > 0
					? runStack(tf, this.workerStack, tf.tensor2d(batch.workers, [batch.workerCount, WORKER_FEATURE_COUNT]))
					: tf.zeros([0, 2 * OUTPUTS]);
			return [streamT, workerT];
		});
		try {
			return { streamOut: s!.dataSync() as Float32Array, workerOut: w!.dataSync() as Float32Array, streamStride: 2 * OUTPUTS, workerStride: 2 * OUTPUTS };
		} finally {
			s!.dispose();
			w!.dispose();
		}
	}

	/**
	 * Per-stream mean costs and spreads (p95 − mean) into flatCost/flatSpread: cost =
	 * softplus'd mean output × target scale, spread = z·√(variance output × (1 + entropy)) × scale.
	 */
	private writeStreamCosts(batch: FeatureBatch, out: Float32Array, stride: number): void {
		const rows = batch.streamCount;
		if (this.flatCost.length < rows * FLAT_WIDTH) {
			this.flatCost = new Float64Array(Math.max(rows * FLAT_WIDTH, 2 * this.flatCost.length));
			this.flatSpread = new Float64Array(this.flatCost.length);
		}
		const { flatCost: cost, flatSpread: spread, scale, z } = this;
		const entropy = batch.entropy;
		for (let r = 0; r < rows; r++) {
			const o = r * stride;
			const f = r * FLAT_WIDTH;
			const widen = 1 + entropy[r]!;
			for (let k = 0; k < OUTPUTS; k++) {
				cost[f + k] = out[o + k]! * scale[k]!;
				spread[f + k] = z[k]! * Math.sqrt(out[o + OUTPUTS + k]! * widen) * scale[k]!;
			}
		}
	}

	dispose(): void {
		for (const l of [...this.streamStack, ...this.workerStack]) {
			l.kernel.dispose();
			l.bias.dispose();
		}
		this.streamNet.dispose();
		this.workerNet.dispose();
	}

	/**
	 * Writes models/<name>/-style directory: stream.model.json + stream.weights.bin,
	 * worker.model.json + worker.weights.bin (standard tfjs layers-model files), then
	 * manifest.json last, so a directory with a manifest is a complete one.
	 */
	async save(dir: string): Promise<ModelManifest> {
		await mkdir(dir, { recursive: true });
		const files = {
			stream: await writeNet(this.tf, this.streamNet, dir, 'stream'),
			worker: await writeNet(this.tf, this.workerNet, dir, 'worker'),
		};
		const manifest: ModelManifest = { ...this.manifest, files };
		await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, '\t')}\n`);
		return manifest;
	}

	/** Loads and validates a model directory; throws ModelLoadError naming the problem. */
	static async load(dir: string): Promise<TfPredictor> {
		const tf = loadTf().tf;
		const manifest = validateManifest(await readJson(dir, 'manifest.json'));
		const streamNet = await readNet(tf, dir, manifest.files.stream, STREAM_FEATURE_COUNT);
		const workerNet = await readNet(tf, dir, manifest.files.worker, WORKER_FEATURE_COUNT).catch((e: unknown) => {
			streamNet.dispose();
			throw e;
		});
		try {
			return new TfPredictor(manifest, streamNet, workerNet);
		} catch (e) {
			streamNet.dispose();
			workerNet.dispose();
			throw new ModelLoadError('incompatible', dir, (e as Error).message);
		}
	}
}

async function readJson(dir: string, file: string): Promise<unknown> {
	let text: string;
	try {
		text = await readFile(path.join(dir, file), 'utf8');
	} catch (e) {
		throw new ModelLoadError('missing', path.join(dir, file), (e as NodeJS.ErrnoException).code ?? (e as Error).message);
	}
	try {
		return JSON.parse(text) as unknown;
	} catch (e) {
		throw new ModelLoadError('corrupt', path.join(dir, file), `not valid JSON (${(e as Error).message})`);
	}
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
	return issues
		.slice(0, 5)
		.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
		.join('; ');
}

/** Version checks come before the full parse so a newer format is reported as incompatible, not as corrupt. */
export function validateManifest(raw: unknown, file = 'manifest.json'): ModelManifest {
	const head = z.object({ format: z.string(), schemaVersion: z.number() }).safeParse(raw);
	if (!head.success) throw new ModelLoadError('corrupt', file, describeIssues(head.error.issues));
	if (head.data.format !== MODEL_FORMAT) throw new ModelLoadError('incompatible', file, `format "${head.data.format}", expected "${MODEL_FORMAT}"`);
	if (head.data.schemaVersion !== MODEL_SCHEMA_VERSION) {
		throw new ModelLoadError('incompatible', file, `schemaVersion ${head.data.schemaVersion}, this build reads ${MODEL_SCHEMA_VERSION}`);
	}
	const parsed = modelManifestSchema.safeParse(raw);
	if (!parsed.success) throw new ModelLoadError('corrupt', file, describeIssues(parsed.error.issues));
	const m = parsed.data;
	const problems = [
		m.profileSchemaVersion !== PROFILE_SCHEMA_VERSION ? `profileSchemaVersion ${m.profileSchemaVersion}, this build uses ${PROFILE_SCHEMA_VERSION}` : undefined,
		m.horizonsS.join() !== HORIZONS_S.join() ? `horizons [${m.horizonsS.join(', ')}] s, this build predicts [${HORIZONS_S.join(', ')}] s` : undefined,
		m.targets.join() !== TARGETS.join() ? `targets [${m.targets.join(', ')}], this build predicts [${TARGETS.join(', ')}]` : undefined,
		normalizationMismatch(m.streamNormalization, STREAM_FEATURES, 'stream'),
		normalizationMismatch(m.workerNormalization, WORKER_FEATURES, 'worker'),
		...HORIZONS_S.map((h) => (m.p95Z[horizonKey(h)] === undefined ? `p95Z lacks horizon ${h}` : undefined)),
	].filter((p): p is string => p !== undefined);
	if (problems.length > 0) throw new ModelLoadError('incompatible', file, problems.join('; '));
	return m;
}

async function writeNet(tf: TfModule, net: Tf.LayersModel, dir: string, stem: string): Promise<ModelManifest['files']['stream']> {
	let captured: Tf.io.ModelArtifacts | undefined;
	await net.save(
		tf.io.withSaveHandler(async (artifacts) => {
			captured = artifacts;
			return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
		}),
	);
	if (!captured?.weightData || !captured.weightSpecs) throw new Error(`saving ${stem} net produced no weights`);
	const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(captured.weightData));
	const names = { topology: `${stem}.model.json`, weights: `${stem}.weights.bin` };
	const modelJson = {
		format: 'layers-model',
		generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
		convertedBy: null,
		modelTopology: captured.modelTopology,
		weightsManifest: [{ paths: [names.weights], weights: captured.weightSpecs }],
	};
	await writeFile(path.join(dir, names.weights), weights);
	await writeFile(path.join(dir, names.topology), `${JSON.stringify(modelJson)}\n`);
	return { ...names, weightsBytes: weights.byteLength, weightsSha256: createHash('sha256').update(weights).digest('hex') };
}

async function readNet(tf: TfModule, dir: string, entry: ModelManifest['files']['stream'], inputDim: number): Promise<Tf.LayersModel> {
	const parsed = modelJsonSchema.safeParse(await readJson(dir, entry.topology));
	if (!parsed.success) throw new ModelLoadError('corrupt', path.join(dir, entry.topology), describeIssues(parsed.error.issues));
	const group = parsed.data.weightsManifest[0]!;
	if (group.paths.length !== 1 || group.paths[0] !== entry.weights) {
		throw new ModelLoadError('corrupt', path.join(dir, entry.topology), `weights paths [${group.paths.join(', ')}] do not match manifest's ${entry.weights}`);
	}
	const weightsPath = path.join(dir, entry.weights);
	let bytes: Buffer;
	try {
		bytes = await readFile(weightsPath);
	} catch (e) {
		throw new ModelLoadError('missing', weightsPath, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
	}
	const expected = group.weights.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
	if (bytes.byteLength !== expected || bytes.byteLength !== entry.weightsBytes) {
		throw new ModelLoadError('corrupt', weightsPath, `${bytes.byteLength} bytes, topology needs ${expected} and manifest records ${entry.weightsBytes}`);
	}
	const sha = createHash('sha256').update(bytes).digest('hex');
	if (sha !== entry.weightsSha256) throw new ModelLoadError('corrupt', weightsPath, `sha256 ${sha} differs from the manifest's ${entry.weightsSha256}`);
	let net: Tf.LayersModel;
	try {
		const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
		net = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: parsed.data.modelTopology, weightSpecs: group.weights, weightData: data }));
	} catch (e) {
		throw new ModelLoadError('corrupt', path.join(dir, entry.topology), `tfjs could not build the model: ${(e as Error).message}`);
	}
	const inShape = net.inputs[0]?.shape;
	const outShape = net.outputs[0]?.shape;
	if (inShape?.[1] !== inputDim || outShape?.[1] !== 2 * OUTPUTS) {
		net.dispose();
		throw new ModelLoadError('incompatible', path.join(dir, entry.topology), `net maps ${inShape?.[1]} → ${outShape?.[1]} values, this build needs ${inputDim} → ${2 * OUTPUTS}`);
	}
	return net;
}
