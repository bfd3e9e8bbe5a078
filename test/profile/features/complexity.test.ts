import { audioComplexity, codecFactor, dataComplexity, videoComplexity } from '../../../plugin/profile/features/complexity';

describe('complexity', () => {
	it('anchors 720p30 VP8 at 10 and Opus fullband stereo at 1', () => {
		expect(videoComplexity({ mimeType: 'video/VP8', layers: [{ width: 1280, height: 720, fps: 30 }] })).toBeCloseTo(10, 10);
		expect(audioComplexity({ channels: 2, opusBandwidth: 'FB' })).toBeCloseTo(1, 10);
		expect(dataComplexity(16_000)).toBeCloseTo(1, 10);
	});

	it('adds the pixel rate of every active simulcast layer', () => {
		const layers = [
			{ width: 320, height: 180, fps: 30 },
			{ width: 640, height: 360, fps: 30 },
			{ width: 1280, height: 720, fps: 30, active: false },
		];
		expect(videoComplexity({ mimeType: 'video/VP8', layers })).toBeCloseTo(10 * (1 / 16 + 1 / 4), 10);
	});

	it('grows with scene changes and codec inefficiency, shrinks with fps and audio bandwidth', () => {
		const hd = { width: 1280, height: 720, fps: 30 };
		const base = videoComplexity({ mimeType: 'video/VP8', layers: [hd] });
		expect(videoComplexity({ mimeType: 'video/VP8', layers: [hd], sceneChangesPerMin: 10 })).toBeCloseTo(2 * base, 10);
		expect(videoComplexity({ mimeType: 'video/VP9', layers: [hd] })).toBeLessThan(base);
		expect(videoComplexity({ mimeType: 'video/VP8', layers: [{ ...hd, fps: 5 }] })).toBeLessThan(base);
		expect(audioComplexity({ channels: 1, opusBandwidth: 'WB' })).toBeLessThan(audioComplexity({ channels: 1, opusBandwidth: 'FB' }));
		expect(codecFactor('video/H264')).toBe(1);
		expect(codecFactor(undefined)).toBe(1);
	});

	it('falls back to bitrate for video without a known size and to the clock rate for audio without Opus info', () => {
		expect(videoComplexity({ layers: [{ width: 640 }], bitrateBps: 1_500_000 })).toBeCloseTo(10, 10);
		expect(audioComplexity({ channels: 1, clockRate: 48_000 })).toBeCloseTo(0.5, 10);
		expect(audioComplexity({ channels: 1, clockRate: 8_000 })).toBeCloseTo(0.1, 10);
	});

	it('never returns a negative or non-finite number', () => {
		expect(videoComplexity({ layers: [], bitrateBps: -5 })).toBe(0);
		expect(videoComplexity({ layers: [{ width: Infinity, height: 1, fps: 1 }] })).toBe(0);
		expect(dataComplexity(Number.NaN)).toBe(0);
	});
});
