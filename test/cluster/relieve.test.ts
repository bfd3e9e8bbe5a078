import { afterMoves, CROSS_HOST_RELIEF_DEFAULTS, decideCrossHostRelief, expectedOverS, MOVE_DISRUPTION_S, type CrossHostReliefInput } from '../../plugin/cluster/relieve';
import { QUALITY_PRICE } from '../../plugin/allocate/worth';
import type { HostReport, Reservation } from '../../plugin/cluster/types';
import type { AllocationSnapshot } from '../../plugin/allocate/snapshot';
import { SnapshotBuilder } from '../allocate/fixtures';

const NOW = 1_000_000;

function remote(hostId: string, headroomPct: number, rooms: string[] = []): HostReport {
	return {
		hostId,
		ts: NOW - 2000,
		seq: 1,
		workers: [{ workerId: `${hostId}-w1`, capacityPct: 100, cpuPct: 82 - headroomPct, p95: [{ horizonS: 30, p95Pct: 82 - headroomPct }], headroomPct, rooms }],
		rooms: Object.fromEntries(rooms.map((r) => [r, 3])),
	};
}

/**
 * This host: w1 hot (mean 92 %, p95 96 % of a core) with one 40-receiver room, w2 as given.
 * 40 top-layer video receivers of one producer: 7.8 % of a core of egress on w1.
 */
function hotHost(w2Pct: number, w1 = { mean: 92, p95: 96 }): AllocationSnapshot {
	const s = new SnapshotBuilder().at(100).worker('w1', w1.mean, w1.p95, { consumers: 40 }).worker('w2', w2Pct).producer('p1', 'sender', 'room', 'w1').consume('p1', 'w1', 40).build();
	// The builder's forecast keeps the measured load as the mean; give w1 the mean asked for.
	s.workers[0]!.forecast = s.workers[0]!.forecast.map((f) => ({ ...f, meanPct: w1.mean }));
	return s;
}

function input(snapshot: AllocationSnapshot, hosts: HostReport[], reservations: Reservation[] = []): CrossHostReliefInput {
	return { selfId: 'a', snapshot, hosts, reservations, nowMs: NOW };
}

describe('expected time over the line', () => {
	test("moves are priced at the allocation's published prices", () => {
		expect(MOVE_DISRUPTION_S.movedConsumer).toBe(QUALITY_PRICE.movedConsumerS);
		expect(MOVE_DISRUPTION_S.migratedProducerReceiver).toBe(QUALITY_PRICE.migratedReceiverS);
		expect(CROSS_HOST_RELIEF_DEFAULTS.worthMargin).toBeGreaterThan(1);
	});

	test('the last forecast holds to the end of the window', () => {
		const w = new SnapshotBuilder().worker('w', 95, 99).build().workers[0]!;
		w.forecast = [{ horizonS: 5, meanPct: 95, p95Pct: 99 }];
		expect(expectedOverS(w, 85, 0, 30)).toBeCloseTo(30, 1);
		expect(expectedOverS(w, 85, 0, 10)).toBeCloseTo(10, 1);
	});

	test('a forecast far over the line counts its whole horizon, far under it nothing, in between a share', () => {
		const w = new SnapshotBuilder().worker('w', 95, 99).build().workers[0]!;
		expect(expectedOverS(w, 85)).toBeCloseTo(30, 1);
		expect(expectedOverS(w, 85, -40)).toBeCloseTo(0, 3);
		const mid = expectedOverS(w, 85, -10);
		expect(mid).toBeGreaterThan(5);
		expect(mid).toBeLessThan(25);
	});
});

describe('decideCrossHostRelief', () => {
	test('a hot worker on a full host spreads receivers to a host with predicted headroom, priced below the exposure saved', () => {
		const moves = decideCrossHostRelief(input(hotHost(84), [remote('b', 2), remote('c', 40)]));
		expect(moves.length).toBeGreaterThan(0);
		const spread = moves.filter((m) => m.action.type === 'spreadFanout');
		expect(spread.length).toBe(1);
		const a = spread[0]!.action;
		if (a.type !== 'spreadFanout') throw new Error('not a spread');
		expect(a.workerId).toBe('w1');
		expect(a.toWorkerId).toBe('c-w1');
		expect(spread[0]!.targetHost).toBe('c');
		expect(a.predictedAfterPct).toBeLessThan(a.predictedBeforePct);
		expect(spread[0]!.disruptionS).toBe(a.consumerIds.length * MOVE_DISRUPTION_S.movedConsumer);
		expect(spread[0]!.exposureSavedS).toBeGreaterThan(spread[0]!.disruptionS);
		// The target takes what it is booked for, within its reported headroom.
		expect(spread[0]!.costPct).toBeGreaterThan(0);
		expect(spread[0]!.costPct).toBeLessThanOrEqual(40);
	});

	test('a producer whose every receiver here left with the spread follows them when that saves more than its receivers lose', () => {
		const probe = decideCrossHostRelief(input(hotHost(84, { mean: 100, p95: 104 }), [remote('c', 60)]));
		// 40 receivers cannot cover a need of 21 points: all of them go, and the producer's own relief is too small to matter at 96 %.
		expect(probe.map((m) => m.action.type)).toEqual(['spreadFanout']);
		const spreadRelief = probe[0]!.action.predictedBeforePct - probe[0]!.action.predictedAfterPct;
		// w1 also serves 160 receivers of other hosts' producers; after the spread its mean sits just over the line.
		const mean = 85 + spreadRelief + 0.1;
		const s = hotHost(84, { mean, p95: mean + 0.4 });
		s.workers[0]!.consumers = 200;
		const moves = decideCrossHostRelief(input(s, [remote('c', 60)]));
		const migration = moves.find((m) => m.action.type === 'migrateProducer');
		expect(migration).toBeDefined();
		expect(migration!.action.toWorkerId).toBe('c-w1');
		expect(migration!.disruptionS).toBe(40 * MOVE_DISRUPTION_S.migratedProducerReceiver);
		expect(migration!.exposureSavedS).toBeGreaterThan(migration!.disruptionS);
	});

	test('a host with room on its own workers relieves itself: nothing goes to another host', () => {
		expect(decideCrossHostRelief(input(hotHost(30), [remote('c', 40)]))).toEqual([]);
	});

	test('no other host with predicted headroom, or its headroom reserved by others: nothing moves', () => {
		expect(decideCrossHostRelief(input(hotHost(84), [remote('b', 0.5)]))).toEqual([]);
		const taken: Reservation = { id: 'r', fromHost: 'x', targetHost: 'c', roomId: 'other', peerId: 'p', costPct: 39.9, createdAt: NOW - 1000, expiresAt: NOW + 5000 };
		expect(decideCrossHostRelief(input(hotHost(84), [remote('c', 40)], [taken]))).toEqual([]);
	});

	test('a migration whose receivers would lose more than it is expected to save (with the margin) is not made', () => {
		// All 40 receivers leave w1, still at 96 %: the producer's own ingress and pipe (0.2 points) change next to nothing there.
		const s = hotHost(84, { mean: 100, p95: 104 });
		s.workers[0]!.consumers = 200;
		const moves = decideCrossHostRelief(input(s, [remote('c', 60)]));
		expect(moves.map((m) => m.action.type)).toEqual(['spreadFanout']);
		const w = s.workers[0]!;
		const afterSpread = moves[0]!.action.predictedBeforePct - moves[0]!.action.predictedAfterPct;
		const savedByMigration = 160 * (expectedOverS(w, 85, -afterSpread) - expectedOverS(w, 85, -afterSpread - 0.2));
		expect(savedByMigration).toBeLessThan(CROSS_HOST_RELIEF_DEFAULTS.worthMargin * 40 * MOVE_DISRUPTION_S.migratedProducerReceiver);
	});

	test('a worker whose p95 is over the trigger but whose expected load is under the line is left to free moves within the host', () => {
		expect(decideCrossHostRelief(input(hotHost(84, { mean: 80, p95: 90 }), [remote('c', 40)]))).toEqual([]);
	});

	test('unmovable and paused receivers stay', () => {
		const s = new SnapshotBuilder().at(100).worker('w1', 95, 99, { consumers: 40 }).worker('w2', 84).producer('p1', 'sender', 'room', 'w1').consume('p1', 'w1', 20, { movable: false }).consume('p1', 'w1', 20, { paused: true, peerPrefix: 'q' }).build();
		expect(decideCrossHostRelief(input(s, [remote('c', 40)]))).toEqual([]);
	});
});

describe('afterMoves', () => {
	test("the local policy sees the moved consumers gone and their worker's load lowered by the move", () => {
		const s = hotHost(84);
		const moves = decideCrossHostRelief(input(s, [remote('c', 40)]));
		const after = afterMoves(s, moves);
		const moved = new Set(moves.flatMap((m) => (m.action.type === 'spreadFanout' ? m.action.consumerIds : [])));
		expect(after.consumers.some((c) => moved.has(c.id))).toBe(false);
		expect(after.consumers.length).toBe(s.consumers.length - moved.size);
		const relief = moves.reduce((sum, m) => sum + m.action.predictedBeforePct - m.action.predictedAfterPct, 0);
		expect(after.workers[0]!.forecast[1]!.p95Pct).toBeCloseTo(s.workers[0]!.forecast[1]!.p95Pct - relief, 6);
		expect(after.workers[1]).toBe(s.workers[1]);
		expect(afterMoves(s, [])).toBe(s);
	});
});
