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
	/** 15 s CPU MAE (percentage points) on the validation set, when keepEpoch is 'best-validation'. */
	validationCpuMae15?: number;
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
	/**
	 * Relative weight of each target's outputs (all horizons) in the mean's loss; the
	 * weights are normalized to average 1. Default 1 each: CPU is then a quarter of the loss.
	 */
	targetWeights?: Partial<Record<Target, number>>;
	/**
	 * Huber threshold of the mean's loss, in units of the target's training spread: errors
	 * beyond it cost linearly, so one-second CPU spikes (measurement noise on a shared host)
	 * pull the mean less. Default: squared error throughout.
	 */
	huberDelta?: number;
	/**
	 * 'session' weighs every training session alike (each example by 1 / its session's
	 * example count, rescaled to average 1), so long sessions do not dominate. Default 'example'.
	 */
	exampleWeighting?: 'example' | 'session';
	/**
	 * 'best-validation' keeps the weights of the epoch with the lowest 15 s CPU MAE on
	 * `validation` (early stopping without cutting the run short); needs a validation set.
	 * 'average' keeps the mean of the weights after each epoch of the second half of the run
	 * (stochastic weight averaging): on a few hundred noisy examples the last epoch's weights
	 * depend on the seed far more than their average does, and inference costs the same.
	 * Default 'last'.
	 */
	keepEpoch?: 'last' | 'best-validation' | 'average';
	seed?: number;
	/** Held-out examples for the p95 calibration and metrics (the training set is used without them). */
	validation?: readonly TrainingExample[];
	onEpoch?: (log: EpochLog) => void;
	logger?: Logger;
}

export interface TrainResult {
	predictor: TfPredictor;
	history: EpochLog[];
	/** The epoch whose weights the predictor has: the last one unless 'best-validation' picked another ('average' counts as the last). */
	keptEpoch: number;
}


/** softplus⁻¹(y) = log(eʸ − 1); above 30 eʸ − 1 is eʸ in double precision, and expm1 would overflow past ~709. */
const invSoftplus = (y: number): number => (y > 30 ? y : Math.log(Math.expm1(Math.max(y, 1e-6))));

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
	// The stream net stays in the graph even for a batch without streams (zero rows): Adam
	// keeps its moments by the position of each variable among the gradients, and a batch
	// that left the stream net out would shift the worker net onto the stream net's moments.
	const s = nets.stream.apply(tf.tensor2d(batch.streams, [batch.streamCount, STREAM_FEATURE_COUNT])) as Tf.Tensor2D;
	const sMean = tf.softplus(s.slice([0, 0], [-1, OUTPUTS]));
	const sVar = tf.softplus(s.slice([0, OUTPUTS], [-1, OUTPUTS])).mul(tf.tensor2d(batch.entropy, [batch.streamCount, 1]).add(1));
	// Segment sum as a matMul with the [workers × streams] membership matrix: on the
	// CPU backend tf.unsortedSegmentSum (and its gradient) is ~15× slower.
	// tf.oneHot needs a depth ≥ 2; one worker owns every stream.
	const membership =
		batch.workerCount === 1 || batch.streamCount === 0
			? tf.ones([batch.workerCount, batch.streamCount])
			: tf.oneHot(tf.tensor1d(batch.segment, 'int32'), batch.workerCount).transpose().toFloat();
	meanT = meanT.add(tf.matMul(membership, sMean));
	varianceT = varianceT.add(tf.matMul(membership, sVar));
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
export const DEFAULT_LEARNING_RATE = 0.01;

/** Training produced non-finite weights or bands (a step blew up): nothing of it may be served or saved. */
export class TrainingDivergedError extends Error {
	constructor(
		readonly where: 'weights' | 'p95 bands',
		readonly learningRate: number,
	) {
		super(`training diverged: non-finite ${where} (learning rate ${learningRate})`);
		this.name = 'TrainingDivergedError';
	}
}

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
	const huberDelta = options.huberDelta;
	if (huberDelta !== undefined && !(huberDelta > 0)) throw new RangeError(`huberDelta must be > 0, got ${huberDelta}`);
	const outputWeights = outputWeightsOf(options.targetWeights);
	const rowWeights = rowWeightsOf(examples, options.exampleWeighting ?? 'example');
	const keepBest = (options.keepEpoch ?? 'last') === 'best-validation';
	if (keepBest && validation.length === 0) throw new RangeError("keepEpoch 'best-validation' needs validation examples");

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
	const optimizer = tf.train.adam(options.learningRate ?? DEFAULT_LEARNING_RATE);
	const random = mulberry32(seed);
	const order = examples.map((_, i) => i);
	const history: EpochLog[] = [];
	const cpu15 = outputIndex(HORIZONS_S.indexOf(15), TARGETS.indexOf('cpuPct'));
	const validationCpuMae15 = (): number => {
		const pred = predictScaled(tf, nets, validation, streamNormalization, workerNormalization);
		let sum = 0;
		validation.forEach((e, r) => (sum += Math.abs(e.targets[15].cpuPct - pred.mean[r * OUTPUTS + cpu15]! * targetScale.cpuPct)));
		return sum / validation.length;
	};
	let best: { epoch: number; mae: number; weights: Tf.Tensor[][] } | undefined;
	const averageFrom = options.keepEpoch === 'average' ? Math.floor(epochs / 2) + 1 : Number.POSITIVE_INFINITY;
	let average: { count: number; sums: Tf.Tensor[][] } | undefined;
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
			const w = rowWeights === undefined ? undefined : Float32Array.from(idx, (i) => rowWeights[i]!);
			const cost = optimizer.minimize(
				() => {
					const yT = tf.tensor2d(y, [idx.length, OUTPUTS]);
					const { mean: m, variance: v } = forward(tf, nets, batch);
					const mse = meanLoss(tf, yT.sub(m), huberDelta, outputWeights, w);
					const nll = tf.mean(tf.log(v).add(tf.square(yT.sub(stopGradient(m))).div(v)).mul(0.5));
					return mse.add(nll.mul(varianceWeight)) as Tf.Scalar;
				},
				true,
			);
			lossSum += cost!.dataSync()[0]!;
			cost!.dispose();
			steps++;
		}
		const log: EpochLog = { epoch, loss: lossSum / steps, ms: Date.now() - epochStart };
		if (keepBest) {
			log.validationCpuMae15 = validationCpuMae15();
			if (best === undefined || log.validationCpuMae15 < best.mae) {
				best?.weights.flat().forEach((t) => t.dispose());
				best = { epoch, mae: log.validationCpuMae15, weights: [nets.stream, nets.worker].map((n) => n.getWeights().map((t) => t.clone())) };
			}
		}
		if (epoch >= averageFrom) {
			const current = [nets.stream, nets.worker].map((n) => n.getWeights());
			if (average === undefined) average = { count: 1, sums: current.map((ws) => ws.map((t) => t.clone())) };
			else {
				average.sums = average.sums.map((ws, n) =>
					ws.map((sum, i) => {
						const next = sum.add(current[n]![i]!);
						sum.dispose();
						return next;
					}),
				);
				average.count++;
			}
		}
		history.push(log);
		options.onEpoch?.(log);
	}
	optimizer.dispose();
	const keptEpoch = best?.epoch ?? epochs;
	if (average !== undefined) {
		const count = average.count;
		const means = average.sums.map((ws) => ws.map((sum) => sum.div(count)));
		nets.stream.setWeights(means[0]!);
		nets.worker.setWeights(means[1]!);
		[...average.sums, ...means].flat().forEach((t) => t.dispose());
	}
	if (best !== undefined) {
		nets.stream.setWeights(best.weights[0]!);
		nets.worker.setWeights(best.weights[1]!);
		best.weights.flat().forEach((t) => t.dispose());
		options.logger?.info({ epoch: best.epoch, validationCpuMae15: best.mae }, 'kept the best validation epoch');
	}

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

	const badWeights = [nets.stream, nets.worker].some((n) => n.getWeights().some((w) => w.dataSync().some((v) => !Number.isFinite(v))));
	const badBands = Object.values(p95Z).some((band) => Object.values(band).some((z) => !Number.isFinite(z)));
	if (badWeights || badBands) {
		nets.stream.dispose();
		nets.worker.dispose();
		throw new TrainingDivergedError(badWeights ? 'weights' : 'p95 bands', options.learningRate ?? DEFAULT_LEARNING_RATE);
	}

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
	return { predictor: new TfPredictor(manifest, nets.stream, nets.worker), history, keptEpoch };
}

/** Per-output weights (horizon-major) averaging 1, or undefined when all are equal. */
function outputWeightsOf(weights: TrainOptions['targetWeights']): Float32Array | undefined {
	if (weights === undefined) return undefined;
	const perTarget = TARGETS.map((t) => weights[t] ?? 1);
	if (perTarget.some((v) => !(v >= 0)) || perTarget.every((v) => v === 0)) throw new RangeError('targetWeights must be ≥ 0 and not all 0');
	const avg = mean(perTarget);
	const out = new Float32Array(OUTPUTS);
	HORIZONS_S.forEach((_, hi) => TARGETS.forEach((_t, ti) => (out[outputIndex(hi, ti)] = perTarget[ti]! / avg)));
	return out;
}

/** Per-example weights averaging 1, or undefined for plain per-example averaging. */
export function rowWeightsOf(examples: readonly TrainingExample[], weighting: 'example' | 'session'): Float32Array | undefined {
	if (weighting === 'example') return undefined;
	const counts = new Map<string | undefined, number>();
	for (const e of examples) counts.set(e.sessionId, (counts.get(e.sessionId) ?? 0) + 1);
	// Σ over examples of n / (sessions · count) = n: the weights average 1.
	return Float32Array.from(examples, (e) => examples.length / (counts.size * counts.get(e.sessionId)!));
}

/**
 * The mean's loss on residuals `diff` [rows × OUTPUTS]: squared error, or Huber (2δ|d| − δ²
 * beyond δ, so it equals d² inside and its slope is continuous), weighted per output and per row.
 */
export function meanLoss(tf: TfModule, diff: Tf.Tensor, huberDelta: number | undefined, outputWeights: Float32Array | undefined, rowWeights: Float32Array | undefined): Tf.Scalar {
	let loss: Tf.Tensor;
	if (huberDelta === undefined) loss = tf.square(diff);
	else {
		const a = tf.abs(diff);
		const inside = tf.minimum(a, huberDelta);
		loss = tf.square(inside).add(a.sub(inside).mul(2 * huberDelta));
	}
	if (outputWeights !== undefined) loss = loss.mul(tf.tensor2d(outputWeights, [1, OUTPUTS]));
	if (rowWeights !== undefined) loss = loss.mul(tf.tensor2d(rowWeights, [rowWeights.length, 1]));
	return tf.mean(loss);
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
