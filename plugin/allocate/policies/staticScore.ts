import type { AllocationPolicy } from '../actions';
import type { WorkerView } from '../snapshot';
import { minBy, placeRoomPinned } from './placement';

/** BigBlueButton's static worker score: object counts, blind to what the streams carry. */
export function staticScore(worker: WorkerView): number {
	return 10 * worker.transports + 5 * worker.producers + 2 * worker.consumers;
}

/**
 * BigBlueButton (bbb-webrtc-sfu, mediasoup adapter): a meeting's router goes on the
 * worker with the lowest static score; the meeting's peers then join that router. Rooms
 * created in the same tick count as already weighted by their expected objects so a burst
 * of new rooms does not pile onto one worker.
 */
export const staticScorePolicy: AllocationPolicy<null> = {
	name: 'bbb-static-score',
	initialState: () => null,
	decide(snapshot) {
		const provisional = new Map<string, number>();
		const actions = placeRoomPinned(
			snapshot,
			() => {
				const worker = minBy(snapshot.workers, (w) => staticScore(w) + (provisional.get(w.id) ?? 0));
				provisional.set(worker.id, (provisional.get(worker.id) ?? 0) + 10);
				return worker;
			},
			'static score 10·transports + 5·producers + 2·consumers',
		);
		return { actions, state: null };
	},
};
