import { RowRing } from '../../plugin/store/rows';

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
});
