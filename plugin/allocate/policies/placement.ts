import type { AllocationSnapshot, PendingJoin, WorkerView } from '../snapshot';
import type { AllocationAction, PlaceAction } from '../actions';
import { indexSnapshot, joinCostPct, riskPct, type SnapshotIndex } from '../estimate';

/** Place action with the policy-independent load estimate, so every audit record is comparable. */
export function placeAction(join: PendingJoin, worker: WorkerView, index: SnapshotIndex, snapshot: AllocationSnapshot, reason: string): PlaceAction {
	const before = riskPct(worker);
	return {
		type: 'place',
		peerId: join.peerId,
		roomId: join.roomId,
		workerId: worker.id,
		reason,
		predictedBeforePct: before,
		predictedAfterPct: before + joinCostPct(join, worker.id, index, snapshot.costModel),
	};
}

/**
 * Room-pinned placement as mediasoup-demo, BigBlueButton and Jitsi do it: a room's
 * router lives on one worker chosen when the room is created; every later peer joins it.
 */
export function placeRoomPinned(
	snapshot: AllocationSnapshot,
	chooseForNewRoom: (roomId: string) => WorkerView,
	reason: string,
): AllocationAction[] {
	if (snapshot.pendingJoins.length === 0) return [];
	const index = indexSnapshot(snapshot);
	const pinned = new Map<string, WorkerView>();
	const actions: AllocationAction[] = [];
	for (const join of snapshot.pendingJoins) {
		let worker = pinned.get(join.roomId);
		const existing = index.rooms.get(join.roomId)?.workerIds[0];
		if (!worker && existing !== undefined) worker = index.workers.get(existing);
		worker ??= chooseForNewRoom(join.roomId);
		pinned.set(join.roomId, worker);
		actions.push(placeAction(join, worker, index, snapshot, reason));
	}
	return actions;
}

export function minBy<T>(items: readonly T[], key: (item: T) => number): T {
	let best = items[0]!;
	let bestKey = key(best);
	for (let i = 1; i < items.length; i++) {
		const k = key(items[i]!);
		if (k < bestKey) {
			best = items[i]!;
			bestKey = k;
		}
	}
	return best;
}
