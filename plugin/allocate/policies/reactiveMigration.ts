import type { AllocationAction, AllocationPolicy } from '../actions';
import { indexSnapshot, type SnapshotIndex } from '../estimate';
import { packetCostPct, type ConsumerView, type ProducerView, type WorkerView } from '../snapshot';
import { minBy, placeRoomPinned } from './placement';

/**
 * Jicofo-style load redistribution, the reactive answer to overload that migrates: a
 * conference is created on the least-stressed worker and stays there; a worker whose
 * measured load has stayed over a stress threshold for a while has a few endpoints (a
 * peer: its producers and its consumers) moved to the least-loaded worker that has room,
 * at most so many per interval (jicofo: `load-redistribution`, stress-threshold 0.8,
 * endpoints 1 per interval, timeout and interval 1 minute). It sees only measured CPU,
 * and moves media through the same migration actions as Foresight, so what it costs in
 * disruption is priced the same way.
 *
 * The intervals here are shorter than jicofo's minute: a jicofo bridge carries hundreds
 * of endpoints and is judged over minutes, while one mediasoup worker in these
 * scenarios fills in tens of seconds; with a one-minute timeout the baseline would act
 * after most overloads ended, and would not be a fair comparison.
 */
export interface ReactiveMigrationOptions {
	/** Stress threshold on measured CPU, share of the worker's capacity. */
	stressThreshold: number;
	/** How long measured load must stay over the threshold before endpoints move, s. */
	overForS: number;
	/** Least time between two redistributions off one worker, s. */
	intervalS: number;
	/** Endpoints moved off one worker per redistribution. */
	endpointsPerMove: number;
	/** A target must be measured below this share of capacity (and stay below it with the endpoint). */
	targetBelow: number;
}

export const REACTIVE_MIGRATION_DEFAULTS: Readonly<ReactiveMigrationOptions> = Object.freeze({
	stressThreshold: 0.8,
	overForS: 10,
	intervalS: 15,
	endpointsPerMove: 2,
	targetBelow: 0.6,
});

export interface ReactiveMigrationState {
	/** Since when each worker has been over the threshold (absent: not over). */
	overSince: Record<string, number>;
	lastMoveT: Record<string, number>;
}

/** Measured cost of one endpoint's media on a worker: what moving it takes off (observed rates, the shared cost model). */
function endpointCostPct(peerId: string, workerId: string, index: SnapshotIndex, snapshotCost: { ingressUsPerPacket: number; egressUsPerPacket: number; transportPct: number }, byPeer: Map<string, { producers: ProducerView[]; consumers: ConsumerView[] }>): number {
	const e = byPeer.get(peerId);
	if (!e) return 0;
	let cost = 0;
	for (const p of e.producers) {
		if (p.workerId !== workerId) continue;
		cost += packetCostPct(p.packetRate, snapshotCost.ingressUsPerPacket);
		for (const c of index.consumersByProducer.get(p.id) ?? []) if (c.workerId === workerId && !c.paused) cost += packetCostPct(c.packetRate, snapshotCost.egressUsPerPacket);
	}
	let receives = false;
	for (const c of e.consumers) {
		if (c.workerId !== workerId) continue;
		receives = true;
		if (!c.paused) cost += packetCostPct(c.packetRate, snapshotCost.egressUsPerPacket);
	}
	return cost + (receives ? snapshotCost.transportPct : 0);
}

export function reactiveMigrationPolicy(options: ReactiveMigrationOptions = REACTIVE_MIGRATION_DEFAULTS): AllocationPolicy<ReactiveMigrationState> {
	return {
		name: 'reactive-migration',
		initialState: () => ({ overSince: {}, lastMoveT: {} }),
		decide(snapshot, state) {
			const actions = placeRoomPinned(snapshot, () => minBy(snapshot.workers, (w) => w.cpuPct / w.capacityPct), 'reactive-migration: least-stressed worker for a new conference');
			const overSince = { ...state.overSince };
			const lastMoveT = { ...state.lastMoveT };
			const due: WorkerView[] = [];
			for (const w of snapshot.workers) {
				if (w.cpuPct <= options.stressThreshold * w.capacityPct) {
					delete overSince[w.id];
					continue;
				}
				overSince[w.id] ??= snapshot.t;
				if (snapshot.t - overSince[w.id]! >= options.overForS && snapshot.t - (lastMoveT[w.id] ?? -Infinity) >= options.intervalS) due.push(w);
			}
			if (due.length === 0) return { actions, state: { overSince, lastMoveT } };

			const index = indexSnapshot(snapshot);
			const byPeer = new Map<string, { producers: ProducerView[]; consumers: ConsumerView[] }>();
			const entry = (peerId: string) => {
				let e = byPeer.get(peerId);
				if (!e) byPeer.set(peerId, (e = { producers: [], consumers: [] }));
				return e;
			};
			for (const p of snapshot.producers) entry(p.peerId).producers.push(p);
			for (const c of snapshot.consumers) entry(c.peerId).consumers.push(c);
			// What this decision already sent to each target, so two moves do not fill one worker past its limit.
			const added = new Map<string, number>();
			const model = snapshot.costModel;
			for (const worker of due.sort((a, b) => b.cpuPct - a.cpuPct)) {
				// Endpoints with media on this worker that can all be moved, the most costly first.
				const candidates = [...byPeer.entries()]
					.filter(([, e]) => e.producers.some((p) => p.workerId === worker.id) || e.consumers.some((c) => c.workerId === worker.id))
					.filter(([, e]) => e.producers.every((p) => p.movable !== false) && e.consumers.every((c) => c.movable !== false))
					.map(([peerId]) => ({ peerId, cost: endpointCostPct(peerId, worker.id, index, model, byPeer) }))
					.filter((c) => c.cost > 0)
					.sort((a, b) => b.cost - a.cost || (a.peerId < b.peerId ? -1 : 1));
				let moved = 0;
				for (const { peerId, cost } of candidates) {
					if (moved >= options.endpointsPerMove) break;
					const targets = snapshot.workers.filter((w) => w.id !== worker.id && w.cpuPct + (added.get(w.id) ?? 0) + cost < options.targetBelow * w.capacityPct);
					if (targets.length === 0) break;
					const target = minBy(targets, (w) => (w.cpuPct + (added.get(w.id) ?? 0)) / w.capacityPct);
					const reason = `reactive-migration: ${worker.id} over ${Math.round(options.stressThreshold * 100)}% for ${snapshot.t - overSince[worker.id]!} s`;
					const e = byPeer.get(peerId)!;
					for (const p of e.producers) {
						if (p.workerId !== worker.id) continue;
						actions.push({ type: 'migrateProducer', producerId: p.id, workerId: worker.id, toWorkerId: target.id, reason, predictedBeforePct: worker.cpuPct, predictedAfterPct: worker.cpuPct - cost });
					}
					const consumersHere = new Map<string, string[]>();
					for (const c of e.consumers) {
						if (c.workerId !== worker.id) continue;
						const list = consumersHere.get(c.producerId);
						if (list) list.push(c.id);
						else consumersHere.set(c.producerId, [c.id]);
					}
					for (const [producerId, consumerIds] of consumersHere) {
						actions.push({ type: 'spreadFanout', producerId, consumerIds, workerId: worker.id, toWorkerId: target.id, reason, predictedBeforePct: worker.cpuPct, predictedAfterPct: worker.cpuPct - cost });
					}
					added.set(target.id, (added.get(target.id) ?? 0) + cost);
					moved++;
				}
				if (moved > 0) lastMoveT[worker.id] = snapshot.t;
			}
			return { actions, state: { overSince, lastMoveT } };
		},
	};
}
