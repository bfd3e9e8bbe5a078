import { RowRing } from '../../plugin/store/rows';
import { Rng } from '../../plugin/util/rng';

interface Rec {
	ts: number;
	id: string;
	flag?: boolean;
	nothing?: null;
	layers: Array<{ w?: number; on: boolean }>;
	counts?: Record<string, number>;
}

const rec = (ts: number, layers = 2, extra: Partial<Rec> = {}): Rec => ({
	ts,
	id: `s-${ts % 3}`,
	layers: Array.from({ length: layers }, (_, i) => ({ w: 320 * (i + 1), on: i % 2 === 0 })),
	...extra,
});

describe('RowRing (typed rows)', () => {
	test('records come back equal, oldest first; a full ring overwrites its oldest', () => {
		const ring = new RowRing<Rec>(5);
		const written: Rec[] = [];
		for (let t = 0; t < 40; t++) {
			// Shapes change along the way: wider rows, optional keys, records, null, NaN-free floats.
			const r = rec(1000 * t + 0.25, 1 + (t % 4), t % 5 === 0 ? { flag: t % 2 === 0, nothing: null, counts: { a: t, 'b c': 0.5 } } : {});
			ring.push(r);
			written.push(r);
		}
		expect(ring.size).toBe(5);
		expect([...ring]).toEqual(written.slice(-5));
		expect(ring.tsAt(0)).toBe(written.at(-5)!.ts);
		expect(ring.last()).toEqual(written.at(-1));
		expect(ring.at(5)).toBeUndefined();
	});

	test('growth before the ring is full keeps every row; set() rewrites one in place', () => {
		const ring = new RowRing<Rec>(100);
		const written = Array.from({ length: 70 }, (_, t) => rec(t, t < 30 ? 1 : 6));
		for (const r of written) ring.push(r);
		expect([...ring]).toEqual(written);
		const replaced = rec(69, 2, { flag: true });
		ring.set(69, replaced);
		expect(ring.last()).toEqual(replaced);
		expect(() => ring.set(70, replaced)).toThrow(RangeError);
	});

	test('undefined keys are left out, as JSON leaves them out; functions are refused', () => {
		const ring = new RowRing<Rec>(2);
		ring.push({ ts: 1, id: 'x', layers: [], flag: undefined });
		expect(Object.keys(ring.at(0)!)).toEqual(['ts', 'id', 'layers']);
		expect(() => ring.push({ ts: 2, id: 'x', layers: [], counts: { f: (() => 1) as unknown as number } })).toThrow(TypeError);
	});

	test('dropBefore forgets the records older than a time; rows pushed after keep their order across growth', () => {
		const ring = new RowRing<Rec>(1000);
		const written: Rec[] = [];
		const push = (t: number): void => {
			const r = rec(t, 1 + (t % 3));
			ring.push(r);
			written.push(r);
		};
		for (let t = 0; t < 40; t++) push(t);
		expect(ring.dropBefore(25)).toBe(25);
		expect(ring.tsAt(0)).toBe(25);
		// The oldest row now sits mid-array: pushes past the array's end wrap, then grow it.
		for (let t = 40; t < 200; t++) push(t);
		expect([...ring]).toEqual(written.filter((r) => r.ts >= 25));
		expect(ring.dropBefore(25)).toBe(0);
		expect(ring.dropBefore(1e9)).toBe(200 - 25);
		expect(ring.size).toBe(0);
		push(500);
		expect([...ring]).toEqual([written.at(-1)]);
	});

	test('a series kept for a time span holds about what the span wrote, not its capacity', () => {
		const ring = new RowRing<Rec>(3600);
		// A minute's span at one record per second, for an hour.
		for (let t = 0; t < 3600; t++) {
			ring.push(rec(t));
			ring.dropBefore(t - 60);
		}
		expect(ring.size).toBe(61);
		// A row: ts, id and two layers of (w, on) as 6 float64 values, its shape id (int32) and its time (float64).
		const rowBytes = 6 * 8 + 4 + 8;
		// Rows are allocated in doublings of 16: a 61-record span takes 64 or 128 rows, never the capacity.
		expect(ring.bytes).toBeGreaterThanOrEqual(64 * rowBytes);
		expect(ring.bytes).toBeLessThanOrEqual(128 * rowBytes);
	});

	test('a full ring keeps its newest records when a wider record arrives at the slot it overwrites', () => {
		const ring = new RowRing<Rec>(4);
		const written = [0, 1, 2, 3, 4, 5].map((t) => rec(t, 1));
		for (const r of written) ring.push(r);
		const wide = rec(6, 5, { counts: { a: 1 } });
		ring.push(wide);
		expect([...ring]).toEqual([...written.slice(3), wide]);
	});

	test('pushes, rewrites and drops in any order read back as a plain array of the same records does', () => {
		const rng = new Rng(5);
		for (const capacity of [1, 3, 17, 40]) {
			const ring = new RowRing<Rec>(capacity);
			let model: Rec[] = [];
			let t = 0;
			for (let step = 0; step < 2000; step++) {
				const u = rng.next();
				if (u < 0.6) {
					const r = rec(++t, 1 + Math.floor(rng.next() * 4), rng.next() < 0.1 ? { counts: { a: t } } : {});
					ring.push(r);
					model.push(r);
					if (model.length > capacity) model.shift();
				} else if (u < 0.7 && model.length > 0) {
					const i = Math.floor(rng.next() * model.length);
					const r = rec(model[i]!.ts, 1 + Math.floor(rng.next() * 5));
					ring.set(i, r);
					model[i] = r;
				} else {
					const cutoff = t - Math.floor(rng.next() * 2 * capacity);
					ring.dropBefore(cutoff);
					model = model.filter((r) => r.ts >= cutoff);
				}
				expect(ring.size).toBe(model.length);
			}
			expect([...ring]).toEqual(model);
		}
	});
});
