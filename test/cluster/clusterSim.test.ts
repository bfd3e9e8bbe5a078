import { MEASURED_COST_MODEL, type AllocationSnapshot, type PendingJoin, type WorkerView } from '../../plugin/allocate/snapshot';
import { CLUSTER_SIM_DEFAULTS, clusterPolicy, clusterScenario, homeHost, hostSnapshot, type ClusterCounters } from '../../plugin/allocate/sim/cluster';

const worker = (id: string, cpuPct: number): WorkerView => ({ id, capacityPct: 100, cpuPct, forecast: [{ horizonS: 5, meanPct: cpuPct, p95Pct: cpuPct }], rssBytes: 0, routers: 1, transports: 1, producers: 0, consumers: 0 });
const options = { ...CLUSTER_SIM_DEFAULTS, hosts: 2, workersPerHost: 2, reportDelayS: 0 };

/** A room id the load balancer sends to host 0. */
const roomOnHost0 = ((): string => {
	for (let i = 0; ; i++) if (homeHost(`room${i}`, 2) === 0) return `room${i}`;
})();

function snapshot(t: number, cpus: number[], joins: PendingJoin[]): AllocationSnapshot {
	return { t, costModel: MEASURED_COST_MODEL, workers: cpus.map((c, i) => worker(`w${i}`, c)), producers: [], consumers: [], rooms: [], pendingJoins: joins };
}

const join = (peerId: string): PendingJoin => ({ peerId, roomId: roomOnHost0, sends: ['audio', 'video'], consumes: true, priority: 100 });

test('a host snapshot holds only its own workers', () => {
	const s = hostSnapshot(snapshot(0, [10, 20, 30, 40], []), 1, 2, []);
	expect(s.workers.map((w) => w.id)).toEqual(['w2', 'w3']);
});

test('the cluster workload runs one scenario copy per 32 workers, with room and peer names kept apart', () => {
	const s = clusterScenario({ hosts: 4, workersPerHost: 16 }, 1, 60);
	expect(s.workers).toBe(64);
	const rooms = new Set(s.events.flatMap((e) => ('roomId' in e ? [e.roomId] : [])));
	expect([...rooms].some((r) => r.startsWith('c0.'))).toBe(true);
	expect([...rooms].some((r) => r.startsWith('c1.'))).toBe(true);
	for (let i = 1; i < s.events.length; i++) expect(s.events[i]!.t).toBeGreaterThanOrEqual(s.events[i - 1]!.t);
});

describe('a join whose home host is full', () => {
	// Host 0 (w0, w1) is predicted at 90 % on both workers; host 1 (w2, w3) is idle.
	const full = [90, 90, 5, 5];

	test('per-host Foresight keeps it on its home host (over the fill target or refused)', () => {
		const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
		const policy = clusterPolicy('foresight-per-host', options, counters);
		const d = policy.decide(snapshot(0, full, [join('p1')]), policy.initialState());
		const answer = d.actions.find((a) => a.type === 'place' || a.type === 'refuse');
		expect(answer?.type === 'refuse' || ['w0', 'w1'].includes(answer!.workerId)).toBe(true);
		expect(counters.crossHostRedirects).toBe(0);
	});

	test('cross-host Foresight sends it to the host with headroom, seen through the reports of the hosts (no delay here)', () => {
		const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
		const policy = clusterPolicy('foresight-cross-host', options, counters);
		const d = policy.decide(snapshot(0, full, [join('p1')]), policy.initialState());
		expect(d.actions.find((a) => a.type === 'place')).toMatchObject({ workerId: expect.stringMatching(/^w[23]$/) });
		expect(counters.crossHostRedirects).toBe(1);
	});

	test('with a report delay it does not see a host it has no report of yet', () => {
		const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
		const policy = clusterPolicy('foresight-cross-host', { ...options, reportDelayS: 2 }, counters);
		let state = policy.initialState();
		// Round 0: the only reports are this round's, and a host reads them 2 s late: none live yet.
		const first = policy.decide(snapshot(0, full, [join('p1')]), state);
		state = first.state;
		expect(counters.crossHostRedirects).toBe(0);
		state = policy.decide(snapshot(1, full, []), state).state;
		state = policy.decide(snapshot(2, full, []), state).state;
		policy.decide(snapshot(3, full, [join('p2')]), state);
		expect(counters.crossHostRedirects).toBe(1);
	});
});

describe('cross-host relief in the cluster simulator', () => {
	/**
	 * Host 0: w0 expected at 92 % with 40 receivers of one room's producer, w1 at 84 %
	 * (no room of its own for them); host 1 idle.
	 */
	function hot(t: number): AllocationSnapshot {
		const s = snapshot(t, [92, 84, 5, 5], []);
		s.workers[0] = { ...s.workers[0]!, consumers: 40, forecast: [{ horizonS: 30, meanPct: 92, p95Pct: 96 }] };
		s.producers = [{ id: 'p', peerId: 'sender', roomId: roomOnHost0, workerId: 'w0', mediaClass: 'video', layers: [30, 60, 150].map((packetRate, spatial) => ({ spatial, packetRate, active: true })), packetRate: 240, expectedPacketRate: 240, activeSpeaker: false, ageS: 60 }];
		s.consumers = Array.from({ length: 40 }, (_, i) => ({ id: `c${i}`, peerId: `rx${i}`, producerId: 'p', workerId: 'w0', priority: 100, paused: false, wanted: { spatial: 2, temporal: 2 }, current: { spatial: 2, temporal: 2 }, packetRate: 150 }));
		s.rooms = [{ id: roomOnHost0, workerIds: ['w0'], peers: 41 }];
		return s;
	}

	test("the hot host serves receivers from the other host's worker, books the load there, and its own policy no longer sees them", () => {
		const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
		const policy = clusterPolicy('foresight-cross-host', options, counters);
		const d = policy.decide(hot(0), policy.initialState());
		const spreads = d.actions.filter((a) => a.type === 'spreadFanout' && ['w2', 'w3'].includes(a.toWorkerId));
		expect(spreads.length).toBeGreaterThan(0);
		expect(counters.crossHostSpreads).toBe(spreads.length);
		expect(counters.crossHostPredictedSavedS!).toBeGreaterThan(counters.crossHostPricedDisruptionS!);
		const moved = new Set(spreads.flatMap((a) => (a.type === 'spreadFanout' ? a.consumerIds : [])));
		// No action of host 0's own policy touches a consumer that is leaving for host 1.
		for (const a of d.actions) {
			if ('consumerId' in a) expect(moved.has(a.consumerId)).toBe(false);
			if (a.type === 'spreadFanout' && !spreads.includes(a)) expect(a.consumerIds.some((id) => moved.has(id))).toBe(false);
		}
		expect(d.state.reservations.some((r) => r.fromHost === 'h0' && r.targetHost === 'h1' && r.costPct > 0)).toBe(true);
	});

	test('with relief off, or per-host only, nothing leaves the host', () => {
		for (const [mode, relief] of [['foresight-cross-host', false], ['foresight-per-host', true]] as const) {
			const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
			const policy = clusterPolicy(mode, { ...options, crossHostRelief: relief }, counters);
			const d = policy.decide(hot(0), policy.initialState());
			expect(d.actions.some((a) => (a.type === 'spreadFanout' || a.type === 'migrateProducer') && ['w2', 'w3'].includes(a.toWorkerId))).toBe(false);
			expect(counters.crossHostSpreads ?? 0).toBe(0);
		}
	});
});
