import { KeyframeCadence, PROMPTED_WITHIN_MS } from '../../plugin/profile/keyframeCadence';

describe('KeyframeCadence (pure)', () => {
	test('a keyframe answering a request is no trigger; an unasked one is', () => {
		const k = new KeyframeCadence();
		k.asked(10_000);
		expect(k.keyframe(10_150)).toBe(false);
		expect(k.keyframe(10_000 + PROMPTED_WITHIN_MS + 5000)).toBe(true);
	});

	test('keyframes on a regular cadence stop triggering once it is known; one off cadence triggers', () => {
		const k = new KeyframeCadence();
		// Every 4 s, with ±100 ms of jitter; three layers within 50 ms are one event.
		const seen: boolean[] = [];
		for (let i = 0; i < 8; i++) {
			const t = 4000 * i + (i % 2 ? 100 : -100);
			seen.push(k.keyframe(t));
			expect(k.keyframe(t + 30)).toBe(false);
			expect(k.keyframe(t + 50)).toBe(false);
		}
		// The first three teach the cadence (two intervals); then none triggers.
		expect(seen.slice(3)).toEqual([false, false, false, false, false]);
		// A scene cut 1.5 s after the last one.
		expect(k.keyframe(4000 * 7 + 100 + 1500)).toBe(true);
	});

	test('Chromium-like senders (keyframes only on request or a rescale) trigger on every unasked one', () => {
		const k = new KeyframeCadence();
		k.asked(1000);
		expect(k.keyframe(1100)).toBe(false);
		expect(k.keyframe(47_000)).toBe(true);
		k.asked(60_000);
		expect(k.keyframe(60_200)).toBe(false);
		expect(k.keyframe(131_000)).toBe(true);
	});
});
