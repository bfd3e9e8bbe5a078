/**
 * Room growth as a trajectory: a room that keeps admitting senders keeps adding egress to
 * every receiver it already has, wherever they run. The per-stream predictor cannot see
 * peers who have not joined yet; the join trend of the last seconds can. Pure functions
 * over plain data, so the policy's state stays serialisable.
 */

/** roomId → recent joins that send media: [time, egress % of a core each receiver of the room pays for the joiner]. */
export type JoinTrace = Record<string, Array<[number, number]>>;

export interface ObservedJoin {
	roomId: string;
	/** Egress one receiver pays for everything the joiner sends, % of a core. */
	egressPct: number;
}

/** The trace with joins older than `windowS` dropped and this decision's sending joins added. */
export function recordJoins(previous: JoinTrace, t: number, joins: readonly ObservedJoin[], windowS: number): JoinTrace {
	const next: JoinTrace = {};
	for (const roomId in previous) {
		const kept = previous[roomId]!.filter(([at]) => t - at < windowS);
		if (kept.length > 0) next[roomId] = kept;
	}
	for (const join of joins) {
		if (join.egressPct <= 0) continue;
		(next[join.roomId] ??= []).push([t, join.egressPct]);
	}
	return next;
}

/**
 * Expected growth of one receiver's egress in a room, % of a core per second. A single
 * join is no trend (churn replaces a leaver): the rate counts joins after the first in
 * the window, so it needs a sustained stream of joins, as when a class or meeting starts.
 */
export function growthPerReceiverPctPerS(joins: ReadonlyArray<readonly [number, number]> | undefined, windowS: number): number {
	if (!joins || joins.length < 2) return 0;
	let egress = 0;
	for (const [, pct] of joins) egress += pct;
	return ((joins.length - 1) / windowS) * (egress / joins.length);
}

/** Growth rate per room for every room of the trace. */
export function roomGrowth(trace: JoinTrace, windowS: number): Map<string, number> {
	const growth = new Map<string, number>();
	for (const roomId in trace) {
		const g = growthPerReceiverPctPerS(trace[roomId], windowS);
		if (g > 0) growth.set(roomId, g);
	}
	return growth;
}

/** Growth of each worker, % of a core per second: Σ over rooms of its receivers there × the room's growth per receiver. */
export function workerGrowth(receivers: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>, growthByRoom: ReadonlyMap<string, number>): Map<string, number> {
	const growth = new Map<string, number>();
	for (const [roomId, perReceiver] of growthByRoom) {
		for (const [workerId, peers] of receivers.get(roomId) ?? []) growth.set(workerId, (growth.get(workerId) ?? 0) + perReceiver * peers.size);
	}
	return growth;
}
