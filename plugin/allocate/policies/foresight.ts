import type { AllocationPolicy } from '../actions';
import { indexSnapshot } from '../estimate';
import { consolidate } from './foresightConsolidate';
import { moveWholeRooms, spreadFanout, migrateProducers } from './foresightMoves';
import { placeJoins } from './foresightPlace';
import { Plan } from './foresightPlan';
import { degrade, restore } from './foresightQuality';
import type { ForesightPolicyOptions, ForesightState } from './foresightTypes';
import { reliefDue } from './relief';

export type { ForesightPolicyOptions, ForesightState } from './foresightTypes';

export const FORESIGHT_DEFAULTS: Readonly<ForesightPolicyOptions> = Object.freeze({
	limitPct: 85,
	reliefOnExpected: true,
	priceFromAttribution: true,
	actAbovePct: 86,
	relieveToPct: 83,
	degradeAbovePct: 85,
	fillBelowPct: 82,
	newRoomReservePct: 20,
	newRoomOnFullest: true,
	relocateOutgrownRooms: true,
	relocateHeadroom: 1,
	relocateGrowingOnly: true,
	newRoomAvoidsGrowth: true,
	youngRoomsGrow: true,
	growthWithinTail: false,
	keepWithRoomBelowPct: 85,
	splitOnlyToRelieve: true,
	roomTargetsOnExpected: true,
	growthWindowS: 15,
	growthHorizonS: 15,
	consolidateBelowPct: 55,
	consolidateFillPct: 78,
	// None by default: emptying a light worker avoids no exposure, and every move costs its receivers (worth.ts).
	consolidateCandidates: 0,
	restoreBelowPct: 70,
	restoreCeilingPct: 72,
	protectPriority: 200,
	minFanout: 1,
	moveWholeRooms: true,
	maxRestoresPerWorker: 20,
	memoryS: 30,
	worthWindowS: 30,
	// The avoided exposure is a forecast and the cost is certain: a move must be forecast to avoid twice what it costs.
	worthMargin: 2,
	costFactor: 1,
	// Under half a top-layer video receiver (0.2 % of a core): an audio receiver's loss never pays.
	minDegradeSavingPct: 0.1,
	// With the share-of-excess floor, ten degrades cover any excess they are allowed to act on.
	maxDegradesPerWorkerPerTick: 10,
	maxDegradesPerWorkerPerMinute: 30,
});

/**
 * Foresight: places joins on every worker's predicted trajectory (the predictor's worst p95
 * over its horizons plus the growth its rooms' join trends will bring) and acts before
 * the overload with the cheapest action that suffices: placement that fills a worker
 * before opening another, then, only on the expected load (never on the tail or the
 * extrapolation, see `reliefOnExpected`), fan-out spreading and producer migration that
 * pay for their disruption and pipes, lower layers, pause, drop, and refusal at admission. When load recedes, light workers are emptied onto fuller ones.
 * Active speakers and high-priority consumers are never degraded; quality is restored
 * only well below the action band.
 */
export function foresightPolicy(overrides: Partial<ForesightPolicyOptions> = {}): AllocationPolicy<ForesightState> {
	const options: ForesightPolicyOptions = { ...FORESIGHT_DEFAULTS, ...overrides };
	return {
		name: 'foresight',
		initialState: () => ({ recent: {}, joins: {} }),
		decide(snapshot, state) {
			const plan = new Plan(snapshot, indexSnapshot(snapshot), options, state);
			placeJoins(plan);
			const hottest = [...snapshot.workers].sort((a, b) => plan.reliefLoad(b) - plan.reliefLoad(a));
			for (const worker of hottest) {
				if (!reliefDue(plan.reliefLoads(worker.id), plan.reliefRule(worker))) break;
				if (options.moveWholeRooms) moveWholeRooms(plan, worker);
				spreadFanout(plan, worker);
				migrateProducers(plan, worker);
				degrade(plan, worker);
			}
			consolidate(plan);
			for (const worker of snapshot.workers) restore(plan, worker);
			return { actions: plan.actions, state: plan.nextState() };
		},
	};
}
