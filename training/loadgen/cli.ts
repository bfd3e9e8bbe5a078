/**
 * Runs a load scenario against a fresh mediasoup worker with a progress display.
 *
 *   MEDIASOUP_WORKER_BIN=… npx tsx training/loadgen/cli.ts <scenario name | file.json | gen:<family>>
 *       [--seed N] [--duration S] [--peers N (generated)] [--recordings test/fixtures/recordings] [--plan]
 *
 * Scenario names resolve to training/loadgen/scenarios/<name>.json; gen:<family> is a
 * generated family (generator.ts) for --seed. --plan prints the scenario and its
 * timeline as JSON lines instead of running it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { Replayer } from './replayer';
import { runScenario } from './runner';
import { loadScenario, planScenario } from './scenario';
import { generateScenario, parseFamilyRef } from './generator';
import { MEDIA_CODECS } from '../media/rig';


function flag(argv: string[], name: string): string | undefined {
	const i = argv.indexOf(name);
	if (i < 0) return undefined;
	const v = argv[i + 1];
	argv.splice(i, 2);
	return v;
}

async function main(): Promise<void> {
	const argv = process.argv.slice(2);
	const seed = flag(argv, '--seed');
	const duration = flag(argv, '--duration');
	const peers = flag(argv, '--peers');
	const planOnly = argv.indexOf('--plan');
	if (planOnly >= 0) argv.splice(planOnly, 1);
	const recordingsDir = resolve(flag(argv, '--recordings') ?? join(__dirname, '../../test/fixtures/recordings'));
	const target = argv[0];
	if (!target) throw new Error('usage: cli.ts <scenario name | file.json | gen:<family>> [--seed N] [--duration S] [--peers N] [--recordings DIR] [--plan]');
	const family = parseFamilyRef(target);
	const scenario = family
		? generateScenario(family, seed ? Number(seed) : 1, { ...(peers ? { peers: Number(peers) } : {}), ...(duration ? { durationS: Number(duration) } : {}) })
		: loadScenario(existsSync(target) ? target : join(__dirname, 'scenarios', `${target}.json`));
	if (duration) scenario.durationS = Math.min(scenario.durationS, Number(duration));
	if (planOnly >= 0) {
		process.stdout.write(`${JSON.stringify(scenario)}\n`);
		for (const e of planScenario(scenario, seed ? Number(seed) : scenario.seed)) process.stdout.write(`${JSON.stringify(e)}\n`);
		return;
	}

	const worker = await mediasoup.createWorker({ logLevel: 'warn' });
	const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
	const replayer = new Replayer({ seed: seed ? Number(seed) : scenario.seed });
	const bar = new SingleBar(
		{ format: '{name} |{bar}| {value}/{total}s  peers {peers}  producers {producers}  consumers {consumers}  sent {pps} pkt/s  sink {sinkPps} pkt/s  worker CPU {cpu}%', hideCursor: true },
		Presets.shades_classic,
	);
	bar.start(Math.round(scenario.durationS), 0, { name: scenario.name, peers: 0, producers: 0, consumers: 0, pps: 0, sinkPps: 0, cpu: 0 });
	let live = { peers: 0, publishers: 0, consumers: 0 };
	const startedAt = performance.now();
	let last = { t: startedAt, sent: 0, sink: 0, cpuMs: 0 };
	const progress = setInterval(() => {
		void worker.getResourceUsage().then((u) => {
			const now = performance.now();
			const s = replayer.stats();
			const cpuMs = u.ru_utime + u.ru_stime;
			const dt = (now - last.t) / 1000;
			bar.update(Math.min(Math.round(scenario.durationS), Math.round((now - startedAt) / 1000)), {
				peers: live.peers,
				producers: live.publishers,
				consumers: live.consumers,
				pps: Math.round((s.packetsSent - last.sent) / dt),
				sinkPps: Math.round((s.sinkPackets - last.sink) / dt),
				cpu: (((cpuMs - last.cpuMs) / 1000 / dt) * 100).toFixed(1),
			});
			last = { t: now, sent: s.packetsSent, sink: s.sinkPackets, cpuMs };
		});
	}, 1000);
	const abort = new AbortController();
	process.once('SIGINT', () => abort.abort());
	try {
		const final = await runScenario(scenario, {
			router,
			replayer,
			recordingsDir,
			seed: seed ? Number(seed) : undefined,
			signal: abort.signal,
			onEvent: (_e, state) => (live = state),
		});
		bar.update(Math.round(scenario.durationS));
		bar.stop();
		const s = replayer.stats();
		process.stdout.write(`${JSON.stringify({ scenario: scenario.name, packetsSent: s.packetsSent, sinkPackets: s.sinkPackets, maxEventLagMs: Math.round(final.maxEventLagMs), maxTickLagMs: Math.round(s.maxTickLagMs) })}\n`);
	} finally {
		clearInterval(progress);
		bar.stop();
		replayer.close();
		worker.close();
	}
}

main().catch((err: unknown) => {
	process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
	process.exit(1);
});
