import { growthPerReceiverPctPerS, recordJoins, roomGrowth, workerGrowth } from '../../plugin/allocate/policies/growth';

describe('room growth trend', () => {
	it('keeps only the joins of the window and ignores joins that send nothing', () => {
		let trace = recordJoins({}, 0, [{ roomId: 'r', egressPct: 0.26 }], 10);
		trace = recordJoins(trace, 5, [{ roomId: 'r', egressPct: 0.2 }, { roomId: 'viewers', egressPct: 0 }], 10);
		expect(trace).toEqual({ r: [[0, 0.26], [5, 0.2]] });
		trace = recordJoins(trace, 10, [], 10);
		expect(trace).toEqual({ r: [[5, 0.2]] });
		expect(recordJoins(trace, 15, [], 10)).toEqual({});
	});

	it('is no trend for a single join (churn), and the sustained join rate times the egress per joiner otherwise', () => {
		expect(growthPerReceiverPctPerS(undefined, 10)).toBe(0);
		expect(growthPerReceiverPctPerS([[3, 0.26]], 10)).toBe(0);
		const joins: Array<[number, number]> = [
			[0, 0.2],
			[2, 0.3],
			[4, 0.25],
			[6, 0.25],
		];
		// Three joins after the first in 10 s, 0.25% each on average.
		expect(growthPerReceiverPctPerS(joins, 10)).toBeCloseTo((3 / 10) * 0.25);
	});

	it('adds up per worker: each receiver of a growing room grows by the room rate', () => {
		const growth = roomGrowth({ a: [[0, 0.2], [1, 0.2], [2, 0.2]], b: [[0, 0.3]] }, 10);
		expect([...growth.keys()]).toEqual(['a']);
		const receivers = new Map([
			['a', new Map([['w0', new Set(['p1', 'p2'])], ['w1', new Set(['p3'])]])],
			['b', new Map([['w1', new Set(['p4', 'p5'])]])],
		]);
		const perReceiver = growth.get('a')!;
		expect(workerGrowth(receivers, growth)).toEqual(new Map([['w0', 2 * perReceiver], ['w1', perReceiver]]));
	});
});
