import { z } from 'zod';
import type { StreamProfile } from '../profile/schema';
import { leastSquares, std } from './stats';
import type { StreamContext, WorkerSnapshot } from './types';

/**
 * Fixed-length numeric views of streams and workers. Heavy-tailed quantities appear
 * log1p-compressed (so one 20 Mbit/s screen share does not flatten every audio stream
 * to the same value) and, for rates that costs are linear in, also raw (so a ReLU
 * network can represent "µs per packet" exactly). The names are part of a trained model's
 * contract: a model whose manifest lists other names is rejected at load.
 */

/** Newly joined producers ramp up their bitrate (BWE, simulcast layers switching on) over ~10 s. */
const RAMP_TIME_CONSTANT_S = 10;
/**
 * Window for the worker's CPU/RSS slope and volatility. Training examples carry this much
 * load history (training/train.ts --history), and the live engine keeps minutes of it:
 * both must see the same window, or the model is served features it was not trained on.
 */
export const WORKER_TREND_WINDOW_S = 10;
/** Window for join/leave rates (examples carry a minute of events). */
const CHURN_WINDOW_S = 30;

export const STREAM_FEATURES = [
	'entity_producer',
	'entity_consumer',
	'entity_dataProducer',
	'entity_dataConsumer',
	'kind_audio',
	'kind_video',
	'kind_data',
	'is_screen',
	'bitrate_mbps',
	'log_bitrate_kbps',
	'packet_rate_k',
	'log_packet_rate',
	'active_layers',
	'total_layers',
	'pending_layers',
	'log_pending_layer_kbps',
	'log_pixel_rate_mpx',
	'log_fan_out',
	'log_fan_out_packet_rate',
	'fan_out_packet_rate_k',
	'keyframes_per_min',
	'log_pli_fir',
	'log_nack',
	'loss_fraction',
	'ramp_up',
	'entropy',
	'burstiness',
	'max_cv',
	'log_complexity',
	'log_data_messages',
] as const;
export const STREAM_FEATURE_COUNT = STREAM_FEATURES.length;

export const WORKER_FEATURES = [
	'cpu_slope_pct_per_s',
	'cpu_volatility_pct',
	'rss_slope_mb_per_s',
	'log_routers',
	'log_transports',
	'log_producers',
	'log_consumers',
	'log_data_entities',
	'log_streams',
	'join_rate_per_s',
	'leave_rate_per_s',
	'recent_joins_ramping',
] as const;
export const WORKER_FEATURE_COUNT = WORKER_FEATURES.length;

/** log1p of a rate clamped at 0; NaN stays NaN so normalization can neutralize it. */
const log1p = (v: number): number => (v > 0 ? Math.log1p(v) : Number.isNaN(v) ? v : 0);
const finiteOr = (v: number | undefined, fallback: number): number => (v !== undefined && Number.isFinite(v) ? v : fallback);

/** Ramp-up indicator: 1 for a stream that just joined, decaying to 0 once settled. */
export function rampUp(ageS: number): number {
	return Number.isFinite(ageS) && ageS >= 0 ? Math.exp(-ageS / RAMP_TIME_CONSTANT_S) : 0;
}

/** Raw (unnormalized) stream features, written into `out` at `offset`; non-finite inputs become NaN. */
export function writeStreamFeatures(p: StreamProfile, ctx: StreamContext, out: Float32Array | number[], offset = 0): void {
	writeRawStreamFeatures(p, ctx.fanOut, ctx.ageS, out, offset);
	for (let i = offset; i < offset + STREAM_FEATURE_COUNT; i++) if (!Number.isFinite(out[i]!)) out[i] = Number.NaN;
}

/**
 * writeStreamFeatures without the NaN pass, for callers that normalize next
 * (normalizeInPlace maps every non-finite value to 0 anyway), and with the context
 * as two numbers so the prediction path allocates no object per stream.
 */
export function writeRawStreamFeatures(p: StreamProfile, fanOut: number, ageS: number, out: Float32Array | number[], offset: number): void {
	// One pass over the layers and direct writes: this runs for every stream on every prediction.
	let activeCount = 0;
	let pendingBps = 0;
	let pixelRate = 0;
	const fallbackFps = finiteOr(p.video?.fps, 30);
	for (const l of p.layers) {
		if (!l.active) {
			pendingBps += l.bitrateBps;
			continue;
		}
		activeCount++;
		if (l.width !== undefined && l.height !== undefined) pixelRate += l.width * l.height * finiteOr(l.fps, fallbackFps);
	}
	const v = p.video;
	if (pixelRate === 0 && v?.width !== undefined && v.height !== undefined) pixelRate = v.width * v.height * fallbackFps;
	let maxCv = 0;
	for (const w of p.variance.windows) if (w.cv > maxCv) maxCv = w.cv;
	const activeLayers = v?.activeLayers ?? activeCount;
	const totalLayers = Math.max(p.layers.length, activeLayers);
	const { bitrateBps, packetRate } = p.flow;
	const fanOutPackets = fanOut * packetRate;
	let k = offset;
	out[k++] = p.entity === 'producer' ? 1 : 0;
	out[k++] = p.entity === 'consumer' ? 1 : 0;
	out[k++] = p.entity === 'dataProducer' ? 1 : 0;
	out[k++] = p.entity === 'dataConsumer' ? 1 : 0;
	out[k++] = p.kind === 'audio' ? 1 : 0;
	out[k++] = p.kind === 'video' ? 1 : 0;
	out[k++] = p.kind === 'data' ? 1 : 0;
	out[k++] = p.dataType === 'screen' ? 1 : 0;
	out[k++] = bitrateBps / 1e6;
	out[k++] = log1p(bitrateBps / 1000);
	out[k++] = packetRate / 1000;
	out[k++] = log1p(packetRate);
	out[k++] = activeLayers;
	out[k++] = totalLayers;
	out[k++] = totalLayers - activeLayers;
	out[k++] = log1p(pendingBps / 1000);
	out[k++] = log1p(pixelRate / 1e6);
	out[k++] = log1p(fanOut);
	out[k++] = log1p(fanOutPackets);
	out[k++] = fanOutPackets / 1000;
	out[k++] = finiteOr(v?.keyframesPerMin, 0);
	out[k++] = log1p(p.flow.pliCount + p.flow.firCount);
	out[k++] = log1p(p.flow.nackCount);
	out[k++] = p.flow.lossFraction;
	out[k++] = rampUp(ageS);
	out[k++] = p.entropy;
	out[k++] = p.variance.burstiness;
	out[k++] = maxCv;
	out[k++] = log1p(p.complexity);
	out[k++] = log1p(p.data?.messagesPerS ?? 0);
	if (k - offset !== STREAM_FEATURE_COUNT) throw new Error(`stream features wrote ${k - offset} values for ${STREAM_FEATURE_COUNT} names`);
}

export function streamFeatures(p: StreamProfile, ctx: StreamContext): number[] {
	const out = new Array<number>(STREAM_FEATURE_COUNT);
	writeStreamFeatures(p, ctx, out);
	return out;
}

/**
 * Fan-out and age of each stream from what a snapshot (or a bare list of streams)
 * shows: consumers whose producerId is a listed producer, and the latest join event.
 */
export function streamContexts(
	streams: readonly StreamProfile[],
	events: WorkerSnapshot['events'] = [],
	now = Number.NaN,
	overrides?: ReadonlyMap<string, StreamContext>,
): Map<string, StreamContext> {
	const lookup = new ContextLookup(streams, events, now);
	const out = new Map<string, StreamContext>();
	for (const s of streams) out.set(s.streamId, overrides?.get(s.streamId) ?? { fanOut: lookup.fanOut(s), ageS: lookup.ageS(s) });
	return out;
}

/** What streamContexts derives, answered per stream without building a context object for each. */
export class ContextLookup {
	private readonly fanOuts = new Map<string, number>();
	private readonly joinedAt = new Map<string, number>();

	constructor(
		streams: readonly StreamProfile[],
		events: WorkerSnapshot['events'],
		private readonly now: number,
	) {
		for (const s of streams) {
			if ((s.entity === 'consumer' || s.entity === 'dataConsumer') && s.producerId !== undefined) {
				this.fanOuts.set(s.producerId, (this.fanOuts.get(s.producerId) ?? 0) + 1);
			}
		}
		for (const e of events) if (e.type === 'join') this.joinedAt.set(e.streamId, e.ts);
	}

	fanOut(s: StreamProfile): number {
		return s.entity === 'producer' || s.entity === 'dataProducer' ? (this.fanOuts.get(s.streamId) ?? 0) : 0;
	}

	ageS(s: StreamProfile): number {
		const joined = this.joinedAt.get(s.streamId);
		return joined !== undefined && Number.isFinite(this.now) ? Math.max(0, (this.now - joined) / 1000) : Number.POSITIVE_INFINITY;
	}
}

/** Raw worker-level features: trends and churn, deliberately not the current CPU level (see model.ts). */
export function workerFeatures(snapshot: WorkerSnapshot): number[] {
	const trendSince = snapshot.now - WORKER_TREND_WINDOW_S * 1000;
	const since = snapshot.now - CHURN_WINDOW_S * 1000;
	const recent = snapshot.samples.filter((s) => s.ts > trendSince && s.ts <= snapshot.now);
	const cpuTrend = leastSquares(recent.map((s) => ({ x: (s.ts - snapshot.now) / 1000, y: s.cpuPct })));
	const rssTrend = leastSquares(recent.map((s) => ({ x: (s.ts - snapshot.now) / 1000, y: s.rssBytes / 1e6 })));
	const last = snapshot.samples[snapshot.samples.length - 1];
	let producers = 0;
	let consumers = 0;
	let data = 0;
	for (const s of snapshot.streams) {
		if (s.entity === 'producer') producers++;
		else if (s.entity === 'consumer') consumers++;
		else data++;
	}
	// Distinct routers and transports only matter without a load sample, which counts them itself.
	const distinct = (key: 'routerId' | 'transportId'): number => new Set(snapshot.streams.map((s) => s[key])).size;
	let joins = 0;
	let leaves = 0;
	let ramping = 0;
	for (const e of snapshot.events) {
		if (e.ts < since || e.ts > snapshot.now) continue;
		if (e.type === 'join') {
			joins++;
			ramping += rampUp((snapshot.now - e.ts) / 1000);
		} else leaves++;
	}
	const values = [
		cpuTrend.slope,
		std(recent.map((s) => s.cpuPct)),
		rssTrend.slope,
		log1p(last?.routers ?? distinct('routerId')),
		log1p(last?.transports ?? distinct('transportId')),
		log1p(last?.producers ?? producers),
		log1p(last?.consumers ?? consumers),
		log1p(last ? last.dataProducers + last.dataConsumers : data),
		log1p(snapshot.streams.length),
		joins / CHURN_WINDOW_S,
		leaves / CHURN_WINDOW_S,
		ramping,
	];
	return values.map((v) => (Number.isFinite(v) ? v : Number.NaN));
}

export const normalizationSchema = z.object({
	names: z.array(z.string()),
	mean: z.array(z.number()),
	std: z.array(z.number().positive()),
});
/** Per-feature z-scoring fitted on training data; serialized into model manifests. */
export type Normalization = z.infer<typeof normalizationSchema>;

/** Below this spread a feature is treated as constant (divided by 1, not by ~0). */
const MIN_STD = 1e-6;

export function fitNormalization(names: readonly string[], rows: ArrayLike<number>[]): Normalization {
	const n = names.length;
	const sum = new Array<number>(n).fill(0);
	const sq = new Array<number>(n).fill(0);
	const count = new Array<number>(n).fill(0);
	for (const row of rows) {
		for (let i = 0; i < n; i++) {
			const v = row[i]!;
			if (!Number.isFinite(v)) continue;
			sum[i]! += v;
			sq[i]! += v * v;
			count[i]!++;
		}
	}
	const mean = sum.map((s, i) => (count[i]! > 0 ? s / count[i]! : 0));
	const sd = sq.map((s, i) => {
		const c = count[i]!;
		if (c < 2) return 1;
		const variance = Math.max(0, (s - c * mean[i]! ** 2) / (c - 1));
		const v = Math.sqrt(variance);
		return v > MIN_STD ? v : 1;
	});
	return { names: [...names], mean, std: sd };
}

/**
 * z-scores in place; a missing (NaN) or infinite value becomes 0, i.e. the training
 * mean, so one broken stat cannot poison a distance or a network's output.
 */
export function normalizeInPlace(norm: Normalization, row: Float32Array | number[], offset = 0): void {
	normalizeRows(norm, row, 1, offset);
}

/**
 * normalizeInPlace over `rows` consecutive rows: means and reciprocal spreads are made
 * once, so each value costs a subtraction and a multiplication instead of a division
 * (every stream of every prediction goes through here).
 */
export function normalizeRows(norm: Normalization, data: Float32Array | number[], rows: number, offset = 0): void {
	const width = norm.mean.length;
	const mean = Float64Array.from(norm.mean);
	const invStd = Float64Array.from(norm.std, (sd) => 1 / sd);
	for (let o = offset, end = offset + rows * width; o < end; o += width) {
		for (let i = 0; i < width; i++) {
			const z = (data[o + i]! - mean[i]!) * invStd[i]!;
			data[o + i] = z - z === 0 ? z : 0; // false for NaN and ±Infinity
		}
	}
}

/** Identity normalization, for callers that have nothing to fit on yet. */
export function identityNormalization(names: readonly string[]): Normalization {
	return { names: [...names], mean: names.map(() => 0), std: names.map(() => 1) };
}

/** Names an incompatibility between a stored normalization and this build's features, or undefined. */
export function normalizationMismatch(norm: Normalization, expected: readonly string[], label: string): string | undefined {
	if (norm.mean.length !== norm.names.length || norm.std.length !== norm.names.length) {
		return `${label} normalization has ${norm.names.length} names but ${norm.mean.length} means and ${norm.std.length} stds`;
	}
	if (norm.names.length !== expected.length || norm.names.some((n, i) => n !== expected[i])) {
		const missing = expected.filter((n) => !norm.names.includes(n));
		const extra = norm.names.filter((n) => !expected.includes(n));
		return `${label} features differ from this build (missing: ${missing.join(', ') || 'none'}; unknown: ${extra.join(', ') || 'none'}; or reordered)`;
	}
	return undefined;
}

/** Features of a batch of snapshots, flattened row-major and normalized. */
export interface FeatureBatch {
	streams: Float32Array;
	entropy: Float32Array;
	/** Snapshot index of each stream row. */
	segment: Int32Array;
	workers: Float32Array;
	streamCount: number;
	workerCount: number;
}

/** Zeroed buffers of a FeatureBatch for the given number of streams and workers. */
export function allocateFeatureBatch(streamCount: number, workerCount: number): FeatureBatch {
	return {
		streams: new Float32Array(streamCount * STREAM_FEATURE_COUNT),
		entropy: new Float32Array(streamCount),
		segment: new Int32Array(streamCount),
		workers: new Float32Array(workerCount * WORKER_FEATURE_COUNT),
		streamCount,
		workerCount,
	};
}

/**
 * Grown-on-demand buffers for featureBatch: a predictor calling it every second would
 * otherwise allocate ~150 kB of typed arrays per call, whose off-heap backing stores
 * push V8 into extra garbage collections.
 */
export class FeatureBuffers {
	private capacity: FeatureBatch = allocateFeatureBatch(0, 0);

	/** Views of exactly the requested sizes (contents undefined); valid until the next call. */
	take(streamCount: number, workerCount: number): FeatureBatch {
		let c = this.capacity;
		if (c.streamCount < streamCount || c.workerCount < workerCount) {
			this.capacity = c = allocateFeatureBatch(Math.max(streamCount, 2 * c.streamCount), Math.max(workerCount, 2 * c.workerCount));
		}
		return {
			streams: c.streams.subarray(0, streamCount * STREAM_FEATURE_COUNT),
			entropy: c.entropy.subarray(0, streamCount),
			segment: c.segment.subarray(0, streamCount),
			workers: c.workers.subarray(0, workerCount * WORKER_FEATURE_COUNT),
			streamCount,
			workerCount,
		};
	}
}

/**
 * `contextsOf` overrides how fan-out and age are found (default: from each snapshot's
 * own streams and events); `buffers` lends reusable storage, else the batch owns fresh arrays.
 */
export function featureBatch(
	snapshots: readonly WorkerSnapshot[],
	streamNorm: Normalization,
	workerNorm: Normalization,
	contextsOf?: (snap: WorkerSnapshot) => ReadonlyMap<string, StreamContext>,
	buffers?: FeatureBuffers,
): FeatureBatch {
	let streamCount = 0;
	for (const s of snapshots) streamCount += s.streams.length;
	const batch = buffers ? buffers.take(streamCount, snapshots.length) : allocateFeatureBatch(streamCount, snapshots.length);
	const { streams, entropy, segment, workers } = batch;
	let row = 0;
	for (let w = 0; w < snapshots.length; w++) {
		const snap = snapshots[w]!;
		const given = contextsOf?.(snap);
		const lookup = given ? undefined : new ContextLookup(snap.streams, snap.events, snap.now);
		for (const s of snap.streams) {
			const offset = row * STREAM_FEATURE_COUNT;
			const ctx = given?.get(s.streamId);
			const fanOut = lookup ? lookup.fanOut(s) : (ctx?.fanOut ?? 0);
			const ageS = lookup ? lookup.ageS(s) : (ctx?.ageS ?? Number.POSITIVE_INFINITY);
			writeRawStreamFeatures(s, fanOut, ageS, streams, offset);
			entropy[row] = Number.isFinite(s.entropy) ? Math.min(1, Math.max(0, s.entropy)) : 0;
			segment[row] = w;
			row++;
		}
		workers.set(workerFeatures(snap), w * WORKER_FEATURE_COUNT);
	}
	normalizeRows(streamNorm, streams, streamCount);
	normalizeRows(workerNorm, workers, snapshots.length);
	return batch;
}
