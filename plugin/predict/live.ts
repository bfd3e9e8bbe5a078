/**
 * The recent past of each worker as the live predictor needs it: load samples,
 * the latest profile of every stream, and stream joins/leaves. Bounded per
 * worker; pure (inputs carry their own timestamps).
 */
import type { StreamEntityKind, StreamProfile, WorkerLoadSample } from '../profile/schema';
import type { StreamEvent, WorkerSnapshot } from './types';

export interface LiveHistoryOptions {
	/** Load samples kept per worker (the longest trend window the predictors use, plus slack). */
	maxSamples?: number;
	/** Join/leave events older than this are forgotten. */
	eventWindowMs?: number;
}

interface WorkerHistory {
	samples: WorkerLoadSample[];
	streams: readonly StreamProfile[];
	events: StreamEvent[];
}

export class LiveHistory {
	private readonly workers = new Map<string, WorkerHistory>();
	private readonly maxSamples: number;
	private readonly eventWindowMs: number;

	constructor(options: LiveHistoryOptions = {}) {
		this.maxSamples = options.maxSamples ?? 120;
		this.eventWindowMs = options.eventWindowMs ?? 120_000;
	}

	private of(workerId: string): WorkerHistory {
		let h = this.workers.get(workerId);
		if (!h) {
			h = { samples: [], streams: [], events: [] };
			this.workers.set(workerId, h);
		}
		return h;
	}

	addSample(sample: WorkerLoadSample): void {
		const h = this.of(sample.workerId);
		h.samples.push(sample);
		if (h.samples.length > this.maxSamples) h.samples.splice(0, h.samples.length - this.maxSamples);
	}

	/** The streams of one worker as of its latest profiling round. */
	setStreams(workerId: string, streams: readonly StreamProfile[]): void {
		this.of(workerId).streams = streams;
	}

	latestSample(workerId: string): WorkerLoadSample | undefined {
		return this.workers.get(workerId)?.samples.at(-1);
	}

	streamsOf(workerId: string): readonly StreamProfile[] {
		return this.workers.get(workerId)?.streams ?? [];
	}

	addEvent(workerId: string, ts: number, type: StreamEvent['type'], streamId: string, entity: StreamEntityKind): void {
		const h = this.of(workerId);
		h.events.push({ ts, type, streamId, entity });
		const cutoff = ts - this.eventWindowMs;
		while (h.events.length > 0 && h.events[0]!.ts < cutoff) h.events.shift();
	}

	removeWorker(workerId: string): void {
		this.workers.delete(workerId);
	}

	/** One snapshot per worker that has at least one load sample. */
	snapshots(nowMs: number): WorkerSnapshot[] {
		const out: WorkerSnapshot[] = [];
		for (const [workerId, h] of this.workers) {
			if (h.samples.length === 0) continue;
			out.push({ workerId, now: nowMs, samples: h.samples, streams: h.streams, events: h.events });
		}
		return out;
	}
}
