import { z } from 'zod';

/**
 * The versioned profile schema: what the profiler emits, the store persists, the
 * predictor reads and the dashboard shows. Bump PROFILE_SCHEMA_VERSION on any
 * incompatible change; readers reject other versions rather than misread them.
 */
export const PROFILE_SCHEMA_VERSION = 1 as const;

export const dataTypeSchema = z.enum(['video', 'screen', 'audio', 'text', 'binary']);
export type DataType = z.infer<typeof dataTypeSchema>;

export const entityKindSchema = z.enum(['producer', 'consumer', 'dataProducer', 'dataConsumer']);
export type StreamEntityKind = z.infer<typeof entityKindSchema>;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const nonNegative = finite.refine((v) => v >= 0, 'must be ≥ 0');
const fraction = finite.refine((v) => v >= 0 && v <= 1, 'must be within [0, 1]');

export const flowSchema = z.object({
	bitrateBps: nonNegative,
	packetRate: nonNegative,
	/** Fraction of packets lost in the last interval, [0, 1]. */
	lossFraction: fraction,
	jitterMs: nonNegative,
	rttMs: nonNegative.optional(),
	nackCount: nonNegative,
	pliCount: nonNegative,
	firCount: nonNegative,
	/** mediasoup's 0..10 stream score. */
	score: nonNegative.optional(),
});
export type Flow = z.infer<typeof flowSchema>;

export const layerSchema = z.object({
	spatialLayer: z.int().min(0),
	rid: z.string().optional(),
	ssrc: z.int().optional(),
	bitrateBps: nonNegative,
	packetRate: nonNegative,
	width: nonNegative.optional(),
	height: nonNegative.optional(),
	fps: nonNegative.optional(),
	temporalLayers: z.int().min(0).optional(),
	active: z.boolean(),
});
export type LayerProfile = z.infer<typeof layerSchema>;

export const varianceWindowSchema = z.object({
	windowS: nonNegative,
	meanBps: nonNegative,
	stdBps: nonNegative,
	/** Coefficient of variation σ/μ (0 when μ = 0). */
	cv: nonNegative,
});

export const varianceSchema = z.object({
	windows: z.array(varianceWindowSchema),
	/** 0 = perfectly smooth, 1 = extremely bursty; see features/variance.ts for the definition. */
	burstiness: fraction,
});
export type VarianceProfile = z.infer<typeof varianceSchema>;

export const videoSchema = z.object({
	width: nonNegative.optional(),
	height: nonNegative.optional(),
	fps: nonNegative.optional(),
	activeLayers: z.int().min(0),
	temporalLayers: z.int().min(0).optional(),
	keyframesPerMin: nonNegative.optional(),
	frameBytes: z.object({ mean: nonNegative, p50: nonNegative, p95: nonNegative }).optional(),
	sceneChanges: z.object({ count: z.int().min(0), perMin: nonNegative, meanMagnitude: nonNegative }),
	/**
	 * Keyframes the profiler asked this sender for to read its layers' sizes (opt-in
	 * profiling.keyframeProbes; absent when none). Sizes are otherwise learned without asking:
	 * the app's appData.layers, the encodings' scale factors, and keyframes a consumer asked for anyway.
	 */
	keyframesRequested: z.int().min(0).optional(),
});
export type VideoProfile = z.infer<typeof videoSchema>;

export const opusBandwidthSchema = z.enum(['NB', 'MB', 'WB', 'SWB', 'FB']);
export const opusModeSchema = z.enum(['SILK', 'HYBRID', 'CELT']);

export const audioSchema = z.object({
	clockRate: z.int().min(1),
	channels: z.int().min(1),
	opusBandwidth: opusBandwidthSchema.optional(),
	opusMode: opusModeSchema.optional(),
	frameMs: nonNegative.optional(),
	dtx: z.boolean().optional(),
	/** Share of the last window with voice (audio level above the VAD threshold). */
	voiceActivity: fraction.optional(),
});
export type AudioProfile = z.infer<typeof audioSchema>;

export const dataSchema = z.object({
	messagesPerS: nonNegative,
	bytesPerS: nonNegative,
	meanBytes: nonNegative,
	p95Bytes: nonNegative,
	/** Share of messages that were strings (vs binary). */
	stringShare: fraction,
	/** Counts of configured keywords only; never message content. */
	keywordCounts: z.record(z.string(), z.int().min(0)).optional(),
});
export type DataProfile = z.infer<typeof dataSchema>;

export const streamProfileSchema = z.object({
	schemaVersion: z.literal(PROFILE_SCHEMA_VERSION),
	/** Milliseconds since the epoch. */
	ts: finite,
	streamId: z.string().min(1),
	entity: entityKindSchema,
	kind: z.enum(['audio', 'video', 'data']),
	dataType: dataTypeSchema,
	workerId: z.string(),
	routerId: z.string(),
	transportId: z.string(),
	/** For consumers: the producer they consume. */
	producerId: z.string().optional(),
	/** e.g. "video/VP8", "audio/opus". */
	mimeType: z.string().optional(),
	flow: flowSchema,
	layers: z.array(layerSchema),
	variance: varianceSchema,
	video: videoSchema.optional(),
	audio: audioSchema.optional(),
	data: dataSchema.optional(),
	/** Dimensionless, comparable across kinds; see features/complexity.ts. */
	complexity: nonNegative,
	/** Predictive entropy in [0, 1]: 0 = perfectly predictable, 1 = i.i.d. surprise. */
	entropy: fraction,
});
export type StreamProfile = z.infer<typeof streamProfileSchema>;

export const connectionProfileSchema = z.object({
	schemaVersion: z.literal(PROFILE_SCHEMA_VERSION),
	ts: finite,
	transportId: z.string(),
	workerId: z.string(),
	routerId: z.string(),
	transportType: z.enum(['webrtc', 'plain', 'pipe', 'direct']),
	recvBitrateBps: nonNegative,
	sendBitrateBps: nonNegative,
	/** Share of the connection's bytes by data type; sums to 1 when any bytes flowed. */
	distribution: z.record(dataTypeSchema, fraction),
	streamIds: z.array(z.string()),
});
export type ConnectionProfile = z.infer<typeof connectionProfileSchema>;

export const workerLoadSampleSchema = z.object({
	ts: finite,
	workerId: z.string(),
	pid: z.int(),
	/** Percent of one core over the last interval (user + system). */
	cpuPct: nonNegative,
	/** Current resident set size. */
	rssBytes: nonNegative,
	routers: z.int().min(0),
	transports: z.int().min(0),
	producers: z.int().min(0),
	consumers: z.int().min(0),
	dataProducers: z.int().min(0),
	dataConsumers: z.int().min(0),
});
export type WorkerLoadSample = z.infer<typeof workerLoadSampleSchema>;
