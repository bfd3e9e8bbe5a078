import { CLIP_FPS, CLIP_SIZES, clipPlan } from '../../training/record/clips';

describe('seeded clip plans (pure)', () => {
	test('a seed always gives the same clip; cuts are whole frames 2–8 s apart and tile the clip', () => {
		expect(clipPlan(1000, 60)).toEqual(clipPlan(1000, 60));
		expect(clipPlan(1000, 60).filter).not.toBe(clipPlan(1001, 60).filter);
		for (let seed = 0; seed < 40; seed++) {
			const { truth, filter } = clipPlan(seed, 60);
			expect(CLIP_SIZES.some(([w, h]) => w === truth.width && h === truth.height)).toBe(true);
			expect(CLIP_FPS).toContain(truth.fps);
			expect(truth.loopS).toBeCloseTo(60, 6);
			expect(truth.segments[0]!.startS).toBe(0);
			truth.segments.forEach((s, i) => {
				if (i > 0) expect(s.startS).toBe(truth.segments[i - 1]!.endS);
				const frames = (s.endS - s.startS) * truth.fps;
				// The last segment is cut short by the clip's end; the others are 2–8 s of whole frames.
				if (i < truth.segments.length - 1) {
					expect(Math.abs(frames - Math.round(frames))).toBeLessThan(1e-3);
					expect(s.endS - s.startS).toBeGreaterThanOrEqual(2 - 1 / truth.fps);
					expect(s.endS - s.startS).toBeLessThanOrEqual(8 + 1 / truth.fps);
				}
			});
			expect(truth.cutsS).toEqual(truth.segments.slice(1).map((s) => s.startS));
			expect(filter.match(/concat=n=(\d+)/)![1]).toBe(String(truth.segments.length));
		}
		// Both sizes and both framerates occur among the held-out seeds.
		const held = Array.from({ length: 20 }, (_, i) => clipPlan(1000 + i, 60).truth);
		expect(new Set(held.map((t) => t.width)).size).toBe(2);
		expect(new Set(held.map((t) => t.fps)).size).toBe(2);
	});
});
