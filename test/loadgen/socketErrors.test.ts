import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { readRecording } from '../../training/record/format';
import { prepare } from '../../training/loadgen/prepared';
import { Replayer } from '../../training/loadgen/replayer';
import { SenderProcess } from '../../training/loadgen/senderProcess';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * The load generator's sockets and child process when their far side dies: the
 * errors stay with the copy (logged once per episode), the process lives on. Before
 * the fix, ICMP port unreachable from a killed worker ended the whole demo with
 * "Error: recvmsg ECONNREFUSED … Emitted 'error' event on Socket instance".
 */
const RECORDING = join(__dirname, '../fixtures/recordings/talking-head.rec.gz');

function capturingLog() {
	const lines: Array<{ level: 'warn' | 'info'; obj: Record<string, unknown>; msg: string }> = [];
	return {
		lines,
		warn: (obj: object, msg: string) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
		info: (obj: object, msg: string) => void lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
	};
}

describe('load generator: a dead far side is contained', () => {
	const uncaught: unknown[] = [];
	const onUncaught = (e: unknown): void => void uncaught.push(e);
	beforeAll(() => process.on('uncaughtException', onUncaught));
	afterAll(() => process.off('uncaughtException', onUncaught));
	afterEach(() => expect(uncaught).toEqual([]));

	test('a copy sending to a closed port logs one error episode and keeps sending; closing ends the episode', async () => {
		// A port that was bound and is free now: every datagram comes back as ICMP port unreachable.
		const probe = createSocket('udp4');
		await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
		const deadPort = probe.address().port;
		await new Promise<void>((r) => probe.close(() => r()));

		const log = capturingLog();
		const replayer = new Replayer({ seed: 3, logger: log });
		const prepared = prepare(readRecording(RECORDING));
		const rewrites = prepared.layers.map((_, i) => ({ ssrc: 1000 + i, seqAdd: 0, tsAdd: 0 }));
		const copy = await replayer.adopt(prepared, { rewrites, loop: true, ip: '127.0.0.1', port: deadPort });
		replayer.start(copy);
		await waitFor(() => log.lines.length > 0 && copy.packetsSent > 200, 10_000, 'packets and an error');
		await new Promise((r) => setTimeout(r, 300));
		const warns = log.lines.filter((l) => l.level === 'warn');
		expect(warns).toHaveLength(1);
		expect(warns[0]!.obj).toMatchObject({ code: 'ECONNREFUSED', port: deadPort });
		const sent = copy.packetsSent;
		await new Promise((r) => setTimeout(r, 200));
		expect(copy.packetsSent).toBeGreaterThan(sent);
		replayer.close();
		await new Promise((r) => setImmediate(r));
		expect(log.lines.at(-1)).toMatchObject({ level: 'info', obj: { errors: expect.any(Number) } });
	});

	test('a worker killed under copies and bots: the copies stop and the replayer lets go of its timer', async () => {
		const worker = await mediasoup.createWorker({ logLevel: 'error' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const log = capturingLog();
		const replayer = new Replayer({ seed: 4, logger: log });
		const publisher = await replayer.publish(router, readRecording(RECORDING), { loop: true });
		await replayer.subscribe(router, [...publisher.producers.values()]);
		await waitFor(() => publisher.packetsSent > 100, 10_000, 'packets sent');
		expect(replayer.stats().publishers).toBe(1);
		const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
		process.kill(worker.pid, 'SIGKILL');
		await waitFor(() => publisher.closed, 5_000, 'the copy to stop');
		await new Promise((r) => setTimeout(r, 500));
		expect(replayer.stats().publishers).toBe(0);
		expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThan(timersBefore);
		replayer.close();
	});

	test('a sender process killed with SIGKILL fails its requests with a clear error; this process lives on', async () => {
		const sender = await SenderProcess.spawn({ seed: 5 });
		expect(await sender.sinkPort()).toBeGreaterThan(0);
		process.kill(sender.pid!, 'SIGKILL');
		await expect(sender.stats()).rejects.toThrow(/sender process/);
		await new Promise((r) => setTimeout(r, 300));
		await expect(sender.sinkPort()).rejects.toThrow(/sender process exited \(SIGKILL\)/);
		await sender.close();
	}, 30_000);
});
