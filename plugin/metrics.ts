import os from 'node:os';
import type * as PromClient from 'prom-client';
import type { Foresight, ForesightEvents } from './foresight';
import type { AuditEntry } from './act/manager';
import { actionClass } from './allocate/actions';
import type { EntityCounts } from './observe/registry';
import { PROFILER_NOTIFICATION_KINDS, PROFILER_REQUEST_KINDS, type ProfilerStats } from './profile/meter';
import type { WorkerLoadSample } from './profile/schema';
import type { GuardStatus } from './predict/guard';
import { HORIZONS_S, networkOfStreams } from './predict/types';
import { InfluxStore } from './store/influxStore';
import { MemoryStore } from './store/memoryStore';
import type { ProfileStore, StoreStats } from './store/types';
import { requirePeer } from './util/optionalPeer';

/**
 * What registerMetrics() needs of the app's prom-client registry (a prom-client
 * `Registry` is one). Typed structurally so that this package's declarations do not
 * require prom-client, an optional peer.
 */
export interface MetricsRegistry {
	registerMetric(metric: object): void;
	removeSingleMetric(name: string): void;
}

export interface MetricsOptions {
	/** Value of the `host` label on every series (default os.hostname()): one dashboard for many SFU hosts. */
	host?: string;
	/** Metric name prefix (default `foresight_`); the shipped dashboard assumes the default. */
	prefix?: string;
}

export interface ForesightMetrics {
	/** Every metric name registered, prefix included. */
	readonly names: readonly string[];
	/** Removes the metrics from the registry and stops listening to Foresight. */
	unregister(): void;
}

/**
 * The exported metrics: name (without prefix) → type, help, and labels beyond `host`.
 * Workers are labelled by their slot (`worker`), stable across restarts (see
 * observe/slot.ts); docs/grafana-dashboard.json is built on exactly these, and a test
 * checks every expression in it against this table.
 */
export const METRICS = {
	worker_info: { type: 'gauge', help: 'A live worker: 1, with its current pid', labels: ['worker', 'pid'] },
	worker_cpu_percent: { type: 'gauge', help: 'Measured worker CPU, % of one core (latest load sample)', labels: ['worker'] },
	worker_rss_bytes: { type: 'gauge', help: 'Worker resident set size (latest load sample)', labels: ['worker'] },
	worker_network_bps: { type: 'gauge', help: "Bitrate of the worker's streams by direction (latest profiles)", labels: ['worker', 'direction'] },
	worker_entities: { type: 'gauge', help: 'mediasoup entities per worker', labels: ['worker', 'kind'] },
	worker_predicted_cpu_percent: { type: 'gauge', help: 'Predicted worker CPU, % of one core, by horizon: mean and upper 95th percentile', labels: ['worker', 'horizon_s', 'stat'] },
	predictions_total: { type: 'counter', help: 'Worker forecasts made, by horizon', labels: ['horizon_s'] },
	predictor_serving: { type: 'gauge', help: 'Which predictor serves each worker: 1 for the serving one', labels: ['worker', 'predictor'] },
	prediction_error_cpu_percent: {
		type: 'gauge',
		help: "Rolling mean absolute CPU error of matured forecasts, % of one core, at the forecast guard's horizon: the guarded predictor, last value and EWMA",
		labels: ['worker', 'horizon_s', 'forecaster'],
	},
	actions_total: { type: 'counter', help: 'Allocation actions by type and outcome (applied, skipped, failed, dryRun, reported)', labels: ['type', 'outcome'] },
	decision_seconds: { type: 'histogram', help: 'Time to an allocation decision: a decision round, or an answer to place()', labels: ['kind'] },
	store_backend: { type: 'gauge', help: 'Where profiles go: 1 for the backend in use, with its schema state', labels: ['backend', 'state'] },
	store_buffered_points: { type: 'gauge', help: 'Points accepted but not yet confirmed by the database', labels: [] },
	store_buffered_bytes: { type: 'gauge', help: 'Bytes of line protocol held for the database', labels: [] },
	store_dropped_points_total: { type: 'counter', help: 'Points dropped because the outage buffer bound was reached', labels: [] },
	store_rejected_points_total: { type: 'counter', help: 'Points the database refused (not retried)', labels: [] },
	store_written_points_total: { type: 'counter', help: 'Points confirmed written', labels: [] },
	profiler_requests_total: { type: 'counter', help: 'Channel requests the profiler made, by kind', labels: ['kind'] },
	profiler_notifications_total: { type: 'counter', help: 'Channel notifications the profiler received, by kind', labels: ['kind'] },
	profiler_cpu_seconds_total: { type: 'counter', help: "The profiler's own synchronous work, seconds (rate = share of a core)", labels: [] },
	profiler_errors_total: { type: 'counter', help: 'Errors the profiler handled without failing, by kind', labels: ['kind'] },
} as const satisfies Record<string, { type: 'gauge' | 'counter' | 'histogram'; help: string; labels: readonly string[] }>;

export type MetricName = keyof typeof METRICS;

/** Decision latencies span a synchronous answer (sub-millisecond) to a round that waits on mediasoup. */
const DECISION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const ENTITY_KINDS: readonly (keyof EntityCounts)[] = ['routers', 'transports', 'producers', 'consumers', 'dataProducers', 'dataConsumers'];

/** How an audited action ended, in one word: the `outcome` label, and the demo's action log. */
export type AuditOutcome = 'applied' | 'skipped' | 'failed' | 'dryRun' | 'reported';

export function auditOutcome(entry: AuditEntry): AuditOutcome {
	if (entry.verdict === 'dryRun') return 'dryRun';
	if (actionClass(entry.action) === 'report') return 'reported';
	return entry.outcome?.status === 'ok' ? 'applied' : entry.outcome?.status === 'skipped' ? 'skipped' : 'failed';
}

/**
 * Foresight's operator metrics on the app's prom-client registry, in prom-client's way:
 * gauges and counters read Foresight's state at scrape time (nothing runs between
 * scrapes), events only bump counters. prom-client is an optional peer, loaded here.
 *
 *     const registry = new client.Registry();
 *     registerMetrics(foresight, registry, { host: 'sfu-3' });
 */
export function registerMetrics(foresight: Foresight, registry: MetricsRegistry, options: MetricsOptions = {}): ForesightMetrics {
	const prom = requirePeer<typeof PromClient>('prom-client', 'registerMetrics()');
	const prefix = options.prefix ?? 'foresight_';
	const host = options.host ?? os.hostname();
	const registers = [registry as PromClient.Registry];
	const names: string[] = [];
	const def = <N extends MetricName>(name: N) => {
		const m = METRICS[name];
		names.push(prefix + name);
		return { name: prefix + name, help: m.help, labelNames: ['host', ...m.labels], registers };
	};

	// Event-fed state, read at scrape time.
	const latest = new Map<string, WorkerLoadSample>();
	const network = new Map<string, { ingressBps: number; egressBps: number }>();
	const onLoad = (s: WorkerLoadSample): void => void latest.set(s.workerId, s);
	const onProfiles = (p: ForesightEvents['profiles'][0]): void => void network.set(p.workerId, networkOfStreams(p.streams));
	const onDied = (workerId: string): void => {
		latest.delete(workerId);
		network.delete(workerId);
	};
	const counted = new WeakSet<AuditEntry>();

	/** Live workers with their slot; state of workers that are gone is dropped here. */
	const liveWorkers = (): { id: string; slot: string; pid: number }[] => {
		const live = [...foresight.registry.all('worker')].map((w) => ({ id: w.id, slot: w.slot, pid: w.pid }));
		const ids = new Set(live.map((w) => w.id));
		for (const id of [...latest.keys(), ...network.keys()]) if (!ids.has(id)) onDied(id);
		return live;
	};

	new prom.Gauge({
		...def('worker_info'),
		collect() {
			this.reset();
			for (const w of liveWorkers()) this.set({ host, worker: w.slot, pid: String(w.pid) }, 1);
		},
	});
	const workerGauge = (name: MetricName, value: (workerId: string) => number | undefined): void =>
		void new prom.Gauge({
			...def(name),
			collect() {
				this.reset();
				for (const w of liveWorkers()) {
					const v = value(w.id);
					if (v !== undefined) this.set({ host, worker: w.slot }, v);
				}
			},
		});
	workerGauge('worker_cpu_percent', (id) => latest.get(id)?.cpuPct);
	workerGauge('worker_rss_bytes', (id) => latest.get(id)?.rssBytes);
	new prom.Gauge({
		...def('worker_network_bps'),
		collect() {
			this.reset();
			for (const w of liveWorkers()) {
				const n = network.get(w.id);
				if (!n) continue;
				this.set({ host, worker: w.slot, direction: 'ingress' }, n.ingressBps);
				this.set({ host, worker: w.slot, direction: 'egress' }, n.egressBps);
			}
		},
	});
	new prom.Gauge({
		...def('worker_entities'),
		collect() {
			this.reset();
			for (const w of liveWorkers()) {
				const counts = foresight.registry.countsOf(w.id);
				for (const kind of ENTITY_KINDS) this.set({ host, worker: w.slot, kind }, counts[kind]);
			}
		},
	});
	new prom.Gauge({
		...def('worker_predicted_cpu_percent'),
		collect() {
			this.reset();
			const slots = new Map(liveWorkers().map((w) => [w.id, w.slot]));
			for (const p of foresight.predictions) {
				const worker = slots.get(p.workerId);
				if (worker === undefined) continue;
				for (const h of HORIZONS_S) {
					const cpu = p.horizons[h].total.cpuPct;
					this.set({ host, worker, horizon_s: String(h), stat: 'mean' }, cpu.mean);
					this.set({ host, worker, horizon_s: String(h), stat: 'p95' }, cpu.p95);
				}
			}
		},
	});
	const predictions = new prom.Counter(def('predictions_total'));
	for (const h of HORIZONS_S) predictions.inc({ host, horizon_s: String(h) }, 0);
	const onPredictions = (ps: readonly unknown[]): void => {
		for (const h of HORIZONS_S) predictions.inc({ host, horizon_s: String(h) }, ps.length);
	};
	new prom.Gauge({
		...def('predictor_serving'),
		collect() {
			this.reset();
			const slots = new Map(liveWorkers().map((w) => [w.id, w.slot]));
			for (const p of foresight.predictions) {
				const worker = slots.get(p.workerId);
				if (worker !== undefined) this.set({ host, worker, predictor: p.predictor }, 1);
			}
		},
	});
	new prom.Gauge({
		...def('prediction_error_cpu_percent'),
		collect() {
			this.reset();
			const slots = new Map(liveWorkers().map((w) => [w.id, w.slot]));
			for (const g of guardStatus(foresight)) {
				const worker = slots.get(g.workerId);
				if (worker === undefined) continue;
				const horizon_s = String(g.horizonS);
				const errors = { predictor: g.errors.predictor, last_value: g.errors.lastValue, ewma: g.errors.ewma };
				for (const [forecaster, value] of Object.entries(errors)) if (value !== null) this.set({ host, worker, horizon_s, forecaster }, value);
			}
		},
	});

	const actions = new prom.Counter(def('actions_total'));
	const onAudit = (entry: AuditEntry): void => {
		// An entry is emitted again when its measured effect arrives: count it once.
		if (counted.has(entry)) return;
		counted.add(entry);
		actions.inc({ host, type: entry.action.type, outcome: auditOutcome(entry) });
	};
	const decisions = new prom.Histogram({ ...def('decision_seconds'), buckets: DECISION_BUCKETS_S });
	const onDecision = (d: { kind: string; ms: number }): void => decisions.observe({ host, kind: d.kind }, d.ms / 1000);

	registerStoreMetrics(prom, () => foresight.store, def, host);
	registerProfilerMetrics(prom, () => foresight.profilerStats(), def, host);

	foresight.on('workerLoad', onLoad);
	foresight.on('profiles', onProfiles);
	foresight.on('workerDied', onDied);
	foresight.on('predictions', onPredictions);
	foresight.on('audit', onAudit);
	foresight.on('decision', onDecision);
	return {
		names,
		unregister() {
			foresight.off('workerLoad', onLoad);
			foresight.off('profiles', onProfiles);
			foresight.off('workerDied', onDied);
			foresight.off('predictions', onPredictions);
			foresight.off('audit', onAudit);
			foresight.off('decision', onDecision);
			for (const name of names) registry.removeSingleMetric(name);
		},
	};
}

function guardStatus(foresight: Foresight): GuardStatus[] {
	return foresight.predictor.guardStatus();
}

type Def = (name: MetricName) => { name: string; help: string; labelNames: string[]; registers: PromClient.Registry[] };

/**
 * A counter mirroring monotonic totals read at scrape time, one series per key (under
 * `labelName`). The source may be replaced (Foresight swaps its in-memory store for
 * InfluxDB once that answers): a new source starts from its own zero, so only increases
 * are ever added.
 */
function mirroredCounter(
	prom: typeof PromClient,
	config: ReturnType<Def>,
	host: string,
	read: () => { source: object; values: ReadonlyMap<string, number> },
	labelName?: string,
): void {
	let source: object | undefined;
	const reported = new Map<string, number>();
	new prom.Counter({
		...config,
		collect() {
			const now = read();
			if (now.source !== source) {
				source = now.source;
				reported.clear();
			}
			for (const [key, value] of now.values) {
				const before = reported.get(key) ?? 0;
				this.inc(labelName ? { host, [labelName]: key } : { host }, Math.max(0, value - before));
				reported.set(key, Math.max(before, value));
			}
		},
	});
}

function registerStoreMetrics(prom: typeof PromClient, store: () => ProfileStore, def: Def, host: string): void {
	new prom.Gauge({
		...def('store_backend'),
		collect() {
			this.reset();
			const s = store();
			if (s instanceof InfluxStore) this.set({ host, backend: 'influx', state: s.schemaState }, 1);
			else this.set({ host, backend: s instanceof MemoryStore ? 'memory' : 'custom', state: 'ready' }, 1);
		},
	});
	new prom.Gauge({
		...def('store_buffered_points'),
		collect() {
			this.set({ host }, store().stats().bufferedPoints);
		},
	});
	new prom.Gauge({
		...def('store_buffered_bytes'),
		collect() {
			this.set({ host }, store().stats().bufferedBytes);
		},
	});
	const totals: [MetricName, keyof StoreStats][] = [
		['store_dropped_points_total', 'droppedPoints'],
		['store_rejected_points_total', 'rejectedPoints'],
		['store_written_points_total', 'writtenPoints'],
	];
	for (const [name, key] of totals) {
		mirroredCounter(prom, def(name), host, () => {
			const s = store();
			return { source: s, values: new Map([['', s.stats()[key]]]) };
		});
	}
}

function registerProfilerMetrics(prom: typeof PromClient, stats: () => ProfilerStats, def: Def, host: string): void {
	// The profiler lives as long as Foresight: one source, whose totals only grow.
	const source = {};
	const byKind = (name: MetricName, pick: (s: ProfilerStats) => Record<string, number>, kinds: readonly string[]): void =>
		mirroredCounter(
			prom,
			def(name),
			host,
			() => {
				const values = pick(stats());
				return { source, values: new Map([...kinds, ...Object.keys(values)].map((k) => [k, values[k] ?? 0])) };
			},
			'kind',
		);
	byKind('profiler_requests_total', (s) => s.requests, PROFILER_REQUEST_KINDS);
	byKind('profiler_notifications_total', (s) => s.notifications, PROFILER_NOTIFICATION_KINDS);
	byKind('profiler_errors_total', (s) => s.swallowedErrors, []);
	mirroredCounter(prom, def('profiler_cpu_seconds_total'), host, () => ({ source, values: new Map([['', stats().ownCpuMs / 1000]]) }));
}
