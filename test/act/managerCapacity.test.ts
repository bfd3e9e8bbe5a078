import { safetyForCapacity } from '../../plugin/act/manager';
import type { AllocationAction } from '../../plugin/allocate/actions';
import { foresightPolicy } from '../../plugin/allocate/policies/foresight';
import { guard, initialSafetyState, SAFETY_DEFAULTS, withSafety, type SafetyOptions } from '../../plugin/allocate/safety';
import { SnapshotBuilder } from '../allocate/fixtures';

/** The guard's options as the manager builds them for workers that may use `capacityPct` of a core. */
const managerSafety = (capacityPct: number, overrides?: Partial<SafetyOptions>): SafetyOptions => ({ ...SAFETY_DEFAULTS, ...safetyForCapacity(capacityPct, overrides) });

const consolidate = (id: string, sourcePct: number, targetPct: number): AllocationAction => ({
	type: 'migrateProducer',
	intent: 'consolidate',
	producerId: id,
	workerId: 'w0',
	toWorkerId: 'w1',
	targetPredictedAfterPct: targetPct,
	reason: 'test',
	predictedBeforePct: sourcePct,
	predictedAfterPct: 0,
});
const relieve = (id: string, sourcePct: number): AllocationAction => ({
	type: 'migrateProducer',
	producerId: id,
	workerId: 'w0',
	toWorkerId: 'w1',
	reason: 'test',
	predictedBeforePct: sourcePct,
	predictedAfterPct: sourcePct - 1,
});
const outcomes = (actions: AllocationAction[], options: SafetyOptions): string[] => guard(actions, 0, initialSafetyState(options), options).audit.map((r) => r.outcome);

describe('allocation manager: safety thresholds follow the per-worker CPU budget', () => {
	test('at full capacity the guard runs on its defaults', () => {
		expect(managerSafety(100)).toEqual(SAFETY_DEFAULTS);
	});

	test('with a tenth of a core, consolidation is judged against a tenth of the bands', () => {
		const options = managerSafety(10);
		const below = SAFETY_DEFAULTS.consolidateBelowPct / 10;
		const ceiling = SAFETY_DEFAULTS.consolidateCeilingPct / 10;
		// A worker at 8 % of a core is at 80 % of its budget: not a light worker to empty, though far under 55 % of a core.
		const actions = [consolidate('light', below - 0.5, ceiling - 1), consolidate('busy', 8, ceiling - 1), consolidate('overfills', below - 0.5, ceiling + 1)];
		expect(outcomes(actions, options)).toEqual(['applied', 'hysteresis', 'hysteresis']);
		// Scaling only the relief bands, as the manager used to, lets all three through.
		expect(outcomes(actions, { ...SAFETY_DEFAULTS, highBandPct: 7.5, lowBandPct: 7.2 })).toEqual(['applied', 'applied', 'applied']);
	});

	test('the relief bands still scale: relief from 8 % of a core is let through at a 10 % budget, from 7 % held back', () => {
		expect(outcomes([relieve('hot', 8), relieve('warm', 7)], managerSafety(10))).toEqual(['applied', 'hysteresis']);
	});

	test('explicit safety options win and are not scaled', () => {
		const options = managerSafety(10, { consolidateBelowPct: 9, highBandPct: 60 });
		expect(options).toMatchObject({ consolidateBelowPct: 9, highBandPct: 60, consolidateCeilingPct: SAFETY_DEFAULTS.consolidateCeilingPct / 10, lowBandPct: SAFETY_DEFAULTS.lowBandPct / 10 });
		expect(outcomes([consolidate('busy', 8, 7)], options)).toEqual(['applied']);
	});

	describe('behind the Foresight policy, which scales its own thresholds by worker.capacityPct', () => {
		/** Three workers with a small audio room each; w0, the lightest, is the one to empty. */
		const build = (sourcePct: number, otherPcts: [number, number]) => {
			const snapshot = new SnapshotBuilder()
				.worker('w0', sourcePct)
				.worker('w1', otherPcts[0])
				.worker('w2', otherPcts[1])
				.producer('a', 'a', 'a', 'w0', 'audio')
				.consume('a', 'w0', 2)
				.producer('b', 'b', 'b', 'w1', 'audio')
				.consume('b', 'w1', 2, { peerPrefix: 'b' })
				.producer('c', 'c', 'c', 'w2', 'audio')
				.consume('c', 'w2', 2, { peerPrefix: 'c' })
				.build();
			for (const w of snapshot.workers) w.capacityPct = 10;
			return snapshot;
		};
		const decide = (policyOptions: Parameters<typeof foresightPolicy>[0], sourcePct: number, otherPcts: [number, number]) => {
			const policy = withSafety(foresightPolicy(policyOptions), safetyForCapacity(10));
			return policy.decide(build(sourcePct, otherPcts), policy.initialState()).state.audit;
		};

		// Consolidation is off by default (consolidateCandidates 0); these turn it on at its default bands.
		const CONSOLIDATING = { consolidateCandidates: 3 };

		test('with consolidation on at its default bands, its consolidations of a light worker pass the scaled guard', () => {
			const audit = decide(CONSOLIDATING, 2, [3, 4]);
			expect(audit.length).toBeGreaterThan(0);
			expect(audit.every((r) => isConsolidationFrom(r.action, 'w0') && r.outcome === 'applied')).toBe(true);
		});

		test('a policy tuned to consolidate busier workers is held back by the scaled guard', () => {
			// The policy may now empty a worker up to its whole budget and fill others to it; a source
			// at 60 % of its budget is no light worker to the guard (at most 5.5 % of a core is).
			const eager = { ...CONSOLIDATING, consolidateBelowPct: 100, consolidateFillPct: 100 };
			const busy = decide(eager, 6, [6.5, 6.2]);
			expect(busy.length).toBeGreaterThan(0);
			expect(busy.every((r) => isConsolidationFrom(r.action, 'w0') && r.outcome === 'hysteresis')).toBe(true);
			const light = decide(eager, 5, [6, 5.5]);
			expect(light.length).toBeGreaterThan(0);
			expect(light.every((r) => isConsolidationFrom(r.action, 'w0') && r.outcome === 'applied')).toBe(true);
		});
	});
});

function isConsolidationFrom(action: AllocationAction, workerId: string): boolean {
	return (action.type === 'spreadFanout' || action.type === 'migrateProducer') && action.intent === 'consolidate' && action.workerId === workerId;
}
