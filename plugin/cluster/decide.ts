import type { HostReport, Reservation } from './types';

/**
 * Cross-host placement as pure functions of the shared view: which hosts count, how much
 * room each has left after the reservations on it, and where a join goes. Foresight's
 * ClusterMember feeds them; tests call them directly.
 */

/** Hosts (other than `selfId`) whose latest report is at most `silentAfterMs` older than `asOfMs`. */
export function liveHosts(reports: readonly HostReport[], selfId: string, asOfMs: number, silentAfterMs: number): HostReport[] {
	return reports.filter((r) => r.hostId !== selfId && asOfMs - r.ts <= silentAfterMs);
}

/** A peer lands on one worker: a host's headroom for it is its best worker's. */
export function hostHeadroomPct(report: HostReport): number {
	let best = Number.NEGATIVE_INFINITY;
	for (const w of report.workers) best = Math.max(best, w.headroomPct);
	return best;
}

/**
 * Share of a host's capacity left before its workers' fill targets (each worker's positive
 * headroom, summed, over the summed capacity): how much room its rooms have to grow.
 */
export function hostFreeShare(report: Pick<HostReport, 'workers'>): number {
	let free = 0;
	let capacity = 0;
	for (const w of report.workers) {
		free += Math.max(0, w.headroomPct);
		capacity += w.capacityPct;
	}
	return capacity > 0 ? free / capacity : 0;
}

/** Load promised to `hostId` by reservations still open at `nowMs`, optionally only those made by `fromHost`. */
export function reservedPct(reservations: readonly Reservation[], hostId: string, nowMs: number, fromHost?: string): number {
	let sum = 0;
	for (const r of reservations) {
		if (r.targetHost !== hostId || r.expiresAt <= nowMs) continue;
		if (fromHost !== undefined && r.fromHost !== fromHost) continue;
		sum += r.costPct;
	}
	return sum;
}

export interface CrossHostInput {
	selfId: string;
	roomId: string;
	/** Expected load of the joining peer here, % of one core. */
	costPct: number;
	/**
	 * Expected load of the peer on a host that does not hold its room yet, where every
	 * producer of the room has to arrive over a pipe first (pipe ingress on top of costPct);
	 * default costPct. A host that holds the room has them piped in already.
	 */
	remoteCostPct?: number;
	/** This host's best worker's predicted room before its fill target (as in its report). */
	localHeadroomPct: number;
	/** Whether the room has peers on this host. */
	localHoldsRoom: boolean;
	/** This host's hostFreeShare(). */
	localFreeShare: number;
	/**
	 * A room new to the cluster opens on a host only while that host keeps this share of its
	 * capacity free (0: whenever a worker fits the peer). Rooms grow after their first peer:
	 * a host packed with young rooms overloads as they fill, and only their new peers could
	 * still go elsewhere.
	 */
	newRoomFreeShare: number;
	/**
	 * Any join (not only a new room's) goes to another host that keeps `newRoomFreeShare` free
	 * while this host has less than this share free (0: off). Rooms already here grow here
	 * otherwise, until the host has no headroom left at all.
	 */
	spillBelowFreeShare?: number;
	/** The peer was sent here by another host: it is placed here or refused, never sent on (no redirect loops). */
	redirected: boolean;
	/** Live hosts other than this one (liveHosts()). */
	hosts: readonly HostReport[];
	reservations: readonly Reservation[];
	nowMs: number;
}

export type CrossHostDecision =
	| { kind: 'local'; reason: string }
	| { kind: 'redirect'; target: HostReport; availablePct: number; reason: string; /** What the peer is expected to add there: the reservation to book. */ costPct: number };

/**
 * Whether `target` can take `costPct` more from `selfId`: its reported headroom less every
 * open reservation on it must cover the peer, and this host's own open reservations on it
 * may use at most 1/(live hosts − 1) of that headroom. The share is what bounds concurrent
 * placements: hosts deciding at the same instant on the same report cannot see each
 * other's reservations yet, but together they can promise at most the headroom the
 * target reported.
 */
export function canTake(target: HostReport, input: Pick<CrossHostInput, 'selfId' | 'costPct' | 'hosts' | 'reservations' | 'nowMs'>): { ok: boolean; availablePct: number } {
	const headroom = hostHeadroomPct(target);
	const available = headroom - reservedPct(input.reservations, target.hostId, input.nowMs);
	// Every live host but the target may be redirecting to it (this one included).
	const senders = Math.max(1, input.hosts.length);
	const ownShareLeft = headroom / senders - reservedPct(input.reservations, target.hostId, input.nowMs, input.selfId);
	return { ok: available >= input.costPct && ownShareLeft >= input.costPct, availablePct: available };
}

/** A host that can take the peer, with what it has and what the peer would cost there. */
type Taker = { host: HostReport; availablePct: number; costPct: number };
const redirectTo = (t: Taker, reason: string): CrossHostDecision => ({ kind: 'redirect', target: t.host, availablePct: t.availablePct, costPct: t.costPct, reason });

/**
 * Where a join goes:
 * 1. sent here by another host: here (the local policy places or refuses it);
 * 2. its room lives on other hosts and not here: to the one holding most of its peers, if it can take it;
 * 3. a room new to the cluster, with less than `newRoomFreeShare` of this host free: to the
 *    freest host that keeps that share (if any);
 * 4. this host has the predicted headroom (less what other hosts reserved on it): here;
 * 5. another host can take it: there (one holding the room first, else the most available headroom);
 * 6. nowhere has room: here, where the local policy places over the fill target or refuses.
 */
export function decideCrossHost(input: CrossHostInput): CrossHostDecision {
	if (input.redirected) return { kind: 'local', reason: 'sent here by another host' };
	// Peers on their way count as the room's: a reservation for the room says where it is going before that host reports it.
	const onTheirWay = (hostId: string): number => input.reservations.filter((r) => r.targetHost === hostId && r.roomId === input.roomId && r.expiresAt > input.nowMs).length;
	const takers = input.hosts
		.map((h) => {
			const roomPeers = (h.rooms[input.roomId] ?? 0) + onTheirWay(h.hostId);
			const costPct = roomPeers > 0 ? input.costPct : (input.remoteCostPct ?? input.costPct);
			return { host: h, ...canTake(h, { ...input, costPct }), roomPeers, costPct };
		})
		.filter((t) => t.ok);
	const holders = takers.filter((t) => t.roomPeers > 0).sort((a, b) => b.roomPeers - a.roomPeers || b.availablePct - a.availablePct);
	if (!input.localHoldsRoom && holders.length > 0) {
		const h = holders[0]!;
		return redirectTo(h, `its room lives on host ${h.host.hostId} (${h.roomPeers} peers)`);
	}
	const localAvailable = input.localHeadroomPct - reservedPct(input.reservations, input.selfId, input.nowMs);
	const newRoom = !input.localHoldsRoom && holders.length === 0;
	if (newRoom && input.newRoomFreeShare > 0 && input.localFreeShare < input.newRoomFreeShare) {
		const roomy = takers.filter((t) => hostFreeShare(t.host) >= input.newRoomFreeShare).sort((a, b) => hostFreeShare(b.host) - hostFreeShare(a.host))[0];
		if (roomy) {
			return redirectTo(roomy, `a new room: ${(input.localFreeShare * 100).toFixed(0)}% of this host is free, host ${roomy.host.hostId} has ${(hostFreeShare(roomy.host) * 100).toFixed(0)}% for it to grow`);
		}
	}
	const spill = input.spillBelowFreeShare ?? 0;
	if (!newRoom && spill > 0 && input.localFreeShare < spill) {
		const roomy = [...holders, ...takers.filter((t) => t.roomPeers === 0)].find((t) => hostFreeShare(t.host) >= input.newRoomFreeShare);
		if (roomy) {
			return redirectTo(roomy, `${(input.localFreeShare * 100).toFixed(0)}% of this host is free; host ${roomy.host.hostId} has ${(hostFreeShare(roomy.host) * 100).toFixed(0)}%`);
		}
	}
	if (localAvailable >= input.costPct) return { kind: 'local', reason: 'predicted headroom here' };
	const best = holders[0] ?? [...takers].sort((a, b) => b.availablePct - a.availablePct)[0];
	if (best) {
		return redirectTo(best, `no predicted headroom here (${localAvailable.toFixed(1)}% for a ${input.costPct.toFixed(1)}% peer); host ${best.host.hostId} has ${best.availablePct.toFixed(1)}%`);
	}
	return { kind: 'local', reason: 'no host has predicted headroom for it' };
}
