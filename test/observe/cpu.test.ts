import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuPercentBetween, onCpuNsFromSchedstat, readProcessCpu } from '../../plugin/observe/cpu';

test('schedstat: the first field is time on CPU in ns; garbage is undefined', () => {
	expect(onCpuNsFromSchedstat('123456789 2000 17\n')).toBe(123456789);
	expect(onCpuNsFromSchedstat('nonsense')).toBeUndefined();
});

test('a spinning process reads ~100 % of one core and an idle one ~0 %, from /proc, with no channel round trip', async () => {
	const spin = spawn(process.execPath, ['-e', 'const end = Date.now() + 4000; while (Date.now() < end) {}']);
	const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 4000)']);
	try {
		await new Promise((r) => setTimeout(r, 1200)); // past both processes' start-up
		const spinFrom = readProcessCpu(spin.pid!)!;
		const idleFrom = readProcessCpu(idle.pid!)!;
		// The reader itself stalls for 400 ms: a synchronous reading is not affected by it.
		const stallEnd = Date.now() + 400;
		while (Date.now() < stallEnd);
		await new Promise((r) => setTimeout(r, 600));
		const spinPct = cpuPercentBetween(spinFrom, readProcessCpu(spin.pid!)!)!;
		const idlePct = cpuPercentBetween(idleFrom, readProcessCpu(idle.pid!)!)!;
		// A spinning thread cannot exceed one core; on a shared two-core machine it may get less.
		expect(spinPct).toBeLessThanOrEqual(101);
		expect(spinPct).toBeGreaterThan(40);
		expect(idlePct).toBeLessThan(5);
	} finally {
		spin.kill();
		idle.kill();
	}
	await once(spin, 'exit');
	expect(readProcessCpu(spin.pid!)).toBeUndefined();
});
