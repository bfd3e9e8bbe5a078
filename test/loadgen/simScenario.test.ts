import { FAMILIES } from '../../training/loadgen/generator';
import { generatedSimScenario, peakSimStreams } from '../../training/loadgen/simScenario';

/** Generated scenarios as the allocation simulator plays them (small sizes: shapes, not loads). */
describe('generated scenarios for the allocation simulator', () => {
	const options = { workers: 8, durationS: 90, peers: 40 };

	test.each(FAMILIES)('%s: same seed, same events; subscriptions carry the views (layers, pauses)', (family) => {
		const a = generatedSimScenario(family, 3, options);
		expect(generatedSimScenario(family, 3, options).events).toEqual(a.events);
		expect(generatedSimScenario(family, 4, options).events).not.toEqual(a.events);
		expect(a.subscriptions).toBe(true);
		expect(a.name).toBe(`${family}#3`);
		// Time-ordered, inside the scenario.
		for (let i = 1; i < a.events.length; i++) expect(a.events[i]!.t).toBeGreaterThanOrEqual(a.events[i - 1]!.t);
		expect(a.events.at(-1)!.t).toBeLessThanOrEqual(options.durationS);
		const subs = a.events.filter((e) => e.type === 'subscribe');
		expect(subs.length).toBeGreaterThan(0);
		// Every subscription names a peer that joined before (or at) it.
		const joined = new Map<string, number>();
		for (const e of a.events) if (e.type === 'join') joined.set(e.peerId, e.t);
		for (const s of subs) expect(joined.get(s.type === 'subscribe' ? s.publisherId : '')).toBeLessThanOrEqual(s.t);
		expect(peakSimStreams(a)).toBeGreaterThan(0);
	});

	test('views reach the simulator: a paged grid asks for lower layers and pauses or drops off-screen tiles', () => {
		const events = [1, 2, 3].flatMap((seed) => generatedSimScenario('grid-meetings', seed, options).events);
		const video = events.filter((e) => e.type === 'subscribe' && e.mediaClass === 'video');
		const layers = new Set(video.map((e) => (e.type === 'subscribe' ? e.spatial : undefined)));
		expect(layers.size).toBeGreaterThan(1);
		expect(events.some((e) => e.type === 'unsubscribe' || (e.type === 'subscribe' && e.paused))).toBe(true);
	});

	test('an audio-only stage sends no video', () => {
		const s = generatedSimScenario('audio-stage', 5, options);
		const sends = s.events.flatMap((e) => (e.type === 'join' ? e.sends : e.type === 'startProducer' ? [e.mediaClass] : []));
		expect(sends.length).toBeGreaterThan(0);
		expect(sends.every((c) => c === 'audio')).toBe(true);
	});
});
