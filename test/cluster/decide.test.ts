import { canTake, decideCrossHost, hostFreeShare, hostHeadroomPct, liveHosts, reservedPct, type CrossHostInput } from '../../plugin/cluster/decide';
import type { HostReport, Reservation } from '../../plugin/cluster/types';

const NOW = 1_000_000;

function host(hostId: string, headroomPct: number, rooms: Record<string, number> = {}, ts = NOW): HostReport {
	return {
		hostId,
		ts,
		seq: 1,
		workers: [
			{ workerId: `${hostId}-w1`, capacityPct: 100, cpuPct: 82 - headroomPct, p95: [{ horizonS: 5, p95Pct: 82 - headroomPct }], headroomPct, rooms: Object.keys(rooms) },
			{ workerId: `${hostId}-w2`, capacityPct: 100, cpuPct: 80, p95: [], headroomPct: Math.min(headroomPct, 2), rooms: [] },
		],
		rooms,
	};
}

function input(overrides: Partial<CrossHostInput>): CrossHostInput {
	return { selfId: 'a', roomId: 'r1', costPct: 5, localHeadroomPct: 20, localHoldsRoom: false, localFreeShare: 0.5, newRoomFreeShare: 0, redirected: false, hosts: [], reservations: [], nowMs: NOW, ...overrides };
}

function reservation(fromHost: string, targetHost: string, costPct: number, expiresAt = NOW + 5000): Reservation {
	return { id: `${fromHost}-${targetHost}-${costPct}-${expiresAt}`, fromHost, targetHost, roomId: 'r', peerId: 'p', costPct, createdAt: NOW - 100, expiresAt };
}

describe('liveHosts', () => {
	test('leaves out this host and hosts silent longer than the bound', () => {
		const reports = [host('a', 10), host('b', 10, {}, NOW - 3000), host('c', 10, {}, NOW - 3001)];
		expect(liveHosts(reports, 'a', NOW, 3000).map((h) => h.hostId)).toEqual(['b']);
	});
});

describe('headroom and reservations', () => {
	test("a host's headroom is its best worker's", () => {
		expect(hostHeadroomPct(host('b', 30))).toBe(30);
		expect(hostHeadroomPct({ ...host('b', 30), workers: [] })).toBe(Number.NEGATIVE_INFINITY);
	});

	test("a host's free share is its workers' positive headroom over their capacity", () => {
		expect(hostFreeShare(host('b', 30))).toBeCloseTo(32 / 200);
		expect(hostFreeShare({ workers: [] })).toBe(0);
	});

	test('only open reservations on the target count, optionally by sender', () => {
		const rs = [reservation('a', 'b', 4), reservation('c', 'b', 3), reservation('a', 'b', 10, NOW), reservation('a', 'c', 7)];
		expect(reservedPct(rs, 'b', NOW)).toBe(7);
		expect(reservedPct(rs, 'b', NOW, 'a')).toBe(4);
	});
});

describe('decideCrossHost', () => {
	test('a peer sent here by another host is placed here even without headroom', () => {
		const d = decideCrossHost(input({ redirected: true, localHeadroomPct: -10, hosts: [host('b', 50)] }));
		expect(d.kind).toBe('local');
	});

	test('with headroom here the peer stays', () => {
		expect(decideCrossHost(input({ hosts: [host('b', 50)] })).kind).toBe('local');
	});

	test('without headroom here it goes to the host with the most available headroom', () => {
		const d = decideCrossHost(input({ localHeadroomPct: 3, hosts: [host('b', 20), host('c', 40)] }));
		expect(d).toMatchObject({ kind: 'redirect', target: { hostId: 'c' } });
	});

	test("a host the room is new to must also take the pipes of the room's producers; one holding the room need not", () => {
		// 5 % here, 9 % where every producer of the room has to be piped in first.
		const d = decideCrossHost(input({ localHeadroomPct: 1, costPct: 5, remoteCostPct: 9, hosts: [host('b', 8)] }));
		expect(d.kind).toBe('local');
		const taken = decideCrossHost(input({ localHeadroomPct: 1, costPct: 5, remoteCostPct: 9, hosts: [host('b', 10)] }));
		expect(taken.kind === 'redirect' && taken.costPct).toBe(9);
		const holder = decideCrossHost(input({ localHeadroomPct: 1, costPct: 5, remoteCostPct: 9, hosts: [host('b', 8, { r1: 2 })] }));
		expect(holder.kind === 'redirect' && holder.costPct).toBe(5);
	});

	test('reservations others made on this host count against its own headroom', () => {
		const d = decideCrossHost(input({ localHeadroomPct: 8, hosts: [host('b', 40)], reservations: [reservation('c', 'a', 4)] }));
		expect(d).toMatchObject({ kind: 'redirect', target: { hostId: 'b' } });
	});

	test('a room living on another host stays there while it has room, even if this host has headroom', () => {
		const d = decideCrossHost(input({ roomId: 'r1', localHoldsRoom: false, hosts: [host('b', 10, { r1: 4 }), host('c', 60)] }));
		expect(d).toMatchObject({ kind: 'redirect', target: { hostId: 'b' } });
		expect(d.reason).toMatch(/lives on host b/);
	});

	test('a room held here stays here', () => {
		const d = decideCrossHost(input({ roomId: 'r1', localHoldsRoom: true, hosts: [host('b', 50, { r1: 4 })] }));
		expect(d.kind).toBe('local');
	});

	test("a room whose host is full is spread: here when this host has headroom", () => {
		const d = decideCrossHost(input({ roomId: 'r1', hosts: [host('b', 2, { r1: 9 })] }));
		expect(d.kind).toBe('local');
	});

	test('without headroom anywhere the local policy decides (it may place over the fill target or refuse)', () => {
		const d = decideCrossHost(input({ localHeadroomPct: 1, hosts: [host('b', 4), host('c', 3)] }));
		expect(d).toEqual({ kind: 'local', reason: 'no host has predicted headroom for it' });
	});

	test('open reservations on a target take away from its headroom', () => {
		const base = input({ localHeadroomPct: 0, hosts: [host('b', 12)] });
		expect(decideCrossHost(base).kind).toBe('redirect');
		expect(decideCrossHost({ ...base, reservations: [reservation('x', 'b', 8)] }).kind).toBe('local');
		// Expired reservations no longer count.
		expect(decideCrossHost({ ...base, reservations: [reservation('x', 'b', 8, NOW - 1)] }).kind).toBe('redirect');
	});
});

describe('new rooms and rooms on their way', () => {
	test('a new room opens elsewhere when this host keeps less than newRoomFreeShare free and another host keeps it', () => {
		const hosts = [host('b', 30), host('c', 60)];
		// c: (60 + 2) free of 200 capacity = 31 %; b: 16 %.
		const d = decideCrossHost(input({ localFreeShare: 0.1, newRoomFreeShare: 0.3, hosts }));
		expect(d).toMatchObject({ kind: 'redirect', target: { hostId: 'c' } });
		expect(d.reason).toMatch(/a new room/);
		// A room already here stays here; with the rule off the new room stays too.
		expect(decideCrossHost(input({ localFreeShare: 0.1, newRoomFreeShare: 0.3, localHoldsRoom: true, hosts })).kind).toBe('local');
		expect(decideCrossHost(input({ localFreeShare: 0.1, newRoomFreeShare: 0, hosts })).kind).toBe('local');
		// No host keeps the share: here, as long as a worker fits.
		expect(decideCrossHost(input({ localFreeShare: 0.1, newRoomFreeShare: 0.5, hosts })).kind).toBe('local');
	});

	test('with spilling on, a join of a room held here goes to a host with room to spare once this host is nearly full', () => {
		const hosts = [host('b', 60)];
		const base = input({ localHoldsRoom: true, localFreeShare: 0.05, newRoomFreeShare: 0.2, hosts });
		expect(decideCrossHost(base).kind).toBe('local');
		expect(decideCrossHost({ ...base, spillBelowFreeShare: 0.1 })).toMatchObject({ kind: 'redirect', target: { hostId: 'b' } });
		expect(decideCrossHost({ ...base, spillBelowFreeShare: 0.1, localFreeShare: 0.15 }).kind).toBe('local');
	});

	test("the room's next peers follow a redirect before the target reports the room", () => {
		const r: Reservation = { ...reservation('a', 'c', 1), roomId: 'r1' };
		const d = decideCrossHost(input({ roomId: 'r1', hosts: [host('b', 40), host('c', 20)], reservations: [r] }));
		expect(d).toMatchObject({ kind: 'redirect', target: { hostId: 'c' } });
	});
});

describe('concurrent placements onto one target', () => {
	/**
	 * Four overloaded hosts decide on the same report of the one host with headroom, each
	 * blind to the others' reservations (they were made in the same instant): what they
	 * promise it together must stay within the headroom it reported.
	 */
	test('hosts deciding on the same view never promise a target more than its reported headroom', () => {
		const target = host('t', 30);
		const senders = ['a', 'b', 'c', 'd'];
		const everyone = (self: string): HostReport[] => [target, ...senders.filter((s) => s !== self).map((s) => host(s, -5))];
		const promised = new Map<string, number>();
		for (const costPct of [1, 2.5, 4, 7]) {
			let total = 0;
			for (const self of senders) {
				const own: Reservation[] = [];
				for (let i = 0; i < 100; i++) {
					const d = decideCrossHost(input({ selfId: self, costPct, localHeadroomPct: -5, hosts: everyone(self), reservations: own }));
					if (d.kind !== 'redirect') break;
					expect(d.target.hostId).toBe('t');
					own.push(reservation(self, 't', costPct, NOW + 5000 + i));
				}
				total += own.length * costPct;
			}
			promised.set(String(costPct), total);
			expect(total).toBeLessThanOrEqual(30);
			// The bound is not a refusal of everything: each sender gets its share.
			expect(total).toBeGreaterThan(30 - senders.length * costPct - 1e-9);
		}
	});

	test("a sender that sees the others' reservations stays within what is left", () => {
		const target = host('t', 30);
		const others = [reservation('b', 't', 10), reservation('c', 't', 15)];
		const res = canTake(target, { selfId: 'a', costPct: 6, hosts: [target, host('b', 0), host('c', 0)], reservations: others, nowMs: NOW });
		expect(res).toEqual({ ok: false, availablePct: 5 });
	});
});
