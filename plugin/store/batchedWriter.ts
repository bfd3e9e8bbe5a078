import type { Logger } from '../log';

/** Thrown by a send function when retrying the same batch can never succeed (e.g. HTTP 400). */
export class PermanentWriteError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'PermanentWriteError';
	}
}

export interface RetryOptions {
	/** First retry delay. */
	initialMs: number;
	/** Delays double per consecutive failure up to this. */
	maxMs: number;
	/** Share of each delay that is randomised away, [0, 1]: spreads reconnects of many processes. */
	jitter: number;
}

export interface BatchedWriterOptions {
	/** Sends one batch (lines joined by "\n"); rejects to retry, or with PermanentWriteError to give the batch up. */
	send: (body: string, points: number) => Promise<void>;
	batchSize: number;
	flushIntervalMs: number;
	maxBufferedPoints: number;
	maxBufferedBytes: number;
	/**
	 * While the backend is up, write() resolves only once fewer points than this are
	 * buffered: a producer faster than the backend slows down instead of filling memory.
	 * During an outage writes never wait (they buffer, then drop the oldest).
	 */
	highWaterPoints?: number;
	/**
	 * Requests that may overlap while the backend is healthy (hides the round trip and
	 * batch assembly). From the first failure until the backlog is written, one at a time.
	 */
	maxInFlight?: number;
	retry?: Partial<RetryOptions>;
	/** Called with each batch the backend confirmed, in confirmation order (metrics, audits, tests). */
	onWritten?: (lines: readonly string[]) => void;
	logger: Logger;
	/** Injectable for deterministic tests of the jitter. */
	random?: () => number;
}

export interface WriterStats {
	bufferedPoints: number;
	bufferedBytes: number;
	droppedPoints: number;
	rejectedPoints: number;
	writtenPoints: number;
}

interface Outage {
	since: number;
	failures: number;
	droppedAtStart: number;
	dropLogged: boolean;
	lastError: string;
}

interface Batch {
	count: number;
	bytes: number;
	lines: string[];
	sizes: number[];
	failed: boolean;
}

/** Delay before retry number `attempt` (1-based): doubling from initialMs, capped, minus up to `jitter` of it. */
export function backoffDelay(attempt: number, retry: RetryOptions, random: () => number): number {
	const ceiling = Math.min(retry.maxMs, retry.initialMs * 2 ** (attempt - 1));
	return ceiling * (1 - retry.jitter * random());
}

const DEFAULT_RETRY: RetryOptions = { initialMs: 250, maxMs: 10_000, jitter: 0.5 };

/**
 * Queues line-protocol lines and sends them in batches — when batchSize lines are
 * waiting or the oldest has waited flushIntervalMs. While the backend is healthy up
 * to maxInFlight requests overlap; once one fails, the writer waits for the others
 * to settle, puts every failed batch back at the head of the queue in its original
 * order, and from then until the backlog is drained sends one batch at a time,
 * oldest first, retrying with exponential backoff and jitter. Nothing behind a
 * failed batch is sent meanwhile. Retrying a
 * batch the server may have half-applied cannot duplicate points: InfluxDB keys a
 * point by series and timestamp, so a resend overwrites with identical values.
 *
 * The buffer is bounded by points and bytes; beyond either bound the oldest queued
 * points (never the batch in flight) are dropped and counted exactly.
 */
export class BatchedWriter {
	private readonly retry: RetryOptions;
	private readonly highWater: number;
	private readonly random: () => number;
	private readonly log: Logger;

	// Queue of lines; slots before `head` are dead. Parallel array of byte sizes.
	private lines: string[] = [];
	private sizes: number[] = [];
	private head = 0;
	private queuedBytes = 0;

	private readonly maxInFlight: number;
	/** Oldest first. Succeeded batches leave at once; failed ones wait for their elders to settle. */
	private inFlight: Batch[] = [];
	private flushTimer: NodeJS.Timeout | undefined;
	private retryTimer: NodeJS.Timeout | undefined;
	/** Set once a partial batch should go out (flush interval elapsed, flush() or a retry). */
	private flushDue = false;
	private attempt = 0;
	private outage: Outage | undefined;
	/** From the first failure until less than a batch is left: one request at a time, so the backlog is confirmed in order. */
	private recovering = false;
	private closed = false;
	private abandoned = false;
	/** Held back by the owner (e.g. until the database exists): buffer as in an outage, send nothing. */
	private paused = false;
	private dropLoggedWhileUp = false;
	private lateWriteLogged = false;

	private written = 0;
	private dropped = 0;
	private rejected = 0;

	private capacityWaiters: (() => void)[] = [];
	private drainWaiters: (() => void)[] = [];

	constructor(private readonly options: BatchedWriterOptions) {
		for (const key of ['batchSize', 'flushIntervalMs', 'maxBufferedPoints', 'maxBufferedBytes'] as const) {
			if (!Number.isInteger(options[key]) || options[key] < 1) throw new RangeError(`${key} must be a positive integer`);
		}
		this.retry = { ...DEFAULT_RETRY, ...options.retry };
		this.highWater = Math.min(options.maxBufferedPoints, options.highWaterPoints ?? options.batchSize * 4);
		this.random = options.random ?? Math.random;
		this.maxInFlight = Math.max(1, options.maxInFlight ?? 2);
		this.log = options.logger;
	}

	private get queued(): number {
		return this.lines.length - this.head;
	}

	private inFlightTotals(): { points: number; bytes: number } {
		let points = 0;
		let bytes = 0;
		for (const b of this.inFlight) {
			points += b.count;
			bytes += b.bytes;
		}
		return { points, bytes };
	}

	stats(): WriterStats {
		const inFlight = this.inFlightTotals();
		return {
			bufferedPoints: this.queued + inFlight.points,
			bufferedBytes: this.queuedBytes + inFlight.bytes,
			droppedPoints: this.dropped,
			rejectedPoints: this.rejected,
			writtenPoints: this.written,
		};
	}

	/** True while the backend is failing and points are being held back. */
	get inOutage(): boolean {
		return this.outage !== undefined;
	}

	write(lines: readonly string[]): Promise<void> {
		if (this.closed) {
			this.dropped += lines.length;
			if (lines.length > 0 && !this.lateWriteLogged) {
				this.lateWriteLogged = true;
				this.log.warn({ points: lines.length }, 'influx writer: write after close(); points dropped and counted (logged once)');
			}
			return Promise.resolve();
		}
		for (const line of lines) {
			// String length, not Buffer.byteLength: V8 keeps line protocol (Latin-1) at one byte
			// per character, so this is the memory held, at a fraction of the cost of a UTF-8 scan.
			const bytes = line.length + 1;
			this.lines.push(line);
			this.sizes.push(bytes);
			this.queuedBytes += bytes;
		}
		this.enforceBounds();
		if (this.queued >= this.options.batchSize) this.pump();
		else this.armFlushTimer();
		if (!this.outage && !this.paused && this.stats().bufferedPoints >= this.highWater) {
			return new Promise((resolve) => this.capacityWaiters.push(resolve));
		}
		return Promise.resolve();
	}

	/** Stops sending (writes still buffer within the bounds) until resume(). */
	pause(): void {
		this.paused = true;
		this.releaseCapacityWaiters();
	}

	resume(): void {
		if (!this.paused) return;
		this.paused = false;
		this.flushDue = true;
		this.pump();
	}

	/** Records that never became lines (unencodable input) so stats stay complete. */
	countRejected(points: number): void {
		this.rejected += points;
	}

	/** Sends everything queued now; true once all of it is confirmed (false on timeout). */
	flush(timeoutMs = Infinity): Promise<boolean> {
		if (this.isDrained()) return Promise.resolve(true);
		this.flushDue = true;
		this.pump();
		return new Promise((resolve) => {
			let timer: NodeJS.Timeout | undefined;
			const done = (): void => {
				if (timer) clearTimeout(timer);
				resolve(true);
			};
			this.drainWaiters.push(done);
			if (Number.isFinite(timeoutMs)) {
				timer = setTimeout(() => {
					this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
					resolve(false);
				}, timeoutMs);
			}
		});
	}

	/**
	 * Flushes for up to timeoutMs, then gives up: whatever is still queued is counted
	 * as dropped (and logged), and later writes are refused the same way.
	 */
	async close(timeoutMs = 10_000): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		const complete = await this.flush(timeoutMs);
		if (this.flushTimer) clearTimeout(this.flushTimer);
		this.flushTimer = undefined;
		if (!complete) {
			if (this.retryTimer) clearTimeout(this.retryTimer);
			this.retryTimer = undefined;
			this.abandoned = true;
			const lost = this.queued;
			this.dropped += lost;
			this.lines = [];
			this.sizes = [];
			this.head = 0;
			this.queuedBytes = 0;
			this.log.error(
				{ droppedPoints: lost, inFlight: this.inFlightTotals().points, lastError: this.outage?.lastError },
				'influx writer: closed before the backend took everything; unsent points dropped',
			);
		}
		this.releaseCapacityWaiters();
	}

	private isDrained(): boolean {
		return this.queued === 0 && this.inFlight.length === 0;
	}

	private armFlushTimer(): void {
		if (this.flushTimer || this.flushDue || this.queued === 0) return;
		this.flushTimer = setTimeout(() => {
			this.flushTimer = undefined;
			this.flushDue = true;
			this.pump();
		}, this.options.flushIntervalMs);
	}

	private enforceBounds(): void {
		const { maxBufferedPoints, maxBufferedBytes } = this.options;
		const inFlight = this.inFlightTotals();
		let dropped = 0;
		while (this.queued > 0 && (this.queued + inFlight.points > maxBufferedPoints || this.queuedBytes + inFlight.bytes > maxBufferedBytes)) {
			this.queuedBytes -= this.sizes[this.head]!;
			this.head++;
			dropped++;
		}
		if (dropped === 0) return;
		this.dropped += dropped;
		const alreadyLogged = this.outage ? this.outage.dropLogged : this.dropLoggedWhileUp;
		if (!alreadyLogged) {
			this.log.warn(
				{ maxBufferedPoints, maxBufferedBytes, droppedPoints: this.dropped },
				'influx writer: buffer bound reached, dropping the oldest points (counted in droppedPoints; logged once per episode)',
			);
			if (this.outage) this.outage.dropLogged = true;
			else this.dropLoggedWhileUp = true;
		}
	}

	private compact(): void {
		if (this.head > 4096 && this.head * 2 > this.lines.length) {
			this.lines = this.lines.slice(this.head);
			this.sizes = this.sizes.slice(this.head);
			this.head = 0;
		}
	}

	private pump(): void {
		for (;;) {
			if (this.retryTimer || this.abandoned || this.paused) return;
			if (this.inFlight.length >= (this.recovering ? 1 : this.maxInFlight)) return;
			if (this.inFlight.some((b) => b.failed)) return;
			if (this.queued === 0) {
				this.flushDue = false;
				return;
			}
			if (this.queued < this.options.batchSize && !this.flushDue) {
				this.armFlushTimer();
				return;
			}
			this.sendNext();
		}
	}

	private sendNext(): void {
		if (this.inFlight.length === 0) this.compact();
		const count = Math.min(this.options.batchSize, this.queued);
		const lines = this.lines.slice(this.head, this.head + count);
		const sizes = this.sizes.slice(this.head, this.head + count);
		let bytes = 0;
		for (const b of sizes) bytes += b;
		this.head += count;
		this.queuedBytes -= bytes;
		const batch: Batch = { count, bytes, lines, sizes, failed: false };
		this.inFlight.push(batch);
		if (this.queued === 0) this.flushDue = false;
		let sent: Promise<void>;
		try {
			sent = this.options.send(lines.join('\n'), count);
		} catch (err) {
			sent = Promise.reject(err);
		}
		sent.then(
			() => this.onSent(batch),
			(err: unknown) => this.onFailed(batch, err),
		);
	}

	private onSent(batch: Batch): void {
		this.inFlight.splice(this.inFlight.indexOf(batch), 1);
		this.written += batch.count;
		try {
			this.options.onWritten?.(batch.lines);
		} catch (err) {
			// An observer's bug must not stall the writer or surface as an unhandled rejection.
			this.log.error({ err: (err as Error).message }, 'influx writer: onWritten observer threw');
		}
		if (this.inFlight.some((b) => b.failed)) {
			// An elder failed: the retry bookkeeping happens once everything has settled.
			this.requeueFailedWhenSettled();
			return;
		}
		this.attempt = 0;
		if (this.queued < this.options.batchSize) this.recovering = false;
		if (this.outage) {
			const o = this.outage;
			this.outage = undefined;
			this.log.info(
				{ downMs: Date.now() - o.since, failedAttempts: o.failures, droppedPoints: this.dropped - o.droppedAtStart, backlog: this.queued },
				'influx writer: backend reachable again, writing the buffered points in order',
			);
		}
		this.afterSettled();
	}

	private onFailed(batch: Batch, err: unknown): void {
		const message = err instanceof Error ? err.message : String(err);
		if (err instanceof PermanentWriteError || this.abandoned) {
			this.inFlight.splice(this.inFlight.indexOf(batch), 1);
			if (this.abandoned) this.dropped += batch.count;
			else {
				this.rejected += batch.count;
				this.log.error({ points: batch.count, err: message }, 'influx writer: batch rejected by the server; not retried');
			}
			if (this.inFlight.some((b) => b.failed)) this.requeueFailedWhenSettled();
			else this.afterSettled();
			return;
		}
		batch.failed = true;
		this.recovering = true;
		if (!this.outage) {
			this.outage = { since: Date.now(), failures: 0, droppedAtStart: this.dropped, dropLogged: false, lastError: message };
			this.log.warn(
				{ err: message, bufferedPoints: this.stats().bufferedPoints },
				'influx writer: backend unreachable, buffering and retrying with backoff (logged once per outage)',
			);
			// Producers must not block on a backend that is down: they buffer (and drop) instead.
			this.releaseCapacityWaiters();
		}
		this.outage.failures++;
		this.outage.lastError = message;
		this.requeueFailedWhenSettled();
	}

	/** Once nothing is pending, failed batches go back to the head of the queue, oldest first, and a retry is scheduled. */
	private requeueFailedWhenSettled(): void {
		if (this.inFlight.some((b) => !b.failed)) return;
		const failed = this.inFlight;
		this.inFlight = [];
		if (this.abandoned) {
			for (const b of failed) this.dropped += b.count;
			this.afterSettled();
			return;
		}
		// Slots before head are dead and, with no compaction while requests are pending, at least this many exist.
		let total = 0;
		for (const b of failed) total += b.count;
		this.head -= total;
		let at = this.head;
		for (const b of failed) {
			for (let i = 0; i < b.count; i++, at++) {
				this.lines[at] = b.lines[i]!;
				this.sizes[at] = b.sizes[i]!;
			}
			this.queuedBytes += b.bytes;
		}
		this.enforceBounds();
		this.attempt++;
		const delay = backoffDelay(this.attempt, this.retry, this.random);
		this.flushDue = true;
		this.retryTimer = setTimeout(() => {
			this.retryTimer = undefined;
			this.pump();
		}, delay);
	}

	private afterSettled(): void {
		if (this.stats().bufferedPoints < this.highWater) this.releaseCapacityWaiters();
		if (this.stats().bufferedPoints === 0) this.dropLoggedWhileUp = false;
		this.pump();
		if (this.isDrained()) {
			const waiters = this.drainWaiters;
			this.drainWaiters = [];
			for (const w of waiters) w();
		}
	}

	private releaseCapacityWaiters(): void {
		const waiters = this.capacityWaiters;
		this.capacityWaiters = [];
		for (const w of waiters) w();
	}
}
