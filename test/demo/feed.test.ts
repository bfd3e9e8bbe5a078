import { ActionLog, REPEAT_WINDOW_MS, type ActionInput } from '../../demo/feed';

/** The dashboard's action log: identical actions on one worker fold into one row with a count, savings summed, effect measured. */

const action = (over: Partial<ActionInput> = {}): ActionInput => ({
	ts: 1000,
	type: 'dropConsumer',
	workerId: 'w1',
	toWorkerId: null,
	target: 'c1',
	reason: 'why',
	outcome: 'applied',
	predictedBeforePct: 9.8,
	predictedAfterPct: 9.7,
	measuredBeforePct: 7.9,
	measuredAfterPct: null,
	...over,
});

describe('ActionLog', () => {
	test('identical actions on one worker within the window fold into one row with a count and the summed saving', () => {
		const log = new ActionLog();
		const first = log.add(action());
		for (let i = 2; i <= 5; i++) expect(log.add(action({ ts: 1000 + i * 1000, target: `c${i}`, predictedBeforePct: 9.7, predictedAfterPct: 9.5 }))).toBe(first);
		expect(log.rows).toHaveLength(1);
		expect(first.count).toBe(5);
		expect(first.predictedSavingPct).toBeCloseTo(0.1 + 4 * 0.2, 9);
		expect(first.target).toBe('c5 +4');
		expect(first.lastTs).toBe(6000);
		expect(first.measuredBeforePct).toBe(7.9);
		expect(log.takeChanged()).toEqual([first]);
		expect(log.takeChanged()).toEqual([]);
	});

	test('another worker, target worker, type or outcome, or a gap past the window, starts a new row', () => {
		const log = new ActionLog();
		log.add(action());
		log.add(action({ workerId: 'w2' }));
		log.add(action({ type: 'pauseConsumer' }));
		log.add(action({ outcome: 'failed' }));
		log.add(action({ type: 'spreadFanout', toWorkerId: 'w2' }));
		log.add(action({ type: 'spreadFanout', toWorkerId: 'w3' }));
		log.add(action({ ts: 1000 + REPEAT_WINDOW_MS }));
		expect(log.rows.map((r) => r.count)).toEqual([1, 1, 1, 1, 1, 1, 1]);
		// Within the window of the row's latest action (not its first), it keeps folding.
		log.add(action({ ts: 1000 + REPEAT_WINDOW_MS + 10_000 }));
		log.add(action({ ts: 1000 + REPEAT_WINDOW_MS + 20_000 }));
		expect(log.rows.at(-1)!.count).toBe(3);
	});

	test('the measured change is the latest measurement minus the CPU when the row started', () => {
		const log = new ActionLog();
		const row = log.add(action({ type: 'spreadFanout', toWorkerId: 'w2', measuredBeforePct: 9.5 }));
		expect(row.measuredChangePct).toBeNull();
		log.takeChanged();
		log.measured(row, 6.5);
		expect(row.measuredAfterPct).toBe(6.5);
		expect(row.measuredChangePct).toBeCloseTo(-3, 9);
		expect(log.takeChanged()).toEqual([row]);
		const unknownBefore = log.add(action({ workerId: 'w9', measuredBeforePct: null }));
		log.measured(unknownBefore, 5);
		expect(unknownBefore.measuredChangePct).toBeNull();
	});
});
