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
	/** Expected load of the joining peer, % of one core. */
	costPct: number;
	/** This host's best worker's predicted room before its fill target (as in its report). */
	localHeadroomPct: number;
	/** Whether the room has peers on this host. */
	localHoldsRoom: boolean;
	/** The peer was sent here by another host: it is placed here or refused, never sent on (no redirect loops). */
	redirected: boolean;
	/** Live hosts other than this one (liveHosts()). */
	hosts: readonly HostReport[];
	reservations: readonly Reservation[];
	nowMs: number;
}

export type CrossHostDecision =
	| { kind: 'local'; reason: string }
	| { kind: 'redirect'; target: HostReport; availablePct: number; reason: string };

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

/**
 * Where a join goes:
 * 1. sent here by another host: here (the local policy places or refuses it);
 * 2. its room lives on other hosts and not here: to the one holding most of its peers, if it can take it;
 * 3. this host has the predicted headroom (less what other hosts reserved on it): here;
 * 4. another host can take it: there (one holding the room first, else the most available headroom);
 * 5. nowhere has room: here, where the local policy places over the fill target or refuses.
 */
export function decideCrossHost(input: CrossHostInput): CrossHostDecision {
	if (input.redirected) return { kind: 'local', reason: 'sent here by another host' };
	const takers = input.hosts
		.map((h) => ({ host: h, ...canTake(h, input), roomPeers: h.rooms[input.roomId] ?? 0 }))
		.filter((t) => t.ok);
	const holders = takers.filter((t) => t.roomPeers > 0).sort((a, b) => b.roomPeers - a.roomPeers || b.availablePct - a.availablePct);
	if (!input.localHoldsRoom && holders.length > 0) {
		const h = holders[0]!;
		return { kind: 'redirect', target: h.host, availablePct: h.availablePct, reason: `its room lives on host ${h.host.hostId} (${h.roomPeers} peers)` };
	}
	const localAvailable = input.localHeadroomPct - reservedPct(input.reservations, input.selfId, input.nowMs);
	if (localAvailable >= input.costPct) return { kind: 'local', reason: 'predicted headroom here' };
	const best = holders[0] ?? [...takers].sort((a, b) => b.availablePct - a.availablePct)[0];
	if (best) {
		return {
			kind: 'redirect',
			target: best.host,
			availablePct: best.availablePct,
			reason: `no predicted headroom here (${localAvailable.toFixed(1)}% for a ${input.costPct.toFixed(1)}% peer); host ${best.host.hostId} has ${best.availablePct.toFixed(1)}%`,
		};
	}
	return { kind: 'local', reason: 'no host has predicted headroom for it' };
}
