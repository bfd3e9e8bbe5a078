import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, MemoryClusterBus, type Foresight, type HostReport } from '../../plugin';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * foresight.crossHostRelief() on real workers: this host's only worker is over its line
 * (a budget of 0.01 % of a core: an idle worker exceeds it), and another
 * host reported headroom in the shared view. Relief serves the worker's receivers from that
 * host, reserves their load there, and proposes nothing on a stale view.
 */
describe('cross-host relief on real workers', () => {
	let foresight: Foresight;
	let worker: types.Worker;
	const bus = new MemoryClusterBus();
	const other = bus.channel();
	const remote = (): HostReport => ({
		hostId: 'b',
		ts: Date.now(),
		seq: 1,
		workers: [{ workerId: 'b-w1', capacityPct: 100, cpuPct: 10, p95: [{ horizonS: 30, p95Pct: 12 }], headroomPct: 60, rooms: [] }],
		rooms: {},
	});
	let keepAlive: NodeJS.Timeout | undefined;

	afterAll(async () => {
		clearInterval(keepAlive);
		await foresight?.detach();
		worker?.close();
	});

	test('a worker over its line on a host without room sends receivers to the host with headroom, and books them there', async () => {
		foresight = attach(mediasoup, {
			useEnv: false,
			logLevel: 'silent',
			loadSampleIntervalMs: 200,
			mediaCodecs: MEDIA_CODECS,
			allocation: { workerCapacityPct: 0.01 },
			cluster: { hostId: 'a', reportIntervalMs: 200, silentAfterMs: 3000 },
			clusterChannel: bus.channel(),
		});
		// Host b keeps reporting, as a live host does.
		await other.publish(remote());
		keepAlive = setInterval(() => void other.publish(remote()).catch(() => undefined), 200);
		worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'hall' } });
		const send = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, comedia: true, appData: { peerId: 'speaker' } });
		const producer = await send.produce({
			kind: 'audio',
			rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 4444 }] },
		});
		for (let i = 0; i < 6; i++) {
			const recv = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, appData: { peerId: `rx${i}` } });
			await recv.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		}
		await waitFor(() => (foresight.clusterView()?.hosts.length ?? 0) === 1, 5000, 'host b in the view');
		let moves: ReturnType<Foresight['crossHostRelief']> = [];
		await waitFor(
			async () => {
				await foresight.sampleLoad();
				foresight.predictNow();
				moves = foresight.crossHostRelief();
				return moves.length > 0;
			},
			15_000,
			'a cross-host relief move',
		);
		const spread = moves.find((m) => m.action.type === 'spreadFanout');
		expect(spread).toBeDefined();
		expect(spread!.targetHost).toBe('b');
		expect(spread!.action.toWorkerId).toBe('b-w1');
		expect(spread!.action.workerId).toBe(String(worker.pid));
		expect(spread!.exposureSavedS).toBeGreaterThan(spread!.disruptionS);
		// Booked where every host sees it.
		const state = await other.read(0, Date.now());
		expect(state.reservations.some((r) => r.fromHost === 'a' && r.targetHost === 'b' && r.costPct > 0)).toBe(true);
		// The guard's cooldown holds the same consumers back on the next call.
		const again = foresight.crossHostRelief();
		const moved = new Set(moves.flatMap((m) => (m.action.type === 'spreadFanout' ? m.action.consumerIds : [])));
		expect(again.some((m) => m.action.type === 'spreadFanout' && m.action.consumerIds.some((id) => moved.has(id)))).toBe(false);
	}, 30_000);

	test('on a stale view (the shared store unreachable) nothing is proposed', async () => {
		bus.down = true;
		await waitFor(() => foresight.clusterView()?.stale === true, 5000, 'the view to go stale');
		expect(foresight.crossHostRelief()).toEqual([]);
		bus.down = false;
	});
});
