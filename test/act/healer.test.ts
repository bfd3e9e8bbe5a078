import type { types } from 'mediasoup';
import pino from 'pino';
import { Healer, type HealingEvent } from '../../plugin/act/healer';
import type { MigrationHooks, RejoinPeersRequest, RejoinResult } from '../../plugin/act/hooks';
import type { PlaceAnswer } from '../../plugin/act/manager';
import type { PendingJoin } from '../../plugin/allocate/snapshot';
import { Registry } from '../../plugin/observe/registry';
import { MemoryStore } from '../../plugin/store/memoryStore';

/**
 * The healer's decisions on a registry of plain objects (the real-worker path is in
 * healer.integration.test.ts): who is restored first, in full or audio only, who is
 * refused, and how the app's answers and failures are counted.
 */

interface FakePeer {
	id: string;
	priority?: number;
	sends: Array<'audio' | 'video'>;
	consumes: Array<'audio' | 'video'>;
	room?: string;
}

function world(peers: FakePeer[]) {
	const registry = new Registry();
	const worker = { pid: 1, died: false, closed: false } as unknown as types.Worker;
	registry.add({ kind: 'worker', id: 'w1', workerId: 'w1', pid: 1, slot: '0', parentId: undefined, seenAt: 0, handle: worker });
	const rooms = new Set(peers.map((p) => p.room ?? 'room'));
	for (const room of rooms) {
		const handle = { id: `r-${room}`, appData: room === 'none' ? {} : { roomId: room }, closed: false } as unknown as types.Router;
		registry.add({ kind: 'router', id: handle.id, workerId: 'w1', parentId: 'w1', seenAt: 0, handle });
	}
	for (const p of peers) {
		const routerId = `r-${p.room ?? 'room'}`;
		const appData = { peerId: p.id, ...(p.priority !== undefined ? { priority: p.priority } : {}) };
		const t = `t-${p.id}`;
		registry.add({ kind: 'transport', id: t, workerId: 'w1', routerId, parentId: routerId, seenAt: 0, transportType: 'webrtc', handle: { appData } as unknown as types.Transport });
		p.sends.forEach((kind, i) =>
			registry.add({ kind: 'producer', id: `p-${p.id}-${i}`, workerId: 'w1', routerId, transportId: t, parentId: t, seenAt: 0, mediaKind: kind, handle: { appData: {} } as unknown as types.Producer }),
		);
		p.consumes.forEach((kind, i) =>
			registry.add({
				kind: 'consumer',
				id: `c-${p.id}-${i}`,
				workerId: 'w1',
				routerId,
				transportId: t,
				parentId: t,
				producerId: 'elsewhere',
				seenAt: 0,
				mediaKind: kind,
				handle: { appData: {}, priority: 1 } as unknown as types.Consumer,
			}),
		);
	}
	/** What mediasoup does on a worker's death: routers close first, then the worker reports. */
	const kill = (healer: Healer): void => {
		(worker as unknown as { died: boolean }).died = true;
		for (const room of rooms) registry.remove(`r-${room}`);
		healer.workerDied('w1');
		registry.remove('w1');
	};
	return { registry, kill };
}

/** Admission with a budget of `fits` full peers; audio-only joins fit while `audioFits` lasts. */
function admission(fits: number, audioFits: number) {
	const asked: PendingJoin[][] = [];
	const placeAll = async (joins: PendingJoin[]): Promise<PlaceAnswer[]> => {
		asked.push(joins);
		return joins.map((j) => {
			const audioOnly = !j.sends.includes('video') && !j.consumes;
			const ok = audioOnly ? audioFits-- > 0 : fits-- > 0;
			return ok ? { decision: 'place', workerId: 'w2', router: { id: 'r2', appData: {} } as unknown as types.Router } : { decision: 'refuse', reason: 'every worker predicted over its limit' };
		});
	};
	return { placeAll, asked };
}

function healerFor(registry: Registry, placeAll: (j: PendingJoin[]) => Promise<PlaceAnswer[]>, hooks: Pick<MigrationHooks, 'replaceWorker' | 'rejoinPeers'>, hookTimeoutMs = 2000) {
	const store = new MemoryStore();
	const healer = new Healer(
		{ registry, placeAll, roomOf: (r) => (typeof r.appData.roomId === 'string' ? r.appData.roomId : undefined), adoptWorker: () => undefined, store: () => store },
		{ hooks, hookTimeoutMs, logger: pino({ level: 'silent' }) },
	);
	const events: HealingEvent[] = [];
	healer.on('healing', (e) => events.push(e));
	return { healer, events, store };
}

const everyoneRejoins = (calls: RejoinPeersRequest[]) => async (request: RejoinPeersRequest): Promise<RejoinResult[]> => {
	calls.push(request);
	return request.peers.map((p) => ({ peerId: p.peerId, rejoined: true }));
};

const PEERS: FakePeer[] = [
	{ id: 'bot', priority: 50, sends: ['video', 'audio'], consumes: ['video', 'audio'] },
	{ id: 'alice', priority: 200, sends: ['video', 'audio'], consumes: ['video'] },
	{ id: 'viewer', sends: [], consumes: ['video'] },
	{ id: 'bob', priority: 200, sends: ['video', 'audio'], consumes: ['video', 'audio'] },
];

describe('Healer: re-placing the peers of a dead worker', () => {
	test('with capacity, every peer re-joins in full, highest priority first, with what it lost', async () => {
		const { registry, kill } = world(PEERS);
		const { placeAll, asked } = admission(10, 10);
		const calls: RejoinPeersRequest[] = [];
		const replaced = { pid: 99, closed: false } as unknown as types.Worker;
		const { healer, events, store } = healerFor(registry, placeAll, { replaceWorker: async () => replaced, rejoinPeers: everyoneRejoins(calls) });
		kill(healer);
		await healer.idle();
		// One admission decision for all of them, by priority (ties by id); the transport's priority wins over consumers'.
		expect(asked).toHaveLength(1);
		expect(asked[0]!.map((j) => j.peerId)).toEqual(['alice', 'bob', 'bot', 'viewer']);
		expect(asked[0]!.find((j) => j.peerId === 'viewer')).toMatchObject({ sends: [], consumes: true });
		expect(calls).toHaveLength(1);
		const alice = calls[0]!.peers.find((p) => p.peerId === 'alice')!;
		expect(alice).toMatchObject({ mode: 'full', roomId: 'room', workerId: 'w2', priority: 200, lostTransportIds: ['t-alice'] });
		expect(alice.lostProducerIds.sort()).toEqual(['p-alice-0', 'p-alice-1']);
		expect(alice.lostConsumerIds).toEqual(['c-alice-0']);
		expect(events.map((e) => e.type)).toEqual(['workerDied', 'workerReplaced', 'peersPlaced', 'peersRejoined', 'healed']);
		expect(events.at(-1)).toMatchObject({ type: 'healed', rejoined: 4, degraded: 0, refused: 0, failed: 0 });
		expect(events[0]).toMatchObject({ type: 'workerDied', workerId: 'w1', slot: '0' });
		expect(events[1]).toMatchObject({ type: 'workerReplaced', slot: '0', newWorkerId: '99' });
		// Every step is in the audit log.
		const audit = (await store.actionHistory(0, Date.now() + 1)).map((a) => a.action);
		expect(audit).toEqual(expect.arrayContaining(['heal-workerDied', 'heal-workerReplaced', 'heal-peersPlaced-full', 'heal-peersRejoined-full', 'heal-healed']));
		healer.close();
	});

	test('short of capacity it degrades by priority: the first fit in full, the next audio only, the rest are refused', async () => {
		const { registry, kill } = world(PEERS);
		const { placeAll, asked } = admission(2, 1);
		const calls: RejoinPeersRequest[] = [];
		const { healer, events } = healerFor(registry, placeAll, { rejoinPeers: everyoneRejoins(calls) });
		kill(healer);
		await healer.idle();
		expect(calls.map((c) => c.peers.map((p) => `${p.peerId}:${p.mode}`))).toEqual([['alice:full', 'bob:full'], ['bot:audioOnly']]);
		// The viewer receives video only: nothing to restore audio only. It is told, with the bot's round.
		expect(asked[1]!.map((j) => j.peerId)).toEqual(['bot']);
		expect(asked[1]![0]).toMatchObject({ sends: ['audio'], consumes: false });
		expect(calls[0]!.refused).toEqual([]);
		expect(calls[1]!.refused).toEqual([{ peerId: 'viewer', roomId: 'room', reason: expect.stringContaining('no audio') }]);
		expect(events.find((e) => e.type === 'workerNotReplaced')).toMatchObject({ reason: expect.stringContaining('no replaceWorker hook') });
		expect(events.at(-1)).toMatchObject({ type: 'healed', rejoined: 2, degraded: 1, refused: 1, failed: 0 });
		healer.close();
	});

	test('nobody fits at all: everyone with audio is tried audio only, then refused; nobody is asked to re-join', async () => {
		const { registry, kill } = world(PEERS);
		const { placeAll } = admission(0, 0);
		const calls: RejoinPeersRequest[] = [];
		const { healer, events } = healerFor(registry, placeAll, { rejoinPeers: everyoneRejoins(calls) });
		kill(healer);
		await healer.idle();
		expect(calls).toHaveLength(1);
		expect(calls[0]!.peers).toEqual([]);
		expect(calls[0]!.refused.map((r) => r.peerId).sort()).toEqual(['alice', 'bob', 'bot', 'viewer']);
		expect(events.at(-1)).toMatchObject({ type: 'healed', rejoined: 0, degraded: 0, refused: 4 });
	});

	test('a hook that hangs past its timeout, throws, or answers for the wrong peers fails those peers, never the healer', async () => {
		for (const [name, rejoinPeers] of [
			['hangs', () => new Promise<RejoinResult[]>(() => undefined)],
			['throws', async () => Promise.reject(new Error('signaling down'))],
			['answers garbage', async () => [{ peerId: 'mallory', rejoined: true }, null, { peerId: 'alice', rejoined: 'yes' }] as unknown as RejoinResult[]],
		] as const) {
			const { registry, kill } = world(PEERS.slice(0, 2));
			const { placeAll } = admission(10, 10);
			const { healer, events } = healerFor(registry, placeAll, { rejoinPeers, replaceWorker: () => new Promise(() => undefined) }, 200);
			kill(healer);
			await healer.idle();
			const rejoined = events.find((e) => e.type === 'peersRejoined');
			expect({ name, results: rejoined?.type === 'peersRejoined' ? rejoined.results.map((r) => r.rejoined) : undefined }).toEqual({ name, results: [false, false] });
			expect(events.find((e) => e.type === 'workerNotReplaced')).toMatchObject({ reason: expect.stringContaining('did not settle within 200 ms') });
			expect(events.at(-1)).toMatchObject({ type: 'healed', rejoined: 0, failed: 2 });
			healer.close();
		}
	});

	test('peers whose router names no room are refused (they cannot be placed); without rejoinPeers nothing is placed', async () => {
		const noRoom = world([{ id: 'x', sends: ['audio'], consumes: [], room: 'none' }]);
		const calls: RejoinPeersRequest[] = [];
		const a = admission(10, 10);
		const h1 = healerFor(noRoom.registry, a.placeAll, { rejoinPeers: everyoneRejoins(calls) });
		noRoom.kill(h1.healer);
		await h1.healer.idle();
		expect(a.asked).toEqual([]);
		expect(calls[0]!.refused).toEqual([{ peerId: 'x', roomId: '', reason: expect.stringContaining('no room') }]);

		const plain = world(PEERS);
		const b = admission(10, 10);
		const h2 = healerFor(plain.registry, b.placeAll, {});
		plain.kill(h2.healer);
		await h2.healer.idle();
		expect(b.asked).toEqual([]);
		expect(h2.events.at(-1)).toMatchObject({ type: 'healed', failed: 4 });
	});

	test('entities leaving a live worker are not casualties', async () => {
		const { registry } = world(PEERS);
		const calls: RejoinPeersRequest[] = [];
		const { healer, events } = healerFor(registry, admission(10, 10).placeAll, { rejoinPeers: everyoneRejoins(calls) });
		registry.remove('t-alice');
		registry.remove('r-room');
		expect(events).toEqual([]);
		healer.close();
	});
});
