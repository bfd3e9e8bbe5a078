import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { cpuPercentBetween, onCpuNsFromSchedstat, readProcessCpu } from '../../plugin/observe/cpu';

test('schedstat: the first field is time on CPU in ns; garbage is undefined', () => {
	expect(onCpuNsFromSchedstat('123456789 2000 17\n')).toBe(123456789);
	expect(onCpuNsFromSchedstat('nonsense')).toBeUndefined();
});

/** The kernel's own accounting of a process's CPU, all threads, at 10 ms resolution: the reference. */
function statCpuMs(pid: number): number {
	const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
	return (Number(fields[11]) + Number(fields[12])) * 10;
}

test('readings from /proc agree with the kernel per-process accounting, never exceed a spinning thread, and survive a stalled reader', async () => {
	const spin = spawn(process.execPath, ['-e', 'const end = Date.now() + 4000; while (Date.now() < end) {}']);
	const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 4000)']);
	try {
		await new Promise((r) => setTimeout(r, 1200)); // past both processes' start-up
		const spinFrom = readProcessCpu(spin.pid!)!;
		const spinStatFrom = statCpuMs(spin.pid!);
		const idleFrom = readProcessCpu(idle.pid!)!;
		// The reader itself stalls for 400 ms: a synchronous reading is not affected by it.
		const stallEnd = Date.now() + 400;
		while (Date.now() < stallEnd);
		await new Promise((r) => setTimeout(r, 600));
		const spinTo = readProcessCpu(spin.pid!)!;
		const spinStatTo = statCpuMs(spin.pid!);
		const spinPct = cpuPercentBetween(spinFrom, spinTo)!;
		const idlePct = cpuPercentBetween(idleFrom, readProcessCpu(idle.pid!)!)!;
		// Same CPU time as the kernel's tick accounting, to its 10 ms resolution (one tick each end, plus one).
		expect(Math.abs(spinTo.cpuMs - spinFrom.cpuMs - (spinStatTo - spinStatFrom))).toBeLessThanOrEqual(30);
		// Whatever share of a core the shared machine gave it, one spinning thread cannot exceed one core.
		expect(spinPct).toBeGreaterThan(0);
		expect(spinPct).toBeLessThanOrEqual(101);
		expect(idlePct).toBeLessThan(5);
	} finally {
		spin.kill();
		idle.kill();
	}
	await once(spin, 'exit');
	expect(readProcessCpu(spin.pid!)).toBeUndefined();
});
