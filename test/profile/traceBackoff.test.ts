import { nextTraceBackoff, triggerOpensWindow } from '../../plugin/profile/traces';

describe('nextTraceBackoff (the rtp trace duty cycle, pure)', () => {
	test('doubled while framerates agree, up to the maximum; back to 1 when they do not', () => {
		let b = 1;
		const seen: number[] = [];
		for (let i = 0; i < 4; i++) seen.push((b = nextTraceBackoff(b, true, 4)));
		expect(seen).toEqual([2, 4, 4, 4]);
		expect(nextTraceBackoff(4, false, 4)).toBe(1);
		expect(nextTraceBackoff(1, true, 1)).toBe(1);
	});

	test('a stream hurried every 46 s whose framerates hold is traced at the longest period between its hurried windows', () => {
		// Regular windows every 30 s × back-off; a trigger hurries one every 46 s (restarting the cycle).
		const everyMs = 30_000;
		let backoff = 1;
		let next = 0;
		let nextTrigger = 46_000;
		let windows = 0;
		for (;;) {
			const hurried = nextTrigger < next;
			const t = hurried ? nextTrigger : next;
			if (t >= 600_000) break;
			windows++;
			if (hurried) nextTrigger += 46_000;
			// The first window has nothing to agree with.
			backoff = nextTraceBackoff(backoff, t > 0, 4);
			next = t + everyMs * backoff;
		}
		expect(backoff).toBe(4);
		// One window per trigger and no regular window between (13 triggers in 600 s, the first window, its successor).
		// (Reset by every hurried window, the back-off would add a regular window 30 s after each: 27.)
		expect(windows).toBe(15);
	});
});

describe('triggerOpensWindow', () => {
	test('a keyframe does not open a trace or tap window; changes of layers, score, rate, pause and a hot or rising worker do', () => {
		expect(triggerOpensWindow('keyframe')).toBe(false);
		for (const t of ['join', 'score', 'layers', 'pause', 'rate', 'cpuRising', 'predictedHot'] as const) expect(triggerOpensWindow(t)).toBe(true);
	});
});
