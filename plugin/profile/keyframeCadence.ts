/**
 * Which keyframes say a stream is changing. A keyframe that answers a keyframe request
 * (any receiver's, seen as a `pli`/`fir` trace) says nothing about the sender, and
 * neither does one on its regular cadence (encoders that send a keyframe every few
 * seconds, hardware H.264 among them): only a keyframe that comes unasked and off
 * cadence (a scene cut, a rescale, an encoder restart) is a trigger. Pure: every input
 * carries its time.
 */

/** A sender answers a request within an RTT and one encode; mediasoup re-asks once after 1 s. */
export const PROMPTED_WITHIN_MS = 2000;
/** Keyframes of one stream this close together (one per simulcast layer) are one event. */
const SAME_EVENT_MS = 500;
/** A keyframe within this share of the stream's usual interval from its expected time is on cadence. */
const CADENCE_TOLERANCE = 0.2;
/** Intervals remembered for the cadence (their median); fewer than MIN_INTERVALS say nothing. */
const INTERVALS = 4;
const MIN_INTERVALS = 2;

export class KeyframeCadence {
	private askedAtMs = -Infinity;
	private lastEventMs = -Infinity;
	private readonly intervals: number[] = [];

	/** The worker asked the sender for a keyframe. */
	asked(nowMs: number): void {
		this.askedAtMs = nowMs;
	}

	/** A keyframe the profiler did not cause: whether it is unasked and off the stream's cadence. */
	keyframe(nowMs: number): boolean {
		if (nowMs - this.lastEventMs < SAME_EVENT_MS) return false;
		const prompted = nowMs - this.askedAtMs <= PROMPTED_WITHIN_MS;
		const interval = nowMs - this.lastEventMs;
		const usual = this.usualIntervalMs();
		const onCadence = usual !== undefined && Math.abs(interval - usual) <= CADENCE_TOLERANCE * usual;
		// A prompted keyframe restarts the cadence of an encoder with a fixed interval (it counts from
		// the last keyframe): it is an event, but its interval is not one of the cadence's.
		if (!prompted && Number.isFinite(interval)) {
			this.intervals.push(interval);
			if (this.intervals.length > INTERVALS) this.intervals.shift();
		}
		this.lastEventMs = nowMs;
		return !prompted && !onCadence;
	}

	private usualIntervalMs(): number | undefined {
		if (this.intervals.length < MIN_INTERVALS) return undefined;
		const s = [...this.intervals].sort((a, b) => a - b);
		return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
	}
}
