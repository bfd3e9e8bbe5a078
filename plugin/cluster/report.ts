import { indexSnapshot, joinCostPct, riskPct } from '../allocate/estimate';
import { FORESIGHT_DEFAULTS } from '../allocate/policies/foresight';
import type { AllocationSnapshot, PendingJoin, WorkerView } from '../allocate/snapshot';
import type { HostReport } from './types';

/**
 * InfluxDB 1.x keeps a string field up to 64 KiB: a host reports its rooms with the most
 * peers first, this many at most (room stickiness only needs the rooms that have peers).
 */
export const MAX_REPORTED_ROOMS = 1000;

/**
 * Headroom as the Foresight policy fills workers: up to its fill target of the worker's
 * capacity, against the worst p95 over the predictor's horizons. Hosts compare the same
 * number, so a peer is redirected only to a host whose own policy would place it.
 */
export function workerHeadroomPct(worker: WorkerView): number {
	return (FORESIGHT_DEFAULTS.fillBelowPct * worker.capacityPct) / 100 - riskPct(worker);
}

/** This host's part of the shared view, from what its allocation policy sees. */
export function buildHostReport(snapshot: AllocationSnapshot): Pick<HostReport, 'workers' | 'rooms'> {
	const rooms = [...snapshot.rooms].sort((a, b) => b.peers - a.peers).slice(0, MAX_REPORTED_ROOMS);
	return {
		workers: snapshot.workers.map((w) => ({
			workerId: w.id,
			capacityPct: w.capacityPct,
			cpuPct: w.cpuPct,
			p95: w.forecast.map((f) => ({ horizonS: f.horizonS, p95Pct: f.p95Pct })),
			headroomPct: workerHeadroomPct(w),
			rooms: rooms.filter((r) => r.workerIds.includes(w.id)).map((r) => r.id),
		})),
		rooms: Object.fromEntries(rooms.map((r) => [r.id, r.peers])),
	};
}

/**
 * The best local worker for `join` (most room left after the peer's own cost there), its
 * headroom before the peer and the peer's cost on it; and whether the room has peers here.
 */
export function localHeadroom(snapshot: AllocationSnapshot, join: PendingJoin): { workerId: string | undefined; headroomPct: number; costPct: number; remoteCostPct: number; holdsRoom: boolean } {
	const index = indexSnapshot(snapshot);
	let best: { workerId: string | undefined; headroomPct: number; costPct: number } = { workerId: undefined, headroomPct: Number.NEGATIVE_INFINITY, costPct: 0 };
	for (const w of snapshot.workers) {
		const headroom = workerHeadroomPct(w);
		const cost = joinCostPct(join, w.id, index, snapshot.costModel);
		if (best.workerId === undefined || headroom - cost > best.headroomPct - best.costPct) best = { workerId: w.id, headroomPct: headroom, costPct: cost };
	}
	// On a host the room is new to, every producer of the room here arrives over a pipe.
	const remoteCostPct = joinCostPct(join, '', index, snapshot.costModel);
	// With no local worker, the peer's cost is still what another host will pay.
	if (best.workerId === undefined) best.costPct = remoteCostPct;
	return { ...best, remoteCostPct, holdsRoom: (index.rooms.get(join.roomId)?.peers ?? 0) > 0 };
}
