import { z } from 'zod';
import {
	connectionProfileSchema,
	streamProfileSchema,
	workerLoadSampleSchema,
	type ConnectionProfile,
	type StreamProfile,
	type WorkerLoadSample,
} from '../profile/schema';
import { Ring } from './ring';
import { RowRing } from './rows';
import {
	actionOrder,
	assertLimit,
	assertRange,
	attachNearestLoad,
	connectionOrder,
	DEFAULT_LOAD_SKEW_MS,
	inRange,
	loadOrder,
	newestStreamFirst,
	resolutionBucket,
	streamOrder,
	withStoredTs,
} from './semantics';
import {
	allocationActionSchema,
	type AllocationAction,
	type LatestQuery,
	type ProfileStore,
	type SimilarityCandidate,
	type SimilarityQuery,
	type StoreStats,
} from './types';

export interface MemoryStoreOptions {
	/** Per stream, per transport and per worker: older points are overwritten. 3600 = 1 h at 1 Hz. */
	maxPointsPerSeries?: number;
	/** Per record type: the series written to least recently is forgotten first. */
	maxSeries?: number;
	/**
	 * How long points are kept, in ms before the newest point written to their record type:
	 * older points are forgotten, and so is a series with none newer (a closed stream's). What
	 * the store holds is then about what that span wrote — see DEFAULT_MEMORY_RETENTION_MS.
	 */
	retentionMs?: number;
	maxActions?: number;
	/** How far a worker load sample may be from a profile to describe it. */
	loadSkewMs?: number;
}

/**
 * An hour: the span maxPointsPerSeries' default holds at 1 Hz, and twice the live retraining's
 * default history (retraining.historyMs, 30 min), the longest look back Foresight takes. At
 * the slow tier's pace (a stream's profile every 5 s or so, its consumers' with it) an hour of
 * 400 streams is ≈ 350,000 rows of ≈ 0.4–0.7 kB, ≈ 200 MB; the points-per-series
 * bound alone would keep every closed stream's rows until maxSeries series exist.
 */
export const DEFAULT_MEMORY_RETENTION_MS = 3_600_000;

export const MEMORY_SNAPSHOT_FORMAT = 'foresight-memory-snapshot';

export const memorySnapshotSchema = z.object({
	format: z.literal(MEMORY_SNAPSHOT_FORMAT),
	version: z.literal(1),
	streamProfiles: z.array(streamProfileSchema),
	connectionProfiles: z.array(connectionProfileSchema),
	workerLoad: z.array(workerLoadSampleSchema),
	actions: z.array(allocationActionSchema),
});
export type MemorySnapshot = z.infer<typeof memorySnapshotSchema>;

/**
 * A bounded map of ring buffers keyed by series id, each record a typed row (see rows.ts).
 * Touching a series moves it to the back of the Map's insertion order, so eviction takes
 * the stalest series.
 */
class SeriesRings<T extends { ts: number }> {
	private readonly rings = new Map<string, RowRing<T>>();
	/** The newest time written: points older than it by retentionMs are forgotten. */
	private newestTs = -Infinity;

	constructor(
		private readonly maxPointsPerSeries: number,
		private readonly maxSeries: number,
		private readonly retentionMs: number,
	) {}

	add(key: string, record: T): void {
		const ring = this.write(key, record);
		const advanced = record.ts > this.newestTs;
		if (advanced) this.newestTs = record.ts;
		const cutoff = this.newestTs - this.retentionMs;
		ring.dropBefore(cutoff);
		// A point older than the span is not kept, nor a series of only such points.
		if (ring.size === 0) this.rings.delete(key);
		if (!advanced) return;
		// The series written to least recently come first: forget those with nothing left in the span.
		for (const [stalest, r] of this.rings) {
			if (r.size > 0 && r.tsAt(r.size - 1) >= cutoff) break;
			this.rings.delete(stalest);
		}
	}

	private write(key: string, record: T): RowRing<T> {
		let ring = this.rings.get(key);
		if (ring) {
			this.rings.delete(key);
		} else {
			ring = new RowRing<T>(this.maxPointsPerSeries);
			if (this.rings.size >= this.maxSeries) {
				const stalest = this.rings.keys().next().value;
				if (stalest !== undefined) this.rings.delete(stalest);
			}
		}
		this.rings.set(key, ring);
		// Same series and time: a rewrite, as in InfluxDB.
		if (ring.size > 0 && ring.tsAt(ring.size - 1) === record.ts) ring.set(ring.size - 1, record);
		else ring.push(record);
		return ring;
	}

	series(): IterableIterator<RowRing<T>> {
		return this.rings.values();
	}

	/** Records with from ≤ ts ≤ to that `keep` accepts; only those rows are decoded. */
	range(from: number, to: number, keep: (r: T) => boolean = () => true): T[] {
		const out: T[] = [];
		for (const ring of this.rings.values()) {
			for (let i = 0; i < ring.size; i++) {
				if (!inRange(ring.tsAt(i), from, to)) continue;
				const r = ring.at(i)!;
				if (keep(r)) out.push(r);
			}
		}
		return out;
	}

	all(): T[] {
		const out: T[] = [];
		for (const ring of this.rings.values()) for (const r of ring) out.push(r);
		return out;
	}
}

/** The embedded store used when no InfluxDB is configured; everything stays in this process. */
export class MemoryStore implements ProfileStore {
	private readonly streams: SeriesRings<StreamProfile>;
	private readonly connections: SeriesRings<ConnectionProfile>;
	private readonly loads: SeriesRings<WorkerLoadSample>;
	private readonly actions: Ring<AllocationAction>;
	private readonly loadSkewMs: number;
	private written = 0;

	constructor(options: MemoryStoreOptions = {}) {
		const perSeries = options.maxPointsPerSeries ?? 3600;
		const maxSeries = options.maxSeries ?? 10_000;
		const retentionMs = options.retentionMs ?? DEFAULT_MEMORY_RETENTION_MS;
		if (!(retentionMs > 0)) throw new RangeError('retentionMs must be positive');
		this.streams = new SeriesRings(perSeries, maxSeries, retentionMs);
		this.connections = new SeriesRings(perSeries, maxSeries, retentionMs);
		this.loads = new SeriesRings(perSeries, maxSeries, retentionMs);
		this.actions = new Ring(options.maxActions ?? 10_000);
		this.loadSkewMs = options.loadSkewMs ?? DEFAULT_LOAD_SKEW_MS;
	}

	static fromSnapshot(snapshot: unknown, options?: MemoryStoreOptions): MemoryStore {
		const parsed = memorySnapshotSchema.parse(snapshot);
		const store = new MemoryStore(options);
		// Oldest first so that ring eviction keeps the newest when the snapshot is larger than the bounds.
		for (const p of [...parsed.streamProfiles].sort(streamOrder)) store.streams.add(p.streamId, withStoredTs(p));
		for (const p of [...parsed.connectionProfiles].sort(connectionOrder)) store.connections.add(p.transportId, withStoredTs(p));
		for (const s of [...parsed.workerLoad].sort(loadOrder)) store.loads.add(s.workerId, withStoredTs(s));
		for (const a of [...parsed.actions].sort(actionOrder)) store.addAction(withStoredTs(a));
		return store;
	}

	snapshot(): MemorySnapshot {
		return {
			format: MEMORY_SNAPSHOT_FORMAT,
			version: 1,
			streamProfiles: this.streams.all().sort(streamOrder),
			connectionProfiles: this.connections.all().sort(connectionOrder),
			workerLoad: this.loads.all().sort(loadOrder),
			actions: [...this.actions].sort(actionOrder),
		};
	}

	async writeStreamProfiles(profiles: readonly StreamProfile[]): Promise<void> {
		for (const p of profiles) this.streams.add(p.streamId, withStoredTs(p));
		this.written += profiles.length;
	}

	async writeConnectionProfiles(profiles: readonly ConnectionProfile[]): Promise<void> {
		for (const p of profiles) this.connections.add(p.transportId, withStoredTs(p));
		this.written += profiles.length;
	}

	async writeWorkerLoad(samples: readonly WorkerLoadSample[]): Promise<void> {
		for (const s of samples) this.loads.add(s.workerId, withStoredTs(s));
		this.written += samples.length;
	}

	async writeAction(action: AllocationAction): Promise<void> {
		this.addAction(withStoredTs(action));
		this.written++;
	}

	private addAction(action: AllocationAction): void {
		// Updates (actualAfter filled in later) land on the same record, like an InfluxDB rewrite.
		for (let i = this.actions.size - 1; i >= 0; i--) {
			const a = this.actions.at(i)!;
			if (a.ts === action.ts && a.workerId === action.workerId && a.action === action.action) {
				this.actions.set(i, action);
				return;
			}
		}
		this.actions.push(action);
	}

	async latestStreamProfiles(query: LatestQuery = {}): Promise<StreamProfile[]> {
		const out: StreamProfile[] = [];
		for (const ring of this.streams.series()) {
			let at = -1;
			for (let i = 0; i < ring.size; i++) if (at < 0 || ring.tsAt(i) >= ring.tsAt(at)) at = i;
			const newest = ring.at(at);
			if (!newest) continue;
			if (query.since !== undefined && newest.ts < query.since) continue;
			if (query.workerId !== undefined && newest.workerId !== query.workerId) continue;
			out.push(newest);
		}
		return out.sort(streamOrder);
	}

	async workerLoadHistory(from: number, to: number, workerId?: string): Promise<WorkerLoadSample[]> {
		assertRange(from, to);
		return this.loads.range(from, to, (s) => workerId === undefined || s.workerId === workerId).sort(loadOrder);
	}

	async streamHistory(from: number, to: number, workerId?: string): Promise<StreamProfile[]> {
		assertRange(from, to);
		return this.streams.range(from, to, (p) => workerId === undefined || p.workerId === workerId).sort(streamOrder);
	}

	async connectionHistory(from: number, to: number, workerId?: string): Promise<ConnectionProfile[]> {
		assertRange(from, to);
		return this.connections.range(from, to, (p) => workerId === undefined || p.workerId === workerId).sort(connectionOrder);
	}

	async actionHistory(from: number, to: number): Promise<AllocationAction[]> {
		assertRange(from, to);
		return [...this.actions].filter((a) => inRange(a.ts, from, to)).sort(actionOrder);
	}

	async similarityCandidates(query: SimilarityQuery): Promise<SimilarityCandidate[]> {
		assertLimit(query.limit);
		const matches = (p: StreamProfile): boolean =>
			p.kind === query.kind &&
			(query.entity === undefined || p.entity === query.entity) &&
			(query.since === undefined || p.ts >= query.since) &&
			(query.mimeType === undefined || p.mimeType === query.mimeType) &&
			(query.resolutionBucket === undefined || resolutionBucket(p) === query.resolutionBucket);
		const found: StreamProfile[] = [];
		for (const ring of this.streams.series()) {
			// At most `limit` per stream can make the overall newest `limit`.
			let taken = 0;
			for (let i = ring.size - 1; i >= 0 && taken < query.limit; i--) {
				const p = ring.at(i)!;
				if (matches(p)) {
					found.push(p);
					taken++;
				}
			}
		}
		const profiles = found.sort(newestStreamFirst).slice(0, query.limit);
		if (profiles.length === 0) return [];
		const workers = new Set(profiles.map((p) => p.workerId));
		let from = Infinity;
		let to = -Infinity;
		for (const p of profiles) {
			from = Math.min(from, p.ts - this.loadSkewMs);
			to = Math.max(to, p.ts + this.loadSkewMs);
		}
		const loads = this.loads.range(from, to, (s) => workers.has(s.workerId));
		return attachNearestLoad(profiles, loads, this.loadSkewMs);
	}

	async flush(): Promise<boolean> {
		return true;
	}

	stats(): StoreStats {
		return { bufferedPoints: 0, bufferedBytes: 0, droppedPoints: 0, rejectedPoints: 0, writtenPoints: this.written };
	}

	async close(): Promise<void> {
		/* nothing held outside the heap */
	}
}
