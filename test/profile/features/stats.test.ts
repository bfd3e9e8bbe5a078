import { cv, mean, median, quantile, scaledMad, SortedWindow, std } from '../../../plugin/profile/features/stats';
import { rng } from './helpers';

describe('descriptive statistics', () => {
	it('match their textbook definitions', () => {
		expect(mean([1, 2, 3, 4])).toBe(2.5);
		expect(std([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2);
		expect(cv([2, 4, 4, 4, 5, 5, 7, 9])).toBe(0.4);
		expect(cv([0, 0])).toBe(0);
		expect(quantile([1, 2, 3, 4, 5], 0.95)).toBeCloseTo(4.8, 12);
		expect(median([5, 1, 3, 2])).toBe(2.5);
		expect(scaledMad([1, 1, 2, 2, 4, 6, 9])).toBeCloseTo(1.4826, 12);
		expect(mean([])).toBe(0);
		expect(quantile([], 0.5)).toBe(0);
	});
});

describe('SortedWindow', () => {
	it('gives the same median and scaled MAD as recomputing over the sliding window', () => {
		const random = rng(21);
		let worst = 0;
		let checks = 0;
		for (const capacity of [1, 2, 7, 90]) {
			const window = new SortedWindow(capacity);
			const values: number[] = [];
			for (let i = 0; i < 2000; i++) {
				// Repeated values on purpose: ties must not confuse the removal.
				const v = random() < 0.2 ? 5 : Math.round(random() * 1000) / 10;
				window.push(v);
				values.push(v);
				const recent = values.slice(-capacity);
				if (window.size !== recent.length) worst = Infinity;
				worst = Math.max(worst, Math.abs(window.median() - median(recent)), Math.abs(window.scaledMad() - scaledMad(recent)));
				checks++;
			}
		}
		expect(checks).toBe(8000);
		expect(worst).toBeLessThan(1e-9);
	});
});
