import { roundRobinPolicy } from '../../plugin/allocate/policies/roundRobin';
import { leastLoadedPolicy } from '../../plugin/allocate/policies/leastLoaded';
import { staticScore, staticScorePolicy } from '../../plugin/allocate/policies/staticScore';
import { jitsiReactivePolicy, JITSI_DEFAULTS } from '../../plugin/allocate/policies/jitsiReactive';
import type { PlaceAction } from '../../plugin/allocate/actions';
import { SnapshotBuilder } from './fixtures';

const placements = (actions: readonly { type: string }[]): Record<string, string> =>
	Object.fromEntries(actions.filter((a): a is PlaceAction => a.type === 'place').map((a) => [a.peerId, a.workerId]));

describe('round-robin (mediasoup-demo)', () => {
	it('gives each new room the next worker and keeps later peers with their room', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 90).worker('w1', 5).worker('w2', 5).join('a', 'r1').join('b', 'r2').join('c', 'r1').join('d', 'r3').join('e', 'r4').build();
		const { actions, state } = roundRobinPolicy.decide(snapshot, roundRobinPolicy.initialState());
		// Load is ignored: w0 gets a room although it is at 90%.
		expect(placements(actions)).toEqual({ a: 'w0', b: 'w1', c: 'w0', d: 'w2', e: 'w0' });
		expect(state.next).toBe(4);
	});

	it('joins an existing room on the worker that already hosts it', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 5).worker('w1', 5).producer('p', 'host', 'r1', 'w1').join('x', 'r1').build();
		expect(placements(roundRobinPolicy.decide(snapshot, { next: 0 }).actions)).toEqual({ x: 'w1' });
	});
});

describe('least-loaded with the 66% stickiness rule (eduMEET)', () => {
	const policy = leastLoadedPolicy();

	it('stays on the room worker while it is below 66%', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 65).worker('w1', 10).producer('p', 'host', 'r1', 'w0').join('x', 'r1').build();
		expect(placements(policy.decide(snapshot, null).actions)).toEqual({ x: 'w0' });
	});

	it('leaves the room worker for the least-loaded one at 66% and above', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 67).worker('w1', 30).worker('w2', 20).producer('p', 'host', 'r1', 'w0').join('x', 'r1').join('y', 'r2').build();
		expect(placements(policy.decide(snapshot, null).actions)).toEqual({ x: 'w2', y: 'w2' });
	});

	it('sticks later joiners of a room to where the earlier ones went in the same decision', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 50).worker('w1', 20).join('x', 'r9').join('y', 'r9').build();
		expect(placements(policy.decide(snapshot, null).actions)).toEqual({ x: 'w1', y: 'w1' });
	});
});

describe('BigBlueButton static score', () => {
	it('scores 10·transports + 5·producers + 2·consumers', () => {
		const w = new SnapshotBuilder().worker('w', 0, 0, { transports: 3, producers: 4, consumers: 5 }).build().workers[0]!;
		expect(staticScore(w)).toBe(10 * 3 + 5 * 4 + 2 * 5);
	});

	it('puts a new room on the lowest score regardless of measured CPU', () => {
		const snapshot = new SnapshotBuilder()
			.worker('w0', 95, 95, { transports: 1, producers: 1, consumers: 1 })
			.worker('w1', 5, 5, { transports: 2, producers: 0, consumers: 0 })
			.join('x', 'r1')
			.build();
		expect(placements(staticScorePolicy.decide(snapshot, null).actions)).toEqual({ x: 'w0' });
	});
});

describe('Jitsi-style reactive last-N reducer', () => {
	const policy = jitsiReactivePolicy();
	const overloaded = (t: number, cpu: number, paused = false) =>
		new SnapshotBuilder()
			.at(t)
			.worker('w0', cpu)
			.worker('w1', 10)
			.producer('v1', 's1', 'r', 'w0', 'video')
			.producer('v2', 's2', 'r', 'w0', 'video')
			.producer('v3', 's3', 'r', 'w0', 'video')
			.producer('v4', 's4', 'r', 'w0', 'video', true)
			.consume('v1', 'w0', 1, { paused })
			.consume('v2', 'w0', 1, { paused })
			.consume('v3', 'w0', 1)
			.consume('v4', 'w0', 1)
			.build();

	it('cuts last-N by the reduction scale above the threshold, keeping the active speaker', () => {
		const { actions, state } = policy.decide(overloaded(100, 90), policy.initialState());
		// 4 videos per receiver → last-N 3: one paused, never the active speaker's.
		expect(state.lastN.w0).toBe(Math.floor(4 * JITSI_DEFAULTS.reductionScale));
		expect(actions.filter((a) => a.type === 'pauseConsumer')).toHaveLength(1);
		expect(actions.some((a) => a.type === 'pauseConsumer' && a.consumerId === 'c3')).toBe(false);
	});

	it('waits the impact time before reducing again, then recovers below the recovery threshold', () => {
		const first = policy.decide(overloaded(100, 90), policy.initialState());
		const soon = policy.decide(overloaded(130, 95), first.state);
		expect(soon.state.lastN.w0).toBe(first.state.lastN.w0);
		const later = policy.decide(overloaded(161, 95), soon.state);
		expect(later.state.lastN.w0).toBe(Math.max(1, Math.floor(3 * JITSI_DEFAULTS.reductionScale)));
		const calm = policy.decide(overloaded(230, 40, true), later.state);
		expect(calm.state.lastN.w0 ?? Infinity).toBeGreaterThan(later.state.lastN.w0!);
		expect(calm.actions.some((a) => a.type === 'resumeConsumer')).toBe(true);
	});
});
