/**
 * What the profiler's subsystems share about one profiled stream. Each subsystem
 * (stats rounds, consumer counters, traces, probes, taps) keeps its own state in
 * its own slot and touches no other slot: the accumulator is the one place they all
 * write to, and it is pure.
 */
import type { StreamNode } from '../observe/registry';
import type { StreamAccumulator } from './accumulator';
import type { ConsumerCounters } from './consumerCounters';
import type { ProbeState } from './probes';
import type { RoundState } from './schedule';
import type { TapState } from './taps';
import type { TraceState } from './traces';

/**
 * One stream's pending timers, cleared together when the stream is forgotten: a
 * cycle (trace window, tap window, probe retry) must never outlive its stream.
 */
export class StreamTimers {
	private readonly pending = new Set<NodeJS.Timeout>();

	/** Runs fn after ms unless the stream is forgotten first; unref'd, so profiling never keeps a process alive. */
	later(ms: number, fn: () => void): void {
		const t = setTimeout(() => {
			this.pending.delete(t);
			fn();
		}, ms);
		t.unref();
		this.pending.add(t);
	}

	clear(): void {
		for (const t of this.pending) clearTimeout(t);
		this.pending.clear();
	}

	get size(): number {
		return this.pending.size;
	}
}

export interface ProfiledStream {
	readonly node: StreamNode;
	readonly acc: StreamAccumulator;
	readonly timers: StreamTimers;
	/** False once forgotten: chains of callbacks (trace cycles, probes, taps) check it before each step. */
	live: boolean;
	/** The stats rounds' slot (schedule.ts). */
	readonly round: RoundState;
	/** Consumers only: their counters between own getStats() rounds (consumerCounters.ts). */
	readonly consumer?: ConsumerCounters;
	/** Producers the profiler traces (traces.ts). */
	trace?: TraceState;
	/** Video producers whose resolution is read from keyframes (probes.ts). */
	probe?: ProbeState;
	/** Streams with a payload tap (taps.ts). */
	tap?: TapState;
}
