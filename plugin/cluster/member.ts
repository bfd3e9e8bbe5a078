import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';
import { TypedEmitter } from '../util/typedEmitter';
import { liveHosts } from './decide';
import type { ClusterChannel, HostReport, Reservation } from './types';

export interface ClusterMemberOptions {
	hostId: string;
	endpoint?: string;
	/** How often this host publishes its state and reads the others'. */
	reportIntervalMs: number;
	/** A host whose latest report is older than this is left out of placement until it reports again. */
	silentAfterMs: number;
	/** How long a reservation on another host stands (the redirected client must arrive and show in the target's load by then). */
	reservationTtlMs: number;
}

/** One change of the view, for logs, metrics and tests. */
export type ClusterEvent =
	| { type: 'hostSilent'; hostId: string; silentMs: number }
	| { type: 'hostBack'; hostId: string }
	| { type: 'stale'; sinceMs: number; error: string }
	| { type: 'fresh'; staleMs: number };

export type ClusterMemberEvents = { cluster: [ClusterEvent] };

/** What placement sees of the other hosts. */
export interface ClusterView {
	/** Live hosts other than this one. */
	hosts: HostReport[];
	reservations: Reservation[];
	/** The last read of the shared view failed: `hosts` is as of `asOfMs` (hosts live then stay candidates). */
	stale: boolean;
	/** When the view was last read successfully (0: never). */
	asOfMs: number;
}

export interface ClusterStats {
	hostId: string;
	published: number;
	publishFailures: number;
	reads: number;
	readFailures: number;
	reservationsMade: number;
	reservationWriteFailures: number;
	stale: boolean;
	/** Every host seen in the view, with how long ago it last reported and whether placement uses it. */
	hosts: Array<{ hostId: string; ageMs: number; live: boolean }>;
}

/**
 * This host's membership in the shared view: publishes its state every report interval
 * and reads every host's latest. The shared store is the only coordination: no host
 * talks to another, none leads, and a host that stops reporting simply ages out.
 */
export class ClusterMember extends TypedEmitter<ClusterMemberEvents> {
	private timer: NodeJS.Timeout | undefined;
	private seq = 0;
	private reports: HostReport[] = [];
	private remoteReservations: Reservation[] = [];
	/** Made here: counted at once, whether or not the shared store has them yet. */
	private ownReservations: Reservation[] = [];
	private asOfMs = 0;
	private staleSince: number | undefined;
	private silent = new Set<string>();
	private ticking = false;
	private readonly counters = { published: 0, publishFailures: 0, reads: 0, readFailures: 0, reservationsMade: 0, reservationWriteFailures: 0 };

	constructor(
		private readonly channel: ClusterChannel,
		readonly options: ClusterMemberOptions,
		private readonly buildReport: () => Pick<HostReport, 'workers' | 'rooms'>,
		private readonly log: Logger,
		private readonly now: () => number = Date.now,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of a cluster event threw'));
	}

	start(): void {
		if (this.timer) return;
		void this.tick();
		this.timer = setInterval(() => void this.tick(), this.options.reportIntervalMs);
		this.timer.unref();
	}

	/** Publishes this host's state, then reads everyone's (also runs every reportIntervalMs). */
	async tick(): Promise<void> {
		// A slow store must not stack up requests: a tick still running skips the next.
		if (this.ticking) return;
		this.ticking = true;
		try {
			await this.publish();
			await this.read();
		} finally {
			this.ticking = false;
		}
	}

	private async publish(): Promise<void> {
		let report: HostReport;
		try {
			report = { hostId: this.options.hostId, ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}), ts: this.now(), seq: this.seq++, ...this.buildReport() };
		} catch (err) {
			this.log.error({ err }, 'cluster report could not be built');
			return;
		}
		try {
			await this.channel.publish(report);
			this.counters.published++;
		} catch (err) {
			// Only the latest state matters: a report that did not get through is replaced by the next, not buffered.
			this.counters.publishFailures++;
			if (this.counters.publishFailures === 1 || this.staleSince === undefined) this.log.debug({ err: (err as Error).message }, 'cluster report not published');
		}
	}

	private async read(): Promise<void> {
		const now = this.now();
		try {
			const state = await this.channel.read(now - 10 * this.options.silentAfterMs, now);
			this.counters.reads++;
			this.reports = state.reports;
			this.remoteReservations = state.reservations.filter((r) => r.fromHost !== this.options.hostId);
			this.asOfMs = now;
			if (this.staleSince !== undefined) {
				this.emit('cluster', { type: 'fresh', staleMs: now - this.staleSince });
				this.log.info({ staleMs: now - this.staleSince }, 'cluster view fresh again');
				this.staleSince = undefined;
			}
		} catch (err) {
			this.counters.readFailures++;
			if (this.staleSince === undefined) {
				this.staleSince = now;
				this.emit('cluster', { type: 'stale', sinceMs: now, error: (err as Error).message });
				this.log.warn({ err: (err as Error).message }, 'cluster view unreadable: placing on the last view, marked stale');
			}
		}
		this.updateSilence();
	}

	/** Emits hostSilent/hostBack as hosts cross the bound (judged at the last good read while stale). */
	private updateSilence(): void {
		const asOf = this.staleSince === undefined ? this.now() : this.asOfMs;
		for (const r of this.reports) {
			if (r.hostId === this.options.hostId) continue;
			const silentMs = asOf - r.ts;
			const isSilent = silentMs > this.options.silentAfterMs;
			if (isSilent && !this.silent.has(r.hostId)) {
				this.silent.add(r.hostId);
				this.emit('cluster', { type: 'hostSilent', hostId: r.hostId, silentMs });
				this.log.warn({ host: r.hostId, silentMs }, 'host silent: left out of placement until it reports again');
			} else if (!isSilent && this.silent.delete(r.hostId)) {
				this.emit('cluster', { type: 'hostBack', hostId: r.hostId });
				this.log.info({ host: r.hostId }, 'host reports again');
			}
		}
	}

	/** The view placement decides on now. */
	view(): ClusterView {
		const now = this.now();
		this.ownReservations = this.ownReservations.filter((r) => r.expiresAt > now);
		const stale = this.staleSince !== undefined;
		// While the store cannot be read, hosts are judged as of the last good read: their silence is unknown, not proven.
		const asOf = stale ? this.asOfMs : now;
		return {
			hosts: liveHosts(this.reports, this.options.hostId, asOf, this.options.silentAfterMs),
			reservations: [...this.remoteReservations.filter((r) => r.expiresAt > now), ...this.ownReservations],
			stale,
			asOfMs: this.asOfMs,
		};
	}

	/** Books `costPct` on `targetHost` for a redirected peer: counted here at once, visible to every host once written. */
	reserve(targetHost: string, roomId: string, peerId: string, costPct: number): Reservation {
		const now = this.now();
		const reservation: Reservation = {
			id: randomUUID(),
			fromHost: this.options.hostId,
			targetHost,
			roomId,
			peerId,
			costPct,
			createdAt: now,
			expiresAt: now + this.options.reservationTtlMs,
		};
		this.ownReservations.push(reservation);
		this.counters.reservationsMade++;
		this.channel.reserve(reservation).catch((err: unknown) => {
			this.counters.reservationWriteFailures++;
			this.log.warn({ err: (err as Error).message, target: targetHost }, 'reservation not written to the shared view (counted here only)');
		});
		return reservation;
	}

	stats(): ClusterStats {
		const asOf = this.staleSince === undefined ? this.now() : this.asOfMs;
		return {
			hostId: this.options.hostId,
			...this.counters,
			stale: this.staleSince !== undefined,
			hosts: this.reports
				.filter((r) => r.hostId !== this.options.hostId)
				.map((r) => ({ hostId: r.hostId, ageMs: asOf - r.ts, live: asOf - r.ts <= this.options.silentAfterMs })),
		};
	}

	async close(): Promise<void> {
		clearInterval(this.timer);
		this.timer = undefined;
		this.removeAllListeners();
		await this.channel.close();
	}
}
