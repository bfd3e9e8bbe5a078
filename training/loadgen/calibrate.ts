/**
 * Calibrates the replay path against real browsers, once, on this machine.
 *
 *   MEDIASOUP_WORKER_BIN=… npx tsx training/loadgen/calibrate.ts [--seconds 8] [--bots 4]
 *
 * (a) two headless-Chromium peers (talking-head source: VP8 simulcast ×3 + Opus,
 * over ICE + DTLS + SRTP) and (b) two replayed copies of the talking-head
 * recording (plain RTP over UDP), each on a fresh worker, each measured first
 * with no consumers (ingress only) and then with the same SRTP consumer bots.
 * Worker CPU comes from getResourceUsage() deltas. The last line is JSON.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { readRecording } from '../record/format';
import { MEDIA_CODECS } from '../media/rig';
import { SESSIONS, startBrowserPeers } from '../record/record';
import { Replayer } from './replayer';
import { setTimeout as sleep } from 'node:timers/promises';

function arg(name: string, fallback: string): string {
	const i = process.argv.indexOf(name);
	return i >= 0 ? process.argv[i + 1]! : fallback;
}

interface Window {
	cpuShare: number;
	ingressPps: number;
	egressPps: number;
}

async function packetCounts(producers: types.Producer[], consumers: types.Consumer[]): Promise<{ in: number; out: number }> {
	let inPkts = 0;
	let outPkts = 0;
	for (const p of producers) for (const s of await p.getStats()) inPkts += s.packetCount;
	for (const c of consumers) for (const s of await c.getStats()) if (s.type === 'outbound-rtp') outPkts += s.packetCount;
	return { in: inPkts, out: outPkts };
}

async function measure(worker: types.Worker, producers: types.Producer[], consumers: types.Consumer[], seconds: number): Promise<Window> {
	const u0 = await worker.getResourceUsage();
	const c0 = await packetCounts(producers, consumers);
	const t0 = performance.now();
	await sleep(seconds * 1000);
	const u1 = await worker.getResourceUsage();
	const c1 = await packetCounts(producers, consumers);
	const wallS = (performance.now() - t0) / 1000;
	const cpuMs = u1.ru_utime + u1.ru_stime - (u0.ru_utime + u0.ru_stime);
	return { cpuShare: cpuMs / 1000 / wallS, ingressPps: (c1.in - c0.in) / wallS, egressPps: (c1.out - c0.out) / wallS };
}

async function withConsumers(router: types.Router, replayer: Replayer, producers: types.Producer[], bots: number): Promise<types.Consumer[]> {
	const consumers: types.Consumer[] = [];
	for (let i = 0; i < bots; i++) consumers.push(...(await replayer.subscribe(router, producers)).consumers);
	return consumers;
}

async function main(): Promise<void> {
	const seconds = Number(arg('--seconds', '8'));
	const bots = Number(arg('--bots', '4'));
	const spec = { ...SESSIONS['talking-head']!, chat: false };
	const log = (l: string): void => void process.stderr.write(`${l}\n`);

	// (a) real browsers
	const workerA = await mediasoup.createWorker({ logLevel: 'warn' });
	const routerA = await workerA.createRouter({ mediaCodecs: MEDIA_CODECS });
	const replayerA = new Replayer({ seed: 1 });
	const browser = await startBrowserPeers(routerA, spec, { sourcesDir: join(tmpdir(), 'foresight-sources'), pages: 2 });
	let real: { ingress: Window; full: Window; streams: number };
	try {
		const producers = browser.peers.flatMap((p) => p.producers.map((x) => x.producer));
		log(`browsers producing ${producers.length} streams; warming up`);
		await sleep(6000);
		const ingress = await measure(workerA, producers, [], seconds);
		const consumers = await withConsumers(routerA, replayerA, producers, bots);
		await sleep(1500);
		const full = await measure(workerA, producers, consumers, seconds);
		real = { ingress, full, streams: producers.length };
	} finally {
		replayerA.close();
		await browser.close();
		workerA.close();
	}
	log(`real: ${JSON.stringify(real)}`);

	// (b) replay of the committed recording of the same source
	const recording = readRecording(join(__dirname, '../../test/fixtures/recordings/talking-head.rec.gz'));
	const workerB = await mediasoup.createWorker({ logLevel: 'warn' });
	const routerB = await workerB.createRouter({ mediaCodecs: MEDIA_CODECS });
	const replayerB = new Replayer({ seed: 2 });
	let replay: { ingress: Window; full: Window; streams: number };
	try {
		const producers: types.Producer[] = [];
		for (let i = 0; i < 2; i++) producers.push(...(await replayerB.publish(routerB, recording, { loop: true })).producers.values());
		await sleep(1500);
		const ingress = await measure(workerB, producers, [], seconds);
		const consumers = await withConsumers(routerB, replayerB, producers, bots);
		await sleep(1500);
		const full = await measure(workerB, producers, consumers, seconds);
		replay = { ingress, full, streams: producers.length };
	} finally {
		replayerB.close();
		workerB.close();
	}
	log(`replay: ${JSON.stringify(replay)}`);

	const perStream = (w: Window, streams: number): number => (w.cpuShare * 100) / streams;
	const perIngressPacketUs = (w: Window): number => (w.cpuShare * 1e6) / w.ingressPps;
	const out = {
		bots,
		real_cpu_pct_per_stream: Number(perStream(real.full, real.streams).toFixed(3)),
		replay_cpu_pct_per_stream: Number(perStream(replay.full, replay.streams).toFixed(3)),
		ratio_real_over_replay: Number((real.full.cpuShare / replay.full.cpuShare).toFixed(2)),
		real_ingress_only_cpu_pct: Number((real.ingress.cpuShare * 100).toFixed(2)),
		replay_ingress_only_cpu_pct: Number((replay.ingress.cpuShare * 100).toFixed(2)),
		real_ingress_us_per_packet: Number(perIngressPacketUs(real.ingress).toFixed(2)),
		replay_ingress_us_per_packet: Number(perIngressPacketUs(replay.ingress).toFixed(2)),
		real_ingress_pps: Math.round(real.full.ingressPps),
		replay_ingress_pps: Math.round(replay.full.ingressPps),
		real_egress_pps: Math.round(real.full.egressPps),
		replay_egress_pps: Math.round(replay.full.egressPps),
	};
	console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
	console.error(err);
	process.exit(1);
});
