import type { Logger } from '../log';

/** Channel requests the profiler makes, by what they ask. */
export const PROFILER_REQUEST_KINDS = [
	'producerStats',
	'consumerStats',
	'transportStats',
	'dataProducerStats',
	'dataConsumerStats',
	/** enableTraceEvent() on a producer (trace windows, keyframe and sender-report traces). */
	'traceSwitch',
	/** Tap consumers: creating the per-router DirectTransport, consume, resume, pause, layer switches. */
	'tap',
] as const;
export type ProfilerRequestKind = (typeof PROFILER_REQUEST_KINDS)[number];

/** Channel notifications that reach the profiler because it asked for them. */
export const PROFILER_NOTIFICATION_KINDS = [
	/** `rtp` trace events (one per packet while a trace window is open). */
	'traceRtp',
	/** `keyframe` trace events. */
	'traceKeyframe',
	/** `sr` trace events (one per RTCP sender report of a traced producer). */
	'traceSr',
	/** `pli`/`fir` trace events (a keyframe request went to a sender). */
	'traceRequest',
	/** RTP packets of a resumed tap consumer. */
	'tapRtp',
	/** Messages of a data tap. */
	'tapData',
] as const;
export type ProfilerNotificationKind = (typeof PROFILER_NOTIFICATION_KINDS)[number];

/** What the profiler costs the process, for operators (Foresight.profilerStats(), the metrics export). */
export interface ProfilerStats {
	/** Epoch ms when counting started. */
	sinceMs: number;
	/** Channel requests since sinceMs, by kind. */
	requests: Record<ProfilerRequestKind, number>;
	/** Notifications received since sinceMs, by kind. */
	notifications: Record<ProfilerNotificationKind, number>;
	/**
	 * Milliseconds spent in the profiler's own synchronous work since sinceMs (wall time of
	 * those sections: CPU time unless the OS preempted the thread meanwhile). Excludes
	 * mediasoup's encoding and parsing of the channel messages themselves.
	 */
	ownCpuMs: number;
	/** Requests per second over the last RATE_WINDOW_S seconds (or since start when shorter). */
	requestsPerS: Record<ProfilerRequestKind, number>;
	notificationsPerS: Record<ProfilerNotificationKind, number>;
	/** ownCpuMs over the same window, as percent of one core. */
	ownCpuPct: number;
	/** Errors the profiler handled without failing (a request on a closing entity, a tap that failed), by kind. */
	swallowedErrors: Record<string, number>;
	/** Triggers of the tiered schedule since sinceMs, by kind: a producer's fast tier by its reason, a consumer's next own round as `consumer.<reason>`, and per worker the starts and renewals of CPU rise episodes as `worker.cpuRise.<start|renew>` (see plugin/profile/schedule.ts). */
	fastTriggers: Record<string, number>;
}

/** The rates cover this many seconds of whole-second snapshots. */
const RATE_WINDOW_S = 10;
/** An error kind that has not recurred for this long ends its episode: the next one is logged again. */
const ERROR_EPISODE_QUIET_MS = 60_000;

const REQ = PROFILER_REQUEST_KINDS.length;
const NOTE = PROFILER_NOTIFICATION_KINDS.length;
const REQUEST_INDEX = Object.fromEntries(PROFILER_REQUEST_KINDS.map((k, i) => [k, i])) as Record<ProfilerRequestKind, number>;
const NOTIFICATION_INDEX = Object.fromEntries(PROFILER_NOTIFICATION_KINDS.map((k, i) => [k, i])) as Record<ProfilerNotificationKind, number>;

/** One row of totals: requests, notifications, own ms, at a time. */
const ROW = REQ + NOTE + 2;

/**
 * Counts what the profiler asks of mediasoup and what it spends on its own. Counters are
 * numbers in one typed array, bumped in place on hot paths (a traced packet); rates come
 * from whole-second snapshots of the totals kept in a small ring.
 */
export class ProfilerMeter {
	readonly sinceMs = Date.now();
	private readonly totals = new Float64Array(ROW);
	/** Snapshots of `totals` (last slot: performance.now() at the snapshot), oldest overwritten first. */
	private readonly ring = new Float64Array(ROW * (RATE_WINDOW_S + 1));
	private ringCount = 0;
	private ringNext = 0;
	private readonly errors = new Map<string, { count: number; lastMs: number }>();
	private readonly triggers = new Map<string, number>();
	/**
	 * Optional: every request as it is made (the overhead bench replays this log); `detail` is
	 * what a traceSwitch asks the worker for (the producer's whole set of trace types).
	 */
	onRequest: ((kind: ProfilerRequestKind, entityId: string, detail?: readonly string[]) => void) | undefined;

	constructor(private readonly log?: Logger) {
		this.snapshot();
	}

	request(kind: ProfilerRequestKind, entityId: string, detail?: readonly string[]): void {
		this.totals[REQUEST_INDEX[kind]]!++;
		this.onRequest?.(kind, entityId, detail);
	}

	notification(kind: ProfilerNotificationKind): void {
		this.totals[REQ + NOTIFICATION_INDEX[kind]]!++;
	}

	/** Adds the time since `startMs` (a performance.now() reading) to the own-work total. */
	ownSince(startMs: number): void {
		this.totals[REQ + NOTE]! += performance.now() - startMs;
	}

	/** A trigger of the tiered schedule (it starts or extends a fast tier, or asks a consumer next round). */
	fastTrigger(reason: string): void {
		this.triggers.set(reason, (this.triggers.get(reason) ?? 0) + 1);
	}

	/**
	 * An error handled without failing. The first of an episode is logged (at debug while
	 * the entity is closing, which makes such errors expected, else at warn); repeats are
	 * only counted until the kind has been quiet for ERROR_EPISODE_QUIET_MS.
	 */
	swallowed(kind: string, error: unknown, context: Record<string, unknown>, expected = false): void {
		const now = Date.now();
		const e = this.errors.get(kind);
		const newEpisode = !e || now - e.lastMs > ERROR_EPISODE_QUIET_MS;
		if (e) {
			e.count++;
			e.lastMs = now;
		} else this.errors.set(kind, { count: 1, lastMs: now });
		if (!newEpisode || !this.log) return;
		const line = { err: error, kind, ...context };
		const msg = 'profiler: handled an error (further ones of this kind are counted, not logged, until a minute passes without one)';
		if (expected) this.log.debug(line, msg);
		else this.log.warn(line, msg);
	}

	/** Takes a whole-second snapshot for the rates; the profiler calls it once per round. */
	snapshot(): void {
		const at = this.ringNext * ROW;
		this.ring.set(this.totals, at);
		this.ring[at + ROW - 1] = performance.now();
		this.ringNext = (this.ringNext + 1) % (RATE_WINDOW_S + 1);
		this.ringCount = Math.min(this.ringCount + 1, RATE_WINDOW_S + 1);
	}

	stats(): ProfilerStats {
		const oldest = ((this.ringNext - this.ringCount + RATE_WINDOW_S + 1) % (RATE_WINDOW_S + 1)) * ROW;
		const elapsedS = Math.max(1e-3, (performance.now() - this.ring[oldest + ROW - 1]!) / 1000);
		const rate = (i: number): number => (this.totals[i]! - this.ring[oldest + i]!) / elapsedS;
		const requests = {} as Record<ProfilerRequestKind, number>;
		const requestsPerS = {} as Record<ProfilerRequestKind, number>;
		PROFILER_REQUEST_KINDS.forEach((k, i) => {
			requests[k] = this.totals[i]!;
			requestsPerS[k] = rate(i);
		});
		const notifications = {} as Record<ProfilerNotificationKind, number>;
		const notificationsPerS = {} as Record<ProfilerNotificationKind, number>;
		PROFILER_NOTIFICATION_KINDS.forEach((k, i) => {
			notifications[k] = this.totals[REQ + i]!;
			notificationsPerS[k] = rate(REQ + i);
		});
		const swallowedErrors: Record<string, number> = {};
		for (const [kind, e] of this.errors) swallowedErrors[kind] = e.count;
		return {
			sinceMs: this.sinceMs,
			requests,
			notifications,
			ownCpuMs: this.totals[REQ + NOTE]!,
			requestsPerS,
			notificationsPerS,
			// ms per s → percent of one core.
			ownCpuPct: rate(REQ + NOTE) / 10,
			swallowedErrors,
			fastTriggers: Object.fromEntries(this.triggers),
		};
	}
}
