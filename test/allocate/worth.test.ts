import { avoidedExposure, costOf, expectedSecondsOver, paysForItself, probabilityOver, QUALITY_PRICE, type Outlook } from '../../plugin/allocate/worth';
import { QUALITY_WEIGHTS } from '../../plugin/allocate/sim/metrics';
import { TRUTH } from '../../plugin/allocate/sim/groundTruth';
import { FORESIGHT_DEFAULTS } from '../../plugin/allocate/policies/foresight';

const rules = { worthMargin: 2, costFactor: 1, worthWindowS: 30 };
const outlook = (meanPct: number, p95Pct: number, extra: Partial<Outlook> = {}): Outlook => ({
	forecast: [
		{ horizonS: 5, meanPct, p95Pct },
		{ horizonS: 15, meanPct, p95Pct },
		{ horizonS: 30, meanPct, p95Pct },
	],
	cpuPct: meanPct,
	shiftPct: 0,
	growthPctPerS: 0,
	growthHorizonS: 15,
	windowS: 30,
	...extra,
});

describe('worth: does an action pay for itself', () => {
	it('prices as the evaluation does (docs/allocation-metrics.md)', () => {
		// The policy's prices are the published ones; the simulator's weights and move disruptions must not drift from them.
		expect(QUALITY_PRICE.downgradePerS).toBe(QUALITY_WEIGHTS.downgradeS);
		expect(QUALITY_PRICE.pausedPerS).toBe(QUALITY_WEIGHTS.pausedS);
		expect(QUALITY_PRICE.lostConsumer).toBe(QUALITY_WEIGHTS.dropped);
		expect(QUALITY_PRICE.lostConsumer).toBe(QUALITY_WEIGHTS.refusedConsumer);
		expect(QUALITY_PRICE.movedConsumerS).toBe(TRUTH.consumerMoveDisruptionS * QUALITY_WEIGHTS.disruptionS);
		expect(QUALITY_PRICE.migratedReceiverS).toBe(TRUTH.producerMoveDisruptionS * QUALITY_WEIGHTS.disruptionS);
		expect(FORESIGHT_DEFAULTS.worthMargin).toBeGreaterThanOrEqual(1);
	});

	it('reads the probability of being over the line off the forecast', () => {
		expect(probabilityOver(85, 85 + 1.645, 85)).toBeCloseTo(0.5, 6);
		expect(probabilityOver(80, 85, 85)).toBeCloseTo(0.05, 3);
		expect(probabilityOver(90, 90, 85)).toBe(1);
		expect(probabilityOver(80, 80, 85)).toBe(0);
	});

	it('counts expected seconds over the line within the window, the last forecast held', () => {
		expect(expectedSecondsOver(outlook(90, 90), 85)).toBe(30);
		expect(expectedSecondsOver(outlook(70, 75), 85)).toBeLessThan(0.01);
		// Only the 30 s horizon is over: 15 of the 30 s.
		const late = { ...outlook(70, 70), forecast: [{ horizonS: 5, meanPct: 70, p95Pct: 70 }, { horizonS: 15, meanPct: 70, p95Pct: 70 }, { horizonS: 30, meanPct: 90, p95Pct: 90 }] };
		expect(expectedSecondsOver(late, 85)).toBe(15);
		// A shorter forecast holds its last horizon to the end of the window.
		expect(expectedSecondsOver({ ...outlook(90, 90), forecast: [{ horizonS: 5, meanPct: 90, p95Pct: 90 }] }, 85)).toBe(30);
		// Growth lifts the later horizons; a shift moves the whole outlook.
		expect(expectedSecondsOver(outlook(80, 80, { growthPctPerS: 1 }), 85)).toBe(25);
		expect(expectedSecondsOver(outlook(90, 90, { shiftPct: -10 }), 85)).toBe(0);
		// Growth taken within the tail: a 10-point band over a mean of 76 stays the band while growth is smaller
		// (at 15 s, 3 points: p95 86 instead of 89); the mean still grows.
		const banded = (within: boolean): number => expectedSecondsOver(outlook(76, 86, { growthPctPerS: 0.2, growthWithinTail: within }), 85);
		expect(banded(true)).toBeLessThan(banded(false));
		expect(banded(true)).toBeGreaterThan(expectedSecondsOver(outlook(76, 86), 85));
		// No forecast: the measured load holds.
		expect(expectedSecondsOver({ ...outlook(0, 0), forecast: [], cpuPct: 90 }, 85)).toBe(30);
	});

	it('avoided exposure: receivers spared on the source, less what the target gains', () => {
		const hot = { outlook: outlook(90, 90), consumers: 100 };
		// Taking 10 pp off brings it under for sure: all 100 receivers spared for 30 s.
		expect(avoidedExposure(hot, { pct: 10, consumers: 0 }, undefined, 85)).toBe(3000);
		// Moving 20 receivers without relieving it spares just those 20.
		expect(avoidedExposure(hot, { pct: 0, consumers: 20 }, undefined, 85)).toBe(600);
		// A target pushed over the line gives back what it now exposes.
		const full = { outlook: outlook(80, 80), consumers: 50 };
		expect(avoidedExposure(hot, { pct: 10, consumers: 20 }, full, 85)).toBe(3000 - 70 * 30);
	});

	it('a move pays only when the exposure it avoids is worth the margin times its disruption', () => {
		expect(costOf({ movedConsumers: 10, migratedReceivers: 5, downgraded: 2, paused: 1, lost: 1, forS: 30 }, rules)).toBe(10 + 10 + 30 + 30 + 60);
		expect(paysForItself(41, { movedConsumers: 20 }, rules)).toBe(true);
		expect(paysForItself(39, { movedConsumers: 20 }, rules)).toBe(false);
		expect(paysForItself(0, {}, rules)).toBe(true);
		// A worker unlikely to cross the line (p95 just under it): moving a 40-receiver room whole does not pay …
		const maybe = { outlook: outlook(80, 84), consumers: 200 };
		expect(paysForItself(avoidedExposure(maybe, { pct: 10, consumers: 40 }, undefined, 85), { migratedReceivers: 40 }, rules)).toBe(false);
		// … on one surely over it, it does.
		const sure = { outlook: outlook(88, 89), consumers: 200 };
		expect(paysForItself(avoidedExposure(sure, { pct: 10, consumers: 40 }, undefined, 85), { migratedReceivers: 40 }, rules)).toBe(true);
	});
});
