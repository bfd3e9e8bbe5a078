import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../profile/schema';
import type { AllocationAction, ResolutionBucket, SimilarityCandidate } from './types';

/**
 * Query semantics both stores share, kept free of I/O so MemoryStore and
 * InfluxStore cannot drift apart on ordering, bucketing or joins.
 */

/** Stores keep ms resolution (InfluxDB is written with precision=ms). */
export function toStoredMs(ts: number): number {
	return Math.round(ts);
}

export function withStoredTs<T extends { ts: number }>(record: T): T {
	const ts = toStoredMs(record.ts);
	return ts === record.ts ? record : { ...record, ts };
}

export function resolutionBucket(profile: Pick<StreamProfile, 'kind' | 'video' | 'layers'>): ResolutionBucket {
	if (profile.kind === 'audio') return 'audio';
	if (profile.kind === 'data') return 'data';
	let height = profile.video?.height;
	if (height === undefined) {
		for (const layer of profile.layers) {
			if (layer.active && layer.height !== undefined) height = Math.max(height ?? 0, layer.height);
		}
	}
	if (height === undefined || height <= 0) return 'unknown';
	if (height <= 180) return 'le180p';
	if (height <= 360) return 'le360p';
	if (height <= 540) return 'le540p';
	if (height <= 720) return 'le720p';
	if (height <= 1080) return 'le1080p';
	return 'gt1080p';
}

const byTsThen =
	<T extends { ts: number }>(idOf: (r: T) => string) =>
	(a: T, b: T): number =>
		a.ts - b.ts || (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0);

export const streamOrder = byTsThen<StreamProfile>((p) => p.streamId);
export const connectionOrder = byTsThen<ConnectionProfile>((p) => p.transportId);
export const loadOrder = byTsThen<WorkerLoadSample>((s) => s.workerId);
export const actionOrder = byTsThen<AllocationAction>((a) => `${a.workerId}\u0000${a.action}`);

/** Newest first, ties by stream id: the order similarity candidates come in. */
export const newestStreamFirst = (a: StreamProfile, b: StreamProfile): number => -streamOrder(a, b);

export function inRange(ts: number, from: number, to: number): boolean {
	return ts >= from && ts <= to;
}

/** Default tolerance between a profile and the load sample that describes its worker. */
export const DEFAULT_LOAD_SKEW_MS = 5_000;

/**
 * Pairs each profile with its worker's load sample nearest in time, within
 * maxSkewMs. `loads` may hold any workers, in any order.
 */
export function attachNearestLoad(profiles: readonly StreamProfile[], loads: readonly WorkerLoadSample[], maxSkewMs: number): SimilarityCandidate[] {
	const byWorker = new Map<string, WorkerLoadSample[]>();
	for (const s of loads) {
		let list = byWorker.get(s.workerId);
		if (!list) byWorker.set(s.workerId, (list = []));
		list.push(s);
	}
	for (const list of byWorker.values()) list.sort(loadOrder);
	return profiles.map((profile) => {
		const list = byWorker.get(profile.workerId);
		if (!list || list.length === 0) return { profile, load: undefined };
		// First sample at or after the profile; the nearest is it or its predecessor.
		let lo = 0;
		let hi = list.length;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (list[mid]!.ts < profile.ts) lo = mid + 1;
			else hi = mid;
		}
		let best: WorkerLoadSample | undefined;
		for (const candidate of [list[lo - 1], list[lo]]) {
			if (!candidate) continue;
			if (!best || Math.abs(candidate.ts - profile.ts) < Math.abs(best.ts - profile.ts)) best = candidate;
		}
		return { profile, load: best && Math.abs(best.ts - profile.ts) <= maxSkewMs ? best : undefined };
	});
}

export function assertRange(from: number, to: number): void {
	if (!Number.isFinite(from) || !Number.isFinite(to)) throw new RangeError('from and to must be finite ms timestamps');
}

export function assertLimit(limit: number): void {
	if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RangeError('limit must be an integer in 1..10000');
}
