import { expectedOutlook, exposureAdded, moveAvoidedExposure, reliefDue, reliefNeedPct, splitRelieves, type ExposureSide } from '../../plugin/allocate/policies/relief';
import { indexSnapshot, joinCostPct, pipeCostPct, splitLeftPct, typicalIngressRate } from '../../plugin/allocate/estimate';
import { packetCostPct } from '../../plugin/allocate/snapshot';
import { SnapshotBuilder } from './fixtures';
import { avoidedExposure, expectedSecondsOver, type Outlook } from '../../plugin/allocate/worth';

const outlook = (meanPct: number, p95Pct: number): Outlook => ({
	forecast: [
		{ horizonS: 5, meanPct, p95Pct },
		{ horizonS: 30, meanPct, p95Pct },
	],
	cpuPct: meanPct,
	shiftPct: 0,
	growthPctPerS: 0.5,
	growthHorizonS: 15,
	windowS: 30,
});
const side = (meanPct: number, p95Pct: number, consumers: number): ExposureSide => ({ outlook: outlook(meanPct, p95Pct), consumers, linePct: 85 });
const rule = { onExpected: true, limitPct: 85, actAbovePct: 86, relieveToPct: 83 };

describe('relief: when a worker is relieved by moves', () => {
	it('triggers on the expected load over the limit, not on the trajectory (tail and growth) over the action line', () => {
		// Mean 80, a 15-point tail: the trajectory is over the action line, the expected load is not.
		expect(reliefDue({ expectedPct: 80, trajectoryPct: 95 }, rule)).toBe(false);
		expect(reliefDue({ expectedPct: 80, trajectoryPct: 95 }, { ...rule, onExpected: false })).toBe(true);
		expect(reliefDue({ expectedPct: 86, trajectoryPct: 95 }, rule)).toBe(true);
	});

	it('relieves down to the relief target on the load it triggered on', () => {
		expect(reliefNeedPct({ expectedPct: 88, trajectoryPct: 100 }, rule)).toBeCloseTo(5);
		expect(reliefNeedPct({ expectedPct: 88, trajectoryPct: 100 }, { ...rule, onExpected: false })).toBeCloseTo(17);
	});

	it("counts a worker over the line only while its mean is: the forecast's tail and the growth are stripped", () => {
		expect(expectedSecondsOver(outlook(80, 95), 85)).toBeGreaterThan(5);
		expect(expectedSecondsOver(expectedOutlook(outlook(80, 95)), 85)).toBe(0);
		expect(expectedSecondsOver(expectedOutlook(outlook(86, 95)), 85)).toBe(30);
	});
});

describe('relief: does a move pay, net of what it adds elsewhere', () => {
	it('is the plain avoided exposure when the move adds nothing beyond its own load on its target', () => {
		const source = side(88, 95, 100);
		const target = side(60, 70, 40);
		const plain = avoidedExposure(source, { pct: 5, consumers: 10 }, target, 85);
		expect(moveAvoidedExposure(source, { pct: 5, consumers: 10 }, { ...target, pct: 5 })).toBeCloseTo(plain);
	});

	it("charges the pipes' load on the target and on the producers' workers", () => {
		const source = { ...side(86, 86, 30), outlook: expectedOutlook(outlook(86, 86)) };
		const target = { ...side(84.8, 84.8, 50), outlook: expectedOutlook(outlook(84.8, 84.8)) };
		const feeder = { ...side(84.5, 84.5, 300), outlook: expectedOutlook(outlook(84.5, 84.5)) };
		const relief = { pct: 2, consumers: 6 };
		// Under the line either way without the pipes: the source's whole exposure is avoided.
		const bare = moveAvoidedExposure(source, relief, { ...target, pct: 0.1 });
		expect(bare).toBeCloseTo(30 * 30);
		// The pipe ingress tips the target over: its receivers and the moved ones are exposed for the window.
		expect(moveAvoidedExposure(source, relief, { ...target, pct: 0.3 })).toBeCloseTo(30 * 30 - 56 * 30);
		// The pipes' egress tips the producers' worker over: its 300 receivers count against the move.
		expect(moveAvoidedExposure(source, relief, { ...target, pct: 0.1 }, [{ ...feeder, pct: 0.8 }])).toBeCloseTo(30 * 30 - 300 * 30);
		expect(exposureAdded(feeder, 0.3, 0)).toBe(0);
	});
});

describe('relief: a split at admission relieves the room\'s worker only when it takes it under its line', () => {
	it('splits only when what the split leaves there keeps the worker at or under the line', () => {
		expect(splitRelieves({ expectedPct: 12.5, linePct: 12.75 }, 0.2)).toBe(true);
		expect(splitRelieves({ expectedPct: 12.6, linePct: 12.75 }, 0.2)).toBe(false);
		expect(splitRelieves({ expectedPct: 14, linePct: 12.75 }, 0)).toBe(false);
	});

	it('what a split leaves: the joiner\'s streams to the receivers there (plus their pipe in), and a pipe out per producer not yet piped', () => {
		const snapshot = new SnapshotBuilder().worker('w0', 10).worker('w1', 3).producer('v', 'host', 'r', 'w0').producer('a', 'host', 'r', 'w0', 'audio').consume('v', 'w0', 3).consume('a', 'w0', 3).join('x', 'r').build();
		const index = indexSnapshot(snapshot);
		const model = snapshot.costModel;
		const join = snapshot.pendingJoins[0]!;
		const pipesOut = index.producersByRoom.get('r')!.reduce((s, p) => s + pipeCostPct(p, model).source, 0);
		const pipeIn = packetCostPct(typicalIngressRate('audio') + typicalIngressRate('video'), model.pipeIngressUsPerPacket);
		expect(splitLeftPct(join, 'w0', 'w1', 3, 0.25, index, model)).toBeCloseTo(3 * 0.25 + pipeIn + pipesOut, 9);
		// A viewer sends nothing: only the pipes out, which a producer already piped to the target does not add again.
		const viewer = { ...join, sends: [] };
		expect(splitLeftPct(viewer, 'w0', 'w1', 3, 0, index, model)).toBeCloseTo(pipesOut, 9);
		index.pipedTo.set(index.producersByRoom.get('r')![0]!.id, new Set(['w1']));
		expect(splitLeftPct(viewer, 'w0', 'w1', 3, 0, index, model)).toBeCloseTo(pipeCostPct(index.producersByRoom.get('r')![1]!, model).source, 9);
		// At the cost model's prices, keeping a viewer costs its worker little more than sending it away.
		const kept = joinCostPct(viewer, 'w0', index, model);
		expect(kept - splitLeftPct(viewer, 'w0', 'w1', 3, 0, index, model)).toBeLessThan(0.5);
	});
});
