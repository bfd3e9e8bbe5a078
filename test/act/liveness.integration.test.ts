import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, type Foresight, type HealingEvent } from '../../plugin';
import { WORKER_ANSWER_TIMEOUT_MS } from '../../plugin/act/actuator';
import { UNRESPONSIVE_AFTER_MS } from '../../plugin/observe/liveness';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';

/**
 * A stopped worker (SIGSTOP) answers nothing, and mediasoup's channel never times a
 * request out. Seen from /proc it just looks idle — the best place for a newcomer.
 * Foresight notices the missing answer, leaves the worker out of decisions (joins go
 * elsewhere), fails an action on it after WORKER_ANSWER_TIMEOUT_MS instead of holding
 * every later decision, and takes it back once it answers.
 */
describe('a worker that stops answering', () => {
	let foresight: Foresight;
	const workers: types.Worker[] = [];

	afterAll(async () => {
		for (const w of workers) {
			try {
				process.kill(w.pid, 'SIGCONT');
			} catch {
				/* gone */
			}
			w.close();
		}
		await foresight?.detach();
	});

	test('is left out of admission and its actions time out; it is taken back once it answers', async () => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 250, mediaCodecs: MEDIA_CODECS });
		const events: HealingEvent[] = [];
		foresight.on('healing', (e) => events.push(e));
		for (let i = 0; i < 2; i++) workers.push(await mediasoup.createWorker({ logLevel: 'error' }));
		const [stopped, other] = workers as [types.Worker, types.Worker];
		const busy = await other.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'room' } });
		const idle = await stopped.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'room' } });
		// Load on `other`, nothing on `stopped`: without liveness, a newcomer would go to `stopped`.
		const send = await startSendingPeer(busy, 80_000);
		const recv = await startReceivingPeer(idle, []);
		await busy.pipeToRouter({ producerId: send.video.id, router: idle });
		const consumer = await recv.transport.consume({ producerId: send.video.id, rtpCapabilities: idle.rtpCapabilities });
		// Seen on the observer, not on `consumer.paused`: once the late pause lands, Foresight
		// owns it and its policy may restore the consumer within the same tick (load is low here).
		let pausesApplied = 0;
		consumer.observer.on('pause', () => pausesApplied++);
		try {
			await waitFor(() => foresight.allocationSnapshot().workers.length === 2, 5000, 'both workers in the snapshot');
			const t0 = Date.now();
			process.kill(stopped.pid, 'SIGSTOP');
			await waitFor(() => events.some((e) => e.type === 'workerUnresponsive'), UNRESPONSIVE_AFTER_MS + 3000, 'the worker reported unresponsive');
			const noticedMs = Date.now() - t0;
			expect(events.find((e) => e.type === 'workerUnresponsive')).toMatchObject({ workerId: String(stopped.pid) });
			expect(foresight.allocationSnapshot().workers.map((w) => w.id)).toEqual([String(other.pid)]);
			// Admission answers at once, and not with the stopped worker.
			const j0 = Date.now();
			const answer = await foresight.place({ peerId: 'late', roomId: 'room', sends: ['audio'], consumes: true, priority: 1 });
			expect(answer).toMatchObject({ decision: 'place', workerId: String(other.pid) });
			expect(Date.now() - j0).toBeLessThan(1000);
			// An action on the stopped worker fails after the answer timeout instead of waiting for it.
			const a0 = Date.now();
			const entry = await foresight.apply({ type: 'pauseConsumer', consumerId: consumer.id, workerId: String(stopped.pid), reason: 'test', predictedBeforePct: 0, predictedAfterPct: 0 });
			expect(entry.outcome).toMatchObject({ status: 'error', code: 'workerTimeout' });
			expect(Date.now() - a0).toBeGreaterThanOrEqual(WORKER_ANSWER_TIMEOUT_MS - 50);
			expect(Date.now() - a0).toBeLessThan(WORKER_ANSWER_TIMEOUT_MS + 2000);
			process.kill(stopped.pid, 'SIGCONT');
			await waitFor(() => events.some((e) => e.type === 'workerResponsive'), 5000, 'the worker answering again');
			const back = events.find((e) => e.type === 'workerResponsive');
			expect(back?.type === 'workerResponsive' && back.hungMs).toBeGreaterThanOrEqual(noticedMs - 100);
			expect(foresight.allocationSnapshot().workers.map((w) => w.id).sort()).toEqual([String(stopped.pid), String(other.pid)].sort());
			// The late pause went through once the worker ran again: mediasoup's own order is kept.
			await waitFor(() => pausesApplied === 1, 5000, 'the late pause to apply');
			const audit = await foresight.store.actionHistory(t0 - 1, Date.now() + 1);
			expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['heal-workerUnresponsive', 'heal-workerResponsive']));
		} finally {
			send.sender.stop();
			recv.sink.close();
		}
	}, 60_000);
});
