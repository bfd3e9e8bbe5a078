/**
 * How many RTP packets per second one Node process replays, and at what CPU.
 *
 *   MEDIASOUP_WORKER_BIN=… npx tsx bench/replay.ts [--seconds 6] [--copies 30,60,90]
 *
 * Looping copies of the talking-head fixture (VP8 simulcast ×3 + Opus) are
 * published into one real worker over UDP, at increasing scale. Per step: sent
 * packets/s against what the recordings schedule in that window, and this process's CPU
 * (user+sys) per wall second. Baseline, measured in the same run: the CPU of
 * sending the same number of packets through a bare connected dgram socket with
 * no scheduling or rewriting, so the ratio is the replayer's overhead.
 * Last line: {"packets_per_s", "cpu_share_of_core", …} for the largest step
 * that kept ≥ 98 % of its schedule.
 */
import { createSocket } from 'node:dgram';
import { ErrorEpisode, guardSocket, stderrLog } from '../plugin/util/episode';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { readRecording } from '../training/record/format';
import { Replayer, type Publisher } from '../training/loadgen/replayer';
import { MEDIA_CODECS } from '../training/media/rig';
import { setTimeout as sleep } from 'node:timers/promises';


function arg(name: string, fallback: string): string {
	const i = process.argv.indexOf(name);
	return i >= 0 ? process.argv[i + 1]! : fallback;
}

function cpuMs(): number {
	const u = process.cpuUsage();
	return (u.user + u.system) / 1000;
}

async function baselineCpuPerPacketUs(packets: Buffer[], port: number): Promise<number> {
	const socket = createSocket('udp4');
	guardSocket(socket, new ErrorEpisode(stderrLog('bench'), 'baseline socket'));
	await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
	await new Promise<void>((r) => socket.connect(port, '127.0.0.1', r));
	const total = 60_000;
	const c0 = cpuMs();
	// Bursts of 200 with a yield between, so the socket's queue drains as in the replay.
	for (let sent = 0; sent < total; ) {
		for (let i = 0; i < 200; i++, sent++) socket.send(packets[sent % packets.length]!);
		await new Promise((r) => setImmediate(r));
	}
	await sleep(50);
	const used = cpuMs() - c0;
	socket.close();
	return (used * 1000) / total;
}

async function main(): Promise<void> {
	const seconds = Number(arg('--seconds', '6'));
	const steps = arg('--copies', '30,60,90').split(',').map(Number);
	const recording = readRecording(join(__dirname, '../test/fixtures/recordings/talking-head.rec.gz'));
	const worker = await mediasoup.createWorker({ logLevel: 'error' });
	const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });

	// The baseline sends into a comedia PlainTransport too, so the receiver side is the same.
	const baseTransport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
	const baselineUs = await baselineCpuPerPacketUs(recording.packets.map((p) => p.data), baseTransport.tuple.localPort);
	baseTransport.close();
	console.log(`baseline: bare dgram send ${baselineUs.toFixed(2)} µs CPU per packet`);

	const replayer = new Replayer({ seed: 1 });
	let best: { packets_per_s: number; cpu_share_of_core: number; copies: number; schedule_kept: number; cpu_us_per_packet: number } | undefined;
	try {
		let copies = 0;
		const publishers: Publisher[] = [];
		for (const target of steps) {
			while (copies < target) {
				publishers.push(await replayer.publish(router, recording, { loop: true }));
				copies++;
			}
			// Let the copies' start-up (and their key-frame bursts) pass before measuring.
			await sleep(1000);
			replayer.maxTickLagMs = 0;
			const s0 = replayer.stats();
			const c0 = cpuMs();
			const t0 = performance.now();
			const due0 = publishers.reduce((n, p) => n + p.scheduledBy(t0), 0);
			await sleep(seconds * 1000);
			const t1 = performance.now();
			const wallS = (t1 - t0) / 1000;
			const sent = replayer.stats().packetsSent - s0.packetsSent;
			const due = publishers.reduce((n, p) => n + p.scheduledBy(t1), 0) - due0;
			const cpuShare = (cpuMs() - c0) / 1000 / wallS;
			const pps = sent / wallS;
			const kept = sent / due;
			const perPacketUs = ((cpuShare * wallS) / sent) * 1e6;
			console.log(
				`copies ${copies}: ${Math.round(pps)} pkt/s (${(kept * 100).toFixed(1)}% of schedule), CPU ${(cpuShare * 100).toFixed(1)}% of a core, ${perPacketUs.toFixed(2)} µs/packet (${(perPacketUs / baselineUs).toFixed(2)}× bare send), max tick lag ${replayer.maxTickLagMs.toFixed(1)} ms`,
			);
			if (kept >= 0.98) best = { packets_per_s: Math.round(pps), cpu_share_of_core: Number(cpuShare.toFixed(3)), copies, schedule_kept: Number(kept.toFixed(3)), cpu_us_per_packet: Number(perPacketUs.toFixed(2)) };
		}
	} finally {
		replayer.close();
		worker.close();
	}
	console.log(JSON.stringify({ ...(best ?? { packets_per_s: 0, cpu_share_of_core: 0 }), baseline_cpu_us_per_packet: Number(baselineUs.toFixed(2)), overhead_vs_bare_send: best ? Number((best.cpu_us_per_packet / baselineUs).toFixed(2)) : null }));
}

main().catch((err: unknown) => {
	console.error(err);
	process.exit(1);
});
