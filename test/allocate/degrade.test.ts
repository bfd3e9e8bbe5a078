import {
	chooseDegrades,
	degradeBudget,
	degradeCandidates,
	dropsAllowed,
	savingFloorPct,
	type DegradeCandidate,
	type DegradeRules,
} from '../../plugin/allocate/policies/degrade';
import { foresightPolicy, FORESIGHT_DEFAULTS, type ForesightState } from '../../plugin/allocate/policies/foresight';
import type { AllocationAction } from '../../plugin/allocate/actions';
import { MEASURED_COST_MODEL, type AllocationSnapshot } from '../../plugin/allocate/snapshot';
import { countBy, SnapshotBuilder } from './fixtures';

const rules: DegradeRules = { minDegradeSavingPct: 0.1, maxDegradesPerWorkerPerTick: 10, maxDegradesPerWorkerPerMinute: 30 };
const candidate = (kind: DegradeCandidate['kind'], consumerId: string, savingPct: number, priority = 100): DegradeCandidate => ({ kind, consumerId, savingPct, priority });

describe('degrade rules (pure)', () => {
	it('bounds the consumers degraded per worker per decision and per minute', () => {
		expect(degradeBudget([], 100, rules)).toBe(10);
		expect(degradeBudget(Array<number>(25).fill(90), 100, rules)).toBe(5);
		expect(degradeBudget(Array<number>(30).fill(90), 100, rules)).toBe(0);
		// A minute later those no longer count.
		expect(degradeBudget(Array<number>(30).fill(40), 100, rules)).toBe(10);
	});

	it('holds each action to an absolute floor (scaled with capacity) and to its share of the excess', () => {
		expect(savingFloorPct(0.5, 10, 100, rules)).toBeCloseTo(0.1);
		expect(savingFloorPct(0.5, 10, 10, rules)).toBeCloseTo(0.05);
		// 5 pp over the line with ten actions allowed: each must carry half a point (the 0.5 pp).
		expect(savingFloorPct(5, 10, 100, rules)).toBeCloseTo(0.5);
		expect(savingFloorPct(1.2, 2, 10, rules)).toBeCloseTo(0.6);
		expect(savingFloorPct(1, 0, 100, rules)).toBe(Number.POSITIVE_INFINITY);
	});

	it('lets drops wait while an idle worker with headroom has not been offered load', () => {
		expect(dropsAllowed(true, false)).toBe(false);
		expect(dropsAllowed(true, true)).toBe(true);
		expect(dropsAllowed(false, false)).toBe(true);
	});

	it('offers layers and pause for video, drop for anything, each saving what the consumer costs now minus after', () => {
		const snapshot = new SnapshotBuilder()
			.worker('w0', 90)
			.producer('v', 'x', 'r', 'w0')
			.producer('a', 'x', 'r', 'w0', 'audio')
			.consume('v', 'w0', 1)
			.consume('v', 'w0', 1, { current: { spatial: 0, temporal: 2 }, peerPrefix: 'low' })
			.consume('v', 'w0', 1, { paused: true, peerPrefix: 'p' })
			.consume('a', 'w0', 1, { peerPrefix: 'm' })
			.build();
		const byId = new Map(snapshot.producers.map((p) => [p.id, p]));
		const list = degradeCandidates(
			snapshot.consumers.map((consumer) => ({ consumer, producer: byId.get(consumer.producerId)! })),
			MEASURED_COST_MODEL,
		);
		const of = (id: string) => Object.fromEntries(list.filter((c) => c.consumerId === id).map((c) => [c.kind, Number(c.savingPct.toFixed(3))]));
		// Top layer 150 pkt/s → 60 pkt/s at 13 µs a packet.
		expect(of('c0')).toEqual({ setConsumerLayers: 0.117, pauseConsumer: 0.195, dropConsumer: 0.195 });
		expect(of('c1')).toEqual({ pauseConsumer: 0.039, dropConsumer: 0.039 });
		// Dropping a paused consumer saves nothing: the floor will never let it through.
		expect(of('c2')).toEqual({ dropConsumer: 0 });
		expect(of('c3')).toEqual({ dropConsumer: 0.065 });
	});

	it("prices each candidate from what the consumer costs now by the given measure (the predictor's attribution), a lower layer by the cost model's share", () => {
		const snapshot = new SnapshotBuilder().worker('w0', 90).producer('v', 'x', 'r', 'w0').consume('v', 'w0', 1).build();
		const [consumer] = snapshot.consumers;
		const list = degradeCandidates([{ consumer: consumer!, producer: snapshot.producers[0]! }], MEASURED_COST_MODEL, () => 0.05);
		const of = Object.fromEntries(list.map((c) => [c.kind, Number(c.savingPct.toFixed(4))]));
		// Attributed 0.05 instead of the modelled 0.195: a pause or drop saves 0.05, a lower layer 0.117/0.195 of it.
		expect(of).toEqual({ setConsumerLayers: Number(((0.05 * 0.117) / 0.195).toFixed(4)), pauseConsumer: 0.05, dropConsumer: 0.05 });
	});

	it('takes nothing under the floor, at most the budget, cheapest rung first, least important first', () => {
		const list = [candidate('dropConsumer', 'a', 0.3, 10), candidate('pauseConsumer', 'b', 0.3, 50), candidate('setConsumerLayers', 'c', 0.2, 100), candidate('setConsumerLayers', 'd', 0.05, 1)];
		const choice = chooseDegrades(list, { excessPct: 0.5, floorPct: 0.1, budget: 10, dropsAllowed: true });
		expect(choice).toMatchObject({ verdict: 'relieves' });
		expect(choice.take.map((c) => `${c.kind}:${c.consumerId}`)).toEqual(['setConsumerLayers:c', 'pauseConsumer:b']);
		const bounded = chooseDegrades([candidate('pauseConsumer', 'x', 1), candidate('pauseConsumer', 'y', 1)], { excessPct: 1.5, floorPct: 0.1, budget: 1, dropsAllowed: true });
		expect(bounded.verdict).toBe('cannotRelieve');
		// Pauses that cannot relieve on their own are not taken either: only the cheapest rung, lower layers.
		expect(bounded.take).toEqual([]);
	});

	it('drops only as part of a set that brings the worker under its line', () => {
		const list = [candidate('pauseConsumer', 'v', 0.4), candidate('dropConsumer', 'v', 0.4), candidate('dropConsumer', 'a1', 0.2), candidate('dropConsumer', 'a2', 0.2)];
		const relieved = chooseDegrades(list, { excessPct: 0.7, floorPct: 0.1, budget: 10, dropsAllowed: true });
		expect(relieved.verdict).toBe('relieves');
		expect(relieved.take.map((c) => `${c.kind}:${c.consumerId}`)).toEqual(['pauseConsumer:v', 'dropConsumer:a1', 'dropConsumer:a2']);
		// One more point of excess: every drop allowed together still falls short, so none is taken.
		const short = chooseDegrades(list, { excessPct: 1.7, floorPct: 0.1, budget: 10, dropsAllowed: true });
		expect(short).toMatchObject({ verdict: 'cannotRelieve', take: [] });
		expect(short.verdict === 'cannotRelieve' && short.bestSavingPct).toBeCloseTo(0.8);
		// Not allowed: no drop, whatever they would save.
		expect(chooseDegrades(list, { excessPct: 0.7, floorPct: 0.1, budget: 10, dropsAllowed: false })).toMatchObject({ verdict: 'cannotRelieve', take: [] });
	});

	it('keeps the lowered layers it found when nothing allowed relieves the worker', () => {
		const list = [candidate('setConsumerLayers', 'a', 0.2), candidate('pauseConsumer', 'b', 0.3)];
		const choice = chooseDegrades(list, { excessPct: 2, floorPct: 0.1, budget: 10, dropsAllowed: true });
		expect(choice.verdict).toBe('cannotRelieve');
		expect(choice.take.map((c) => c.consumerId)).toEqual(['a']);
	});
});

describe('degrade rules in the Foresight policy', () => {
	const policy = foresightPolicy();
	const capacity = 10;
	const scale = capacity / 100;
	/**
	 * The demo: per-worker capacity 10 % of a core, one worker measured over its line
	 * with the load generator's receivers (layer 0 and 1), the other idle.
	 */
	const demoLike = (t: number, movable: boolean, hotPct = 9.7): AllocationSnapshot => {
		const snapshot = new SnapshotBuilder()
			.at(t)
			.worker('w0', hotPct)
			.worker('w1', 0.3)
			.producer('h0', 'host-0', 'scenario', 'w0')
			.producer('h1', 'host-1', 'scenario', 'w0')
			.consume('h0', 'w0', 30, { current: { spatial: 0, temporal: 2 }, movable, priority: 100, peerPrefix: 'a' })
			.consume('h1', 'w0', 30, { current: { spatial: 0, temporal: 2 }, movable, priority: 100, peerPrefix: 'b' })
			.consume('h0', 'w0', 1, { current: { spatial: 1, temporal: 2 }, movable, peerPrefix: 'host-1' })
			.consume('h1', 'w0', 1, { current: { spatial: 1, temporal: 2 }, movable, peerPrefix: 'host-0' })
			.build();
		for (const w of snapshot.workers) w.capacityPct = capacity;
		if (!movable) for (const p of snapshot.producers) p.movable = false;
		return snapshot;
	};

	it('the issue case: no futile drop, at most the bound, "cannot relieve" reported once per episode', () => {
		let state: ForesightState = policy.initialState();
		const all: AllocationAction[] = [];
		for (let t = 0; t < 60; t++) {
			const decision = policy.decide(demoLike(t, false), state);
			state = decision.state;
			all.push(...decision.actions);
			expect(decision.actions.filter((a) => a.type !== 'cannotRelieve').length).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.maxDegradesPerWorkerPerTick);
		}
		const counts = countBy(all, (a) => a.type);
		expect(counts.dropConsumer).toBeUndefined();
		expect(counts.cannotRelieve).toBe(1);
		const report = all.find((a) => a.type === 'cannotRelieve')!;
		expect(report.workerId).toBe('w0');
		expect(report.reason).toMatch(/^cannot relieve: expected 9\.70% is 1\.20 pp over 85% of capacity/);
		// Whatever was degraded, each saved at least its floor, and never more than the minute's bound.
		for (const a of all) {
			if (a.type !== 'setConsumerLayers' && a.type !== 'pauseConsumer' && a.type !== 'dropConsumer') continue;
			expect(a.predictedBeforePct - a.predictedAfterPct).toBeGreaterThanOrEqual(a.savingFloorPct! - 1e-9);
		}
		expect(all.length - 1).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.maxDegradesPerWorkerPerMinute);
	});

	it('reports again once the worker was relievable for a while, then beyond relief again', () => {
		let state: ForesightState = policy.initialState();
		const reports: number[] = [];
		const hotAt = (t: number): number => (t < 10 || t >= 50 ? 9.7 : 5);
		for (let t = 0; t < 60; t++) {
			const decision = policy.decide(demoLike(t, false, hotAt(t)), state);
			state = decision.state;
			if (decision.actions.some((a) => a.type === 'cannotRelieve')) reports.push(t);
		}
		expect(reports).toEqual([0, 50]);
	});

	it('moves load to the idle worker before any drop', () => {
		const actions = policy.decide(demoLike(0, true), policy.initialState()).actions;
		const types = actions.map((a) => a.type);
		expect(types.some((t) => t === 'spreadFanout' || t === 'migrateProducer')).toBe(true);
		expect(types).not.toContain('dropConsumer');
		for (const a of actions) if (a.type === 'spreadFanout' || a.type === 'migrateProducer') expect(a.toWorkerId).toBe('w1');
	});

	it('drops audio receivers only when, with the rest of the decision, they bring the worker under its line', () => {
		const { degradeAbovePct } = FORESIGHT_DEFAULTS;
		// Over the line by 0.4 pp of a 10 % budget; no idle worker; audio receivers cost 0.065 pp each.
		// A protected audience of 100 beside them: the exposure the drops spare is theirs, and it pays for the drops.
		const build = (overPct: number, otherPct = 9, audience = 100) => {
			const snapshot = new SnapshotBuilder()
				.worker('w0', degradeAbovePct * scale + overPct)
				.worker('w1', otherPct)
				.producer('mic', 'x', 'r', 'w0', 'audio')
				.consume('mic', 'w0', 20, { priority: 50, movable: false })
				.producer('stage', 'y', 'r', 'w0', 'audio', true)
				.consume('stage', 'w0', audience, { priority: 250, movable: false, peerPrefix: 's' })
				.build();
			for (const w of snapshot.workers) w.capacityPct = capacity;
			return snapshot;
		};
		const actions = policy.decide(build(0.4), policy.initialState()).actions.filter((a) => a.workerId === 'w0');
		const drops = actions.filter((a) => a.type === 'dropConsumer');
		expect(drops.length).toBeGreaterThan(0);
		expect(drops.length).toBeLessThanOrEqual(FORESIGHT_DEFAULTS.maxDegradesPerWorkerPerTick);
		const saved = drops.reduce((s, a) => s + a.predictedBeforePct - a.predictedAfterPct, 0);
		expect(saved).toBeGreaterThanOrEqual(0.4);
		for (const a of drops) expect(a.type === 'dropConsumer' && a.predictedBeforePct - a.predictedAfterPct).toBeGreaterThanOrEqual((a.type === 'dropConsumer' && a.savingFloorPct) || 0);
		// Alone, the 20 would lose more (a minute each for every drop) than the overload costs them: no drop.
		const alone = policy.decide(build(0.4, 9, 0), policy.initialState()).actions.filter((a) => a.workerId === 'w0');
		expect(alone.filter((a) => a.type === 'dropConsumer')).toEqual([]);
		// Over by 0.8 pp: ten drops save 0.65 at most, so none is taken and the worker is reported.
		const short = policy.decide(build(0.8), policy.initialState()).actions.filter((a) => a.workerId === 'w0');
		expect(short.map((a) => a.type)).toEqual(['cannotRelieve']);
		// With an idle worker beside it and nothing moved there (these receivers cannot move), no drop either.
		const idle = policy.decide(build(0.4, 0.3), policy.initialState()).actions.filter((a) => a.workerId === 'w0');
		expect(idle.map((a) => a.type)).toEqual(['cannotRelieve']);
		expect(idle[0]!.reason).toContain('no drops while an idle worker could take load that was not moved');
	});
});
