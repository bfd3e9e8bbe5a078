import type { StreamProfile, WorkerLoadSample } from '../profile/schema';
import { HORIZONS_S, networkOfStreams, type HorizonS, type ResourceVector, type StreamEvent, type TrainingExample, type WorkerSnapshot } from './types';

/** Everything recorded about one worker in one session, as exported from the store. */
export interface WorkerTimeline {
	workerId: string;
	sessionId: string;
	/** Load samples, any order. */
	samples: readonly WorkerLoadSample[];
	/** Every profile emitted for the worker's streams, any order. */
	profiles: readonly StreamProfile[];
	/** Recorded joins and leaves; derived from first and last profiles when absent. */
	events?: readonly StreamEvent[];
}

/** Load samples and stream profiles grouped into one timeline per worker, in order of first appearance. */
export function timelinesByWorker(
	samples: Iterable<WorkerLoadSample>,
	profiles: Iterable<StreamProfile>,
	sessionIdOf: (workerId: string) => string,
): Array<WorkerTimeline & { samples: WorkerLoadSample[]; profiles: StreamProfile[] }> {
	const byWorker = new Map<string, { workerId: string; sessionId: string; samples: WorkerLoadSample[]; profiles: StreamProfile[] }>();
	const timeline = (workerId: string) => {
		let t = byWorker.get(workerId);
		if (!t) byWorker.set(workerId, (t = { workerId, sessionId: sessionIdOf(workerId), samples: [], profiles: [] }));
		return t;
	};
	for (const s of samples) timeline(s.workerId).samples.push(s);
	for (const p of profiles) timeline(p.workerId).profiles.push(p);
	return [...byWorker.values()];
}

export interface ExampleOptions {
	/** Seconds between examples. Default 1. */
	strideS?: number;
	/** Load history in a snapshot. Default 30 s. */
	historyS?: number;
	/** Join/leave history in a snapshot. Default 60 s. */
	eventsS?: number;
	/**
	 * A profile older than this is a stream that is gone. Default 3000 ms; a stream whose
	 * profiles come further apart (the profiler's slow tier refreshes every 5 s) is gone
	 * only after missing STALE_AFTER_GAPS of its own refreshes.
	 */
	staleProfileMs?: number;
	/** How far the sample used as the target may be from now + h. Default 1000 ms. */
	toleranceMs?: number;
}

/**
 * Profiles are refreshed on tiers (every second while a stream is new or changing, every
 * few seconds otherwise): a stream whose own refreshes come further apart than
 * staleProfileMs is gone once it missed this many of them (its last interval between
 * profiles); any other after staleProfileMs.
 */
export const STALE_AFTER_GAPS = 2;

function staleAfterMs(staleProfileMs: number, lastGapMs: number | undefined): number {
	return lastGapMs !== undefined && lastGapMs > staleProfileMs ? STALE_AFTER_GAPS * lastGapMs : staleProfileMs;
}

/** Joins at each stream's first profile, leaves one staleness period after its last. */
export function deriveEvents(profiles: readonly StreamProfile[], staleProfileMs: number): StreamEvent[] {
	const span = new Map<string, { first: StreamProfile; last: StreamProfile; prevTs?: number }>();
	for (const p of profiles) {
		const s = span.get(p.streamId);
		if (!s) span.set(p.streamId, { first: p, last: p });
		else {
			if (p.ts < s.first.ts) s.first = p;
			if (p.ts > s.last.ts) {
				s.prevTs = s.last.ts;
				s.last = p;
			} else if (p.ts < s.last.ts && (s.prevTs === undefined || p.ts > s.prevTs)) s.prevTs = p.ts;
		}
	}
	const events: StreamEvent[] = [];
	for (const { first, last, prevTs } of span.values()) {
		events.push({ ts: first.ts, type: 'join', streamId: first.streamId, entity: first.entity });
		const gap = prevTs === undefined ? undefined : last.ts - prevTs;
		events.push({ ts: last.ts + staleAfterMs(staleProfileMs, gap), type: 'leave', streamId: last.streamId, entity: last.entity });
	}
	return events.sort((a, b) => a.ts - b.ts);
}

/** Latest fresh profile of every stream at each requested instant (instants ascending). */
export function streamsAt(profiles: readonly StreamProfile[], instants: readonly number[], staleProfileMs: number, leaves: ReadonlyMap<string, number[]>): StreamProfile[][] {
	const sorted = [...profiles].sort((a, b) => a.ts - b.ts);
	const latest = new Map<string, StreamProfile>();
	const gaps = new Map<string, number>();
	const out: StreamProfile[][] = [];
	let i = 0;
	for (const t of instants) {
		while (i < sorted.length && sorted[i]!.ts <= t) {
			const p = sorted[i]!;
			const before = latest.get(p.streamId);
			if (before && p.ts > before.ts) gaps.set(p.streamId, p.ts - before.ts);
			latest.set(p.streamId, p);
			i++;
		}
		const present: StreamProfile[] = [];
		for (const p of latest.values()) {
			if (p.ts < t - staleAfterMs(staleProfileMs, gaps.get(p.streamId))) continue;
			// A recorded leave after its last profile means the stream is gone even if the profile is fresh.
			if (leaves.get(p.streamId)?.some((ts) => ts > p.ts && ts <= t)) continue;
			present.push(p);
		}
		out.push(present);
	}
	return out;
}

/**
 * Supervised examples from a recorded timeline: the worker as seen at each instant
 * (recent samples, fresh profiles, recent events) with what happened h seconds later —
 * CPU and RSS from the load sample nearest to now + h, network from the streams then.
 * Instants without a target sample within tolerance for every horizon are skipped.
 */
export function buildExamples(timeline: WorkerTimeline, options: ExampleOptions = {}): TrainingExample[] {
	const strideMs = (options.strideS ?? 1) * 1000;
	const historyMs = (options.historyS ?? 30) * 1000;
	const eventsMs = (options.eventsS ?? 60) * 1000;
	const staleProfileMs = options.staleProfileMs ?? 3000;
	const toleranceMs = options.toleranceMs ?? 1000;
	const samples = [...timeline.samples].sort((a, b) => a.ts - b.ts);
	if (samples.length === 0) return [];
	const events = [...(timeline.events ?? deriveEvents(timeline.profiles, staleProfileMs))].sort((a, b) => a.ts - b.ts);
	const leaves = new Map<string, number[]>();
	for (const e of events) if (e.type === 'leave') leaves.set(e.streamId, [...(leaves.get(e.streamId) ?? []), e.ts]);

	const nearestSample = (t: number): WorkerLoadSample | undefined => {
		let lo = 0;
		let hi = samples.length - 1;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (samples[mid]!.ts < t) lo = mid + 1;
			else hi = mid;
		}
		const candidates = [samples[lo - 1], samples[lo]].filter((s): s is WorkerLoadSample => s !== undefined);
		const best = candidates.sort((a, b) => Math.abs(a.ts - t) - Math.abs(b.ts - t))[0];
		return best && Math.abs(best.ts - t) <= toleranceMs ? best : undefined;
	};

	const first = samples[0]!.ts + historyMs;
	const last = samples[samples.length - 1]!.ts - HORIZONS_S[HORIZONS_S.length - 1]! * 1000;
	const instants: number[] = [];
	for (let t = first; t <= last; t += strideMs) instants.push(t);
	const horizonInstants = instants.flatMap((t) => [t, ...HORIZONS_S.map((h) => t + h * 1000)]).sort((a, b) => a - b);
	const streamsByInstant = new Map<number, StreamProfile[]>();
	const resolved = streamsAt(timeline.profiles, [...new Set(horizonInstants)], staleProfileMs, leaves);
	[...new Set(horizonInstants)].forEach((t, i) => streamsByInstant.set(t, resolved[i]!));

	const examples: TrainingExample[] = [];
	for (const now of instants) {
		const targets = {} as Record<HorizonS, ResourceVector>;
		let complete = true;
		for (const h of HORIZONS_S) {
			const future = nearestSample(now + h * 1000);
			if (!future) {
				complete = false;
				break;
			}
			targets[h] = { cpuPct: future.cpuPct, rssBytes: future.rssBytes, ...networkOfStreams(streamsByInstant.get(now + h * 1000)!) };
		}
		if (!complete) continue;
		const snapshot: WorkerSnapshot = {
			workerId: timeline.workerId,
			now,
			samples: samples.filter((s) => s.ts > now - historyMs && s.ts <= now),
			streams: streamsByInstant.get(now)!,
			events: events.filter((e) => e.ts > now - eventsMs && e.ts <= now),
		};
		examples.push({ snapshot, targets, sessionId: timeline.sessionId });
	}
	return examples;
}

/** Train/held-out split by whole sessions: the sessions named in `heldOut` go to the second set. */
export function splitBySession(examples: readonly TrainingExample[], heldOut: ReadonlySet<string>): { train: TrainingExample[]; heldOut: TrainingExample[] } {
	const train: TrainingExample[] = [];
	const held: TrainingExample[] = [];
	for (const e of examples) (e.sessionId !== undefined && heldOut.has(e.sessionId) ? held : train).push(e);
	return { train, heldOut: held };
}
