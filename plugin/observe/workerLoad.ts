import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log';
import type { WorkerLoadSample } from '../profile/schema';
import { TypedEmitter } from '../util/typedEmitter';
import { cpuPercentBetween, readProcessCpu, rssFromProcStatus, type CpuReading } from './cpu';
import type { Registry, WorkerNode } from './registry';

export type WorkerLoadEvents = {
	sample: [WorkerLoadSample];
};

/**
 * Samples every registered worker's CPU (deltas of its threads' /proc schedstat,
 * else of getResourceUsage()), RSS and entity counts on a fixed period. Ticks
 * never overlap, and a worker closing mid-tick is simply skipped.
 */
export class WorkerLoadSampler extends TypedEmitter<WorkerLoadEvents> {
	private readonly previous = new Map<string, CpuReading>();
	private timer: NodeJS.Timeout | undefined;
	private inFlight = false;
	private readonly onRemoved = (node: { kind: string; id: string }): void => {
		if (node.kind === 'worker') this.previous.delete(node.id);
	};

	constructor(
		private readonly registry: Registry,
		private readonly intervalMs: number,
		private readonly log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a worker load event threw'));
		registry.on('removed', this.onRemoved);
	}

	start(): void {
		if (this.timer) return;
		const schedule = (): void => {
			this.timer = setTimeout(() => {
				void this.tick().finally(() => {
					if (this.timer) schedule();
				});
			}, this.intervalMs);
			// A monitoring timer must never keep the app's process alive.
			this.timer.unref();
		};
		schedule();
		// Baseline readings now, so the first tick already yields a CPU figure.
		void this.tick();
	}

	stop(): void {
		clearTimeout(this.timer);
		this.timer = undefined;
		this.registry.off('removed', this.onRemoved);
		this.previous.clear();
	}

	/** One sampling round over all workers; resolves with the samples it emitted. */
	async tick(): Promise<WorkerLoadSample[]> {
		if (this.inFlight) return [];
		this.inFlight = true;
		try {
			const results = await Promise.all([...this.registry.all('worker')].map((w) => this.sampleWorker(w)));
			return results.filter((s): s is WorkerLoadSample => s !== undefined);
		} finally {
			this.inFlight = false;
		}
	}

	private async sampleWorker(node: WorkerNode): Promise<WorkerLoadSample | undefined> {
		// /proc first: read and stamped in one synchronous step, and no channel round trip.
		const procCpu = readProcessCpu(node.pid);
		const reading: { cpu: CpuReading; maxRssBytes?: number } | undefined = procCpu ? { cpu: procCpu } : await this.channelCpu(node);
		if (!reading || node.handle.closed || !this.registry.has(node.id)) return undefined;
		const prev = this.previous.get(node.id);
		this.previous.set(node.id, reading.cpu);
		if (!prev) return undefined;
		const cpuPct = cpuPercentBetween(prev, reading.cpu);
		if (cpuPct === undefined) return undefined;
		const sample: WorkerLoadSample = {
			ts: Date.now(),
			workerId: node.id,
			pid: node.pid,
			cpuPct,
			rssBytes: currentRss(node.pid) ?? reading.maxRssBytes ?? 0,
			...this.registry.countsOf(node.id),
		};
		this.emit('sample', sample);
		return sample;
	}

	/**
	 * Where /proc is not available: the worker's own getrusage over its channel,
	 * stamped on arrival (a stall of this process while the answer waits inflates
	 * that interval's figure; /proc readings do not have that error).
	 */
	private async channelCpu(node: WorkerNode): Promise<{ cpu: CpuReading; maxRssBytes: number } | undefined> {
		try {
			const usage = await node.handle.getResourceUsage();
			return { cpu: { cpuMs: usage.ru_utime + usage.ru_stime, atMs: performance.now() }, maxRssBytes: usage.ru_maxrss * 1024 };
		} catch (error) {
			if (!node.handle.closed) this.log.warn({ err: error, workerId: node.id }, 'getResourceUsage failed');
			return undefined;
		}
	}
}

/**
 * VmRSS of a process. Synchronous, like the CPU reading beside it: /proc answers from
 * memory, and fs/promises' readFile of a file that reports size 0 (every /proc file)
 * costs over ten times a synchronous read in thread-pool hops and chunk buffers.
 */
function currentRss(pid: number): number | undefined {
	try {
		return rssFromProcStatus(readFileSync(`/proc/${pid}/status`, 'latin1'));
	} catch {
		// Not Linux, or the process just exited: the caller falls back to ru_maxrss.
		return undefined;
	}
}
