import { createdEntities, type ActionOutcome } from '../../plugin/act/outcome';
import type { AllocationAction } from '../../plugin/allocate/actions';
import { guard, inheritCooldown, initialSafetyState, SAFETY_DEFAULTS } from '../../plugin/allocate/safety';

/**
 * A move gives media new ids; the new ones start on the cooldown of those they replace, so
 * a room moved whole to relieve one worker is not moved straight back in the next decision.
 */

const migration: ActionOutcome = { status: 'ok', effect: { type: 'migrateProducer', routerId: 'r2', newProducerId: 'p2', moved: [{ oldConsumerId: 'c1', newConsumerId: 'c2' }], pipedTo: [] } };
const moveBack = (producerId: string): AllocationAction => ({ type: 'migrateProducer', producerId, workerId: 'w2', toWorkerId: 'w1', reason: 'relieve w2', predictedBeforePct: 95, predictedAfterPct: 90 });
const spreadBack = (consumerId: string): AllocationAction => ({
	type: 'spreadFanout',
	producerId: 'p2',
	consumerIds: [consumerId],
	workerId: 'w2',
	toWorkerId: 'w1',
	reason: 'relieve w2',
	predictedBeforePct: 95,
	predictedAfterPct: 90,
});

test('the entities a move created: the new producer and the new consumers; nothing for other actions or failures', () => {
	expect(createdEntities(migration)).toEqual(['producer:p2', 'consumer:c2']);
	expect(
		createdEntities({ status: 'ok', effect: { type: 'spreadFanout', routerId: 'r2', servedProducerId: 'p1', piped: true, moved: [{ oldConsumerId: 'c1', newConsumerId: 'c3' }], notMoved: [] } }),
	).toEqual(['consumer:c3']);
	expect(createdEntities({ status: 'ok', effect: { type: 'pauseConsumer' } })).toEqual([]);
	expect(createdEntities({ status: 'error', code: 'hookFailed', reason: 'x' })).toEqual([]);
	expect(createdEntities(undefined)).toEqual([]);
});

test('moving the new producer or consumers back is held on cooldown until it has run out', () => {
	const state = inheritCooldown(initialSafetyState(SAFETY_DEFAULTS), createdEntities(migration), 100);
	const at = (t: number) => guard([moveBack('p2'), spreadBack('c2'), moveBack('other')], t, state, SAFETY_DEFAULTS).audit.map((r) => r.outcome);
	expect(at(101)).toEqual(['cooldown', 'cooldown', 'applied']);
	expect(at(100 + SAFETY_DEFAULTS.entityCooldownS)).toEqual(['applied', 'applied', 'applied']);
	// Without the inheritance the new ids are unknown to the guard: straight back.
	expect(guard([moveBack('p2')], 101, initialSafetyState(SAFETY_DEFAULTS), SAFETY_DEFAULTS).audit[0]!.outcome).toBe('applied');
});
