import type { AllocationAction, AllocationPolicy } from '../actions';
import { indexSnapshot } from '../estimate';
import type { WorkerView } from '../snapshot';
import { minBy, placeAction } from './placement';

export interface LeastLoadedOptions {
	/** Stay on one of the room's workers while its measured CPU is below this share of capacity. */
	stickyBelow: number;
}

/**
 * eduMEET-style least-loaded placement with room stickiness, per peer. eduMEET v3
 * (Room.getLeastLoadedRouter) keeps a peer on a worker that already hosts one of the
 * room's routers while that worker is below a limit (ROUTER_SCALE_SIZE = 40 peers), and
 * otherwise takes the least-loaded worker and pipes; edumeet-room-server's LoadStrategy
 * does the same with measured CPU load per media node (threshold 0.85). The 66% rule of
 * the issue is that stickiness limit expressed on measured CPU: stay with the room while
 * its worker is below 66% of a core, else go to the least-loaded worker.
 */
export function leastLoadedPolicy(options: LeastLoadedOptions = { stickyBelow: 0.66 }): AllocationPolicy<null> {
	return {
		name: 'least-loaded-66',
		initialState: () => null,
		decide(snapshot) {
			if (snapshot.pendingJoins.length === 0) return { actions: [], state: null };
			const index = indexSnapshot(snapshot);
			// Joins decided this tick are not in the measurement yet: only their room membership is remembered.
			const roomWorkers = new Map<string, Set<string>>();
			const actions: AllocationAction[] = [];
			for (const join of snapshot.pendingJoins) {
				let workers = roomWorkers.get(join.roomId);
				if (!workers) roomWorkers.set(join.roomId, (workers = new Set(index.rooms.get(join.roomId)?.workerIds ?? [])));
				const sticky = [...workers]
					.map((id) => index.workers.get(id))
					.filter((w): w is WorkerView => w !== undefined && w.cpuPct < options.stickyBelow * w.capacityPct);
				const worker = sticky.length > 0 ? minBy(sticky, (w) => w.cpuPct) : minBy(snapshot.workers, (w) => w.cpuPct);
				workers.add(worker.id);
				actions.push(placeAction(join, worker, index, snapshot, sticky.length > 0 ? 'least-loaded: room worker below stickiness limit' : 'least-loaded: least measured CPU'));
			}
			return { actions, state: null };
		},
	};
}
