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
