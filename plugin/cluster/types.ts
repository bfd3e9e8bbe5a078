import { z } from 'zod';

/**
 * What one host tells the others through the shared view, once per report interval.
 * Read back from a store other processes write to, so it is external input: every
 * record is parsed with these schemas and a malformed one is skipped, never trusted.
 */
const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const id = z.string().min(1).max(256);

export const workerReportSchema = z.object({
	workerId: id,
	/** CPU one worker may use, % of one core. */
	capacityPct: finite,
	/** Last measured CPU, % of one core. */
	cpuPct: finite,
	/** Predicted p95 CPU at each horizon (ascending), % of one core. */
	p95: z.array(z.object({ horizonS: finite, p95Pct: finite })).max(16),
	/**
	 * Predicted room left before the worker's fill target (the policy's fillBelowPct of its
	 * capacity), against the worst p95 over the horizons; negative when over it.
	 */
	headroomPct: finite,
	/** Rooms with a router on this worker. */
	rooms: z.array(id).max(10_000),
});
export type WorkerReport = z.infer<typeof workerReportSchema>;

export const hostReportSchema = z.object({
	hostId: id,
	/** Where the app's signaling sends a redirected client (app-defined, e.g. a wss:// URL); absent: the app maps hostId itself. */
	endpoint: z.string().min(1).max(2048).optional(),
	/** When the host built the report, ms since the epoch (hosts' clocks are assumed NTP-synchronized, see README). */
	ts: finite,
	/** Increases with every report of one process: tells a restarted host from an old record. */
	seq: z.int().min(0),
	workers: z.array(workerReportSchema).max(1024),
	/** Peers per room on the whole host. */
	rooms: z.record(id, z.int().min(0)),
});
export type HostReport = z.infer<typeof hostReportSchema>;

/**
 * Load a host promised to send to `targetHost` (a redirected peer on its way). Visible in
 * the shared view until it expires, so every host subtracts it from the target's headroom.
 */
export const reservationSchema = z.object({
	id: id,
	fromHost: id,
	targetHost: id,
	roomId: id,
	peerId: id,
	/** Expected load of the redirected peer, % of one core. */
	costPct: finite,
	/** ms since the epoch. */
	createdAt: finite,
	expiresAt: finite,
});
export type Reservation = z.infer<typeof reservationSchema>;

/** Everything the shared view held at one read. */
export interface ClusterState {
	reports: HostReport[];
	reservations: Reservation[];
}

/**
 * Where hosts publish their state and read each other's. Implementations: the shared
 * InfluxDB (InfluxClusterChannel) and memory (MemoryClusterBus, for tests and for
 * several Foresights in one process).
 */
export interface ClusterChannel {
	/** Publishes this host's latest state; rejects when the shared store is unreachable. */
	publish(report: HostReport): Promise<void>;
	/** Makes a reservation visible to every host; rejects when the shared store is unreachable. */
	reserve(reservation: Reservation): Promise<void>;
	/** The latest report of every host seen since `sinceMs` and the reservations not expired at `nowMs`. */
	read(sinceMs: number, nowMs: number): Promise<ClusterState>;
	close(): Promise<void>;
}
