import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, type Foresight } from '../../plugin';
import { Actuator, type ActionOutcome, type ActionRecord, type MigrationHooks } from '../../plugin/act';
import type { AllocationAction } from '../../plugin/allocate/actions';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, UdpSink, waitFor } from '../../training/media/rig';
import { consumeInto, RtpTap, ssrcOf, startSimulcastProducer } from './media';

/**
 * Every action applied to real workers carrying real VP8/Opus over UDP: the
 * sinks standing in for receivers must show the effect (packets stop, resume,
 * keep flowing across a move), and the test "client" below plays the app's side
 * of the migration hooks the way a mediasoup-client app would: open a transport
 * on the new router, publish/consume there, and only then close the old one.
 */

type Action = AllocationAction;
const base = { reason: 'test', predictedBeforePct: 90, predictedAfterPct: 60 };

/** Where each consumer "plays": its sink. Moving a consumer keeps the sink, as a client keeps its <video>. */
interface Playback {
	transport: types.PlainTransport;
	sink: UdpSink;
	tap: RtpTap;
}

describe('Actuator on real workers with real media', () => {
	const unhandled: unknown[] = [];
	const onUnhandled = (reason: unknown): void => {
		unhandled.push(reason);
	};
	const cleanups: Array<() => void> = [];
	const playback = new Map<string, Playback>();
	const hookCalls: string[] = [];
	const migrated: Array<{ oldProducerId: string; newProducerId: string }> = [];
	const dropped: Array<[string, string]> = [];
	/** Stops a sender at most once, whoever asks first (a migration, or the final cleanup). */
	const once = (stop: () => void): (() => void) => {
		let stopped = false;
		return () => {
			if (!stopped) stop();
			stopped = true;
		};
	};
	/** Senders keyed by producer id, so a migration can stop the old one. */
	const senders = new Map<string, () => void>();
	let closeProducerDuringMigration = false;
	let foresight: Foresight;
	let actuator: Actuator;
	let records: ActionRecord[];
	let w1: types.Worker;
	let w2: types.Worker;
	const baselineNewWorker = mediasoup.observer.listenerCount('newworker');

	const hooks: MigrationHooks = {
		async migrateProducer({ producerId, toRouter }) {
			hookCalls.push('migrateProducer');
			if (closeProducerDuringMigration) foresight.registry.get('producer', producerId)?.handle.close();
			const peer = await startSendingPeer(toRouter, 70_000 + senders.size * 10);
			peer.audio.close();
			const stop = once(() => peer.sender.stop());
			senders.set(peer.video.id, stop);
			cleanups.push(stop);
			return { newProducerId: peer.video.id };
		},
		async moveConsumers({ consumerIds, producerId, toRouter }) {
			hookCalls.push('moveConsumers');
			const moves = await Promise.all(
				consumerIds.map(async (oldConsumerId) => {
					const old = playback.get(oldConsumerId)!;
					const { transport, consumer } = await consumeInto(toRouter, producerId, old.sink.port);
					// Make-before-break: the old consumer goes only once the new one plays.
					await waitFor(() => old.tap.of(ssrcOf(consumer)) > 0, 8_000, `media of the moved consumer ${consumer.id}`);
					old.transport.close();
					playback.delete(oldConsumerId);
					playback.set(consumer.id, { transport, sink: old.sink, tap: old.tap });
					return { oldConsumerId, newConsumerId: consumer.id };
				}),
			);
			return moves;
		},
		producerMigrated({ oldProducerId, newProducerId }) {
			migrated.push({ oldProducerId, newProducerId });
			senders.get(oldProducerId)?.();
		},
		consumerDropped(consumerId, reason) {
			dropped.push([consumerId, reason]);
		},
	};

	/** Applies an action and checks the audit event carries the same outcome. */
	async function apply(action: Action): Promise<ActionOutcome> {
		const before = records.length;
		const outcome = await actuator.apply(action);
		expect(records.slice(before)).toEqual([expect.objectContaining({ action, outcome })]);
		return outcome;
	}

	async function room(worker: types.Worker, roomId: string): Promise<types.Router> {
		return worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId } });
	}

	async function sender(router: types.Router, ssrcBase: number) {
		const peer = await startSendingPeer(router, ssrcBase);
		const stop = once(() => peer.sender.stop());
		senders.set(peer.video.id, stop);
		cleanups.push(stop);
		return peer;
	}

	/** A receiving peer with one consumer per producer, registered as playing. */
	async function receiver(router: types.Router, producers: types.Producer[]) {
		const peer = await startReceivingPeer(router, producers);
		cleanups.push(() => peer.sink.close());
		const tap = new RtpTap(peer.sink);
		for (const c of peer.consumers) playback.set(c.id, { transport: peer.transport, sink: peer.sink, tap });
		return { ...peer, tap };
	}

	beforeAll(async () => {
		process.on('unhandledRejection', onUnhandled);
		foresight = attach(mediasoup, {
			useEnv: false,
			logLevel: 'silent',
			loadSampleIntervalMs: 60_000,
			statsIntervalMs: 60_000,
			profiling: { sampling: false },
		});
		w1 = await mediasoup.createWorker({ logLevel: 'warn' });
		w2 = await mediasoup.createWorker({ logLevel: 'warn' });
		actuator = new Actuator(foresight.registry, { hooks, mediaCodecs: MEDIA_CODECS, degradedPriority: 1, logger: foresight.log, hookTimeoutMs: 15_000 });
		records = [];
		actuator.on('action', (r) => records.push(r));
	});

	afterAll(async () => {
		const cleanupErrors: unknown[] = [];
		for (const cleanup of cleanups) {
			try {
				cleanup();
			} catch (error) {
				cleanupErrors.push(error);
			}
		}
		actuator.close();
		expect(actuator.listenerCount('action')).toBe(0);
		w1.close();
		w2.close();
		await foresight.detach();
		process.off('unhandledRejection', onUnhandled);
		expect(mediasoup.observer.listenerCount('newworker')).toBe(baselineNewWorker);
		expect(unhandled).toEqual([]);
		expect(cleanupErrors).toEqual([]);
	});

	const id = (w: types.Worker): string => String(w.pid);

	test('placement creates the room router on the chosen worker on demand, once', async () => {
		const place = (peerId: string, roomId: string, worker: types.Worker): Action => ({ ...base, type: 'place', peerId, roomId, workerId: id(worker) });
		const first = await apply(place('p1', 'room-place', w2));
		expect(first).toMatchObject({ status: 'ok', effect: { type: 'place', created: true } });
		const routerId = first.status === 'ok' && first.effect.type === 'place' ? first.effect.routerId : '';
		const node = foresight.registry.get('router', routerId);
		expect(node?.workerId).toBe(id(w2));
		expect(node?.handle.appData).toEqual({ roomId: 'room-place' });

		// The next peer of the room joins the same router; a burst of joins opens one router.
		expect(await apply(place('p2', 'room-place', w2))).toEqual({ status: 'ok', effect: { type: 'place', routerId, created: false } });
		const burst = await Promise.all(['a', 'b', 'c'].map((p) => actuator.apply(place(p, 'room-burst', w1))));
		const created = burst.filter((o) => o.status === 'ok' && o.effect.type === 'place' && o.effect.created);
		expect(created).toHaveLength(1);
		expect(new Set(burst.map((o) => (o.status === 'ok' && o.effect.type === 'place' ? o.effect.routerId : 'error'))).size).toBe(1);
		expect(foresight.registry.countsOf(id(w1)).routers).toBe(1);

		// Without configured codecs the room's codecs are copied from a router it has.
		const derived = new Actuator(foresight.registry, { hooks, logger: foresight.log });
		const onW1 = await derived.apply(place('p3', 'room-place', w1));
		expect(onW1).toMatchObject({ status: 'ok', effect: { created: true } });
		const copy = foresight.registry.get('router', onW1.status === 'ok' && onW1.effect.type === 'place' ? onW1.effect.routerId : '')!;
		expect(copy.handle.rtpCapabilities.codecs?.map((c) => c.mimeType)).toEqual(node?.handle.rtpCapabilities.codecs?.map((c) => c.mimeType));
		expect(await derived.apply(place('p4', 'no-such-room', w1))).toMatchObject({ status: 'error', code: 'noRouter' });
		derived.close();

		// An unknown worker is a clear error, not a throw.
		expect(await apply(place('p5', 'room-place', { pid: 1 } as types.Worker))).toMatchObject({ status: 'error', code: 'notFound' });
	});

	test('spreading fan-out serves consumers from another worker through one reused pipe', async () => {
		const r1 = await room(w1, 'room-spread');
		const peer = await sender(r1, 10_000);
		const viewers = await Promise.all([1, 2, 3].map(() => receiver(r1, [peer.video])));
		await waitFor(() => viewers.every((v) => v.tap.rtp > 30), 10_000, 'media at every viewer');
		const [a, b, c] = viewers.map((v) => v.consumers[0]!.id) as [string, string, string];

		const spread = (consumerIds: string[]): Action => ({ ...base, type: 'spreadFanout', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2), consumerIds });
		const first = await apply(spread([a, b]));
		expect(first).toMatchObject({ status: 'ok', effect: { type: 'spreadFanout', piped: true, servedProducerId: peer.video.id, notMoved: [] } });
		if (first.status !== 'ok' || first.effect.type !== 'spreadFanout') throw new Error('unreachable');
		expect(first.effect.moved.map((m) => m.oldConsumerId).sort()).toEqual([a, b].sort());
		const r2 = foresight.registry.get('router', first.effect.routerId)!;
		expect(r2.workerId).toBe(id(w2));

		// The moved viewers now receive from worker 2; the third still from worker 1.
		for (const m of first.effect.moved) {
			expect(foresight.registry.get('consumer', m.newConsumerId)?.workerId).toBe(id(w2));
			expect(foresight.registry.get('consumer', m.oldConsumerId)).toBeUndefined();
		}
		const counts = viewers.map((v) => v.tap.rtp);
		await new Promise((r) => setTimeout(r, 1000));
		viewers.forEach((v, i) => expect(v.tap.rtp - counts[i]!).toBeGreaterThan(30));
		for (const m of first.effect.moved) {
			const play = playback.get(m.newConsumerId)!;
			expect(play.tap.of(ssrcOf(foresight.registry.get('consumer', m.newConsumerId)!.handle))).toBeGreaterThan(30);
		}
		expect(foresight.registry.get('consumer', c)?.workerId).toBe(id(w1));

		// The second batch reuses the pipe: still one PipeTransport pair between the routers.
		const second = await apply(spread([c]));
		expect(second).toMatchObject({ status: 'ok', effect: { piped: false, routerId: r2.id } });
		const pipes = (routerId: string): number => [...foresight.registry.childrenOf(routerId, 'transport')].filter((t) => t.transportType === 'pipe').length;
		expect(pipes(r1.id)).toBe(1);
		expect(pipes(r2.id)).toBe(1);
		// Nothing left to move: a clear "skipped", not a second pipe.
		const moved = second.status === 'ok' && second.effect.type === 'spreadFanout' ? second.effect.moved[0]!.newConsumerId : '';
		expect(await apply(spread([moved]))).toMatchObject({ status: 'skipped' });
		expect(await apply(spread(['no-such-consumer']))).toMatchObject({ status: 'error', code: 'notFound' });
	});

	test('producer migration: consumers on both workers keep receiving across the move', async () => {
		const r1 = await room(w1, 'room-migrate');
		const r2 = await room(w2, 'room-migrate');
		const peer = await sender(r1, 20_000);
		// The app piped the producer to worker 2 itself: Foresight must find and reuse that pipe.
		await r1.pipeToRouter({ producerId: peer.video.id, router: r2 });
		const local = await receiver(r1, [peer.video]);
		const remote = await receiver(r2, [peer.video]);
		await waitFor(() => local.tap.rtp > 30 && remote.tap.rtp > 30, 10_000, 'media before the move');
		local.tap.resetGap();
		remote.tap.resetGap();
		const before = [local.tap.rtp, remote.tap.rtp];

		const outcome = await apply({ ...base, type: 'migrateProducer', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2) });
		expect(outcome).toMatchObject({ status: 'ok', effect: { type: 'migrateProducer', routerId: r2.id, pipedTo: [r1.id] } });
		if (outcome.status !== 'ok' || outcome.effect.type !== 'migrateProducer') throw new Error('unreachable');
		const { newProducerId, moved } = outcome.effect;
		expect(moved.map((m) => m.oldConsumerId).sort()).toEqual([local.consumers[0]!.id, remote.consumers[0]!.id].sort());
		expect(migrated).toContainEqual({ oldProducerId: peer.video.id, newProducerId });
		expect(peer.video.closed).toBe(true);
		expect(foresight.registry.get('producer', newProducerId)?.workerId).toBe(id(w2));

		const afterMove = [local.tap.rtp, remote.tap.rtp];
		await new Promise((r) => setTimeout(r, 1000));
		// Media kept flowing during the move, and flows from the new producer after it.
		expect(local.tap.maxGapMs()).toBeLessThan(500);
		expect(remote.tap.maxGapMs()).toBeLessThan(500);
		expect(afterMove[0]! - before[0]!).toBeGreaterThan(0);
		expect(local.tap.rtp - afterMove[0]!).toBeGreaterThan(30);
		expect(remote.tap.rtp - afterMove[1]!).toBeGreaterThan(30);
		for (const m of moved) {
			const consumer = foresight.registry.get('consumer', m.newConsumerId)!;
			expect(consumer.producerId).toBe(newProducerId);
			expect(playback.get(m.newConsumerId)!.tap.of(ssrcOf(consumer.handle))).toBeGreaterThan(30);
		}
		expect(local.consumers[0]!.closed && remote.consumers[0]!.closed).toBe(true);
	});

	test('a producer closing in the middle of its migration gives a clear outcome', async () => {
		const r1 = await room(w1, 'room-vanish');
		const peer = await sender(r1, 30_000);
		await receiver(r1, [peer.video]);
		closeProducerDuringMigration = true;
		try {
			const outcome = await apply({ ...base, type: 'migrateProducer', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2) });
			expect(outcome).toMatchObject({ status: 'error', code: 'closed' });
		} finally {
			closeProducerDuringMigration = false;
		}
		expect(await apply({ ...base, type: 'migrateProducer', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2) })).toMatchObject({
			status: 'error',
			code: 'notFound',
		});
	});

	test('a misbehaving app hook gives an error outcome and leaves the media playing', async () => {
		const r1 = await room(w1, 'room-hooks');
		const peer = await sender(r1, 35_000);
		const viewer = await receiver(r1, [peer.video]);
		await waitFor(() => viewer.tap.rtp > 30, 10_000, 'media before the bad hooks');
		const consumerId = viewer.consumers[0]!.id;
		let pending: (() => void) | undefined;
		const bad = new Actuator(foresight.registry, {
			logger: foresight.log,
			mediaCodecs: MEDIA_CODECS,
			hookTimeoutMs: 300,
			hooks: {
				...hooks,
				// Claims a consumer that does not exist on the target.
				moveConsumers: async ({ consumerIds }) => consumerIds.map((oldConsumerId) => ({ oldConsumerId, newConsumerId: 'made-up' })),
				migrateProducer: () => new Promise((resolve) => (pending = () => resolve({ newProducerId: 'late' }))),
			},
		});
		const spread: Action = { ...base, type: 'spreadFanout', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2), consumerIds: [consumerId] };
		expect(await bad.apply(spread)).toMatchObject({ status: 'error', code: 'hookFailed' });
		const migrate: Action = { ...base, type: 'migrateProducer', producerId: peer.video.id, workerId: id(w1), toWorkerId: id(w2) };
		expect(await bad.apply(migrate)).toMatchObject({ status: 'error', code: 'hookTimeout' });
		pending?.();
		bad.close();
		expect(await bad.apply(spread)).toMatchObject({ status: 'error', code: 'closedActuator' });

		// Nothing was torn down: the same consumer still plays.
		expect(peer.video.closed || viewer.consumers[0]!.closed).toBe(false);
		const at = viewer.tap.rtp;
		await waitFor(() => viewer.tap.rtp > at + 30, 5_000, 'media after the failed actions');
	});

	test('layers are lowered on a simulcast consumer and restored to what the app had chosen', async () => {
		const r1 = await room(w1, 'room-layers');
		const simulcast = await startSimulcastProducer(r1, 40_000);
		cleanups.push(() => simulcast.stop());
		const sink = await UdpSink.open();
		cleanups.push(() => sink.close());
		const viewer = { tap: new RtpTap(sink) };
		const { consumer } = await consumeInto(r1, simulcast.producer.id, sink.port);
		expect(consumer.type).toBe('simulcast');
		await consumer.setPriority(5);
		const appLayers = consumer.preferredLayers!;
		expect(appLayers.spatialLayer).toBe(2);
		await waitFor(() => consumer.currentLayers?.spatialLayer === 2, 10_000, 'top layer forwarded');
		const resumeListeners = consumer.observer.listenerCount('resume');

		const lower: Action = { ...base, type: 'setConsumerLayers', consumerId: consumer.id, workerId: id(w1), spatial: 0, temporal: 0 };
		expect(await apply(lower)).toMatchObject({ status: 'ok', effect: { preferredLayers: { spatialLayer: 0, temporalLayer: 0 }, priority: 1 } });
		expect(consumer.preferredLayers).toEqual({ spatialLayer: 0, temporalLayer: 0 });
		expect(consumer.observer.listenerCount('resume')).toBe(resumeListeners + 1);
		await waitFor(() => consumer.currentLayers?.spatialLayer === 0, 10_000, 'switch to the lowest layer');
		const atLow = viewer.tap.rtp;
		await waitFor(() => viewer.tap.rtp > atLow + 30, 5_000, 'media on the lowest layer');

		const restore: Action = { ...base, type: 'restoreLayers', consumerId: consumer.id, workerId: id(w1) };
		expect(await apply(restore)).toMatchObject({ status: 'ok', effect: { preferredLayers: appLayers, priority: 5 } });
		expect(consumer.priority).toBe(5);
		await waitFor(() => consumer.currentLayers?.spatialLayer === 2, 10_000, 'switch back to the top layer');
		expect(consumer.observer.listenerCount('resume')).toBe(resumeListeners);
		expect(await apply(restore)).toMatchObject({ status: 'skipped' });

		// The app changed the layers after Foresight lowered them: its choice stands.
		await apply(lower);
		await consumer.setPreferredLayers({ spatialLayer: 1, temporalLayer: 0 });
		expect(await apply(restore)).toMatchObject({ status: 'skipped' });
		expect(consumer.preferredLayers).toEqual({ spatialLayer: 1, temporalLayer: 0 });
		expect(consumer.observer.listenerCount('resume')).toBe(resumeListeners);

		// A non-simulcast consumer has no layers to choose.
		const plain = await receiver(r1, [(await sender(r1, 41_000)).video]);
		expect(await apply({ ...lower, consumerId: plain.consumers[0]!.id })).toMatchObject({ status: 'error', code: 'invalid' });
	});

	test('pause stops and resume restarts the media at the sink; the app keeps its own pauses', async () => {
		const r1 = await room(w1, 'room-pause');
		const peer = await sender(r1, 50_000);
		const viewer = await receiver(r1, [peer.video, peer.audio]);
		const [video, audio] = viewer.consumers as [types.Consumer, types.Consumer];
		await waitFor(() => viewer.tap.of(ssrcOf(video)) > 30 && viewer.tap.of(ssrcOf(audio)) > 30, 10_000, 'media before pausing');
		const act = (type: 'pauseConsumer' | 'resumeConsumer' | 'dropConsumer', consumerId: string): Action => ({ ...base, type, consumerId, workerId: id(w1) });

		expect(await apply(act('pauseConsumer', video.id))).toEqual({ status: 'ok', effect: { type: 'pauseConsumer' } });
		await new Promise((r) => setTimeout(r, 200));
		const pausedAt = viewer.tap.of(ssrcOf(video));
		const audioAt = viewer.tap.of(ssrcOf(audio));
		await new Promise((r) => setTimeout(r, 800));
		expect(viewer.tap.of(ssrcOf(video))).toBe(pausedAt);
		expect(viewer.tap.of(ssrcOf(audio))).toBeGreaterThan(audioAt + 20);
		expect(await apply(act('pauseConsumer', video.id))).toMatchObject({ status: 'skipped' });

		expect(await apply(act('resumeConsumer', video.id))).toEqual({ status: 'ok', effect: { type: 'resumeConsumer' } });
		await waitFor(() => viewer.tap.of(ssrcOf(video)) > pausedAt + 30, 10_000, 'media after resuming');
		expect(await apply(act('resumeConsumer', video.id))).toMatchObject({ status: 'skipped' });

		// Paused by the app: Foresight neither claims nor resumes it.
		await audio.pause();
		expect(await apply(act('pauseConsumer', audio.id))).toMatchObject({ status: 'skipped' });
		expect(await apply(act('resumeConsumer', audio.id))).toMatchObject({ status: 'skipped' });
		expect(audio.paused).toBe(true);
		// Paused by Foresight, then resumed by the app: Foresight forgets its pause, and the
		// listener it watched the app's resume with (the profiler's own stay).
		await audio.resume();
		const resumeListeners = audio.observer.listenerCount('resume');
		expect(await apply(act('pauseConsumer', audio.id))).toMatchObject({ status: 'ok' });
		expect(audio.observer.listenerCount('resume')).toBe(resumeListeners + 1);
		await audio.resume();
		expect(await apply(act('resumeConsumer', audio.id))).toMatchObject({ status: 'skipped' });
		expect(audio.observer.listenerCount('resume')).toBe(resumeListeners);

		// Dropping closes the consumer and tells the app.
		expect(await apply(act('dropConsumer', audio.id))).toEqual({ status: 'ok', effect: { type: 'dropConsumer' } });
		expect(audio.closed).toBe(true);
		expect(dropped).toContainEqual([audio.id, 'test']);
		expect(await apply(act('pauseConsumer', audio.id))).toMatchObject({ status: 'error', code: 'notFound' });
	});

	test('admission refusal and redirect create nothing', async () => {
		const sizeBefore = foresight.registry.size;
		const countsBefore = [foresight.registry.countsOf(id(w1)), foresight.registry.countsOf(id(w2))];
		const callsBefore = hookCalls.length;
		expect(await apply({ ...base, type: 'refuse', peerId: 'late', roomId: 'room-full', workerId: id(w1) })).toEqual({
			status: 'ok',
			effect: { type: 'refuse', peerId: 'late', roomId: 'room-full' },
		});
		expect(await apply({ ...base, type: 'redirect', peerId: 'late', roomId: 'room-full', workerId: id(w1), target: 'eu-2' })).toEqual({
			status: 'ok',
			effect: { type: 'redirect', peerId: 'late', roomId: 'room-full', target: 'eu-2' },
		});
		expect(foresight.registry.size).toBe(sizeBefore);
		expect([foresight.registry.countsOf(id(w1)), foresight.registry.countsOf(id(w2))]).toEqual(countsBefore);
		expect(hookCalls.length).toBe(callsBefore);
		expect(foresight.registry.get('router', 'room-full')).toBeUndefined();
	});
});
