/**
 * Faults never take the service down: fault injection on real parts.
 *
 *   npm run bench -- faults [--seed 10001] [--per-kind 5] [--bots 3] [--pages 2] [--influx-outage-s 30]
 *                           [--hang-s 5] [--loss 0.1] [--loss-s 10] [--hook-timeout-ms 3000] [--recovery-timeout-s 25]
 *                           [--kinds workerKill,influxOutage] (a subset, for a closer look) [--records]
 *
 * The demo (2 real mediasoup workers, Foresight storing into a throwaway InfluxDB,
 * replay bots) runs in a child process; headless Chromium pages join its room. Each
 * fault kind (bench/faults/suite.ts FAULT_KINDS) is injected --per-kind times in a
 * seeded random order: SIGKILL of a worker, SIGSTOP/SIGCONT of a worker, InfluxDB
 * stopped, a migration hook that hangs past its timeout and one that throws, a page
 * that vanishes mid-migration, 10 % loss on the bots' media path. Progress on stderr;
 * last line: the acceptance JSON (faults_injected, process_exits, unhandled_errors,
 * peers_recovered_share, p95_recovery_s for worker deaths, store_points_lost,
 * leaked_entities, …) without the per-fault records (--records prints them too).
 */
import { FAULT_KINDS, runFaultSuite, type FaultKind } from './faults/suite';

function arg(name: string, fallback: string): string {
	const i = process.argv.indexOf(name);
	return i >= 0 ? process.argv[i + 1]! : fallback;
}

function kind(name: string): FaultKind {
	const k = FAULT_KINDS.find((x) => x === name);
	if (!k) throw new Error(`unknown fault kind ${name}; known: ${FAULT_KINDS.join(', ')}`);
	return k;
}

async function main(): Promise<void> {
	const report = await runFaultSuite({
		seed: Number(arg('--seed', '10001')),
		perKind: Number(arg('--per-kind', '5')),
		bots: Number(arg('--bots', '3')),
		pages: Number(arg('--pages', '2')),
		influxOutageS: Number(arg('--influx-outage-s', '30')),
		hangS: Number(arg('--hang-s', '5')),
		lossRate: Number(arg('--loss', '0.1')),
		lossS: Number(arg('--loss-s', '10')),
		hookTimeoutMs: Number(arg('--hook-timeout-ms', '3000')),
		recoveryTimeoutS: Number(arg('--recovery-timeout-s', '25')),
		...(process.argv.includes('--kinds') ? { kinds: arg('--kinds', '').split(',').map(kind) } : {}),
		log: (line) => process.stderr.write(`${line}\n`),
	});
	const { records, ...summary } = report;
	if (process.argv.includes('--records')) process.stdout.write(`${JSON.stringify(records)}\n`);
	process.stdout.write(`${JSON.stringify({ kinds: FAULT_KINDS, ...summary })}\n`);
}

main().catch((error: unknown) => {
	process.stderr.write(`faults bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
	process.exit(1);
});
