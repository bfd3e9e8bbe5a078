/**
 * Frame-level video features from sampled rtp trace events: a frame is the set
 * of packets sharing an RTP timestamp; the marker bit closes it.
 */
import type { VideoProfile } from '../schema';
import { timestampDelta } from './rtp';
import { mean, quantile } from './stats';

export interface RtpFrameEvent {
	arrivalMs: number;
	rtpTimestamp: number;
	marker: boolean;
	/** Payload (or packet) bytes; the caller picks and sticks to one. */
	bytes: number;
	/** Set on packets of a keyframe (from the keyframe trace or a payload parser). */
	isKeyframe?: boolean;
	/** Sampling window the event came from; a change starts a new segment whatever the gap. */
	segment?: number;
}

export interface Frame {
	rtpTimestamp: number;
	firstArrivalMs: number;
	bytes: number;
	packets: number;
	keyframe: boolean;
	/** Marker bit seen and not the first frame of a segment (which may have started mid-frame). */
	complete: boolean;
}

export interface FrameStats {
	frames: Frame[];
	/** Distinct RTP timestamps per second of RTP clock; undefined with < 2 frames in every segment. */
	fps?: number;
	/** Over complete frames only. */
	frameBytes?: NonNullable<VideoProfile['frameBytes']>;
	keyframesPerMin?: number;
	/** Seconds of media covered (sum of segment spans, RTP clock). */
	coveredS: number;
}

export interface FrameStatsOptions {
	clockRate?: number;
	/** Arrival gap that starts a new segment (sampled traces are bursts with gaps). */
	maxGapMs?: number;
}

/**
 * keyframesPerMin counts keyframes inside the sampled segments; a tap that
 * starts its samples at keyframes inflates it, so prefer the keyframe trace's
 * count over time when there is one.
 *
 * Events must be in arrival order. Each sampled burst is a segment; fps uses the
 * RTP clock within segments, which jitter and pacing do not distort:
 *     fps = Σ (frames − 1) / Σ span, span = (last ts − first ts) / clockRate.
 */
export function frameStats(events: readonly RtpFrameEvent[], options: FrameStatsOptions = {}): FrameStats {
	const clockRate = options.clockRate ?? 90_000;
	const maxGapMs = options.maxGapMs ?? 1000;
	const frames: Frame[] = [];
	let intervals = 0;
	let spanTicks = 0;
	let segmentFirst: Frame | undefined;
	let segmentLastTs = 0;
	let segmentFrames = 0;
	let current: Frame | undefined;
	let lastArrival = -Infinity;
	let lastSegment: number | undefined;

	const closeSegment = (): void => {
		if (segmentFirst && segmentFrames > 1) {
			intervals += segmentFrames - 1;
			spanTicks += timestampDelta(segmentFirst.rtpTimestamp, segmentLastTs);
		}
		segmentFirst = undefined;
		segmentFrames = 0;
	};

	for (const e of events) {
		if (!Number.isFinite(e.arrivalMs) || !Number.isFinite(e.bytes)) continue;
		const gap = e.arrivalMs - lastArrival > maxGapMs || e.segment !== lastSegment;
		lastArrival = e.arrivalMs;
		lastSegment = e.segment;
		if (gap) {
			closeSegment();
			current = undefined;
		}
		if (current && current.rtpTimestamp === e.rtpTimestamp) {
			current.bytes += e.bytes;
			current.packets++;
		} else {
			// Late packets of an earlier frame (reordering) are not a new frame.
			if (segmentFirst && timestampDelta(segmentLastTs, e.rtpTimestamp) <= 0) continue;
			current = { rtpTimestamp: e.rtpTimestamp, firstArrivalMs: e.arrivalMs, bytes: e.bytes, packets: 1, keyframe: false, complete: false };
			frames.push(current);
			segmentFirst ??= current;
			segmentLastTs = e.rtpTimestamp;
			segmentFrames++;
		}
		if (e.isKeyframe) current.keyframe = true;
		if (e.marker && current !== segmentFirst) current.complete = true;
	}
	closeSegment();
	return summarize(frames, intervals, spanTicks / clockRate);
}

function summarize(frames: Frame[], intervals: number, coveredS: number): FrameStats {
	const sizes = frames.filter((f) => f.complete).map((f) => f.bytes);
	const stats: FrameStats = { frames, coveredS };
	if (intervals > 0 && coveredS > 0) stats.fps = intervals / coveredS;
	if (sizes.length > 0) stats.frameBytes = { mean: mean(sizes), p50: quantile(sizes, 0.5), p95: quantile(sizes, 0.95) };
	if (coveredS > 0) stats.keyframesPerMin = (frames.filter((f) => f.keyframe).length * 60) / coveredS;
	return stats;
}
