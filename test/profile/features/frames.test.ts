import { frameStats, type RtpFrameEvent } from '../../../plugin/profile/features/frames';
import { parseVp8Payload } from '../../../plugin/profile/features/vp8';
import { quantile } from '../../../plugin/profile/features/stats';
import { loadRtp, rng } from './helpers';

describe('frameStats on the captured VP8 stream', () => {
	it('derives 30 fps from RTP timestamps and flags the keyframe', () => {
		const packets = loadRtp('vp8-176x144');
		// Arrival times as ffmpeg's -re pacing produced them are not stored; the RTP clock is what counts.
		const events: RtpFrameEvent[] = packets.map((p, i) => ({
			arrivalMs: i * 10,
			rtpTimestamp: p.timestamp,
			marker: p.marker,
			bytes: p.payload.length,
			isKeyframe: parseVp8Payload(p.payload)?.keyframe === true || undefined,
		}));
		const stats = frameStats(events);
		expect(stats.fps).toBeCloseTo(30, 6);
		expect(stats.frames[0]).toMatchObject({ keyframe: true, packets: 3, complete: false });
		expect(stats.frames.slice(1).every((f) => !f.keyframe && f.packets === 1)).toBe(true);
		const sizes = stats.frames.slice(1).filter((f) => f.complete).map((f) => f.bytes);
		expect(stats.frameBytes).toEqual({ mean: sizes.reduce((a, b) => a + b, 0) / sizes.length, p50: quantile(sizes, 0.5), p95: quantile(sizes, 0.95) });
	});
});

/** Packets of a 15 fps stream sampled in bursts, with jitter, a wrapping RTP clock and a keyframe per 2 s. */
function sampledStream(): { events: RtpFrameEvent[]; sizes: number[]; keyframes: number; seconds: number } {
	const random = rng(5);
	const events: RtpFrameEvent[] = [];
	const sizes: number[] = [];
	let keyframes = 0;
	let seconds = 0;
	const bursts = [0, 10_000, 20_000]; // three 2 s samples, 10 s apart
	for (const startMs of bursts) {
		const frames = 30;
		seconds += (frames - 1) / 15;
		for (let f = 0; f < frames; f++) {
			const tMs = startMs + (f * 1000) / 15;
			const rtpTimestamp = (0xffff0000 + Math.round((tMs * 90_000) / 1000)) >>> 0;
			const keyframe = f === 0;
			if (keyframe) keyframes++;
			const packetSizes = keyframe ? [1200, 1200, 1200, 700] : [300 + Math.round(random() * 900)];
			if (f > 0) sizes.push(packetSizes.reduce((a, b) => a + b, 0));
			packetSizes.forEach((bytes, k) =>
				events.push({ arrivalMs: tMs + k * 0.5 + random() * 8, rtpTimestamp, marker: k === packetSizes.length - 1, bytes, isKeyframe: keyframe }),
			);
		}
	}
	events.sort((a, b) => a.arrivalMs - b.arrivalMs);
	return { events, sizes, keyframes, seconds };
}

describe('frameStats on sampled bursts', () => {
	it('measures fps within segments, over the RTP clock wrap, ignoring the gaps between samples', () => {
		const { events, sizes, keyframes, seconds } = sampledStream();
		const stats = frameStats(events);
		expect(stats.fps).toBeCloseTo(15, 6);
		expect(stats.coveredS).toBeCloseTo(seconds, 6);
		expect(stats.frames).toHaveLength(90);
		expect(stats.keyframesPerMin).toBeCloseTo((keyframes * 60) / seconds, 6);
		// The first frame of each segment may have started before the sample: not in the size distribution.
		expect(stats.frameBytes!.mean).toBeCloseTo(sizes.reduce((a, b) => a + b, 0) / sizes.length, 6);
		expect(stats.frameBytes!.p50).toBeCloseTo(quantile(sizes, 0.5), 6);
		expect(stats.frameBytes!.p95).toBeCloseTo(quantile(sizes, 0.95), 6);
	});

	it('does not count a late packet of an earlier frame as a new frame', () => {
		const e = (arrivalMs: number, rtpTimestamp: number, marker = true): RtpFrameEvent => ({ arrivalMs, rtpTimestamp, marker, bytes: 100 });
		const stats = frameStats([e(0, 0), e(33, 3000, false), e(40, 0), e(45, 3000), e(66, 6000), e(100, 9000)]);
		expect(stats.frames.map((f) => f.rtpTimestamp)).toEqual([0, 3000, 6000, 9000]);
		expect(stats.frames[1]!.bytes).toBe(200);
		expect(stats.fps).toBeCloseTo(30, 6);
	});

	it('has no fps from a single frame and no size distribution without complete frames', () => {
		const stats = frameStats([{ arrivalMs: 0, rtpTimestamp: 1, marker: true, bytes: 10 }]);
		expect(stats.fps).toBeUndefined();
		expect(stats.frameBytes).toBeUndefined();
		expect(frameStats([]).frames).toEqual([]);
	});
});
