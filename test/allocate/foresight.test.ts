import { foresightPolicy, FORESIGHT_DEFAULTS } from '../../plugin/allocate/policies/foresight';
import type { AllocationAction, SpreadFanoutAction } from '../../plugin/allocate/actions';
import type { AllocationSnapshot } from '../../plugin/allocate/snapshot';
import { countBy, SnapshotBuilder } from './fixtures';

const policy = foresightPolicy();
const decide = (snapshot: AllocationSnapshot): AllocationAction[] => policy.decide(snapshot, policy.initialState()).actions;

function deepFreeze<T>(value: T): T {
	if (value && typeof value === 'object') {
		for (const v of Object.values(value)) deepFreeze(v);
		Object.freeze(value);
	}
	return value;
}

describe('Foresight placement', () => {
	it('keeps a joiner with its room when the room worker has headroom', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 40).worker('w1', 60).producer('p', 'host', 'r1', 'w0').join('x', 'r1').build();
		expect(decide(snapshot)).toEqual([expect.objectContaining({ type: 'place', peerId: 'x', workerId: 'w0' })]);
	});

	it('opens the emptiest worker for a new room so it can grow unsplit', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 71.99).worker('w1', 60).worker('w2', 5).join('x', 'new').build();
		const [place] = decide(snapshot);
		expect(place).toMatchObject({ type: 'place', workerId: 'w2' });
		expect(place!.predictedAfterPct).toBeGreaterThan(place!.predictedBeforePct);
	});

	it('falls back to best fit under the fill target when no worker keeps the growth reserve', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 71.99).worker('w1', 60).worker('w2', 55).join('x', 'new').build();
		const [place] = decide(snapshot);
		// w0 would cross the fill target with the joiner's own ingress; w1 is the fullest that fits.
		expect(place).toMatchObject({ type: 'place', workerId: 'w1' });
		expect(place!.predictedAfterPct).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.fillBelowPct);
	});

	it('plans on the forecast p95, not on the current measurement', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 30, 80).worker('w1', 45, 45).join('x', 'new').build();
		expect(decide(snapshot)[0]).toMatchObject({ type: 'place', workerId: 'w1' });
	});

	it('refuses when every worker is predicted over the limit, or redirects when told where to', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 88).worker('w1', 90).join('x', 'r').build();
		expect(decide(snapshot)).toEqual([expect.objectContaining({ type: 'refuse', peerId: 'x' })]);
		expect(foresightPolicy({ redirectTarget: 'eu-2' }).decide(snapshot, { recent: {} }).actions).toEqual([expect.objectContaining({ type: 'redirect', target: 'eu-2' })]);
	});
});

describe('Foresight corrective actions', () => {
	it('spreads a hot fan-out to the fullest worker that can take it (best fit) before touching quality', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 80, 95).worker('w1', 40).worker('w2', 10).producer('v', 'presenter', 'webinar', 'w0').consume('v', 'w0', 200).build();
		const actions = decide(snapshot);
		expect(actions.every((a) => a.type === 'spreadFanout')).toBe(true);
		const spread = actions[0] as SpreadFanoutAction;
		expect(spread.toWorkerId).toBe('w1');
		expect(spread.predictedBeforePct).toBeCloseTo(95);
		expect(spread.predictedAfterPct).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.actAbovePct);
		// Only as many consumers as needed move: ~18% of a core at ~0.2% each.
		expect(spread.consumerIds.length).toBeGreaterThan(50);
		expect(spread.consumerIds.length).toBeLessThan(200);
	});

	it('lowers layers of low-priority consumers only, never the active speaker or protected ones', () => {
		const snapshot = new SnapshotBuilder()
			.worker('w0', 90, 95)
			.worker('w1', 80)
			.producer('speaker', 's', 'r', 'w0', 'video', true)
			.producer('teacher', 't', 'r', 'w0', 'video')
			.producer('tile', 'x', 'r', 'w0', 'video')
			.consume('speaker', 'w0', 50, { peerPrefix: 'a' })
			.consume('teacher', 'w0', 50, { priority: 220, peerPrefix: 'b' })
			.consume('tile', 'w0', 50, { priority: 50, peerPrefix: 'c' })
			.build();
		const actions = decide(snapshot);
		const tileConsumers = new Set(snapshot.consumers.filter((c) => c.producerId === 'tile').map((c) => c.id));
		expect(actions.length).toBeGreaterThan(0);
		for (const a of actions) {
			expect(a.type).toBe('setConsumerLayers');
			if (a.type === 'setConsumerLayers') {
				expect(tileConsumers.has(a.consumerId)).toBe(true);
				expect(a.spatial).toBe(1);
			}
		}
	});

	it('pauses once layers are at the bottom, then drops only above the hard limit', () => {
		const snapshot = new SnapshotBuilder()
			.worker('w0', 90, 90)
			.worker('w1', 80)
			.producer('tile', 'x', 'r', 'w0', 'video')
			.consume('tile', 'w0', 100, { priority: 50, current: { spatial: 0, temporal: 2 } })
			.producer('mic', 'x', 'r', 'w0', 'audio')
			.consume('mic', 'w0', 100, { priority: 50, peerPrefix: 'm' })
			.build();
		const counts = countBy(decide(snapshot), (a) => a.type);
		expect(counts.pauseConsumer).toBe(100);
		// 100 paused low layers relieve ~3.9%: still above 85 → audio consumers are dropped down to the limit.
		expect(counts.dropConsumer).toBeGreaterThan(0);
		expect(counts.setConsumerLayers).toBeUndefined();
	});

	it('restores most important first, only under the restore band and up to the ceiling', () => {
		const paused = new SnapshotBuilder().worker('w0', 50, 55).producer('v', 'x', 'r', 'w0').consume('v', 'w0', 100, { paused: true, priority: 50 }).consume('v', 'w0', 5, { paused: true, priority: 150, peerPrefix: 'vip' }).build();
		const actions = decide(paused);
		expect(actions).toHaveLength(FORESIGHT_DEFAULTS.maxRestoresPerWorker);
		expect(actions.slice(0, 5).every((a) => a.type === 'resumeConsumer' && paused.consumers.find((c) => c.id === a.consumerId)!.priority === 150)).toBe(true);
		expect(Math.max(...actions.map((a) => a.predictedAfterPct))).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.restoreCeilingPct);
		const inBand = new SnapshotBuilder().worker('w0', FORESIGHT_DEFAULTS.restoreBelowPct + 1, FORESIGHT_DEFAULTS.restoreBelowPct + 1).producer('v', 'x', 'r', 'w0').consume('v', 'w0', 10, { paused: true }).build();
		expect(decide(inBand)).toEqual([]);
	});

	it('is pure: frozen input, same output every time', () => {
		const build = () =>
			new SnapshotBuilder().worker('w0', 80, 95).worker('w1', 40).producer('v', 'p', 'r', 'w0').consume('v', 'w0', 120).consume('v', 'w1', 3, { paused: true }).join('j', 'r').build();
		const frozen = deepFreeze(build());
		const first = decide(frozen);
		expect(decide(frozen)).toEqual(first);
		expect(frozen).toEqual(build());
	});
});
