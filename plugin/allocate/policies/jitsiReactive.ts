import type { AllocationAction, AllocationPolicy } from '../actions';
import { indexSnapshot, riskPct, type SnapshotIndex } from '../estimate';
import type { ConsumerView, WorkerView } from '../snapshot';
import { minBy, placeRoomPinned } from './placement';

/**
 * Jitsi Videobridge load management: a conference stays on the least-stressed bridge it
 * was created on; when measured load passes a threshold the last-N reducer cuts every
 * receiver's last-N by a scale, waits out an impact time, and recovers by another scale
 * once load is below the recovery threshold (jvb reference.conf: reduction-scale 0.75,
 * recover-scale 1.25, impact-time 1 minute, minimum-last-n 1). Load here is the worker's
 * measured CPU, the mediasoup equivalent of JVB's packet-rate load measure.
 */
export interface JitsiOptions {
	loadThresholdPct: number;
	recoveryThresholdPct: number;
	reductionScale: number;
	recoverScale: number;
	impactTimeS: number;
	minimumLastN: number;
}

export const JITSI_DEFAULTS: Readonly<JitsiOptions> = Object.freeze({
	loadThresholdPct: 85,
	recoveryThresholdPct: 68,
	reductionScale: 0.75,
	recoverScale: 1.25,
	impactTimeS: 60,
	minimumLastN: 1,
});

export interface JitsiState {
	/** Enforced last-N per worker; absent = unlimited. */
	lastN: Record<string, number>;
	lastActionT: Record<string, number>;
}

function isVideo(index: SnapshotIndex, consumer: ConsumerView): boolean {
	return index.producers.get(consumer.producerId)?.mediaClass !== 'audio';
}

/** Receivers' video consumers on a worker, each list in last-N order (speaker, priority). */
function videoByReceiver(index: SnapshotIndex, workerId: string): ConsumerView[][] {
	const byPeer = new Map<string, ConsumerView[]>();
	for (const c of index.consumersByWorker.get(workerId) ?? []) {
		if (!isVideo(index, c)) continue;
		const list = byPeer.get(c.peerId);
		if (list) list.push(c);
		else byPeer.set(c.peerId, [c]);
	}
	const rank = (c: ConsumerView): number => (index.producers.get(c.producerId)?.activeSpeaker ? 1000 : 0) + c.priority;
	return [...byPeer.values()].map((list) => list.sort((a, b) => rank(b) - rank(a) || (a.id < b.id ? -1 : 1)));
}

function enforce(index: SnapshotIndex, worker: WorkerView, lastN: number | undefined, reason: string): AllocationAction[] {
	const actions: AllocationAction[] = [];
	const load = riskPct(worker);
	for (const list of videoByReceiver(index, worker.id)) {
		list.forEach((c, rank) => {
			const shouldPause = lastN !== undefined && rank >= lastN;
			if (shouldPause === c.paused) return;
			actions.push({
				type: shouldPause ? 'pauseConsumer' : 'resumeConsumer',
				consumerId: c.id,
				workerId: worker.id,
				reason,
				predictedBeforePct: worker.cpuPct,
				predictedAfterPct: load,
			});
		});
	}
	return actions;
}

export function jitsiReactivePolicy(options: JitsiOptions = JITSI_DEFAULTS): AllocationPolicy<JitsiState> {
	return {
		name: 'jitsi-reactive-lastN',
		initialState: () => ({ lastN: {}, lastActionT: {} }),
		decide(snapshot, state) {
			const actions = placeRoomPinned(snapshot, () => minBy(snapshot.workers, (w) => w.cpuPct), 'jitsi: least-stressed worker for a new conference');
			const index = indexSnapshot(snapshot);
			const lastN = { ...state.lastN };
			const lastActionT = { ...state.lastActionT };
			for (const worker of snapshot.workers) {
				const canAct = snapshot.t - (lastActionT[worker.id] ?? -Infinity) >= options.impactTimeS;
				const current = lastN[worker.id];
				if (canAct && worker.cpuPct > options.loadThresholdPct) {
					const receivers = videoByReceiver(index, worker.id);
					const widest = current ?? Math.max(0, ...receivers.map((l) => l.length));
					lastN[worker.id] = Math.max(options.minimumLastN, Math.floor(widest * options.reductionScale));
					lastActionT[worker.id] = snapshot.t;
				} else if (canAct && current !== undefined && worker.cpuPct < options.recoveryThresholdPct) {
					const widest = Math.max(0, ...videoByReceiver(index, worker.id).map((l) => l.length));
					const raised = Math.ceil(current * options.recoverScale);
					if (raised >= widest) delete lastN[worker.id];
					else lastN[worker.id] = raised;
					lastActionT[worker.id] = snapshot.t;
				}
				actions.push(...enforce(index, worker, lastN[worker.id], `jitsi last-N ${lastN[worker.id] ?? 'unlimited'}`));
			}
			return { actions, state: { lastN, lastActionT } };
		},
	};
}
