import { buildScenario, SCENARIO_NAMES, type Scenario } from '../../plugin/allocate/sim/scenarios';
import { simulate } from '../../plugin/allocate/sim/simulator';
import { guardedForesight, leastLoadedPolicy, roundRobinPolicy } from '../../plugin/allocate/policies';
import type { ScenarioMetrics } from '../../plugin/allocate/sim/metrics';
import type { AllocationSnapshot } from '../../plugin/allocate/snapshot';
import type { AllocationAction, AllocationPolicy } from '../../plugin/allocate/actions';

const small = (seed: number): Scenario => buildScenario('bursty-joins', { workers: 8, durationS: 60, seed });
const withoutTiming = ({ decisionMsMedian: _ignored, ...rest }: ScenarioMetrics) => rest;

/** Peak concurrent producers + consumers if every join were admitted (events only, no costs). */
function peakStreams(scenario: Scenario): number {
	const rooms = new Map<string, Map<string, { consumes: boolean; sends: Set<string> }>>();
	const roomOf = new Map<string, string>();
	let peak = 0;
	const count = (): number => {
		let n = 0;
		for (const peers of rooms.values()) {
			const consumers = [...peers.values()].filter((p) => p.consumes).length;
			for (const p of peers.values()) n += p.sends.size * (1 + consumers - (p.consumes ? 1 : 0));
		}
		return n;
	};
	let lastT = -1;
	for (const e of scenario.events) {
		if (e.t !== lastT) {
			peak = Math.max(peak, count());
			lastT = e.t;
		}
		if (e.type === 'join') {
			let peers = rooms.get(e.roomId);
			if (!peers) rooms.set(e.roomId, (peers = new Map()));
			peers.set(e.peerId, { consumes: e.consumes, sends: new Set(e.sends) });
			roomOf.set(e.peerId, e.roomId);
		} else if (e.type === 'leave') rooms.get(roomOf.get(e.peerId) ?? '')?.delete(e.peerId);
		else if (e.type === 'startProducer') rooms.get(roomOf.get(e.peerId) ?? '')?.get(e.peerId)?.sends.add(e.mediaClass);
		else if (e.type === 'stopProducer') rooms.get(roomOf.get(e.peerId) ?? '')?.get(e.peerId)?.sends.delete(e.mediaClass);
	}
	return Math.max(peak, count());
}

describe('scenarios', () => {
	it.each(SCENARIO_NAMES)('%s runs at ≥ 32 workers and ≥ 5,000 streams', (name) => {
		const scenario = buildScenario(name);
		expect(scenario.workers).toBeGreaterThanOrEqual(32);
		expect(peakStreams(scenario)).toBeGreaterThanOrEqual(5000);
	});

	it('builds the same timeline for the same seed and another for another seed', () => {
		expect(buildScenario('steady-meeting', { seed: 5 }).events).toEqual(buildScenario('steady-meeting', { seed: 5 }).events);
		expect(buildScenario('steady-meeting', { seed: 6 }).events).not.toEqual(buildScenario('steady-meeting', { seed: 5 }).events);
	});
});

describe('simulator', () => {
	it('reports rooms split over workers and the pipes between them: none on one worker, some when least-loaded scatters rooms', () => {
		const one = simulate(buildScenario('bursty-joins', { workers: 1, durationS: 30, seed: 3 }), leastLoadedPolicy()).metrics;
		expect(one).toMatchObject({ peakSplitRooms: 0, peakPipes: 0 });
		const scattered = simulate(small(3), leastLoadedPolicy()).metrics;
		expect(scattered.peakSplitRooms).toBeGreaterThan(0);
		expect(scattered.peakPipes).toBeGreaterThanOrEqual(scattered.peakSplitRooms);
	});

	it('is deterministic for a seed', () => {
		const a = simulate(small(3), guardedForesight()).metrics;
		const b = simulate(small(3), guardedForesight()).metrics;
		expect(withoutTiming(a)).toEqual(withoutTiming(b));
		expect(a.peakStreams).toBeGreaterThan(0);
		const other = simulate(small(4), guardedForesight()).metrics;
		expect(withoutTiming(other)).not.toEqual(withoutTiming(a));
	});

	it('shows a policy measurements and forecasts, never the ground truth', () => {
		const seen: AllocationSnapshot[] = [];
		const truth: number[] = [];
		const spy: AllocationPolicy<null> = {
			name: 'spy',
			initialState: () => null,
			decide(snapshot) {
				seen.push(snapshot);
				return { actions: roundRobinPolicy.decide(snapshot, { next: snapshot.t }).actions, state: null };
			},
		};
		simulate(small(3), spy, { onTick: ({ t, demand }) => t === 40 && truth.push(...demand.values()) });
		const at41 = seen[41]!;
		// Measured CPU is last second's truth with noise: close, never identical.
		const measured = at41.workers.map((w) => w.cpuPct);
		expect(measured.some((m, i) => m !== Math.min(100, truth[i]!))).toBe(true);
		for (let i = 0; i < measured.length; i++) if (truth[i]! > 10) expect(Math.abs(measured[i]! - Math.min(100, truth[i]!)) / truth[i]!).toBeLessThan(0.15);
		// Views carry exactly the live fields: no hidden cost factors, no true rates.
		const producerKeys = new Set(at41.producers.flatMap((p) => Object.keys(p)));
		expect([...producerKeys].sort()).toEqual(['activeSpeaker', 'ageS', 'expectedPacketRate', 'id', 'layers', 'mediaClass', 'packetRate', 'peerId', 'roomId', 'workerId']);
		// attributedPct is the live prediction engine's attribution (fitted to measured CPU and profiles), not the truth's cost.
		const consumerKeys = new Set(at41.consumers.flatMap((c) => Object.keys(c)));
		expect([...consumerKeys].sort()).toEqual(['attributedPct', 'current', 'id', 'packetRate', 'paused', 'peerId', 'priority', 'producerId', 'wanted', 'workerId']);
		expect(at41.workers.every((w) => w.forecast.length > 0)).toBe(true);
	});

	it('charges exposure to round-robin on a room it cannot fit, and none to Foresight', () => {
		const scenario = buildScenario('webinar-fanout', { workers: 8, durationS: 120, seed: 2 });
		const rr = simulate(scenario, roundRobinPolicy).metrics;
		const fs = simulate(scenario, guardedForesight()).metrics;
		expect(rr.exposureConsumerS).toBeGreaterThan(0);
		expect(fs.exposureConsumerS).toBeLessThan(rr.exposureConsumerS / 10);
		expect(fs.unansweredJoins).toBe(0);
	});

	it('times leads only from actions that relieve a worker: restores answer no crossing', () => {
		const scenario = buildScenario('webinar-fanout', { workers: 8, durationS: 120, seed: 2 });
		const restoring: AllocationPolicy<{ next: number }> = {
			name: 'restoring',
			initialState: () => roundRobinPolicy.initialState(),
			decide(snapshot, state) {
				const placed = roundRobinPolicy.decide(snapshot, state);
				const restores = snapshot.consumers.map((c) => ({ type: 'restoreLayers' as const, consumerId: c.id, workerId: c.workerId, reason: 'test', predictedBeforePct: 0, predictedAfterPct: 0 }));
				return { actions: [...placed.actions, ...restores], state: placed.state };
			},
		};
		const m = simulate(scenario, restoring).metrics;
		expect(m.actions).toBeGreaterThan(0);
		expect(m.crossings).toBeGreaterThan(0);
		expect(m.leadTimesS).toEqual([]);
		expect(m.unansweredCrossings).toBe(m.crossings);
	});

	it("moves a peer's send transport with its last migrated producer: what it starts next starts there", () => {
		const scenario: Scenario = {
			name: 'steady-meeting',
			durationS: 12,
			workers: 2,
			seed: 1,
			events: [
				{ t: 0, type: 'join', peerId: 'a', roomId: 'r', sends: ['audio', 'video'], consumes: true, priority: 100 },
				{ t: 0, type: 'join', peerId: 'b', roomId: 'r', sends: ['audio'], consumes: true, priority: 100 },
				{ t: 8, type: 'startProducer', peerId: 'a', mediaClass: 'screen' },
				{ t: 8, type: 'startProducer', peerId: 'b', mediaClass: 'screen' },
			],
		};
		const base = { reason: 'test', predictedBeforePct: 0, predictedAfterPct: 0 };
		const seen: AllocationSnapshot[] = [];
		const mover: AllocationPolicy<null> = {
			name: 'mover',
			initialState: () => null,
			decide(snapshot) {
				seen.push(snapshot);
				const place = snapshot.pendingJoins.map((j) => ({ ...base, type: 'place' as const, peerId: j.peerId, roomId: j.roomId, workerId: 'w0' }));
				// At t = 5 every producer of a moves; b's stay.
				const moves =
					snapshot.t === 5
						? snapshot.producers.filter((p) => p.peerId === 'a').map((p) => ({ ...base, type: 'migrateProducer' as const, producerId: p.id, workerId: p.workerId, toWorkerId: 'w1' }))
						: [];
				return { actions: [...place, ...moves], state: null };
			},
		};
		const m = simulate(scenario, mover).metrics;
		expect(m.migrations).toBe(2);
		const at9 = seen[9]!;
		const workerOf = (id: string): string | undefined => at9.producers.find((p) => p.id === id)?.workerId;
		expect(workerOf('a-screen')).toBe('w1');
		expect(workerOf('b-screen')).toBe('w0');
	});
});

describe('simulator: subscriptions and priced migration', () => {
	const base = { reason: 'test', predictedBeforePct: 0, predictedAfterPct: 0 };
	/** Places every join on w0; at `moveAt` applies `move` (once). */
	const placer = (moveAt: number, move: (s: AllocationSnapshot) => AllocationAction[]): AllocationPolicy<null> => ({
		name: 'placer',
		initialState: () => null,
		decide(snapshot) {
			const place = snapshot.pendingJoins.map((j) => ({ ...base, type: 'place' as const, peerId: j.peerId, roomId: j.roomId, workerId: 'w0' }));
			return { actions: [...place, ...(snapshot.t === moveAt ? move(snapshot) : [])], state: null };
		},
	});
	const meeting = (extra: Scenario['events'] = []): Scenario => ({
		name: 'unit',
		durationS: 20,
		workers: 2,
		seed: 1,
		subscriptions: true,
		events: [
			{ t: 0, type: 'join', peerId: 'a', roomId: 'r', sends: ['audio', 'video'], consumes: true, priority: 100 },
			{ t: 0, type: 'join', peerId: 'b', roomId: 'r', sends: ['audio'], consumes: true, priority: 100 },
			{ t: 0, type: 'join', peerId: 'c', roomId: 'r', sends: [], consumes: true, priority: 100 },
			{ t: 0, type: 'subscribe', peerId: 'b', publisherId: 'a', mediaClass: 'video', spatial: 1, paused: false },
			{ t: 0, type: 'subscribe', peerId: 'c', publisherId: 'a', mediaClass: 'video', paused: true },
			{ t: 0, type: 'subscribe', peerId: 'c', publisherId: 'a', mediaClass: 'audio', paused: false },
			...extra,
		],
	});

	it('creates consumers only for subscriptions, at the wanted layer; app-paused ones are not shown to the policy', () => {
		const seen: AllocationSnapshot[] = [];
		const spy: AllocationPolicy<null> = { ...placer(-1, () => []), decide: (s, st) => (seen.push(s), placer(-1, () => []).decide(s, st)) };
		const m = simulate(meeting(), spy).metrics;
		const at5 = seen[5]!;
		// b's video of a (layer 1) and c's audio of a; c's paused video is the app's, not the policy's.
		expect(at5.consumers.map((c) => `${c.peerId}<${c.producerId}@${c.wanted.spatial}`).sort()).toEqual(['b<a-video@1', 'c<a-audio@0']);
		// Three producers (a: audio, video; b: audio) and the two consumers receiving media.
		expect(m.peakStreams).toBe(3 + 2);
		expect(m.qualityCost).toBe(0);
	});

	it('prices a producer migration: every receiver loses ≥ 2 s, and it counts as quality cost', () => {
		const mover = placer(5, (s) => s.producers.filter((p) => p.id === 'a-video').map((p) => ({ ...base, type: 'migrateProducer' as const, producerId: p.id, workerId: p.workerId, toWorkerId: 'w1' })));
		const m = simulate(meeting(), mover).metrics;
		expect(m.migrations).toBe(1);
		// One unpaused receiver of a's video (b) for 2 s.
		expect(m.disruptionConsumerS).toBe(2);
		expect(m.qualityCost).toBe(2);
	});

	it('prices a consumer move at ≥ 1 s, and the target pays the new transport and the keyframe burst', () => {
		const demand: number[] = [];
		const mover = placer(5, (s) => s.consumers.filter((c) => c.peerId === 'b').map((c) => ({ ...base, type: 'spreadFanout' as const, producerId: c.producerId, consumerIds: [c.id], workerId: 'w0', toWorkerId: 'w1' })));
		const m = simulate(meeting(), mover, { onTick: ({ t, demand: d }) => void (demand[t] = d.get('w1')!) }).metrics;
		expect(m.movedConsumers).toBe(1);
		expect(m.disruptionConsumerS).toBe(1);
		// w1 carries the moved consumer from t = 5 on; at t = 5 it also sets up the transport (≥ 1 % of a core for a second).
		expect(demand[5]! - demand[6]!).toBeGreaterThan(0.5);
	});
});
