import type { AllocationPolicy } from '../actions';
import { placeRoomPinned } from './placement';

export interface RoundRobinState {
	next: number;
}

/** mediasoup-demo: each new room gets a router on the next worker in turn; load is never looked at. */
export const roundRobinPolicy: AllocationPolicy<RoundRobinState> = {
	name: 'round-robin',
	initialState: () => ({ next: 0 }),
	decide(snapshot, state) {
		let next = state.next;
		const actions = placeRoomPinned(
			snapshot,
			() => snapshot.workers[next++ % snapshot.workers.length]!,
			'round-robin: next worker for a new room',
		);
		return { actions, state: { next } };
	},
};
