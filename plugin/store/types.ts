import { z } from 'zod';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../profile/schema';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const nonNegative = finite.refine((v) => v >= 0, 'must be ≥ 0');

/** What the predictor expected (or what was measured) for one worker. */
export const resourceEstimateSchema = z.object({
	/** Percent of one core. */
	cpuPct: nonNegative,
	rssBytes: nonNegative.optional(),
	/** Egress the worker sends, bits per second. */
	egressBps: nonNegative.optional(),
});
export type ResourceEstimate = z.infer<typeof resourceEstimateSchema>;

/**
 * Audit record of one allocation decision. Writing the same (ts, workerId, action)
 * again later — typically to fill in actualAfter — updates the record instead of
 * adding a second one, in both stores.
 */
export const allocationActionSchema = z.object({
	/** Milliseconds since the epoch. */
	ts: finite,
	/** e.g. "migrate-producer", "pipe-to-worker", "refuse-new-transport". */
	action: z.string().min(1),
	/** Ids of the producers/consumers/transports/routers the action moves or affects. */
	targetIds: z.array(z.string()),
	/** Worker the action relieves. */
	workerId: z.string(),
	/** Worker that receives the load, when the action moves any. */
	toWorkerId: z.string().optional(),
	reason: z.string(),
	predictedBefore: resourceEstimateSchema,
	predictedAfter: resourceEstimateSchema,
	actualAfter: resourceEstimateSchema.optional(),
	/** true when the manager only logged what it would have done. */
	dryRun: z.boolean(),
});
export type AllocationAction = z.infer<typeof allocationActionSchema>;

/** Coarse resolution classes so "similar" video streams are those of comparable size. */
export type ResolutionBucket = 'audio' | 'data' | 'unknown' | 'le180p' | 'le360p' | 'le540p' | 'le720p' | 'le1080p' | 'gt1080p';

export interface SimilarityQuery {
	kind: StreamProfile['kind'];
	/** Omitted: producers and consumers alike. */
	entity?: StreamProfile['entity'];
	/** Exact mimeType (e.g. "video/VP8"); omitted: any codec. */
	mimeType?: string;
	/** Omitted: any resolution. */
	resolutionBucket?: ResolutionBucket;
	/** Only profiles at or after this time (ms); omitted: all retained. */
	since?: number;
	/** Most recent profiles first, at most this many (1..10,000). */
	limit: number;
}

export interface SimilarityCandidate {
	profile: StreamProfile;
	/**
	 * The load sample of the profile's worker nearest in time to the profile (within
	 * the store's load-skew tolerance), i.e. what the worker cost while carrying it.
	 */
	load: WorkerLoadSample | undefined;
}

export interface StoreStats {
	/** Points accepted but not yet confirmed written (including a batch in flight). */
	bufferedPoints: number;
	bufferedBytes: number;
	/** Points discarded because a buffer bound was hit (oldest first). Never silently. */
	droppedPoints: number;
	/** Points the server refused outright (e.g. a field-type conflict): retrying cannot help. */
	rejectedPoints: number;
	/** Points confirmed stored. */
	writtenPoints: number;
}

export interface LatestQuery {
	workerId?: string;
	/** Only streams with a profile at or after this time (ms). */
	since?: number;
}

/**
 * Where profiles, worker load and allocation decisions live. Writes never throw
 * for transport reasons (they buffer, then drop and count); they resolve late only
 * as backpressure when the backend is up but slower than the producer.
 *
 * Time ranges are inclusive on both ends, in ms since the epoch; timestamps are
 * kept at millisecond resolution (fractional ms are rounded). Results are sorted by
 * time, then by id. A second record with the same series key and ts replaces the first.
 */
export interface ProfileStore {
	writeStreamProfiles(profiles: readonly StreamProfile[]): Promise<void>;
	writeConnectionProfiles(profiles: readonly ConnectionProfile[]): Promise<void>;
	writeWorkerLoad(samples: readonly WorkerLoadSample[]): Promise<void>;
	writeAction(action: AllocationAction): Promise<void>;

	/** The newest profile of every stream (optionally of one worker). */
	latestStreamProfiles(query?: LatestQuery): Promise<StreamProfile[]>;
	workerLoadHistory(from: number, to: number, workerId?: string): Promise<WorkerLoadSample[]>;
	streamHistory(from: number, to: number, workerId?: string): Promise<StreamProfile[]>;
	connectionHistory(from: number, to: number, workerId?: string): Promise<ConnectionProfile[]>;
	actionHistory(from: number, to: number): Promise<AllocationAction[]>;
	similarityCandidates(query: SimilarityQuery): Promise<SimilarityCandidate[]>;

	/** Sends everything buffered; resolves true when all of it is stored. */
	flush(timeoutMs?: number): Promise<boolean>;
	stats(): StoreStats;
	/** Flushes (bounded by timeoutMs; what cannot be written is counted as dropped) and releases resources. */
	close(timeoutMs?: number): Promise<void>;
}
