/**
 * What one mediasoup `producer.getStats()` costs the Node process, on a quiet host: one
 * replayed talking-head peer (its packets sent by a separate process) on one worker, and
 * the video producer asked `rate` times a second, in 10 bursts a second as a profiler's
 * rounds would be. Each round measures the process's CPU over `--measure-s` without calls,
 * then with them; the difference over the number of calls is the cost of one call
 * (request encoding, the channel write, waking for the answer, parsing it), which no
 * profiler on mediasoup's API can avoid.
 *
 *   npx tsx bench/getstats.ts [--rates 100,1000] [--rounds 3] [--measure-s 5]
 *
 * Last line: {"per_call_us_at_<rate>": median over rounds, …, "node_cpu_pct_per_100_calls_per_s": at the first rate}
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as mediasoup from 'mediasoup';
import { median } from '../plugin/allocate/sim/metrics';
import { MEDIA_CODECS } from '../training/media/rig';
import { readRecording } from '../training/record/format';
import { Replayer } from '../training/loadgen/replayer';
import { SenderProcess } from '../training/loadgen/senderProcess';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
	options: {
		rates: { type: 'string', default: '100,1000' },
		rounds: { type: 'string', default: '3' },
		'measure-s': { type: 'string', default: '5' },
	},
});
const rates = values.rates.split(',').map(Number);
const rounds = Number(values.rounds);
const measureMs = Number(values['measure-s']) * 1000;
if (rates.some((r) => !(r >= 10)) || !(rounds >= 1) || !(measureMs > 0)) throw new Error('--rates: numbers ≥ 10; --rounds ≥ 1; --measure-s > 0');

/** Node CPU of this process over the next `ms`, % of one core. */
async function cpuPctOver(ms: number): Promise<number> {
	const c0 = process.cpuUsage();
	const t0 = performance.now();
	await sleep(ms);
	const c = process.cpuUsage(c0);
	return (c.user + c.system) / 10 / (performance.now() - t0);
}

async function main(): Promise<void> {
	const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));
	const worker = await mediasoup.createWorker({ logLevel: 'error' });
	const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
	const sender = await SenderProcess.spawn({ seed: 7 });
	const replayer = new Replayer({ seed: 7, sender });
	const pub = await replayer.publish(router, recording, { loop: true, autoStart: false });
	replayer.start(pub);
	const video = [...pub.producers.values()].find((p) => p.kind === 'video');
	if (!video) throw new Error('the recording has no video producer');
	await sleep(3000);
	const summary: Record<string, number> = {};
	for (const rate of rates) {
		const perCall: number[] = [];
		for (let round = 0; round < rounds; round++) {
			const idlePct = await cpuPctOver(measureMs);
			let calls = 0;
			let failures = 0;
			const timer = setInterval(() => {
				for (let i = 0; i < rate / 10; i++) {
					calls++;
					video.getStats().catch(() => void failures++);
				}
			}, 100);
			const t0 = performance.now();
			const withPct = await cpuPctOver(measureMs);
			clearInterval(timer);
			const wallMs = performance.now() - t0;
			const us = (((withPct - idlePct) / 100) * wallMs * 1000) / calls;
			perCall.push(us);
			process.stdout.write(`rate ${rate}/s round ${round + 1}: idle ${idlePct.toFixed(2)} %, with calls ${withPct.toFixed(2)} % → ${us.toFixed(1)} µs per call (${failures} failed)\n`);
		}
		summary[`per_call_us_at_${rate}`] = Number((median(perCall) ?? Number.NaN).toFixed(1));
	}
	const first = summary[`per_call_us_at_${rates[0]}`]!;
	// 100 producers asked once a second: 100 calls/s, each costing `first` µs.
	summary.node_cpu_pct_per_100_calls_per_s = Number(((first * 100) / 1e4).toFixed(2));
	replayer.close();
	await sender.close();
	worker.close();
	process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
