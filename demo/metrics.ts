import { Counter, Gauge, Registry } from 'prom-client';
import { registerMetrics, type Foresight } from '../plugin';
import type { SignalingStats } from './signaling';

/**
 * /metrics of the demo: Foresight's own operator metrics (plugin/metrics.ts, the ones
 * docs/grafana-dashboard.json is built on) plus what only the demo has: its bots and
 * its signaling, including requests refused by the per-peer caps.
 */
export class DemoMetrics {
	readonly registry = new Registry();

	constructor(foresight: Foresight, signaling: SignalingStats, bots: () => { bots: number }) {
		registerMetrics(foresight, this.registry);
		const registers = [this.registry];
		new Gauge({
			name: 'foresight_demo_bots',
			help: 'Replay bots in the demo room',
			registers,
			collect() {
				this.set(bots().bots);
			},
		});
		new Counter({
			name: 'foresight_demo_signaling_messages_total',
			help: 'Signaling messages by outcome (accepted, invalid, rateLimited, failed, capped)',
			labelNames: ['outcome'],
			registers,
			collect() {
				this.reset();
				this.inc({ outcome: 'accepted' }, signaling.accepted);
				for (const [k, v] of Object.entries(signaling.rejected)) this.inc({ outcome: k }, v);
			},
		});
		new Counter({
			name: 'foresight_demo_signaling_capped_total',
			help: 'Requests refused by a per-peer cap, by cap',
			labelNames: ['cap'],
			registers,
			collect() {
				this.reset();
				for (const [k, v] of Object.entries(signaling.capped)) this.inc({ cap: k }, v);
			},
		});
	}
}
