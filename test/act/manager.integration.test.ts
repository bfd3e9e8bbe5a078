import * as mediasoup from 'mediasoup';
import { attach, MOVABLE_KEY, type Foresight } from '../../plugin';
import type { AuditEntry } from '../../plugin/act/manager';
import { MEDIA_CODECS } from '../../training/media/rig';

/** The live manager on real workers: placement through the guarded policy, audited to the store. */
describe('allocation manager (attach → place → audit)', () => {
	let foresight: Foresight;
	const workers: mediasoup.types.Worker[] = [];
	afterEach(async () => {
		await foresight.detach();
		for (const w of workers.splice(0)) w.close();
	});

	test('places a room on a worker, keeps it there, and audits each decision', async () => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 200, mediaCodecs: MEDIA_CODECS });
		const audits: AuditEntry[] = [];
		foresight.on('audit', (e) => audits.push(e));
		workers.push(await mediasoup.createWorker({ logLevel: 'warn' }), await mediasoup.createWorker({ logLevel: 'warn' }));
		// Load samples and predictions exist before the first decision.
		await foresight.sampleLoad();
		await new Promise((r) => setTimeout(r, 300));
		await foresight.sampleLoad();
		foresight.predictNow();

		const first = await foresight.place({ peerId: 'alice', roomId: 'standup', sends: ['video', 'audio'], consumes: true, priority: 100 });
		expect(first.decision).toBe('place');
		if (first.decision !== 'place') return;
		expect(first.router.appData.roomId).toBe('standup');
		expect(workers.map((w) => String(w.pid))).toContain(first.workerId);
		expect(foresight.registry.get('router', first.router.id)?.workerId).toBe(first.workerId);

		const second = await foresight.place({ peerId: 'bob', roomId: 'standup', sends: ['audio'], consumes: true, priority: 100 });
		expect(second).toMatchObject({ decision: 'place', workerId: first.workerId });
		if (second.decision === 'place') expect(second.router.id).toBe(first.router.id);

		const placed = audits.filter((a) => a.action.type === 'place');
		expect(placed.map((a) => a.verdict)).toEqual(['applied', 'applied']);
		expect(placed.every((a) => a.outcome?.status === 'ok')).toBe(true);
		const stored = await foresight.store.actionHistory(0, Date.now() + 1000);
		expect(stored.filter((a) => a.action === 'place').map((a) => a.targetIds[0])).toEqual(['alice', 'bob']);
		expect(stored.every((a) => a.dryRun === false && a.reason.length > 0)).toBe(true);
	});

	test('what the app declares unmovable (appData.movable === false on the entity or its transport) reaches the policy as such', async () => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', mediaCodecs: MEDIA_CODECS });
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		workers.push(worker);
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'hall' } });
		const listenInfo = { protocol: 'udp' as const, ip: '127.0.0.1' };
		const opus = { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }] };
		const browser = await router.createPlainTransport({ listenInfo, comedia: true, appData: { peerId: 'alice' } });
		const recorder = await router.createPlainTransport({ listenInfo, comedia: true, appData: { peerId: 'recorder', [MOVABLE_KEY]: false } });
		const voice = await browser.produce({ kind: 'audio', rtpParameters: { ...opus, encodings: [{ ssrc: 1111 }] } });
		const pinnedVoice = await browser.produce({ kind: 'audio', rtpParameters: { ...opus, encodings: [{ ssrc: 2222 }] }, appData: { [MOVABLE_KEY]: false } });
		const recorded = await recorder.consume({ producerId: voice.id, rtpCapabilities: router.rtpCapabilities });
		const listened = await browser.consume({ producerId: pinnedVoice.id, rtpCapabilities: router.rtpCapabilities });

		// Piped to a router on a second worker: the pipe's consumer on this one is no receiver.
		const otherWorker = await mediasoup.createWorker({ logLevel: 'warn' });
		workers.push(otherWorker);
		const other = await otherWorker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId: 'hall' } });
		await router.pipeToRouter({ producerId: voice.id, router: other });
		const pipeConsumers = [...foresight.registry.all('consumer')].filter((c) => foresight.registry.get('transport', c.transportId)?.transportType === 'pipe');
		expect(pipeConsumers).toHaveLength(1);

		const snapshot = foresight.allocationSnapshot();
		expect(snapshot.consumers.map((c) => c.id).sort()).toEqual([recorded.id, listened.id].sort());
		const producer = (id: string) => snapshot.producers.find((p) => p.id === id)!;
		const consumer = (id: string) => snapshot.consumers.find((c) => c.id === id)!;
		expect(producer(voice.id)).toMatchObject({ peerId: 'alice', roomId: 'hall' });
		expect(producer(voice.id).movable).toBeUndefined();
		expect(producer(pinnedVoice.id).movable).toBe(false);
		expect(consumer(recorded.id)).toMatchObject({ peerId: 'recorder', movable: false });
		expect(consumer(listened.id).movable).toBeUndefined();
	});

	test("an operator's action is carried out by Foresight's actuator even in dry run, and audited", async () => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', mediaCodecs: MEDIA_CODECS, dryRun: true });
		const audits: AuditEntry[] = [];
		foresight.on('audit', (e) => audits.push(e));
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		workers.push(worker);
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, comedia: true });
		const producer = await transport.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 3333 }] } });
		const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const action = { type: 'pauseConsumer' as const, consumerId: consumer.id, workerId: String(worker.pid), reason: 'operator', predictedBeforePct: 0, predictedAfterPct: 0 };
		const entry = await foresight.apply(action);
		expect(entry).toMatchObject({ verdict: 'applied', outcome: { status: 'ok' } });
		expect(consumer.paused).toBe(true);
		expect(audits.map((a) => a.action)).toEqual([action]);
		const stored = await foresight.store.actionHistory(0, Date.now() + 1000);
		expect(stored.map((a) => a.action)).toContain('pauseConsumer');
	});
});
