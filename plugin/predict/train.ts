import type * as Tf from '@tensorflow/tfjs';
import type { Logger } from '../log';
import { mulberry32 } from '../util/rng';
import { PROFILE_SCHEMA_VERSION } from '../profile/schema';
import { fitNormalization, STREAM_FEATURE_COUNT, STREAM_FEATURES, streamContexts, streamFeatures, WORKER_FEATURE_COUNT, WORKER_FEATURES, workerFeatures } from './features';
import {
	allocateFeatureBatch,
	buildNet,
	describeHost,
	featureBatch,
	horizonKey,
	LOG_VARIANCE_RANGE,
	MODEL_FORMAT,
	MODEL_SCHEMA_VERSION,
	OUTPUTS,
	outputIndex,
	TfPredictor,
	VARIANCE_FLOOR,
	type FeatureBatch,
	type ModelManifest,
} from './model';
import { mean, quantile, std, Z95 } from './stats';
import { loadTf, type TfModule } from './tf';
import { HORIZONS_S, TARGETS, type Target, type TrainingExample } from './types';

export interface EpochLog {
	epoch: number;
	/** Mean training loss of the epoch (MSE + varianceWeight·NLL, scaled units). */
	loss: number;
	ms: number;
}

export interface TrainOptions {
	name?: string;
	version?: number;
	/** Default 60. */
	epochs?: number;
	/** Workers per gradient step. Default 32. */
	batchSize?: number;
	/** Adam step size. Default 0.01. */
	learningRate?: number;
	streamHidden?: number[];
	workerHidden?: number[];
	/** Weight of the Gaussian NLL (p95 head) next to the mean's MSE. Default 0.2. */
	varianceWeight?: number;
	seed?: number;
	/** Held-out examples for the p95 calibration and metrics (the training set is used without them). */
	validation?: readonly TrainingExample[];
	onEpoch?: (log: EpochLog) => void;
	logger?: Logger;
}

export interface TrainResult {
	predictor: TfPredictor;
	history: EpochLog[];
}


const invSoftplus = (y: number): number => Math.log(Math.expm1(Math.max(y, 1e-6)));

/** Targets of examples as rows of OUTPUTS values, horizon-major. */
function targetRows(examples: readonly TrainingExample[], scale: readonly number[]): Float32Array {
	const out = new Float32Array(examples.length * OUTPUTS);
	examples.forEach((e, r) =>
		HORIZONS_S.forEach((h, hi) => TARGETS.forEach((t, ti) => (out[r * OUTPUTS + outputIndex(hi, ti)] = e.targets[h][t] / scale[ti]!))),
	);
	return out;
}

interface Nets {
	stream: Tf.LayersModel;
	worker: Tf.LayersModel;
}

/** Worker-level mean and variance (scaled units) of a batch: the additive model. */
function forward(tf: TfModule, nets: Nets, batch: FeatureBatch): { mean: Tf.Tensor2D; variance: Tf.Tensor2D } {
	const w = nets.worker.apply(tf.tensor2d(batch.workers, [batch.workerCount, WORKER_FEATURE_COUNT])) as Tf.Tensor2D;
	let meanT = w.slice([0, 0], [-1, OUTPUTS]);
	let varianceT = tf.exp(tf.clipByValue(w.slice([0, OUTPUTS], [-1, OUTPUTS]), LOG_VARIANCE_RANGE[0], LOG_VARIANCE_RANGE[1])).add(VARIANCE_FLOOR);
	if (batch.streamCount > 0) {
		const s = nets.stream.apply(tf.tensor2d(batch.streams, [batch.streamCount, STREAM_FEATURE_COUNT])) as Tf.Tensor2D;
		const sMean = tf.softplus(s.slice([0, 0], [-1, OUTPUTS]));
		const sVar = tf.softplus(s.slice([0, OUTPUTS], [-1, OUTPUTS])).mul(tf.tensor2d(batch.entropy, [batch.streamCount, 1]).add(1));
		// Segment sum as a matMul with the [workers × streams] membership matrix: on the
		// CPU backend tf.unsortedSegmentSum (and its gradient) is ~15× slower.
		// tf.oneHot needs a depth ≥ 2; one worker owns every stream.
		const membership =
			batch.workerCount === 1
				? tf.ones([1, batch.streamCount])
				: tf.oneHot(tf.tensor1d(batch.segment, 'int32'), batch.workerCount).transpose().toFloat();
		meanT = meanT.add(tf.matMul(membership, sMean));
		varianceT = varianceT.add(tf.matMul(membership, sVar));
	}
	return { mean: meanT as Tf.Tensor2D, variance: varianceT as Tf.Tensor2D };
}

function subBatch(all: readonly FeatureBatch[], idx: readonly number[]): FeatureBatch {
	let streamCount = 0;
	for (const i of idx) streamCount += all[i]!.streamCount;
	const batch = allocateFeatureBatch(streamCount, idx.length);
	const { streams, entropy, segment, workers } = batch;
	let row = 0;
	idx.forEach((i, w) => {
		const b = all[i]!;
		streams.set(b.streams, row * STREAM_FEATURE_COUNT);
		entropy.set(b.entropy, row);
		segment.fill(w, row, row + b.streamCount);
		workers.set(b.workers, w * WORKER_FEATURE_COUNT);
		row += b.streamCount;
	});
	return batch;
}

/**
 * Trains the additive model on worker-level targets. Synchronous on the CPU backend;
 * `onEpoch` drives a progress bar. Split by session before calling: examples of one
 * session must not be in both `examples` and `options.validation`.
 */
export function trainModel(examples: readonly TrainingExample[], options: TrainOptions = {}): TrainResult {
	if (examples.length === 0) throw new RangeError('trainModel needs at least one example');
	const started = Date.now();
	const { tf } = loadTf();
	const seed = options.seed ?? 1;
	const epochs = options.epochs ?? 60;
	const batchSize = Math.max(1, options.batchSize ?? 32);
	const streamHidden = options.streamHidden ?? [16];
	const workerHidden = options.workerHidden ?? [8];
	const varianceWeight = options.varianceWeight ?? 0.2;
	const validation = options.validation ?? [];

	const streamRows: number[][] = [];
	for (const e of examples) {
		const ctx = streamContexts(e.snapshot.streams, e.snapshot.events, e.snapshot.now);
		for (const s of e.snapshot.streams) streamRows.push(streamFeatures(s, ctx.get(s.streamId)!));
	}
	const streamNormalization = fitNormalization(STREAM_FEATURES, streamRows);
	const workerNormalization = fitNormalization(
		WORKER_FEATURES,
		examples.map((e) => workerFeatures(e.snapshot)),
	);
	// Spread, not level, sets the units: per-stream costs then matter in the loss for
	// every target, including RSS whose level is mostly the idle process.
	const targetScale = {} as Record<Target, number>;
	for (const t of TARGETS) {
		const values = examples.map((e) => e.targets[15][t]);
		const spread = std(values);
		const level = mean(values.map(Math.abs));
		targetScale[t] = spread > 0 ? spread : level > 0 ? level : 1;
	}
	const scale = TARGETS.map((t) => targetScale[t]);

	const perExample = examples.map((e) => featureBatch([e.snapshot], streamNormalization, workerNormalization));
	const targets = targetRows(examples, scale);
	const nets: Nets = {
		stream: buildNet(tf, STREAM_FEATURE_COUNT, streamHidden, 2 * OUTPUTS, seed),
		worker: buildNet(tf, WORKER_FEATURE_COUNT, workerHidden, 2 * OUTPUTS, seed + 100),
	};
	initOutputBiases(tf, nets, examples, targets);

	// The NLL trains the variance path only; the mean is the MSE's job.
	const stopGradient = tf.customGrad((...args) => ({ value: (args[0] as Tf.Tensor).clone(), gradFunc: (dy: Tf.Tensor) => tf.zerosLike(dy) })) as (x: Tf.Tensor) => Tf.Tensor;
	const optimizer = tf.train.adam(options.learningRate ?? 0.01);
	const random = mulberry32(seed);
	const order = examples.map((_, i) => i);
	const history: EpochLog[] = [];
	for (let epoch = 1; epoch <= epochs; epoch++) {
		const epochStart = Date.now();
		for (let i = order.length - 1; i > 0; i--) {
			const j = Math.floor(random() * (i + 1));
			[order[i], order[j]] = [order[j]!, order[i]!];
		}
		let lossSum = 0;
		let steps = 0;
		for (let start = 0; start < order.length; start += batchSize) {
			const idx = order.slice(start, start + batchSize);
			const batch = subBatch(perExample, idx);
			const y = new Float32Array(idx.length * OUTPUTS);
			idx.forEach((i, r) => y.set(targets.subarray(i * OUTPUTS, (i + 1) * OUTPUTS), r * OUTPUTS));
			const cost = optimizer.minimize(
				() => {
					const yT = tf.tensor2d(y, [idx.length, OUTPUTS]);
					const { mean: m, variance: v } = forward(tf, nets, batch);
					const mse = tf.mean(tf.square(yT.sub(m)));
					const nll = tf.mean(tf.log(v).add(tf.square(yT.sub(stopGradient(m))).div(v)).mul(0.5));
					return mse.add(nll.mul(varianceWeight)) as Tf.Scalar;
				},
				true,
			);
			lossSum += cost!.dataSync()[0]!;
			cost!.dispose();
			steps++;
		}
		const log = { epoch, loss: lossSum / steps, ms: Date.now() - epochStart };
		history.push(log);
		options.onEpoch?.(log);
	}
	optimizer.dispose();

	const calibrationSet = validation.length > 0 ? validation : examples;
	const calibration = predictScaled(tf, nets, calibrationSet, streamNormalization, workerNormalization);
	const calibrationTargets = targetRows(calibrationSet, scale);
	const p95Z: ModelManifest['p95Z'] = {};
	HORIZONS_S.forEach((h, hi) => {
		p95Z[horizonKey(h)] = { cpuPct: Z95, rssBytes: Z95, ingressBps: Z95, egressBps: Z95 };
		TARGETS.forEach((t, ti) => {
			const k = outputIndex(hi, ti);
			const zs: number[] = [];
			for (let r = 0; r < calibrationSet.length; r++) {
				const i = r * OUTPUTS + k;
				zs.push((calibrationTargets[i]! - calibration.mean[i]!) / Math.sqrt(calibration.variance[i]!));
			}
			// Split-conformal: the empirical 95th percentile of standardized residuals, so the
			// band covers 95% of held-out outcomes whatever the NLL head's miscalibration.
			if (zs.length >= 20) p95Z[horizonKey(h)]![t] = Math.max(0, quantile(zs, 0.95));
		});
	});

	const metrics: Record<string, number> = {};
	const addMetrics = (label: string, set: readonly TrainingExample[]) => {
		if (set.length === 0) return;
		const pred = predictScaled(tf, nets, set, streamNormalization, workerNormalization);
		const truth = targetRows(set, scale);
		HORIZONS_S.forEach((h, hi) =>
			TARGETS.forEach((t, ti) => {
				const k = outputIndex(hi, ti);
				const z = p95Z[horizonKey(h)]![t];
				let absErr = 0;
				let covered = 0;
				for (let r = 0; r < set.length; r++) {
					const i = r * OUTPUTS + k;
					absErr += Math.abs(truth[i]! - pred.mean[i]!);
					if (truth[i]! <= pred.mean[i]! + z * Math.sqrt(pred.variance[i]!)) covered++;
				}
				metrics[`${label}_mae_${t}_${h}s`] = (absErr / set.length) * scale[ti]!;
				metrics[`${label}_p95_coverage_${t}_${h}s`] = covered / set.length;
			}),
		);
	};
	addMetrics('train', examples);
	addMetrics('validation', validation);

	const sessions = [...new Set(examples.map((e) => e.sessionId).filter((s): s is string => s !== undefined))];
	const manifest: ModelManifest = {
		format: MODEL_FORMAT,
		schemaVersion: MODEL_SCHEMA_VERSION,
		profileSchemaVersion: PROFILE_SCHEMA_VERSION,
		name: options.name ?? 'default',
		version: options.version ?? 1,
		createdAt: new Date().toISOString(),
		horizonsS: [...HORIZONS_S],
		targets: [...TARGETS],
		streamNormalization,
		workerNormalization,
		targetScale,
		p95Z,
		architecture: { streamHidden, workerHidden, varianceWeight },
		// Filled in by save(); an unsaved model has no files.
		files: {
			stream: { topology: 'stream.model.json', weights: 'stream.weights.bin', weightsBytes: 0, weightsSha256: '0'.repeat(64) },
			worker: { topology: 'worker.model.json', weights: 'worker.weights.bin', weightsBytes: 0, weightsSha256: '0'.repeat(64) },
		},
		training: {
			examples: examples.length,
			validationExamples: validation.length,
			sessions,
			streams: streamRows.length,
			epochs,
			wallMs: Date.now() - started,
			finalLoss: history[history.length - 1]?.loss ?? Number.NaN,
		},
		metrics,
		host: describeHost(),
	};
	options.logger?.info({ examples: examples.length, epochs, wallMs: manifest.training.wallMs, finalLoss: manifest.training.finalLoss }, 'model trained');
	return { predictor: new TfPredictor(manifest, nets.stream, nets.worker), history };
}

/**
 * Starting point near the data: streams explain half of each target's mean, the base
 * the other half, variances small. Without it softplus(0)·(many streams) starts far off
 * and the first epochs only undo the initialization.
 */
function initOutputBiases(tf: TfModule, nets: Nets, examples: readonly TrainingExample[], targets: Float32Array): void {
	const avgStreams = Math.max(1, mean(examples.map((e) => e.snapshot.streams.length)));
	const meanTarget = new Array<number>(OUTPUTS).fill(0);
	for (let r = 0; r < examples.length; r++) for (let k = 0; k < OUTPUTS; k++) meanTarget[k]! += targets[r * OUTPUTS + k]! / examples.length;
	const setBias = (net: Tf.LayersModel, values: number[]) => {
		const last = net.layers[net.layers.length - 1]!;
		const [kernel] = last.getWeights();
		const bias = tf.tensor1d(values);
		last.setWeights([kernel!, bias]);
		bias.dispose();
	};
	setBias(nets.stream, [...meanTarget.map((m) => invSoftplus((0.5 * Math.max(m, 0.02)) / avgStreams)), ...new Array<number>(OUTPUTS).fill(invSoftplus(0.01 / avgStreams))]);
	setBias(nets.worker, [...meanTarget.map((m) => 0.5 * m), ...new Array<number>(OUTPUTS).fill(Math.log(0.01))]);
}

/** Scaled mean and variance rows for a set of examples, in batches. */
function predictScaled(
	tf: TfModule,
	nets: Nets,
	set: readonly TrainingExample[],
	streamNorm: ModelManifest['streamNormalization'],
	workerNorm: ModelManifest['workerNormalization'],
): { mean: Float32Array; variance: Float32Array } {
	const meanOut = new Float32Array(set.length * OUTPUTS);
	const varOut = new Float32Array(set.length * OUTPUTS);
	for (let start = 0; start < set.length; start += 256) {
		const chunk = set.slice(start, start + 256);
		const batch = featureBatch(
			chunk.map((e) => e.snapshot),
			streamNorm,
			workerNorm,
		);
		const [m, v] = tf.tidy(() => {
			const out = forward(tf, nets, batch);
			return [out.mean, out.variance];
		});
		meanOut.set(m!.dataSync(), start * OUTPUTS);
		varOut.set(v!.dataSync(), start * OUTPUTS);
		m!.dispose();
		v!.dispose();
	}
	return { mean: meanOut, variance: varOut };
}
