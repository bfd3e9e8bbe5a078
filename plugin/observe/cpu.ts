import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Cumulative CPU time of a process at one instant. */
export interface CpuReading {
	/** user + system CPU time, milliseconds (mediasoup's ru_utime/ru_stime are in ms). */
	cpuMs: number;
	/** Wall clock of the reading, milliseconds (monotonic source preferred). */
	atMs: number;
}

/**
 * Percent of one core used between two readings. Undefined when the interval is
 * empty or time went backwards (a restarted process reusing a pid).
 */
export function cpuPercentBetween(prev: CpuReading, cur: CpuReading): number | undefined {
	const wall = cur.atMs - prev.atMs;
	const cpu = cur.cpuMs - prev.cpuMs;
	if (wall <= 0 || cpu < 0) return undefined;
	return (100 * cpu) / wall;
}

/** VmRSS from the text of /proc/<pid>/status, in bytes. */
export function rssFromProcStatus(status: string): number | undefined {
	const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
	return m ? Number(m[1]) * 1024 : undefined;
}

/** Time on CPU in nanoseconds: the first field of /proc/<pid>/task/<tid>/schedstat. */
export function onCpuNsFromSchedstat(schedstat: string): number | undefined {
	const ns = Number(schedstat.slice(0, schedstat.indexOf(' ')));
	return Number.isFinite(ns) && ns >= 0 ? ns : undefined;
}

/**
 * A process's CPU time read synchronously from /proc at the moment of the call:
 * the sum of its threads' schedstat (nanosecond resolution, unlike the 10 ms ticks
 * of /proc/<pid>/stat). Being synchronous is the point: a reading requested over
 * a channel is stamped when the answer arrives, so a stall of the reading process
 * between the two shortens the measured interval and inflates the percentage
 * (a 390 % reading for a single-threaded worker was seen that way). Undefined
 * where /proc is not available or the process is gone.
 */
export function readProcessCpu(pid: number, now: () => number = () => performance.now()): CpuReading | undefined {
	const taskDir = `/proc/${pid}/task`;
	try {
		let ns = 0;
		for (const tid of readdirSync(taskDir)) {
			let text: string;
			try {
				text = readFileSync(`${taskDir}/${tid}/schedstat`, 'utf8');
			} catch {
				continue; // the thread exited between listing and reading
			}
			ns += onCpuNsFromSchedstat(text) ?? 0;
		}
		return { cpuMs: ns / 1e6, atMs: now() };
	} catch {
		return undefined;
	}
}
