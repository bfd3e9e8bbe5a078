import type { Logger } from '../log';
import { TypedEmitter } from '../util/typedEmitter';
import type { GraphNode, Registry } from './registry';

/**
 * A worker that has not answered one request for this long is stopped or stuck:
 * mediasoup answers a getResourceUsage() in well under 10 ms even when busy, and
 * its channel has no request timeout of its own, so without this every request to
 * a hung worker (and whatever awaits it) waits until it runs again, or forever.
 */
export const UNRESPONSIVE_AFTER_MS = 2000;

export type LivenessEvents = {
	/** No answer for UNRESPONSIVE_AFTER_MS: leave the worker out of decisions. */
	unresponsive: [workerId: string];
	/** It answered again after `hungMs`. */
	responsive: [workerId: string, hungMs: number];
};

interface Probe {
	sentAt: number;
	unresponsive: boolean;
}

/**
 * Asks every worker one cheap question (getResourceUsage) per period, never two
 * at once, and reports a worker whose answer is overdue, and when it answers again.
 * /proc CPU sampling cannot tell: a stopped worker just looks idle, the best place
 * for a newcomer.
 */
export class WorkerLiveness extends TypedEmitter<LivenessEvents> {
	private readonly probes = new Map<string, Probe>();
	private timer: NodeJS.Timeout | undefined;
	private readonly onRemoved = (node: GraphNode): void => {
		if (node.kind === 'worker') this.probes.delete(node.id);
	};

	constructor(
		private readonly registry: Registry,
		private readonly periodMs: number,
		log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a liveness event threw'));
		registry.on('removed', this.onRemoved);
	}

	start(): void {
		if (this.timer) return;
		this.timer = setInterval(() => this.check(Date.now()), Math.min(this.periodMs, UNRESPONSIVE_AFTER_MS / 2));
		this.timer.unref();
	}

	stop(): void {
		clearInterval(this.timer);
		this.timer = undefined;
		this.registry.off('removed', this.onRemoved);
		this.probes.clear();
		this.removeAllListeners();
	}

	/** Whether the worker answered its last question in time (unknown workers count as responsive). */
	responsive(workerId: string): boolean {
		return this.probes.get(workerId)?.unresponsive !== true;
	}

	/** One round: overdue answers are reported, idle workers are asked again. */
	check(now: number): void {
		for (const node of this.registry.all('worker')) {
			const probe = this.probes.get(node.id);
			if (probe) {
				if (!probe.unresponsive && now - probe.sentAt >= UNRESPONSIVE_AFTER_MS) {
					probe.unresponsive = true;
					this.emit('unresponsive', node.id);
				}
				continue;
			}
			if (node.handle.closed) continue;
			const sent: Probe = { sentAt: now, unresponsive: false };
			this.probes.set(node.id, sent);
			const settled = (): void => {
				if (this.probes.get(node.id) !== sent) return;
				this.probes.delete(node.id);
				if (sent.unresponsive) this.emit('responsive', node.id, Date.now() - sent.sentAt);
			};
			// A closed channel rejects at once: the worker is gone, which the graph observer reports.
			node.handle.getResourceUsage().then(settled, settled);
		}
	}
}
