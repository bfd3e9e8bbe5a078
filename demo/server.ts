/**
 * `npm run demo` (foundation stage): real mediasoup workers with Foresight
 * attached, one peer sending real VP8 + Opus (ffmpeg-encoded, replayed over UDP)
 * to three receivers, and live worker profiles printed every second.
 * The browser room and dashboard replace this printout in the demo-room issue.
 */
import { cpus } from 'node:os';
import * as mediasoup from 'mediasoup';
import { attach } from '../plugin';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer } from '../training/media/rig';

async function main(): Promise<void> {
	const foresight = attach(mediasoup);
	const workerCount = Math.max(2, cpus().length);
	const workers = await Promise.all(
		Array.from({ length: workerCount }, () => mediasoup.createWorker({ logLevel: 'warn' })),
	);
	const router = await workers[0]!.createRouter({ mediaCodecs: MEDIA_CODECS });
	const sender = await startSendingPeer(router, 50_000);
	const receivers = await Promise.all(
		[0, 1, 2].map(() => startReceivingPeer(router, [sender.video, sender.audio])),
	);
	await Promise.all(workers.slice(1).map((w) => w.createRouter({ mediaCodecs: MEDIA_CODECS })));

	foresight.on('workerLoad', (s) => {
		process.stdout.write(
			`${new Date(s.ts).toISOString()} worker ${s.workerId}: cpu ${s.cpuPct.toFixed(2)}% rss ${(s.rssBytes / 2 ** 20).toFixed(1)} MiB ` +
				`routers ${s.routers} transports ${s.transports} producers ${s.producers} consumers ${s.consumers}\n`,
		);
	});
	process.stdout.write(`demo: ${workerCount} workers with Foresight attached; Ctrl-C to stop\n`);

	const shutdown = async (): Promise<void> => {
		sender.sender.stop();
		for (const r of receivers) r.sink.close();
		await foresight.detach();
		for (const w of workers) w.close();
		process.exit(0);
	};
	process.once('SIGINT', () => void shutdown());
	process.once('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
	process.stderr.write(`demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});
