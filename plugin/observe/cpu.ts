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
