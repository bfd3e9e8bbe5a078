import { fixedPlacementSlack, fluidSecond, repackSecond, type OracleOptions } from '../../plugin/allocate/sim/oracle';

const options: OracleOptions = { capPct: 85, basePct: 0.5, corePct: 100 };
const slack = (...loads: number[]): number => loads.reduce((s, l) => s + 1 - l / 100, 0) / loads.length;
const series = (durationS: number, from: number, to: number, pct: number): Float64Array => {
	const s = new Float64Array(durationS);
	for (let t = from; t <= to; t++) s[t] = pct;
	return s;
};

describe('reference packers', () => {
	it('repacks a second best-fit decreasing under the cap', () => {
		// 50 opens a worker, 40 does not fit beside it, 30 joins the fuller (50), 10 the other.
		const packed = repackSecond([50, 30, 40, 10, 0], options);
		expect(packed.workers).toBe(2);
		expect(packed.slack).toBeCloseTo(slack(80.5, 50.5));
	});

	it('cuts a room larger than a worker into full workers and a remainder', () => {
		const packed = repackSecond([200], options);
		expect(packed.workers).toBe(3);
		expect(packed.slack).toBeCloseTo(slack(85, 85, 31.5));
	});

	it('gives the fluid bound: the total on as few capped workers as it takes', () => {
		expect(fluidSecond([50, 30, 40, 10], options)).toBeCloseTo(1 - (130 + 2 * 0.5) / 200);
		expect(fluidSecond([], options)).toBe(0);
		// The bound is never above what a room-by-room packing leaves.
		expect(fluidSecond([50, 30, 40, 10], options)).toBeLessThanOrEqual(repackSecond([50, 30, 40, 10], options).slack + 1e-9);
	});

	it('places rooms for good at arrival, fitting their whole future under the cap', () => {
		const durationS = 10;
		// A later room fits beside the first one: one worker from then on.
		const together = fixedPlacementSlack(
			new Map([
				['a', series(durationS, 0, 9, 50)],
				['b', series(durationS, 5, 9, 30)],
			]),
			durationS,
			options,
		);
		expect(together.workers).toBe(1);
		expect(together.slack).toBeCloseTo((5 * slack(50.5) + 5 * slack(80.5)) / 10);
		// A room small now but large later keeps its worker for its peak: the other room fits beside it at t = 0 but not at t = 5.
		const growing = new Float64Array(durationS);
		for (let t = 0; t < durationS; t++) growing[t] = t < 5 ? 10 : 60;
		const apart = fixedPlacementSlack(
			new Map([
				['grows', growing],
				['steady', series(durationS, 0, 9, 50)],
			]),
			durationS,
			options,
		);
		expect(apart.workers).toBe(2);
		expect(apart.slack).toBeCloseTo((5 * slack(10.5, 50.5) + 5 * slack(60.5, 50.5)) / 10);
		// Repacking every second could have put both on one worker for the first five seconds.
		expect(repackSecond([10, 50], options).workers).toBe(1);
	});
});
