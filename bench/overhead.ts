/**
 * npm run bench -- overhead [--phases 4] [--measure-s 20] [--copies 50]
 *
 * Profiling overhead: the same load — `copies` replayed talking-head peers
 * (video with 3 simulcast layers + audio = 2 producers each) across 2 workers,
 * each peer consumed by 3 SRTP consumer bots (6 consumers per peer) — is run in
 * alternating phases without and with Foresight attached (fresh workers each
 * phase, since the observer API only sees entities created after attach()).
 * Worker CPU comes from getResourceUsage() deltas over the measured window; Node
 * CPU from process.cpuUsage() (the replayer's own cost is the same in both
 * phases, so the difference is Foresight's).
 *
 * Last line: {"worker_cpu_ratio": on/off, "node_cpu_pct_per_100_producers": …}
 */
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { attach, type Foresight } from '../plugin';
import { readRecording } from '../training/record/format';
import { Replayer } from '../training/loadgen/replayer';

function arg(name: string, fallback: number): number {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const PHASES = arg('phases', 4);
const MEASURE_S = arg('measure-s', 20);
const WARMUP_S = arg('warmup-s', 8);
const COPIES = arg('copies', 50);
const BOTS_PER_COPY = 3;

const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));
const mediaCodecs: mediasoup.types.RouterRtpCodecCapability[] = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

interface PhaseResult {
	withPlugin: boolean;
	workerCpuPct: number;
	nodeCpuPct: number;
	producers: number;
	consumers: number;
	profiledStreams: number;
}

async function cpuMs(worker: mediasoup.types.Worker): Promise<number> {
	const u = await worker.getResourceUsage();
	return u.ru_utime + u.ru_stime;
}

async function phase(withPlugin: boolean): Promise<PhaseResult> {
	let foresight: Foresight | undefined;
	let profiledStreams = 0;
	if (withPlugin) {
		// Dry run: this measures observing, profiling and predicting, not the effect of acting.
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'error', dryRun: true });
		foresight.on('profiles', (p) => (profiledStreams = Math.max(profiledStreams, p.streams.length)));
	}
	const workers = await Promise.all([0, 1].map(() => mediasoup.createWorker({ logLevel: 'error' })));
	const routers = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs })));
	const replayer = new Replayer({ seed: 7 });
	let producers = 0;
	let consumers = 0;
	for (let i = 0; i < COPIES; i++) {
		const router = routers[i % routers.length]!;
		const pub = await replayer.publish(router, recording, { loop: true, autoStart: false });
		const ps = [...pub.producers.values()];
		producers += ps.length;
		for (let b = 0; b < BOTS_PER_COPY; b++) {
			const sub = await replayer.subscribe(router, ps, { preferredSpatialLayer: 2 });
			consumers += sub.consumers.length;
		}
		replayer.start(pub);
	}
	await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
	const w0 = await Promise.all(workers.map(cpuMs));
	const n0 = process.cpuUsage();
	const t0 = performance.now();
	await new Promise((r) => setTimeout(r, MEASURE_S * 1000));
	const w1 = await Promise.all(workers.map(cpuMs));
	const n1 = process.cpuUsage(n0);
	const wallMs = performance.now() - t0;
	replayer.close();
	await foresight?.detach();
	for (const w of workers) w.close();
	await new Promise((r) => setTimeout(r, 500));
	const workerCpuMs = w1.reduce((a, v, i) => a + v - w0[i]!, 0);
	return {
		withPlugin,
		workerCpuPct: (100 * workerCpuMs) / wallMs,
		nodeCpuPct: (100 * (n1.user + n1.system)) / 1000 / wallMs,
		producers,
		consumers,
		profiledStreams,
	};
}

async function main(): Promise<void> {
	const results: PhaseResult[] = [];
	for (let i = 0; i < PHASES; i++) {
		// off, on, on, off, off, on, … (ABBA) so a slow drift of the machine cancels out.
		const withPlugin = [false, true, true, false][i % 4]!;
		const r = await phase(withPlugin);
		results.push(r);
		process.stdout.write(
			`phase ${i + 1}/${PHASES} plugin=${withPlugin ? 'on ' : 'off'} producers=${r.producers} consumers=${r.consumers} ` +
				`profiled=${r.profiledStreams} worker_cpu=${r.workerCpuPct.toFixed(2)}% node_cpu=${r.nodeCpuPct.toFixed(2)}%\n`,
		);
	}
	const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
	const on = results.filter((r) => r.withPlugin);
	const off = results.filter((r) => !r.withPlugin);
	const producers = results[0]!.producers;
	const summary = {
		worker_cpu_ratio: Number((mean(on.map((r) => r.workerCpuPct)) / mean(off.map((r) => r.workerCpuPct))).toFixed(4)),
		node_cpu_pct_per_100_producers: Number(
			(((mean(on.map((r) => r.nodeCpuPct)) - mean(off.map((r) => r.nodeCpuPct))) * 100) / producers).toFixed(3),
		),
		worker_cpu_pct_off: Number(mean(off.map((r) => r.workerCpuPct)).toFixed(2)),
		worker_cpu_pct_on: Number(mean(on.map((r) => r.workerCpuPct)).toFixed(2)),
		producers,
		consumers: results[0]!.consumers,
		phases: PHASES,
		measure_s: MEASURE_S,
	};
	process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
	process.stderr.write(`overhead bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});
