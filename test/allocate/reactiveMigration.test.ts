import type { MigrateProducerAction, SpreadFanoutAction } from '../../plugin/allocate/actions';
import { reactiveMigrationPolicy, REACTIVE_MIGRATION_DEFAULTS } from '../../plugin/allocate/policies/reactiveMigration';
import { SnapshotBuilder } from './fixtures';

const policy = reactiveMigrationPolicy();

/** A hot worker w0 with two speakers (a: big fan-out, b: small), and a cool w1 and w2 at `coolPct`. */
const hot = (t: number, w0Pct: number, coolPct = 20) =>
	new SnapshotBuilder()
		.at(t)
		.worker('w0', w0Pct)
		.worker('w1', coolPct)
		.worker('w2', coolPct + 5)
		.producer('a', 'alice', 'r', 'w0')
		.consume('a', 'w0', 6, { peerPrefix: 'ra' })
		.producer('b', 'bob', 'r', 'w0', 'audio')
		.consume('b', 'w0', 2, { peerPrefix: 'rb' })
		.build();

describe('reactive-migration (jicofo-style load redistribution)', () => {
	test('moves nothing until the worker has stayed over the threshold for overForS', () => {
		let state = policy.initialState();
		const over = REACTIVE_MIGRATION_DEFAULTS.stressThreshold * 100 + 5;
		for (let t = 0; t < REACTIVE_MIGRATION_DEFAULTS.overForS; t++) {
			const d = policy.decide(hot(t, over), state);
			expect(d.actions).toEqual([]);
			state = d.state;
		}
		const moved = policy.decide(hot(REACTIVE_MIGRATION_DEFAULTS.overForS, over), state);
		expect(moved.actions.length).toBeGreaterThan(0);
		// Whole endpoints, to the least-loaded worker with room, through the migration actions.
		const migrations = moved.actions.filter((a): a is MigrateProducerAction => a.type === 'migrateProducer');
		expect(migrations.map((m) => [m.producerId, m.toWorkerId])).toContainEqual(['a', 'w1']);
		expect(moved.actions.every((a) => a.type === 'migrateProducer' || a.type === 'spreadFanout')).toBe(true);
	});

	test('a dip under the threshold restarts the clock', () => {
		let state = policy.initialState();
		for (let t = 0; t < 8; t++) state = policy.decide(hot(t, 90), state).state;
		state = policy.decide(hot(8, 70), state).state;
		expect(policy.decide(hot(12, 90), policy.decide(hot(9, 90), state).state).actions).toEqual([]);
	});

	test('is rate-limited per worker: at most endpointsPerMove endpoints per intervalS', () => {
		let state = policy.initialState();
		let moves = 0;
		const endpointsMoved = new Set<string>();
		for (let t = 0; t <= 40; t++) {
			const d = policy.decide(hot(t, 95, 10), state);
			state = d.state;
			if (d.actions.length > 0) moves++;
			for (const a of d.actions) if (a.type === 'migrateProducer') endpointsMoved.add(a.producerId);
		}
		// Over for 10 s at t=10, then every 15 s: t = 10, 25, 40.
		expect(moves).toBe(3);
		expect(endpointsMoved.size).toBeLessThanOrEqual(REACTIVE_MIGRATION_DEFAULTS.endpointsPerMove);
	});

	test('moves nothing when no worker has room below targetBelow', () => {
		let state = policy.initialState();
		for (let t = 0; t <= 12; t++) {
			const d = policy.decide(hot(t, 95, 59), state);
			expect(d.actions).toEqual([]);
			state = d.state;
		}
	});

	test("a receiving endpoint's consumers are moved with spreadFanout per producer", () => {
		const snapshot = new SnapshotBuilder().at(20).worker('w0', 95).worker('w1', 10).producer('a', 'alice', 'r', 'w1').consume('a', 'w0', 1, { peerPrefix: 'viewer' }).build();
		const d = policy.decide(snapshot, { overSince: { w0: 0 }, lastMoveT: {} });
		const spreads = d.actions.filter((a): a is SpreadFanoutAction => a.type === 'spreadFanout');
		expect(spreads).toHaveLength(1);
		expect(spreads[0]).toMatchObject({ producerId: 'a', workerId: 'w0', toWorkerId: 'w1' });
	});
});
