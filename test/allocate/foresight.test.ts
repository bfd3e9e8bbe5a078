import { foresightPolicy, FORESIGHT_DEFAULTS } from '../../plugin/allocate/policies/foresight';
import type { AllocationAction, SpreadFanoutAction } from '../../plugin/allocate/actions';
import type { AllocationSnapshot } from '../../plugin/allocate/snapshot';
import { countBy, SnapshotBuilder } from './fixtures';

const policy = foresightPolicy();
const decide = (snapshot: AllocationSnapshot): AllocationAction[] => policy.decide(snapshot, policy.initialState()).actions;
/** What changes something (a worker beyond relief is also reported, see degrade.test.ts). */
const changes = (actions: AllocationAction[]): AllocationAction[] => actions.filter((a) => a.type !== 'cannotRelieve');

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

	it('puts a new room where it can grow unsplit: the fullest worker keeping the reserve, or the emptiest when told to spread', () => {
		const { fillBelowPct, newRoomReservePct } = FORESIGHT_DEFAULTS;
		const roomy = fillBelowPct - newRoomReservePct - 5;
		const snapshot = new SnapshotBuilder().worker('w0', fillBelowPct - 1).worker('w1', roomy).worker('w2', roomy - 20).worker('w3', 0.5).join('x', 'new').build();
		// Packing: w0 is fuller but cannot keep the reserve; w1 is the fullest that can; idle w3 stays idle.
		const [packed] = decide(snapshot);
		expect(packed).toMatchObject({ type: 'place', workerId: 'w1' });
		expect(packed!.predictedAfterPct).toBeGreaterThan(packed!.predictedBeforePct);
		const [spread] = foresightPolicy({ newRoomOnFullest: false }).decide(snapshot, { recent: {}, joins: {} }).actions;
		expect(spread).toMatchObject({ type: 'place', workerId: 'w3' });
	});

	it('packs a new room only beside rooms that have stopped growing: a worker whose room still grows keeps its headroom for it', () => {
		const snapshot = new SnapshotBuilder()
			.at(100)
			.worker('w0', 40)
			.worker('w1', 30)
			.worker('w2', 0.5)
			.producer('v', 'host', 'class', 'w0')
			.consume('v', 'w0', 5)
			.producer('m', 'host2', 'meeting', 'w1')
			.consume('m', 'w1', 5, { peerPrefix: 'mx' })
			.join('x', 'new')
			.build();
		const growing = { recent: {}, joins: { class: [97, 98, 99].map((t): [number, number] => [t, 0.26]) } };
		expect(policy.decide(snapshot, growing).actions[0]).toMatchObject({ type: 'place', workerId: 'w1' });
		// Without the class's trend (or when told to ignore growth), the fullest worker takes it.
		expect(decide(snapshot)[0]).toMatchObject({ type: 'place', workerId: 'w0' });
		expect(foresightPolicy({ newRoomAvoidsGrowth: false }).decide(snapshot, growing).actions[0]).toMatchObject({ type: 'place', workerId: 'w0' });
	});

	it('packs no new room beside a room being created: one whose every sender joined within the growth window grows before any trend shows', () => {
		// A meeting start: w0 hosts room a, whose only peer joined a second ago; w1 and w2 are idle.
		const snapshot = new SnapshotBuilder().at(100).worker('w0', 3).worker('w1', 0.5).worker('w2', 0.5).producer('v', 'host', 'a', 'w0').join('x', 'b').join('y', 'c').build();
		const started = { recent: {}, joins: { a: [[99, 0.26]] as Array<[number, number]> } };
		const places = policy.decide(snapshot, started).actions.filter((a) => a.type === 'place');
		// Neither new room goes beside a (the fullest), nor beside the other one placed in the same decision.
		expect(places.map((a) => a.workerId).sort()).toEqual(['w1', 'w2']);
		// A room whose peers did not all join in the window is settled: the fullest worker takes the new room.
		const settledRoom = new SnapshotBuilder().at(100).worker('w0', 3).worker('w1', 0.5).producer('v', 'host', 'a', 'w0').producer('u', 'old', 'a', 'w0').join('x', 'b').build();
		expect(policy.decide(settledRoom, started).actions[0]).toMatchObject({ type: 'place', workerId: 'w0' });
		expect(foresightPolicy({ youngRoomsGrow: false }).decide(snapshot, started).actions[0]).toMatchObject({ type: 'place', workerId: 'w0' });
	});

	it('moves a growing room that outgrew its only worker whole, joiner included, instead of splitting it over two', () => {
		const { fillBelowPct } = FORESIGHT_DEFAULTS;
		// The room's worker is expected over the limit with the joiner (about 3 points: its receivers consume the joiner too).
		const snapshot = new SnapshotBuilder()
			.at(100)
			.worker('w0', fillBelowPct + 1)
			.worker('w1', 30)
			.worker('w2', 10)
			.producer('v', 'host', 'r', 'w0')
			.producer('a', 'host', 'r', 'w0', 'audio')
			.consume('v', 'w0', 10)
			.consume('a', 'w0', 10)
			.join('x', 'r')
			.build();
		const growing = { recent: {}, joins: { r: [97, 98, 99].map((t): [number, number] => [t, 0.26]) } };
		const actions = policy.decide(snapshot, growing).actions;
		const place = actions.find((a) => a.type === 'place')!;
		const moves = actions.filter((a) => a.type !== 'place');
		// The fullest worker that holds the room with room for it to grow on: w1, not the idle w2.
		expect(place).toMatchObject({ peerId: 'x', workerId: 'w1' });
		expect(countBy(moves, (a) => a.type)).toEqual({ spreadFanout: 2, migrateProducer: 2 });
		for (const a of moves) {
			expect(a).toMatchObject({ intent: 'relieve', workerId: 'w0', toWorkerId: 'w1' });
			// Booked against the room's worker with the joiner on it: the load that calls for the move, on every action.
			expect(a.predictedBeforePct).toBeGreaterThan(fillBelowPct);
		}
		const consumers = moves.flatMap((a) => (a.type === 'spreadFanout' ? a.consumerIds : []));
		expect(new Set(consumers).size).toBe(snapshot.consumers.length);
		// Moves come before the placement: the joiner lands where its room already is.
		expect(actions.indexOf(place)).toBe(actions.length - 1);
		// Expected under the limit with the joiner, a room stays where it is, growing (a meeting filling up) or
		// settled (a churn joiner replacing a leaver): nothing moves and nothing splits. On the trajectory
		// (reliefOnExpected off), its worker over the fill target moved the growing room whole.
		const calm = new SnapshotBuilder().at(100).worker('w0', fillBelowPct - 1).worker('w1', 30).worker('w2', 10).producer('v', 'host', 'r', 'w0').producer('a', 'host', 'r', 'w0', 'audio').consume('v', 'w0', 10).consume('a', 'w0', 10).join('x', 'r').build();
		for (const state of [growing, policy.initialState()]) expect(policy.decide(calm, state).actions).toEqual([expect.objectContaining({ type: 'place', peerId: 'x', workerId: 'w0' })]);
		const onTrajectory = foresightPolicy({ reliefOnExpected: false }).decide(calm, growing).actions;
		expect(onTrajectory.find((a) => a.type === 'place')).toMatchObject({ workerId: 'w1' });
		expect(onTrajectory.filter((a) => a.type === 'migrateProducer')).toHaveLength(2);
		// Turned off, the room is not moved whole (neither at admission nor by the relief of w0 after the joiner,
		// which would leave the joiner, not in the snapshot yet, behind).
		const off = foresightPolicy({ relocateOutgrownRooms: false }).decide(snapshot, growing).actions;
		expect(off.find((a) => a.type === 'place')).toBeDefined();
		expect(off.some((a) => a.type === 'migrateProducer' || /moves whole/.test(a.reason))).toBe(false);
	});

	it('fills the fullest worker of a room before opening another for it', () => {
		const { fillBelowPct } = FORESIGHT_DEFAULTS;
		const snapshot = new SnapshotBuilder()
			.worker('w0', fillBelowPct - 10)
			.worker('w1', fillBelowPct - 30)
			.worker('w2', 0.5)
			.producer('a', 'pa', 'r', 'w0')
			.producer('b', 'pb', 'r', 'w1')
			.join('x', 'r')
			.build();
		expect(decide(snapshot)).toEqual([expect.objectContaining({ type: 'place', workerId: 'w0' })]);
	});

	it('falls back to the fullest worker under the fill target when no worker keeps the reserve', () => {
		const { fillBelowPct, newRoomReservePct } = FORESIGHT_DEFAULTS;
		const snapshot = new SnapshotBuilder().worker('w0', fillBelowPct + 1).worker('w1', fillBelowPct - 1).worker('w2', fillBelowPct - newRoomReservePct + 1).join('x', 'new').build();
		const [place] = decide(snapshot);
		// w0 is over the fill target; w1 is the fullest that still takes the joiner's own ingress.
		expect(place).toMatchObject({ type: 'place', workerId: 'w1' });
		expect(place!.predictedAfterPct).toBeLessThanOrEqual(fillBelowPct);
	});

	it('plans on the forecast p95, not on the current measurement', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 30, 80).worker('w1', 45, 45).join('x', 'new').build();
		expect(decide(snapshot)[0]).toMatchObject({ type: 'place', workerId: 'w1' });
	});

	describe('over the fill target (a forecast tail wide against the budget, as at a small one)', () => {
		// Workers with a budget of 15 % of a core whose p95 sits 14 pp over their mean (a band learned while
		// they filled): every trajectory is over the fill target (12.3 %), the means are not.
		const room = (b: SnapshotBuilder, worker: string): SnapshotBuilder => b.producer('v', 'host', 'r', worker).producer('a', 'host', 'r', worker, 'audio').consume('v', worker, 3).consume('a', worker, 3);
		const at15 = (snapshot: AllocationSnapshot): AllocationSnapshot => ({ ...snapshot, workers: snapshot.workers.map((w) => ({ ...w, capacityPct: 15 })) });
		const fleet = (roomWorkerMean: number): AllocationSnapshot =>
			at15(room(new SnapshotBuilder().worker('w0', roomWorkerMean, roomWorkerMean + 14).worker('w1', 5, 19).worker('w2', 3, 17), 'w0').join('x', 'r').build());

		it("keeps a joiner on its room's worker while that worker is expected under the limit with it, not on the least loaded", () => {
			const [place] = changes(decide(fleet(9)));
			expect(place).toMatchObject({ type: 'place', peerId: 'x', workerId: 'w0' });
			expect(place!.reason).toMatch(/room's worker/);
		});

		it('splits the room only when sending the peer away takes its worker under the limit; over it either way, the peer stays with its room', () => {
			const limit = 0.15 * FORESIGHT_DEFAULTS.limitPct;
			const placed = (roomWorkerMean: number, sends: Array<'audio' | 'video'>, p = policy) =>
				changes(p.decide(at15(room(new SnapshotBuilder().worker('w0', roomWorkerMean, roomWorkerMean + 14).worker('w1', 5, 19).worker('w2', 3, 17), 'w0').join('x', 'r', sends).build()), p.initialState()).actions).find((a) => a.type === 'place');
			// A viewer costs w0 its receive transport and two top-layer egresses (≈ 0.36 pp) kept, the pipes'
			// egress of both producers (≈ 0.19 pp) sent away: 0.25 pp under the limit, the split takes w0 under it.
			expect(placed(limit - 0.25, [])).toMatchObject({ peerId: 'x', workerId: 'w2' });
			// 0.1 pp under: w0 ends over the limit either way; the split would only add pipes, so the viewer stays.
			const kept = placed(limit - 0.1, []);
			expect(kept).toMatchObject({ peerId: 'x', workerId: 'w0' });
			expect(kept!.reason).toMatch(/over the .* limit anyway/);
			// A sender leaves its streams' egress to w0's three receivers there too: it stays as well.
			expect(placed(limit - 0.1, ['audio', 'video'])).toMatchObject({ peerId: 'x', workerId: 'w0' });
			// The rule before: the least loaded worker expected under the limit, whether or not that relieves w0.
			const before = foresightPolicy({ splitOnlyToRelieve: false });
			for (const sends of [[], ['audio', 'video']] as const) expect(placed(limit - 0.1, [...sends], before)).toMatchObject({ peerId: 'x', workerId: 'w2' });
		});

		it("books a split's pipes on the room's worker once: a second viewer of the same decision follows the first where the pipes run", () => {
			const limit = 0.15 * FORESIGHT_DEFAULTS.limitPct;
			// 0.2 pp under the limit: the first viewer's split leaves the two pipes' egress (≈ 0.19 pp) on w0, which
			// ends just under the limit; the second's opens no new pipe, so it relieves w0 as well.
			const two = at15(room(new SnapshotBuilder().worker('w0', limit - 0.2, limit - 0.2 + 14).worker('w1', 5, 19).worker('w2', 3, 17), 'w0').join('x', 'r', []).join('y', 'r', []).build());
			const places = changes(decide(two)).filter((a) => a.type === 'place');
			expect(places.map((a) => a.workerId)).toEqual(['w2', 'w2']);
		});

		it('refuses on the expected load, not on the tail: a p95 over the limit everywhere with the means under it admits the peer', () => {
			const snapshot = at15(new SnapshotBuilder().worker('w0', 9, 20).worker('w1', 10, 21).join('x', 'new').build());
			expect(changes(decide(snapshot))).toEqual([expect.objectContaining({ type: 'place', peerId: 'x' })]);
		});

		it("admits a peer that refusal does not pay for to its room's worker when every worker is expected over the limit", () => {
			const limit = 0.15 * FORESIGHT_DEFAULTS.limitPct;
			const b = new SnapshotBuilder().worker('w0', limit + 1, limit + 8).worker('w1', limit + 0.5, limit + 7);
			const snapshot = at15(room(b, 'w0').join('x', 'r').build());
			// Six receivers' worth of loss outweighs the exposure the peer adds: admitted, where it adds no pipe (w1 is the least loaded).
			expect(changes(decide(snapshot))).toEqual([expect.objectContaining({ type: 'place', peerId: 'x', workerId: 'w0' })]);
		});
	});

	it('refuses when every worker is predicted over the limit, or redirects when told where to', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 88).worker('w1', 90).join('x', 'r').build();
		expect(changes(decide(snapshot))).toEqual([expect.objectContaining({ type: 'refuse', peerId: 'x' })]);
		expect(changes(foresightPolicy({ redirectTarget: 'eu-2' }).decide(snapshot, { recent: {}, joins: {} }).actions)).toEqual([expect.objectContaining({ type: 'redirect', target: 'eu-2' })]);
	});
});

describe('Foresight corrective actions', () => {
	it('spreads a hot fan-out to the fullest worker that can take it (best fit) before touching quality', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 95).worker('w1', 40).worker('w2', 10).producer('v', 'presenter', 'webinar', 'w0').consume('v', 'w0', 200).build();
		// The whole webinar would fit on w1: spreading is what is tested here.
		const actions = foresightPolicy({ moveWholeRooms: false }).decide(snapshot, { recent: {}, joins: {} }).actions;
		expect(actions.every((a) => a.type === 'spreadFanout')).toBe(true);
		const spread = actions[0] as SpreadFanoutAction;
		expect(spread.toWorkerId).toBe('w1');
		expect(spread.predictedBeforePct).toBeCloseTo(95);
		// Back to the relief target, and only as many consumers as needed move: (95 − target)% of a core at ~0.3% each.
		const { relieveToPct } = FORESIGHT_DEFAULTS;
		expect(spread.predictedAfterPct).toBeLessThanOrEqual(relieveToPct);
		expect(spread.consumerIds.length).toBeGreaterThan((95 - relieveToPct) / 0.3);
		expect(spread.consumerIds.length).toBeLessThan(200);
	});

	it('relieves a hot worker by moving a room that lives on it alone whole, leaving no pipe; a room already split is spread instead', () => {
		const { fillBelowPct, relieveToPct } = FORESIGHT_DEFAULTS;
		const build = (splitConsumerOn?: string) => {
			const b = new SnapshotBuilder().worker('w0', 90).worker('w1', 50).worker('w2', 10).producer('v', 'host', 'r', 'w0').consume('v', 'w0', 30);
			if (splitConsumerOn) b.consume('v', splitConsumerOn, 1, { peerPrefix: 'far' });
			return b.build();
		};
		const whole = decide(build());
		expect(countBy(whole, (a) => a.type)).toEqual({ spreadFanout: 1, migrateProducer: 1 });
		for (const a of whole) expect(a).toMatchObject({ intent: 'relieve', workerId: 'w0', toWorkerId: 'w1' });
		const [spread, migrate] = whole;
		expect(spread!.type === 'spreadFanout' && spread!.consumerIds.length).toBe(30);
		// The relief is booked on the last action; the target stays under the fill target, the source under the relief target.
		expect(spread!.predictedBeforePct).toBeCloseTo(90);
		expect(migrate!.predictedAfterPct).toBeLessThanOrEqual(relieveToPct);
		expect(migrate!.type === 'migrateProducer' && migrate!.targetPredictedAfterPct).toBeLessThanOrEqual(fillBelowPct);
		// One receiver elsewhere: the room is not whole here, its producer stays and receivers are spread.
		const split = decide(build('w2'));
		expect(split.length).toBeGreaterThan(0);
		for (const a of split) expect(a.type).toBe('spreadFanout');
	});

	it('never moves what the app cannot re-connect (movable: false): a hot worker of such consumers is relieved by layers instead', () => {
		// 1 pp over the line: ten top layers lowered (0.12 pp each) cover it.
		const build = (movable: boolean) =>
			new SnapshotBuilder().worker('w0', 86, 95).worker('w1', 40).producer('v', 'presenter', 'webinar', 'w0').consume('v', 'w0', 200, { movable, priority: 50 }).build();
		expect(decide(build(true)).map((a) => a.type)).toContain('spreadFanout');
		const pinned = decide(build(false));
		expect(pinned.length).toBeGreaterThan(0);
		for (const a of pinned) expect(a.type).toBe('setConsumerLayers');
	});

	it('relieves on the expected load, not on the tail: a p95 over the action line with the mean under the limit moves nothing', () => {
		const { limitPct, actAbovePct } = FORESIGHT_DEFAULTS;
		const build = (meanPct: number) => new SnapshotBuilder().worker('w0', meanPct, actAbovePct + 10).worker('w1', 40).producer('v', 'presenter', 'webinar', 'w0').consume('v', 'w0', 200).build();
		expect(changes(decide(build(limitPct - 3)))).toEqual([]);
		// The same tail with the mean over the limit: receivers move.
		expect(changes(decide(build(limitPct + 3))).length).toBeGreaterThan(0);
		// Judged on the trajectory (the rule before), the tail alone moved receivers.
		expect(changes(foresightPolicy({ reliefOnExpected: false }).decide(build(limitPct - 3), policy.initialState()).actions).length).toBeGreaterThan(0);
	});

	it("finds a whole room's new worker on the expected load when every trajectory is over the fill target; spreads stay on the trajectory", () => {
		// Workers at 15 % of a core whose p95 sits 14 pp over their mean: w0 expected over the limit (12.75), w1 and w2 far under.
		const at15 = (snapshot: AllocationSnapshot): AllocationSnapshot => ({ ...snapshot, workers: snapshot.workers.map((w) => ({ ...w, capacityPct: 15 })) });
		const build = (extra?: (b: SnapshotBuilder) => SnapshotBuilder) => {
			const b = new SnapshotBuilder().worker('w0', 14, 28).worker('w1', 5, 19).worker('w2', 3, 17).producer('v', 'host', 'r', 'w0').producer('a', 'host', 'r', 'w0', 'audio').consume('v', 'w0', 12).consume('a', 'w0', 12);
			return at15((extra ? extra(b) : b).build());
		};
		const moves = (actions: AllocationAction[]) => actions.filter((a) => a.type === 'spreadFanout' || a.type === 'migrateProducer');
		const moved = moves(decide(build()));
		expect(moved.length).toBeGreaterThan(0);
		for (const a of moved) expect(a).toMatchObject({ workerId: 'w0', reason: expect.stringMatching(/room r moves whole/) });
		// On the trajectory (the rule before), no worker takes anything under the fill target: nothing moves.
		expect(moves(foresightPolicy({ roomTargetsOnExpected: false }).decide(build(), policy.initialState()).actions)).toEqual([]);
		// A room already split (a producer on w1) cannot move whole; a spread would open pipes, and its target stays judged on the trajectory.
		expect(moves(decide(build((b) => b.producer('s', 'guest', 'r', 'w1').consume('s', 'w0', 12))))).toEqual([]);
		// While one worker is under the fill target on its trajectory (w3, just under it, too full to take the room), targets
		// are judged on the trajectory: w1 and w2, under on their means, take nothing (their tails are what overloads them next).
		const withRoomSomewhere = moves(decide(build((b) => b.worker('w3', 11.9, 12))));
		expect(withRoomSomewhere.filter((a) => a.toWorkerId !== 'w3')).toEqual([]);
	});

	it("prices a spread's pipes on the producers' workers: no spread that only shifts the overload onto the worker feeding its pipes", () => {
		const { limitPct } = FORESIGHT_DEFAULTS;
		// w0 serves 30 receivers of five producers that live on w2, which sits just under the limit and serves 300 receivers
		// of its own; each pipe to a new worker adds its egress there (five pipes ≈ 0.8 pp).
		const build = () => {
			const b = new SnapshotBuilder().worker('w0', limitPct + 2).worker('w1', 30).worker('w2', limitPct - 0.5);
			for (let i = 0; i < 5; i++) b.producer(`v${i}`, `s${i}`, 'r', 'w2').consume(`v${i}`, 'w0', 6, { peerPrefix: 'far' }).consume(`v${i}`, 'w2', 60);
			return b.build();
		};
		const spreads = (actions: AllocationAction[]) => actions.filter((a) => a.type === 'spreadFanout' && a.toWorkerId === 'w1');
		expect(spreads(decide(build()))).toEqual([]);
		// Priced without the pipes' load on w2 (the rule before), the move goes ahead.
		expect(spreads(foresightPolicy({ reliefOnExpected: false }).decide(build(), policy.initialState()).actions).length).toBeGreaterThan(0);
	});

	describe('with reliefOnExpected off, acts on the trajectory of growing rooms', () => {
		const { actAbovePct, growthWindowS } = FORESIGHT_DEFAULTS;
		const policy = foresightPolicy({ reliefOnExpected: false });
		const decide = (snapshot: AllocationSnapshot): AllocationAction[] => policy.decide(snapshot, policy.initialState()).actions;
		// p95 well under the action threshold: a worker full of one room's receivers, an empty worker beside it.
		const build = () => new SnapshotBuilder().at(100).worker('w0', actAbovePct - 8).worker('w1', 40).producer('v', 'host', 'class', 'w0').consume('v', 'w0', 30).build();
		// Four senders joined the room in the last seconds: every receiver will consume each of the next ones too.
		const growing = { recent: {}, joins: { class: [97, 98, 99, 99.5].map((t): [number, number] => [t, 0.26]) } };

		it('moves receivers early, before the p95 forecast reaches the threshold, and touches no quality', () => {
			const snapshot = build();
			const actions = policy.decide(snapshot, growing).actions;
			expect(actions.length).toBeGreaterThan(0);
			for (const a of actions) {
				// The class fits on w1 whole: its receivers and its producer go together.
				expect(['spreadFanout', 'migrateProducer']).toContain(a.type);
				expect(a).toMatchObject({ intent: 'relieve', workerId: 'w0', toWorkerId: 'w1' });
				expect(a.predictedBeforePct).toBeGreaterThan(actAbovePct);
			}
			expect(snapshot.workers[0]!.forecast.every((f) => f.p95Pct < actAbovePct)).toBe(true);
		});

		it('does nothing for the same load without a join trend, or once the trend is older than the window', () => {
			expect(decide(build())).toEqual([]);
			const stale = { recent: {}, joins: { class: [97, 98, 99, 99.5].map((t): [number, number] => [t - growthWindowS, 0.26]) } };
			expect(policy.decide(build(), stale).actions).toEqual([]);
		});

		it('carries the trend in its state: joins seen now make the next decision expect growth', () => {
			let state = policy.initialState();
			for (let t = 96; t < 100; t++) state = policy.decide(new SnapshotBuilder().at(t).worker('w0', 10).join(`j${t}`, 'class').build(), state).state;
			expect(state.joins.class).toHaveLength(4);
			expect(policy.decide(build(), state).actions.length).toBeGreaterThan(0);
		});

		it("with growthWithinTail, takes the larger of the forecast's tail and the growth, not their sum: a band learned while rooms fill already holds their joins", () => {
			// Mean 60, p95 80 (a 20-point band), ten receivers of the growing class: about 8 points of growth.
			const wide = () => new SnapshotBuilder().at(100).worker('w0', 60, 80).worker('w1', 40).producer('v', 'host', 'class', 'w0').consume('v', 'w0', 10).build();
			const within = foresightPolicy({ growthWithinTail: true, reliefOnExpected: false });
			expect(changes(within.decide(wide(), growing).actions)).toEqual([]);
			// Summed (the default), the trajectory (80 + 8) is over the action threshold and receivers move.
			expect(changes(policy.decide(wide(), growing).actions).length).toBeGreaterThan(0);
			// A growth larger than the tail still counts in full: the narrow-band class above moves.
			expect(within.decide(build(), growing).actions.length).toBeGreaterThan(0);
		});

		it("with growthWithinTail, counts growth moved onto a worker on top of that worker's tail: its band never saw those rooms", () => {
			// The class moves whole to w1, whose forecast has a 20-point tail and no growth of its own.
			const snapshot = new SnapshotBuilder().at(100).worker('w0', actAbovePct - 8).worker('w1', 20, 40).producer('v', 'host', 'class', 'w0').consume('v', 'w0', 30).build();
			const after = (growthWithinTail: boolean): number[] =>
				foresightPolicy({ growthWithinTail, reliefOnExpected: false })
					.decide(snapshot, growing)
					.actions.map((a) => (a.type === 'spreadFanout' || a.type === 'migrateProducer' ? a.targetPredictedAfterPct! : Number.NaN));
			expect(after(true).length).toBeGreaterThan(0);
			expect(after(true)).toEqual(after(false));
		});

		it('by default (reliefOnExpected), moves nothing on the growth extrapolation: the room is expected under the limit', () => {
			const byDefault = foresightPolicy();
			expect(changes(byDefault.decide(build(), growing).actions)).toEqual([]);
		});

		it('never degrades on the growth extrapolation alone', () => {
			const snapshot = new SnapshotBuilder().at(100).worker('w0', actAbovePct - 2).worker('w1', 90).producer('v', 'host', 'class', 'w0').consume('v', 'w0', 30, { priority: 50 }).build();
			// Nowhere to move to; the forecast is under the limit, only the extrapolation is over it.
			expect(changes(policy.decide(snapshot, growing).actions).filter((a) => a.type !== 'spreadFanout')).toEqual([]);
		});
	});

	describe('consolidation when load recedes (off by default: it avoids no exposure)', () => {
		const { consolidateBelowPct, consolidateFillPct } = FORESIGHT_DEFAULTS;
		const consolidating = foresightPolicy({ consolidateCandidates: 3 });
		const decide = (snapshot: AllocationSnapshot): AllocationAction[] => consolidating.decide(snapshot, consolidating.initialState()).actions;
		const build = (sourcePct: number, targetPct: number) =>
			new SnapshotBuilder()
				.worker('w0', sourcePct)
				.worker('w1', targetPct)
				.worker('w2', 0.5)
				.producer('v', 'host', 'small', 'w0')
				.producer('a', 'host', 'small', 'w0', 'audio')
				.consume('v', 'w0', 10)
				.consume('a', 'w0', 10)
				.producer('big', 'other', 'big', 'w1')
				.consume('big', 'w1', 20, { peerPrefix: 'b' })
				.build();

		it('moves nothing by default', () => {
			expect(policy.decide(build(8, consolidateFillPct - 20), policy.initialState()).actions).toEqual([]);
		});

		it('empties a light worker onto the fullest one that stays under the consolidation target, never onto an idle one', () => {
			// The source's measured load is about what its 20 consumers and two producers cost.
			const snapshot = build(8, consolidateFillPct - 20);
			const actions = decide(snapshot);
			const spreads = actions.filter((a): a is SpreadFanoutAction => a.type === 'spreadFanout');
			const migrations = actions.filter((a) => a.type === 'migrateProducer');
			expect(spreads.flatMap((a) => a.consumerIds).sort()).toEqual(snapshot.consumers.filter((c) => c.workerId === 'w0').map((c) => c.id).sort());
			expect(migrations.map((a) => a.type === 'migrateProducer' && a.producerId).sort()).toEqual(['a', 'v']);
			for (const a of [...spreads, ...migrations]) {
				expect(a).toMatchObject({ intent: 'consolidate', workerId: 'w0', toWorkerId: 'w1' });
				if (a.type === 'spreadFanout' || a.type === 'migrateProducer') expect(a.targetPredictedAfterPct).toBeLessThanOrEqual(consolidateFillPct);
			}
		});

		it('never empties a worker hosting a consumer or producer the app cannot move', () => {
			const snapshot = build(8, consolidateFillPct - 20);
			expect(decide(snapshot).length).toBeGreaterThan(0);
			snapshot.consumers.find((c) => c.workerId === 'w0')!.movable = false;
			expect(decide(snapshot)).toEqual([]);
			const withPinnedProducer = build(8, consolidateFillPct - 20);
			withPinnedProducer.producers.find((p) => p.id === 'a')!.movable = false;
			expect(decide(withPinnedProducer)).toEqual([]);
			// A consumer elsewhere that cannot be re-pointed to a migrated producer pins the producer.
			const withPinnedViewer = build(8, consolidateFillPct - 20);
			withPinnedViewer.consumers.push({ ...withPinnedViewer.consumers.find((c) => c.producerId === 'v')!, id: 'far', peerId: 'recorder', workerId: 'w1', movable: false });
			expect(decide(withPinnedViewer)).toEqual([]);
		});

		it('leaves the worker alone when the rest would not fit under the target, when it is not light, or while its room grows', () => {
			expect(decide(build(8, consolidateFillPct - 1))).toEqual([]);
			expect(decide(build(consolidateBelowPct + 5, consolidateFillPct - 20))).toEqual([]);
			const growing = { recent: {}, joins: { small: [[0, 0.26], [1, 0.26], [2, 0.26]] as Array<[number, number]> } };
			expect(consolidating.decide(build(8, consolidateFillPct - 20), growing).actions).toEqual([]);
		});
	});

	it('lowers layers of low-priority consumers only, never the active speaker or protected ones', () => {
		const snapshot = new SnapshotBuilder()
			.worker('w0', 86, 95)
			.worker('w1', FORESIGHT_DEFAULTS.fillBelowPct + 5)
			.producer('speaker', 's', 'r', 'w0', 'video', true)
			.producer('teacher', 't', 'r', 'w0', 'video')
			.producer('tile', 'x', 'r', 'w0', 'video')
			.consume('speaker', 'w0', 50, { peerPrefix: 'a' })
			.consume('teacher', 'w0', 50, { priority: 220, peerPrefix: 'b' })
			.consume('tile', 'w0', 50, { priority: 50, peerPrefix: 'c' })
			.build();
		const actions = changes(decide(snapshot));
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

	it('spends quality on the expected load, not on the forecast tail: a p95 over the limit with the mean under it only moves load', () => {
		const { degradeAbovePct, limitPct } = FORESIGHT_DEFAULTS;
		const snapshot = new SnapshotBuilder()
			.worker('w0', degradeAbovePct - 5, limitPct + 8)
			.worker('w1', FORESIGHT_DEFAULTS.fillBelowPct + 5)
			.producer('tile', 'x', 'r', 'w0', 'video')
			.consume('tile', 'w0', 50, { priority: 50 })
			.build();
		expect(changes(decide(snapshot)).filter((a) => a.type !== 'spreadFanout')).toEqual([]);
		// With the mean over the line too (and a forecast sure enough that lowering ten layers pays), it does degrade.
		snapshot.workers[0]!.cpuPct = degradeAbovePct + 1;
		snapshot.workers[0]!.forecast = snapshot.workers[0]!.forecast.map((f) => ({ ...f, meanPct: degradeAbovePct + 1, p95Pct: degradeAbovePct + 1.5 }));
		expect(decide(snapshot).some((a) => a.type === 'setConsumerLayers')).toBe(true);
		// The same mean with a wide forecast: ten lowered layers barely change the odds of the overload, so none pays.
		snapshot.workers[0]!.forecast = snapshot.workers[0]!.forecast.map((f) => ({ ...f, p95Pct: limitPct + 15 }));
		expect(decide(snapshot).some((a) => a.type === 'setConsumerLayers')).toBe(false);
	});

	it("prices a degrade's saving by the predictor's attribution: consumers it finds cheap are not given up for a saving the worker would not show", () => {
		const { degradeAbovePct } = FORESIGHT_DEFAULTS;
		const build = (attributedPct?: number) => {
			const snapshot = new SnapshotBuilder().worker('w0', degradeAbovePct + 1).worker('w1', 95).producer('tile', 'x', 'r', 'w0').consume('tile', 'w0', 50, { priority: 50 }).build();
			if (attributedPct !== undefined) for (const c of snapshot.consumers) c.attributedPct = attributedPct;
			return snapshot;
		};
		const degrades = (actions: AllocationAction[]) => actions.filter((a) => ['setConsumerLayers', 'pauseConsumer', 'dropConsumer'].includes(a.type));
		// By the cost model (0.195 pp each, a layer 0.117) ten lowered layers cover the excess.
		expect(degrades(decide(build())).length).toBeGreaterThan(0);
		// Attributed 0.01 pp each: no degrade reaches the saving floor, none is made.
		expect(degrades(decide(build(0.01)))).toEqual([]);
		// Priced by the cost model (the rule before), the same snapshot is degraded.
		expect(degrades(foresightPolicy({ priceFromAttribution: false }).decide(build(0.01), policy.initialState()).actions).length).toBeGreaterThan(0);
	});

	it('spends no quality on an overload the measurement does not show yet (a new share expected at its burst rate)', () => {
		const { degradeAbovePct, limitPct } = FORESIGHT_DEFAULTS;
		const snapshot = new SnapshotBuilder().worker('w0', degradeAbovePct - 10).worker('w1', FORESIGHT_DEFAULTS.fillBelowPct + 5).producer('tile', 'x', 'r', 'w0').consume('tile', 'w0', 50, { priority: 50 }).build();
		snapshot.workers[0]!.forecast = [{ horizonS: 5, meanPct: degradeAbovePct + 1, p95Pct: degradeAbovePct + 1.5 }];
		expect(changes(decide(snapshot)).filter((a) => a.type !== 'spreadFanout')).toEqual([]);
		// The same forecast with the measurement over the line does degrade.
		snapshot.workers[0]!.cpuPct = degradeAbovePct + 0.5;
		expect(decide(snapshot).some((a) => a.type === 'setConsumerLayers')).toBe(true);
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
