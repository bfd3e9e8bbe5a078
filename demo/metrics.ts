import { Counter, Gauge, Registry } from 'prom-client';
import type { ActionEntry, DashboardFrame } from './feed';
import type { SignalingStats } from './signaling';

/** Prometheus view of the same data the dashboard shows (scraped at /metrics). */
export class DemoMetrics {
	readonly registry = new Registry();
	private readonly cpu = new Gauge({ name: 'foresight_worker_cpu_percent', help: 'Measured worker CPU, % of one core', labelNames: ['worker', 'pid'], registers: [this.registry] });
	private readonly rss = new Gauge({ name: 'foresight_worker_rss_bytes', help: 'Worker resident set size', labelNames: ['worker', 'pid'], registers: [this.registry] });
	private readonly net = new Gauge({ name: 'foresight_worker_network_bps', help: 'Worker stream bitrate by direction', labelNames: ['worker', 'direction'], registers: [this.registry] });
	private readonly predicted = new Gauge({ name: 'foresight_worker_predicted_cpu_percent', help: 'Predicted worker CPU at the chart horizon', labelNames: ['worker', 'horizon_s', 'stat', 'predictor'], registers: [this.registry] });
	private readonly entities = new Gauge({ name: 'foresight_worker_entities', help: 'mediasoup entities per worker', labelNames: ['worker', 'kind'], registers: [this.registry] });
	private readonly profiles = new Gauge({ name: 'foresight_profiles', help: 'Live stream profiles by entity and data type', labelNames: ['entity', 'data_type'], registers: [this.registry] });
	private readonly actions = new Counter({ name: 'foresight_actions_total', help: 'Allocation actions by type and outcome', labelNames: ['type', 'outcome'], registers: [this.registry] });
	private readonly bots = new Gauge({ name: 'foresight_demo_bots', help: 'Replay bots in the demo room', registers: [this.registry] });

	constructor(signaling: SignalingStats, horizonS: number) {
		this.horizonS = String(horizonS);
		new Counter({
			name: 'foresight_demo_signaling_messages_total',
			help: 'Signaling messages by outcome',
			labelNames: ['outcome'],
			registers: [this.registry],
			collect() {
				this.reset();
				this.inc({ outcome: 'accepted' }, signaling.accepted);
				for (const [k, v] of Object.entries(signaling.rejected)) this.inc({ outcome: k }, v);
			},
		});
	}

	private readonly horizonS: string;

	onFrame(frame: DashboardFrame): void {
		this.cpu.reset();
		this.rss.reset();
		this.net.reset();
		this.predicted.reset();
		this.entities.reset();
		this.profiles.reset();
		for (const w of frame.workers) {
			const labels = { worker: w.workerId, pid: String(w.pid) };
			this.cpu.set(labels, w.point.cpuPct);
			this.rss.set(labels, w.point.rssBytes);
			this.net.set({ worker: w.workerId, direction: 'ingress' }, w.point.ingressBps);
			this.net.set({ worker: w.workerId, direction: 'egress' }, w.point.egressBps);
			if (w.forecast) {
				const p = { worker: w.workerId, horizon_s: this.horizonS, predictor: w.predictor ?? 'unknown' };
				this.predicted.set({ ...p, stat: 'mean' }, w.forecast.mean);
				this.predicted.set({ ...p, stat: 'p95' }, w.forecast.p95);
			}
			for (const [kind, n] of Object.entries(w.counts)) this.entities.set({ worker: w.workerId, kind }, n);
		}
		for (const c of frame.connections) for (const s of c.streams) this.profiles.inc({ entity: s.entity, data_type: s.dataType });
		this.bots.set(frame.bots.bots);
	}

	onAction(a: ActionEntry): void {
		this.actions.inc({ type: a.type, outcome: a.outcome });
	}
}
