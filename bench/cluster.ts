/**
 * Several hosts: cross-host Foresight (the cluster view's admission and cross-host relief) against per-host-only
 * Foresight and a LiveKit-style node selector, on the trace-driven simulator at
 * `--hosts` × `--workers-per-host` (default 20 × 16) with the shared view's report delay.
 *
 *   npm run bench -- cluster [--hosts 20] [--workers-per-host 16] [--duration 300] [--seed 10000] [--report-delay 2] [--load 1]
 *                            [--new-room-free-share 0.2] [--spill-below-free-share 0] [--modes a,b] [--no-cross-host-relief]
 *                            [--sim-only | --netns-only] [--netns-trace FILE]
 *
 * --spill-below-free-share is an experiment, off in Foresight (its sweep is in the commit that added it).
 *
 * The workload (plugin/allocate/sim/cluster.ts clusterScenario) runs the five 32-worker
 * scenario families side by side, one copy per 32 workers (times --load). The default seed (10000)
 * is held out for evaluation: anything tuned is tuned with --seed below 10000.
 *
 * Last line, one JSON object:
 * - sim_exposure_gain_vs_best_baseline = (E_best + 1) / (E_cross + 1), E = overload exposure
 *   (consumer-seconds of un-paused consumers on workers whose true demand exceeded 85 % of a
 *   core), best = the baseline (per-host Foresight or node selector) with the least exposure;
 * - sim_quality_cost_ratio = (Q_cross + 1) / (Q_best + 1), Q = 0.5 × layer-downgrade s
 *   + 1 × paused s + 60 × (dropped consumers + consumers refused peers would have had),
 *   against that same baseline; migrations are counted in `migrations` per policy;
 * - netns_exposure_gain_vs_best_baseline, netns_quality_cost_ratio: the same ratios on 3 hosts
 *   × 2 workers in network namespaces with real media (bench/cluster/netns.ts): one seeded
 *   workload of replay bots, run once per mode on a fresh cluster, exposure and quality priced
 *   per second from the hosts' own measurements. Needs root; null otherwise or with --sim-only.
 *   It starts mediasoup workers and influxd: run it under the heavy lock
 *   (flock /tmp/foresight-heavy.lock npm run bench -- cluster); about 3 minutes.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CLUSTER_MODES, CLUSTER_SIM_DEFAULTS, clusterPolicy, clusterScenario, type ClusterCounters, type ClusterSimOptions } from '../plugin/allocate/sim/cluster';
import { simulate } from '../plugin/allocate/sim/simulator';
import { NetnsCluster } from '../test/support/netns';
import { NETNS_BENCH_DEFAULTS, NETNS_MODES, runNetnsMode, type NetnsModeResult } from './cluster/netns';

const { values } = parseArgs({
	options: {
		hosts: { type: 'string', default: String(CLUSTER_SIM_DEFAULTS.hosts) },
		'workers-per-host': { type: 'string', default: String(CLUSTER_SIM_DEFAULTS.workersPerHost) },
		duration: { type: 'string', default: '300' },
		seed: { type: 'string', default: '10000' },
		'report-delay': { type: 'string', default: String(CLUSTER_SIM_DEFAULTS.reportDelayS) },
		load: { type: 'string', default: '1' },
		'new-room-free-share': { type: 'string', default: String(CLUSTER_SIM_DEFAULTS.newRoomFreeShare) },
		modes: { type: 'string', default: CLUSTER_MODES.join(',') },
		'spill-below-free-share': { type: 'string', default: '0' },
		'no-cross-host-relief': { type: 'boolean', default: false },
		'sim-only': { type: 'boolean', default: false },
		'netns-only': { type: 'boolean', default: false },
		/** File to append the netns runs' per-second trace to (JSON lines), for diagnosis. */
		'netns-trace': { type: 'string' },
		/** Worker budget of the netns hosts, % of a core (default NETNS_BENCH_DEFAULTS.capacityPct). */
		'netns-capacity': { type: 'string' },
	},
});
const int = (name: string, v: string | undefined, min: number): number => {
	const n = Number(v);
	if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
	return n;
};
const options: ClusterSimOptions = {
	...CLUSTER_SIM_DEFAULTS,
	hosts: int('hosts', values.hosts, 2),
	workersPerHost: int('workers-per-host', values['workers-per-host'], 1),
	reportDelayS: int('report-delay', values['report-delay'], 0),
	newRoomFreeShare: Number(values['new-room-free-share']),
	spillBelowFreeShare: Number(values['spill-below-free-share']),
	crossHostRelief: !values['no-cross-host-relief'],
};
const modes = values.modes.split(',').filter((m): m is (typeof CLUSTER_MODES)[number] => (CLUSTER_MODES as readonly string[]).includes(m));
const seed = int('seed', values.seed, 0);
const durationS = int('duration', values.duration, 10);
const load = Number(values.load);
if (!(load > 0 && load <= 10)) throw new Error('--load must be in (0, 10]');
const scenario = clusterScenario(options, seed, durationS, load);

const results: Record<string, { exposure: number; quality: number; refusedPeers: number; migrations: number; movedConsumers: number; layerDowngradeS: number; pausedConsumerS: number; droppedConsumers: number; crossHostRedirects: number; sentToRoomHost: number; wallS: number }> = {};
for (const mode of values['netns-only'] ? [] : modes) {
	const counters: ClusterCounters = { crossHostRedirects: 0, sentToRoomHost: 0 };
	const started = Date.now();
	const { metrics: m } = simulate(scenario, clusterPolicy(mode, options, counters));
	results[mode] = {
		exposure: Math.round(m.exposureConsumerS),
		quality: Math.round(m.qualityCost),
		refusedPeers: m.refusedPeers,
		migrations: m.migrations,
		movedConsumers: m.movedConsumers,
		layerDowngradeS: Math.round(m.layerDowngradeS),
		pausedConsumerS: Math.round(m.pausedConsumerS),
		droppedConsumers: m.droppedConsumers,
		...counters,
		wallS: Math.round((Date.now() - started) / 100) / 10,
	};
	process.stderr.write(`${mode}: ${JSON.stringify(results[mode])}\n`);
}
/** Cross-host against the baseline with the least exposure: (E_best + 1) / (E_cross + 1) and (Q_cross + 1) / (Q_best + 1). */
function ratios(r: Record<string, { exposure: number; quality: number }>): { best: string; gain: number; quality: number } | undefined {
	const cross = r['foresight-cross-host'];
	const baselines = ['foresight-per-host', 'node-selector'].filter((n) => r[n] !== undefined).map((name) => ({ name, ...r[name]! }));
	if (!cross || baselines.length < 2) return undefined;
	const best = baselines.reduce((a, b) => (b.exposure < a.exposure ? b : a));
	const round = (v: number): number => Math.round(v * 100) / 100;
	return { best: best.name, gain: round((best.exposure + 1) / (cross.exposure + 1)), quality: round((cross.quality + 1) / (best.quality + 1)) };
}

async function netns(): Promise<Record<string, NetnsModeResult> | { skipped: string }> {
	if (values['sim-only']) return { skipped: '--sim-only' };
	// A sweep over some modes of the simulator is not a run of the bench.
	if (!values['netns-only'] && modes.length < CLUSTER_MODES.length) return { skipped: '--modes runs a subset of the simulator only' };
	if (!NetnsCluster.available()) return { skipped: 'needs root and ip netns' };
	const out: Record<string, NetnsModeResult> = {};
	const traceFile = values['netns-trace'];
	const trace = traceFile ? (line: string): void => appendFileSync(traceFile, `${line}\n`) : undefined;
	for (const mode of NETNS_MODES) out[mode] = await runNetnsMode(mode, { ...NETNS_BENCH_DEFAULTS, ...(values['netns-capacity'] ? { capacityPct: Number(values['netns-capacity']) } : {}), seed, log: (line) => process.stderr.write(`${line}\n`), ...(trace ? { trace } : {}) });
	return out;
}

void netns().then((net) => {
const sim = ratios(results);
const real = 'skipped' in net ? undefined : ratios(net);
console.log(
	JSON.stringify({
		hosts: options.hosts,
		workers_per_host: options.workersPerHost,
		duration_s: durationS,
		seed,
		report_delay_s: options.reportDelayS,
		load,
		new_room_free_share: options.newRoomFreeShare,
		events: scenario.events.length,
		policies: results,
		netns: net,
		sim_best_baseline: sim?.best ?? null,
		sim_exposure_gain_vs_best_baseline: sim?.gain ?? null,
		sim_quality_cost_ratio: sim?.quality ?? null,
		netns_best_baseline: real?.best ?? null,
		netns_exposure_gain_vs_best_baseline: real?.gain ?? null,
		netns_quality_cost_ratio: real?.quality ?? null,
	}),
);
	// Everything it started is stopped; lingering keep-alive sockets to the removed hosts must not hold the bench open.
	process.exit(0);
});
