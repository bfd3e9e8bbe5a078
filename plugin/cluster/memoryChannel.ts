import type { ClusterChannel, ClusterState, HostReport, Reservation } from './types';

/**
 * The shared view in memory: every channel of one bus sees what the others published.
 * For unit tests and for several Foresights in one process; `down` makes every call
 * fail as an unreachable InfluxDB would, to exercise the stale view.
 */
export class MemoryClusterBus {
	private readonly reports = new Map<string, HostReport>();
	private readonly reservations = new Map<string, Reservation>();
	down = false;

	channel(): ClusterChannel {
		const check = (): void => {
			if (this.down) throw Object.assign(new Error('cluster bus is down'), { code: 'ECONNREFUSED' });
		};
		return {
			publish: async (report) => {
				check();
				const previous = this.reports.get(report.hostId);
				if (!previous || previous.ts <= report.ts) this.reports.set(report.hostId, structuredClone(report));
			},
			reserve: async (reservation) => {
				check();
				this.reservations.set(reservation.id, { ...reservation });
			},
			read: async (sinceMs, nowMs): Promise<ClusterState> => {
				check();
				for (const [key, r] of this.reservations) if (r.expiresAt <= nowMs) this.reservations.delete(key);
				return {
					reports: [...this.reports.values()].filter((r) => r.ts >= sinceMs).map((r) => structuredClone(r)),
					reservations: [...this.reservations.values()].map((r) => ({ ...r })),
				};
			},
			close: async () => undefined,
		};
	}
}
