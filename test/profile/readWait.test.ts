import { readWaitMs } from '../../plugin/profile/probes';

/**
 * How long a size read holds its tap open. In the demo e2e under CPU load (two burners, landed
 * 02d76a1) a migrated producer's one receiver asked once for a keyframe on the top layer; the
 * tap resumed 8 ms after that keyframe went by, its own request went out anew, the sender left
 * it unanswered until mediasoup re-sent it 1 s later, and the keyframe came 1048 ms after the
 * resume: a read that gave up at probeWaitMs (500) left the layer without a size for good.
 */
describe('readWaitMs', () => {
	test("a read folded into another receiver's request outlasts mediasoup's re-sent request and its answer", () => {
		expect(readWaitMs(500, false)).toBeGreaterThan(1048);
		expect(readWaitMs(500, false)).toBeGreaterThanOrEqual(2000);
	});

	test('a longer probeWaitMs is kept; a read that asks itself waits probeWaitMs', () => {
		expect(readWaitMs(5000, false)).toBe(5000);
		expect(readWaitMs(500, true)).toBe(500);
	});
});
