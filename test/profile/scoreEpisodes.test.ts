import { ScoreEpisodes } from '../../plugin/profile/scoreEpisodes';

const enc = (...xs: number[]): Array<{ score: number }> => xs.map((score) => ({ score }));

/** Feeds [second, worst score of 3 encodings] reports; returns the seconds that triggered. */
function triggers(e: ScoreEpisodes, reports: Array<[number, number]>): number[] {
	return reports.filter(([s, score]) => e.observe(s * 1000, enc(10, score, 10))).map(([s]) => s);
}

describe('ScoreEpisodes (the producer score trigger)', () => {
	test('one-point wobbles never trigger, however long they go on', () => {
		const e = new ScoreEpisodes(enc(10, 10, 10), 0);
		const reports: Array<[number, number]> = [];
		for (let s = 1; s < 600; s += 2) reports.push([s, s % 4 === 1 ? 9 : 10]);
		expect(triggers(e, reports)).toEqual([]);
	});

	test('a dip that recurs every 12 s triggers once, not at each recurrence or recovery', () => {
		const e = new ScoreEpisodes(enc(10, 10, 10), 0);
		const reports: Array<[number, number]> = [];
		for (let s = 12; s < 300; s += 12) reports.push([s, 7], [s + 3, 10]);
		expect(triggers(e, reports)).toEqual([12]);
	});

	test('a fall below the range the episode showed triggers again', () => {
		const e = new ScoreEpisodes(enc(10, 10, 10), 0);
		expect(triggers(e, [[5, 8], [8, 10], [15, 8], [20, 9], [22, 6], [25, 5], [26, 3]])).toEqual([5, 22, 26]);
	});

	test('after half a minute without a change the range narrows: the next dip triggers', () => {
		const e = new ScoreEpisodes(enc(10, 10, 10), 0);
		// Dip and recover, then quiet for 40 s, then the same dip.
		expect(triggers(e, [[10, 7], [13, 10], [53, 7], [56, 10]])).toEqual([10, 53]);
	});

	test('a recovery from a settled low score is a change too', () => {
		const e = new ScoreEpisodes(enc(10, 3, 10), 0);
		expect(e.observe(60_000, enc(10, 9, 10))).toBe(true);
	});

	test('an encoding that appears or goes triggers at once', () => {
		const e = new ScoreEpisodes(enc(10, 10), 0);
		expect(e.observe(1000, enc(10, 10, 10))).toBe(true);
		expect(e.observe(2000, enc(10, 10, 10))).toBe(false);
		expect(e.observe(3000, enc(10, 10))).toBe(true);
	});
});
