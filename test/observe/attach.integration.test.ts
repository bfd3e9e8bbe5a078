import * as mediasoup from 'mediasoup';
import { attach, type Foresight, type WorkerLoadSample } from '../../plugin';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';

/**
 * Real worker, real UDP, real encoded VP8/Opus: the registry must mirror the
 * mediasoup graph and forget every closed entity, and Foresight must leave no
 * listener behind.
 */
describe('attach(): registry and worker load on a real worker', () => {
	const unhandled: unknown[] = [];
	const onUnhandled = (reason: unknown): void => {
		unhandled.push(reason);
	};
	let foresight: Foresight;
	const baselineNewWorker = mediasoup.observer.listenerCount('newworker');

	beforeAll(() => process.on('unhandledRejection', onUnhandled));
	afterAll(() => process.off('unhandledRejection', onUnhandled));
	beforeEach(() => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 250 });
	});
	afterEach(async () => {
		await foresight.detach();
		expect(mediasoup.observer.listenerCount('newworker')).toBe(baselineNewWorker);
		expect(unhandled).toEqual([]);
	});

	test('mirrors worker → router → transport → producer → consumer and samples CPU under load', async () => {
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 10_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		const samples: WorkerLoadSample[] = [];
		foresight.on('workerLoad', (s) => samples.push(s));
		try {
			const reg = foresight.registry;
			const workerId = String(worker.pid);
			expect(reg.get('worker', workerId)?.handle).toBe(worker);
			expect(reg.get('router', router.id)).toMatchObject({ workerId, parentId: workerId });
			expect(reg.get('transport', send.transport.id)).toMatchObject({ routerId: router.id, transportType: 'plain' });
			expect(reg.get('producer', send.video.id)).toMatchObject({ transportId: send.transport.id, mediaKind: 'video', workerId });
			expect(reg.get('producer', send.audio.id)).toMatchObject({ mediaKind: 'audio' });
			for (const c of recv.consumers) {
				expect(reg.get('consumer', c.id)).toMatchObject({ transportId: recv.transport.id, producerId: c.producerId, workerId });
			}
			expect([...reg.childrenOf(router.id, 'transport')].map((t) => t.id).sort()).toEqual(
				[send.transport.id, recv.transport.id].sort(),
			);
			expect(reg.countsOf(workerId)).toEqual({ routers: 1, transports: 2, producers: 2, consumers: 2, dataProducers: 0, dataConsumers: 0 });

			// Media really flows through the worker to the sink.
			await waitFor(() => recv.sink.packets > 100, 10_000, 'packets at the consumer sink');
			const stats = await send.video.getStats();
			expect(stats[0]?.byteCount).toBeGreaterThan(10_000);

			await waitFor(() => samples.filter((s) => s.workerId === workerId).length >= 3, 10_000, 'load samples');
			const mine = samples.filter((s) => s.workerId === workerId);
			expect(Math.max(...mine.map((s) => s.cpuPct))).toBeGreaterThan(0);
			const last = mine.at(-1)!;
			expect(last).toMatchObject({ pid: worker.pid, producers: 2, consumers: 2, transports: 2, routers: 1 });
			expect(last.rssBytes).toBeGreaterThan(1_000_000);

			// Closing the consumer transport removes its consumers.
			recv.transport.close();
			expect(reg.get('transport', recv.transport.id)).toBeUndefined();
			for (const c of recv.consumers) expect(reg.get('consumer', c.id)).toBeUndefined();
			expect(reg.countsOf(workerId).consumers).toBe(0);
		} finally {
			send.sender.stop();
			recv.sink.close();
			worker.close();
		}
		expect(foresight.registry.size).toBe(0);
		expect(worker.observer.listenerCount('newrouter')).toBe(0);
		expect(worker.observer.listenerCount('close')).toBe(0);
	});

	test('router close cascades through transports, producers and consumers', async () => {
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 20_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		try {
			const workerId = String(worker.pid);
			expect(foresight.registry.size).toBe(1 + 1 + 2 + 2 + 2);
			// A stats call in flight while the router closes must not throw out of anything.
			const inFlight = send.video.getStats().catch(() => undefined);
			router.close();
			await inFlight;
			expect(foresight.registry.size).toBe(1);
			expect(foresight.registry.countsOf(workerId)).toEqual({ routers: 0, transports: 0, producers: 0, consumers: 0, dataProducers: 0, dataConsumers: 0 });
			expect(router.observer.listenerCount('newtransport')).toBe(0);
			expect(send.transport.observer.listenerCount('newproducer')).toBe(0);
			expect(send.video.observer.listenerCount('close')).toBe(0);
			expect(recv.consumers[0]!.observer.listenerCount('close')).toBe(0);
		} finally {
			send.sender.stop();
			recv.sink.close();
			worker.close();
		}
	});

	test('a worker killed with SIGKILL is reported dead and forgotten with everything on it', async () => {
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 30_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		const died: string[] = [];
		foresight.on('workerDied', (id) => died.push(id));
		// The app's own handler, as any production app has one.
		const appDied = new Promise<Error>((r) => worker.once('died', r));
		try {
			await waitFor(() => recv.sink.packets > 20, 10_000, 'media flowing');
			// Stats and load requests racing the death must settle without unhandled rejections.
			const racing = [send.video.getStats().catch(() => 'rejected'), foresight.sampleLoad()];
			process.kill(worker.pid, 'SIGKILL');
			await appDied;
			await Promise.all(racing);
			await waitFor(() => foresight.registry.size === 0, 5_000, 'registry emptied');
			expect(died).toEqual([String(worker.pid)]);
			expect(worker.observer.listenerCount('newrouter')).toBe(0);
			expect(router.observer.listenerCount('newtransport')).toBe(0);
			// Sampling after death yields nothing and throws nothing.
			await expect(foresight.sampleLoad()).resolves.toEqual([]);
		} finally {
			send.sender.stop();
			recv.sink.close();
		}
	});

	test('worker slots: the app’s appData.slot, else the lowest free index, reused by a replacement after a death', async () => {
		const named = await mediasoup.createWorker({ logLevel: 'warn', appData: { slot: 'edge' } });
		const first = await mediasoup.createWorker({ logLevel: 'warn' });
		const second = await mediasoup.createWorker({ logLevel: 'warn' });
		const workers = [named, first, second];
		try {
			const slotOf = (w: typeof first): string | undefined => foresight.registry.slotOf(String(w.pid));
			expect([slotOf(named), slotOf(first), slotOf(second)]).toEqual(['edge', '0', '1']);
			const died = new Promise<Error>((r) => first.once('died', r));
			process.kill(first.pid, 'SIGKILL');
			await died;
			await waitFor(() => !foresight.registry.has(String(first.pid)), 5_000, 'dead worker forgotten');
			const replacement = await mediasoup.createWorker({ logLevel: 'warn' });
			workers.push(replacement);
			expect(slotOf(replacement)).toBe('0');
			expect(slotOf(second)).toBe('1');
		} finally {
			for (const w of workers) w.close();
		}
	});

	test('detach() removes every listener from live entities', async () => {
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 40_000);
		try {
			expect(send.video.observer.listenerCount('close')).toBe(1);
			await foresight.detach();
			expect(foresight.registry.size).toBe(0);
			expect(mediasoup.observer.listenerCount('newworker')).toBe(baselineNewWorker);
			expect(worker.observer.listenerCount('newrouter')).toBe(0);
			expect(worker.observer.listenerCount('close')).toBe(0);
			expect(router.observer.listenerCount('newtransport')).toBe(0);
			expect(send.transport.observer.listenerCount('newproducer')).toBe(0);
			expect(send.video.observer.listenerCount('close')).toBe(0);
			// Entities created after detach are not tracked.
			await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
			expect(foresight.registry.size).toBe(0);
		} finally {
			send.sender.stop();
			worker.close();
		}
	});
});
