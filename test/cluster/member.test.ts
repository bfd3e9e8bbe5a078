import pino from 'pino';
import { MemoryClusterBus } from '../../plugin/cluster/memoryChannel';
import { ClusterMember, type ClusterEvent } from '../../plugin/cluster/member';
import type { HostReport } from '../../plugin/cluster/types';

const log = pino({ level: 'silent' });

function members(bus: MemoryClusterBus, ids: string[], clock: { now: number }, headroom: Record<string, number> = {}): Map<string, ClusterMember> {
	const out = new Map<string, ClusterMember>();
	for (const hostId of ids) {
		const report = (): Pick<HostReport, 'workers' | 'rooms'> => ({
			workers: [{ workerId: `${hostId}-w`, capacityPct: 100, cpuPct: 10, p95: [{ horizonS: 5, p95Pct: 12 }], headroomPct: headroom[hostId] ?? 70, rooms: ['r'] }],
			rooms: { r: 2 },
		});
		out.set(hostId, new ClusterMember(bus.channel(), { hostId, endpoint: `ws://${hostId}`, reportIntervalMs: 1000, silentAfterMs: 3000, reservationTtlMs: 5000 }, report, log, () => clock.now));
	}
	return out;
}

async function round(ms: Map<string, ClusterMember>, clock: { now: number }, skip: string[] = []): Promise<void> {
	for (const [id, m] of ms) if (!skip.includes(id)) await m.tick();
	clock.now += 1000;
}

test('each host sees the others, not itself, with their endpoints and reports', async () => {
	const bus = new MemoryClusterBus();
	const clock = { now: 1_000_000 };
	const ms = members(bus, ['a', 'b', 'c'], clock);
	await round(ms, clock);
	await round(ms, clock);
	const view = ms.get('a')!.view();
	expect(view.stale).toBe(false);
	expect(view.hosts.map((h) => h.hostId).sort()).toEqual(['b', 'c']);
	expect(view.hosts.find((h) => h.hostId === 'b')).toMatchObject({ endpoint: 'ws://b', rooms: { r: 2 }, workers: [{ headroomPct: 70 }] });
});

test('a host silent longer than the bound is left out until it reports again', async () => {
	const bus = new MemoryClusterBus();
	const clock = { now: 1_000_000 };
	const ms = members(bus, ['a', 'b', 'c'], clock);
	const events: ClusterEvent[] = [];
	ms.get('a')!.on('cluster', (e) => events.push(e));
	await round(ms, clock);
	// c stops reporting: its last report is 1 s old after the next round, 4 s after the fourth.
	const silentRounds: number[] = [];
	for (let i = 1; i <= 5; i++) {
		await round(ms, clock, ['c']);
		if (!ms.get('a')!.view().hosts.some((h) => h.hostId === 'c')) silentRounds.push(i);
	}
	// c reported at t0; the view is looked at after round i at t0 + 1000·(i+1): silent once that is more than 3000 later.
	expect(silentRounds[0]).toBe(3);
	expect(events).toContainEqual({ type: 'hostSilent', hostId: 'c', silentMs: 4000 });
	expect(ms.get('a')!.stats().hosts).toContainEqual({ hostId: 'c', ageMs: 6000, live: false });
	// a reads before c publishes within a round: c is back for a from the round after.
	await round(ms, clock);
	await round(ms, clock);
	expect(ms.get('a')!.view().hosts.map((h) => h.hostId).sort()).toEqual(['b', 'c']);
	expect(events).toContainEqual({ type: 'hostBack', hostId: 'c' });
});

test('with the shared store down the last view is kept, marked stale, and nobody is declared silent for it', async () => {
	const bus = new MemoryClusterBus();
	const clock = { now: 1_000_000 };
	const ms = members(bus, ['a', 'b'], clock);
	const events: ClusterEvent[] = [];
	ms.get('a')!.on('cluster', (e) => events.push(e));
	await round(ms, clock);
	await round(ms, clock);
	bus.down = true;
	for (let i = 0; i < 30; i++) await round(ms, clock);
	const view = ms.get('a')!.view();
	expect(view.stale).toBe(true);
	expect(view.hosts.map((h) => h.hostId)).toEqual(['b']);
	expect(events.filter((e) => e.type === 'stale')).toHaveLength(1);
	expect(events.some((e) => e.type === 'hostSilent')).toBe(false);
	const stats = ms.get('a')!.stats();
	expect(stats.readFailures).toBe(30);
	expect(stats.publishFailures).toBe(30);
	bus.down = false;
	await round(ms, clock);
	expect(ms.get('a')!.view().stale).toBe(false);
	expect(events.at(-1)).toEqual({ type: 'fresh', staleMs: 30_000 });
});

test('a reservation counts at once where it was made and, once written, everywhere until it expires', async () => {
	const bus = new MemoryClusterBus();
	const clock = { now: 1_000_000 };
	const ms = members(bus, ['a', 'b', 'c'], clock);
	await round(ms, clock);
	const r = ms.get('a')!.reserve('b', 'room', 'peer-1', 4);
	expect(r.expiresAt).toBe(clock.now + 5000);
	expect(ms.get('a')!.view().reservations.map((x) => x.id)).toEqual([r.id]);
	await round(ms, clock);
	expect(ms.get('c')!.view().reservations.map((x) => x.id)).toEqual([r.id]);
	clock.now += 5000;
	await round(ms, clock);
	expect(ms.get('a')!.view().reservations).toEqual([]);
	expect(ms.get('c')!.view().reservations).toEqual([]);
});

test('a reservation made while the store is down still counts where it was made', async () => {
	const bus = new MemoryClusterBus();
	const clock = { now: 1_000_000 };
	const ms = members(bus, ['a', 'b'], clock);
	await round(ms, clock);
	bus.down = true;
	ms.get('a')!.reserve('b', 'room', 'peer-1', 4);
	await new Promise((r) => setImmediate(r));
	expect(ms.get('a')!.view().reservations).toHaveLength(1);
	expect(ms.get('a')!.stats().reservationWriteFailures).toBe(1);
});
