import type { types } from 'mediasoup';
import { BROWSER_FAMILY, browserScenario } from '../../training/loadgen/browserFamily';
import type { Replayer } from '../../training/loadgen/replayer';
import { ScenarioRun } from '../../training/loadgen/runner';
import { planScenario, timelinePeaks } from '../../training/loadgen/scenario';

/** The browser family's structure: pure (no Chromium); recording it is `npm run sessions -- --scenarios browser-meeting`. */

const SEEDS = [10_201, 10_202, 10_203, 10_204, 10_205, 10_206];

test('the same seed gives the same scenario; seeds differ in structure', () => {
	expect(browserScenario(10_201)).toEqual(browserScenario(10_201));
	const shapes = new Set(SEEDS.map((seed) => JSON.stringify(browserScenario(seed).groups)));
	expect(shapes.size).toBe(SEEDS.length);
});

test.each(SEEDS)('seed %i: browser publishers within the page bound, bot audience consuming them', (seed) => {
	const pages = 4;
	const scenario = browserScenario(seed, { pages, listeners: 8, durationS: 90 });
	expect(scenario.name).toBe(BROWSER_FAMILY);
	const browsers = scenario.groups.filter((g) => g.client === 'browser');
	const bots = scenario.groups.filter((g) => g.client !== 'browser');
	expect(browsers.length).toBeGreaterThanOrEqual(3);
	expect(browsers.reduce((n, g) => n + g.count, 0)).toBeLessThanOrEqual(pages);
	// Only browsers publish; bots only consume; everyone receives every browser.
	for (const g of browsers) expect(g.publish.map((p) => p.recording)).toEqual(['talking-head']);
	for (const g of bots) expect(g.publish).toEqual([]);
	const names = browsers.map((g) => g.name).sort();
	for (const g of scenario.groups) expect([...g.consume].sort()).toEqual(names);
	const peaks = timelinePeaks(planScenario(scenario, seed));
	expect(peaks.publications).toBeLessThanOrEqual(pages);
	expect(peaks.consumerLinks).toBeGreaterThan(0);
});

test('bounds are checked', () => {
	expect(() => browserScenario(10_201, { pages: 1 })).toThrow(/pages ≥ 2/);
	expect(() => browserScenario(10_201, { durationS: 10 })).toThrow(/durationS ≥ 30/);
});

test('a scenario with browser groups does not run without a way to start browsers', () => {
	const router = {} as types.Router;
	const replayer = {} as Replayer;
	expect(() => new ScenarioRun(browserScenario(10_201), { router, replayer, recordingsDir: '.' })).toThrow(/needs RunOptions.browser/);
	expect(() => new ScenarioRun(browserScenario(10_201), { router, replayer, recordingsDir: '.', browser: async () => ({ producers: [], close: async () => undefined }) })).not.toThrow();
});
