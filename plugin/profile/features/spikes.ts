/**
 * Scene-change detection from frame sizes (or 1 s bitrate).
 *
 * A scene cut forces the encoder to code a mostly new picture: the frame at the
 * cut (a keyframe if the encoder has scene-cut detection, else a large delta
 * frame) is several times the running frame size. Spikes are judged against a
 * robust baseline (median and MAD of the recent samples, so earlier spikes
 * barely move it):
 *
 *     spike ⇔ x > median + k · MAD  and  x > r · median
 *
 * The MAD term adapts to how noisy the series is; the ratio term keeps a very
 * smooth series (MAD ≈ 0) from calling ordinary wobble a spike. A cut from
 * noise-like to plain content makes no spike but a level shift (the median of
 * the next n samples vs the previous n differs by ≥ shiftRatio), which is the
 * second kind of evidence. Evidence within mergeMs is one scene change.
 * Keyframes that are not scene cuts are discounted: those arriving on the
 * encoder's regular keyframe schedule and those answering a PLI/FIR the caller
 * reports, unless other evidence (a non-keyframe spike, a level shift) agrees.
 *
 * Measured (test/profile/features/spikes.test.ts, ±1 s): real libvpx VP8 with a
 * 4 s keyframe schedule P 1.00 / R 0.89, real x264 with scene-cut keyframes
 * P 1.00 / R 1.00; synthetic 30 fps clips P ≥ 0.9 / R ≥ 0.9. Keyframe flags are
 * needed to discount a schedule (VP8 without them: P 0.75). 1 s bitrate alone
 * is a much weaker signal (R ≈ 0.6 on the same clips): prefer frame sizes.
 *
 * On the recorded Chromium simulcast fixtures (test/fixtures/recordings, their
 * packets looped offline, the source's loop point counted as a cut;
 * test/profile/sceneCuts.fixtures.test.ts) the live profile's input, each
 * layer's rate per 1 s stats interval (LayeredSceneChangeDetector with
 * LAYER_RATE_SCENE_DEFAULTS), gives scene-cuts P 1.00 / R 0.96 and screen-share
 * P 0.94 / R 0.94, talking-head no change; the stream's total rate with
 * BITRATE_SCENE_DEFAULTS gave P 1.00 / R 0.32 and P 0.36 / R 0.25. scene-cuts'
 * cuts come 1.5–2.5 s apart, closer than the 3-sample level-shift medians
 * resolve (without valleys, R 0.80: its 1.5 s static segment went unseen), and
 * Chromium answers a cut by dropping its upper layers to 1–3 fps with huge
 * frames rather than by a spike. Even per-frame sizes of every frame
 * (FRAME_SCENE_DEFAULTS with keyframe flags) reach P ≥ 0.9 / R ≥ 0.9 only on
 * scene-cuts' lowest layer (P 0.95 / R 1.00): screen-share's large refresh
 * frames 50–200 ms after its scheduled keyframes and talking-head's upper
 * layers' periodic 3–6× frames read as cuts (P 0.41–0.79 per layer).
 */
import { median, SortedWindow } from './stats';

export interface SpikeDetectorOptions {
	/** Samples in the baseline window. */
	baselineSamples?: number;
	/** No verdicts until the baseline has this many samples. */
	minBaselineSamples?: number;
	/** k: MADs above the median. */
	madK?: number;
	/** r: minimum ratio to the median. */
	minRatio?: number;
	/** A spike less than this after the previous spiky sample extends its event (a cut into harder content stays high until the baseline adapts). */
	refractoryMs?: number;
}

/** Tuned for per-frame sizes (~30 fps). */
export const FRAME_SPIKE_DEFAULTS: Required<SpikeDetectorOptions> = {
	baselineSamples: 90,
	minBaselineSamples: 15,
	madK: 8,
	minRatio: 3,
	refractoryMs: 1000,
};

/** Tuned for 1 s bitrate samples, where a cut's big frame is diluted by a second of ordinary ones. */
export const BITRATE_SPIKE_DEFAULTS: Required<SpikeDetectorOptions> = {
	baselineSamples: 30,
	minBaselineSamples: 8,
	madK: 4,
	minRatio: 1.4,
	refractoryMs: 1500,
};

export interface Spike {
	timeMs: number;
	/** Largest sample of the event. */
	value: number;
	/** Baseline median when the event started. */
	baseline: number;
	/** value / baseline. */
	magnitude: number;
}

/** Online robust spike detector over one series. */
export class SpikeDetector {
	private readonly options: Required<SpikeDetectorOptions>;
	private readonly recent: SortedWindow;
	private open: Spike | undefined;
	private lastSpikyMs = -Infinity;

	constructor(options: SpikeDetectorOptions = {}) {
		this.options = { ...FRAME_SPIKE_DEFAULTS, ...options };
		this.recent = new SortedWindow(this.options.baselineSamples);
	}

	/**
	 * Feeds one sample. Returns the event when this sample starts a new one; a
	 * sample extending the open event updates it in place and returns undefined.
	 */
	add(timeMs: number, value: number): Spike | undefined {
		if (!Number.isFinite(value) || !Number.isFinite(timeMs)) return undefined;
		const { minBaselineSamples, madK, minRatio, refractoryMs } = this.options;
		let started: Spike | undefined;
		if (this.recent.size >= minBaselineSamples) {
			const base = this.recent.median();
			const threshold = Math.max(base + madK * this.recent.scaledMad(), minRatio * base);
			if (value > threshold && base > 0) {
				if (this.open && timeMs - this.lastSpikyMs < refractoryMs) {
					if (value > this.open.value) {
						this.open.value = value;
						this.open.magnitude = value / this.open.baseline;
					}
				} else {
					started = { timeMs, value, baseline: base, magnitude: value / base };
					this.open = started;
				}
				this.lastSpikyMs = timeMs;
			}
		}
		this.recent.push(value);
		return started;
	}

	/** A quantile of the baseline window, once there are enough samples for verdicts. */
	baselineQuantile(q: number): number | undefined {
		return this.recent.size >= this.options.minBaselineSamples ? this.recent.quantile(q) : undefined;
	}

	/** Ends the open event, so the next spike starts a new one even within the refractory period. */
	closeEvent(): void {
		this.open = undefined;
	}

	reset(): void {
		this.recent.clear();
		this.open = undefined;
	}
}

export interface SceneChangeOptions extends SpikeDetectorOptions {
	/** Samples on each side of a candidate cut compared for a level shift; 0 disables. */
	shiftSamples?: number;
	/** Ratio between the medians after and before (either way) that makes a level shift. */
	shiftRatio?: number;
	/**
	 * For rate series: a sample valleyRatio times below both of its neighbours and
	 * valleyQuietRatio times below the baseline's lower quartile is a segment too
	 * short for the level-shift medians (a 1.5 s scene between two cuts in 1 s
	 * samples). Below the lower quartile too, since the quiet between two bursts
	 * (a static screen between its refreshes) is a level the stream keeps
	 * returning to, not new content. Only downward: a sample above both
	 * neighbours is a spike. 0 disables (frame series, whose temporal layers
	 * alternate large and small frames).
	 */
	valleyRatio?: number;
	valleyQuietRatio?: number;
	/** Evidence (spikes, shifts, valleys) closer than this is one scene change. */
	mergeMs?: number;
	/** Relative tolerance when matching a keyframe interval to the schedule. */
	periodTolerance?: number;
	/** A keyframe this soon after a reported PLI/FIR is the answer to it. */
	keyframeRequestWindowMs?: number;
	/** A spike this soon after a keyframe belongs to the keyframe. */
	keyframeAftermathMs?: number;
	/**
	 * For rate series, whose samples carry no keyframe flag: a spike in a sample taken
	 * this soon after a reported PLI/FIR is the requested keyframe seen through the rate,
	 * and is discounted like one. 0 (frame series) disables.
	 */
	requestedSpikeWindowMs?: number;
	/** Scene changes kept for summaries (oldest dropped). */
	maxEvents?: number;
}

/** Scene-change settings for per-frame sizes (~30 fps). */
export const FRAME_SCENE_DEFAULTS: SceneChangeOptions = { ...FRAME_SPIKE_DEFAULTS, shiftSamples: 10, shiftRatio: 2.5, mergeMs: 1000 };
/** Scene-change settings for 1 s byte or bit counts. */
export const BITRATE_SCENE_DEFAULTS: SceneChangeOptions = { ...BITRATE_SPIKE_DEFAULTS, shiftSamples: 3, shiftRatio: 2.5, mergeMs: 2000, requestedSpikeWindowMs: 1000 };
/**
 * For the rate of one simulcast layer (or of a single-encoding stream): one layer's rate
 * mixes no other layers' changes, so a smaller level shift already means new content.
 * Chosen on the browser fixtures, the only recorded cut truth this project has: shift
 * ratios 1.4–2.0 all keep P ≥ 0.93 there, 2.5 loses half the recall. A valley is a
 * level shift of one sample, hence the same ratio; its quiet margin separates
 * scene-cuts' 1.5 s static segment (1.37–1.53 below the lower quartile on its lowest
 * layer) from screen-share's quiet seconds between refreshes (0.85–1.01).
 */
export const LAYER_RATE_SCENE_DEFAULTS: SceneChangeOptions = { ...BITRATE_SCENE_DEFAULTS, shiftRatio: 1.8, valleyRatio: 1.8, valleyQuietRatio: 1.25 };

export interface SceneChange {
	timeMs: number;
	/** Largest spike magnitude (value / baseline) or level-shift ratio (≥ 1, either direction) of its evidence. */
	magnitude: number;
	/** A spike on a keyframe was part of the evidence. */
	keyframe: boolean;
	/** Evidence besides keyframe spikes: a spike on a non-keyframe or a level shift. */
	otherEvidence: boolean;
	/** Interval from the previous keyframe to this event's keyframe. */
	keyframeIntervalMs?: number;
	/** The keyframe answered a reported PLI/FIR. */
	requested: boolean;
}

export interface SceneChangeSummary {
	count: number;
	perMin: number;
	/** Mean magnitude over the events (0 with none). */
	meanMagnitude: number;
}

const KEYFRAME_HISTORY = 16;
/** Keyframe intervals that must agree before they are called a schedule. */
const MIN_SCHEDULE_INTERVALS = 2;

/** ≥ 1 either way; +1 keeps a pause (zeros) from being an infinite ratio. */
function levelRatio(a: number, b: number): number {
	return (Math.max(a, b) + 1) / (Math.min(a, b) + 1);
}

/**
 * Level shifts: the median of the next n samples against the median of the
 * previous n. Catches cuts from hard to easy content (no spike, the frame sizes
 * collapse) and cuts into harder content. Reports n samples late.
 */
class LevelShiftDetector {
	private readonly before: SortedWindow;
	private readonly after: SortedWindow;
	/** Arrival times of the samples in `after`, oldest first. */
	private readonly afterTimes: number[] = [];
	private candidate: { timeMs: number; ratio: number; localisation: number } | undefined;

	constructor(
		private readonly n: number,
		private readonly minRatio: number,
		private readonly mergeMs: number,
	) {
		this.before = new SortedWindow(n);
		this.after = new SortedWindow(n);
	}

	/** Returns a shift once it is over (its best-localised sample). */
	add(timeMs: number, value: number): { timeMs: number; ratio: number } | undefined {
		const moved = this.after.push(value);
		this.afterTimes.push(timeMs);
		if (moved !== undefined) {
			this.before.push(moved);
			this.afterTimes.shift();
		}
		if (this.before.size < this.n) return undefined;
		// Medians decide (a lone spike is not a shift); means localise, since every
		// split within n/2 of a clean step has the same medians.
		const ratio = levelRatio(this.before.median(), this.after.median());
		const localisation = levelRatio(this.before.mean(), this.after.mean());
		const at = this.afterTimes[0] as number;
		let finished: { timeMs: number; ratio: number } | undefined;
		if (this.candidate && at - this.candidate.timeMs > this.mergeMs) {
			finished = { timeMs: this.candidate.timeMs, ratio: this.candidate.ratio };
			this.candidate = undefined;
		}
		if (ratio >= this.minRatio && (!this.candidate || localisation > this.candidate.localisation)) this.candidate = { timeMs: at, ratio, localisation };
		return finished;
	}
}

/**
 * Scene changes from a series of frame sizes (FRAME_SCENE_DEFAULTS) or 1 s byte
 * counts (BITRATE_SCENE_DEFAULTS), with keyframe flags when known. Evidence is
 * a spike (SpikeDetector) or a level shift; a spike on a keyframe alone is not a
 * scene change when the keyframe was requested (PLI/FIR) or arrived on the
 * encoder's regular keyframe schedule. The schedule is judged when summarising,
 * so keyframes seen before it was established are discounted too.
 */
export class SceneChangeDetector {
	private readonly spikes: SpikeDetector;
	private readonly shifts: LevelShiftDetector | undefined;
	private readonly valleyRatio: number;
	private readonly valleyQuietRatio: number;
	/** The last two samples, oldest first, for the valley check. */
	private readonly previous: Array<{ timeMs: number; value: number }> = [];
	private readonly mergeMs: number;
	private readonly periodTolerance: number;
	private readonly requestWindowMs: number;
	private readonly aftermathMs: number;
	private readonly maxEvents: number;
	private readonly requestedSpikeWindowMs: number;
	private readonly keyframeTimes: number[] = [];
	private readonly recorded: SceneChange[] = [];
	private lastRequestMs = -Infinity;
	private lastKeyframeIntervalMs: number | undefined;

	constructor(options: SceneChangeOptions = FRAME_SCENE_DEFAULTS) {
		const merged = { ...FRAME_SCENE_DEFAULTS, ...options };
		this.spikes = new SpikeDetector(merged);
		const shiftSamples = merged.shiftSamples ?? 0;
		this.mergeMs = merged.mergeMs ?? 1000;
		this.shifts = shiftSamples > 0 ? new LevelShiftDetector(shiftSamples, merged.shiftRatio ?? 3, this.mergeMs) : undefined;
		this.valleyRatio = merged.valleyRatio ?? 0;
		this.valleyQuietRatio = merged.valleyQuietRatio ?? 1;
		this.periodTolerance = merged.periodTolerance ?? 0.1;
		this.requestWindowMs = merged.keyframeRequestWindowMs ?? 1000;
		this.aftermathMs = merged.keyframeAftermathMs ?? 100;
		this.maxEvents = merged.maxEvents ?? 1000;
		this.requestedSpikeWindowMs = merged.requestedSpikeWindowMs ?? 0;
	}

	/** A PLI or FIR was sent to this stream's sender. */
	addKeyframeRequest(timeMs: number): void {
		this.lastRequestMs = timeMs;
	}

	add(timeMs: number, value: number, keyframe = false): void {
		if (!Number.isFinite(timeMs) || !Number.isFinite(value)) return;
		if (keyframe) {
			const previous = this.keyframeTimes[this.keyframeTimes.length - 1];
			this.lastKeyframeIntervalMs = previous === undefined ? undefined : timeMs - previous;
			this.keyframeTimes.push(timeMs);
			if (this.keyframeTimes.length > KEYFRAME_HISTORY) this.keyframeTimes.shift();
		}
		// A keyframe's spike is its own piece of evidence: a cut right after a
		// scheduled keyframe must still count, and a cut keyframe must not vanish
		// into an earlier event.
		if (keyframe) this.spikes.closeEvent();
		const spike = this.spikes.add(timeMs, value);
		if (keyframe) this.spikes.closeEvent();
		const lastKeyframe = this.keyframeTimes[this.keyframeTimes.length - 1];
		// Encoders often follow a keyframe with a large refresh frame; that is still the keyframe.
		const keyframeAftermath = !keyframe && lastKeyframe !== undefined && timeMs - lastKeyframe <= this.aftermathMs;
		const requestedInRate = !keyframe && timeMs - this.lastRequestMs <= this.requestedSpikeWindowMs;
		if (spike) {
			const keyframeLike = keyframe || keyframeAftermath || requestedInRate;
			this.record({
				timeMs,
				magnitude: spike.magnitude,
				keyframe: keyframeLike,
				otherEvidence: !keyframeLike,
				keyframeIntervalMs: keyframe || keyframeAftermath ? this.lastKeyframeIntervalMs : undefined,
				requested: requestedInRate || ((keyframe || keyframeAftermath) && timeMs - this.lastRequestMs <= this.requestWindowMs),
			});
		}
		const shift = this.shifts?.add(timeMs, value);
		if (shift) this.record({ timeMs: shift.timeMs, magnitude: shift.ratio, keyframe: false, otherEvidence: true, requested: false });
		if (this.valleyRatio > 0) this.checkValley(timeMs, value);
	}

	private checkValley(timeMs: number, value: number): void {
		const [before, middle] = this.previous;
		const quietLevel = this.spikes.baselineQuantile(0.25);
		if (before && middle && quietLevel !== undefined) {
			const depth = Math.min(levelRatio(before.value, middle.value), levelRatio(value, middle.value));
			const belowQuiet = levelRatio(quietLevel, middle.value);
			if (middle.value < before.value && middle.value < value && middle.value < quietLevel && depth >= this.valleyRatio && belowQuiet >= this.valleyQuietRatio) {
				this.record({ timeMs: middle.timeMs, magnitude: depth, keyframe: false, otherEvidence: true, requested: false });
			}
		}
		this.previous.push({ timeMs, value });
		if (this.previous.length > 2) this.previous.shift();
	}

	private record(evidence: SceneChange): void {
		const near = this.recorded.find((e) => Math.abs(e.timeMs - evidence.timeMs) < this.mergeMs);
		if (near) {
			// The event is where its non-keyframe evidence is: a cut shortly after a
			// scheduled keyframe happened at the cut, not at the keyframe.
			if (evidence.otherEvidence && !near.otherEvidence) near.timeMs = evidence.timeMs;
			else if (evidence.otherEvidence === near.otherEvidence) near.timeMs = Math.min(near.timeMs, evidence.timeMs);
			near.magnitude = Math.max(near.magnitude, evidence.magnitude);
			near.otherEvidence ||= evidence.otherEvidence;
			if (evidence.keyframe && !near.keyframe) {
				near.keyframe = true;
				near.keyframeIntervalMs = evidence.keyframeIntervalMs;
				near.requested = evidence.requested;
			}
			return;
		}
		this.recorded.push(evidence);
		this.recorded.sort((a, b) => a.timeMs - b.timeMs);
		if (this.recorded.length > this.maxEvents) this.recorded.shift();
	}

	/**
	 * The encoder's keyframe period, when its keyframes follow a schedule: the
	 * keyframe interval that the most other intervals agree with, if at least
	 * MIN_SCHEDULE_INTERVALS and a third of them do (scene-cut keyframes restart
	 * the schedule and leave odd intervals in between).
	 */
	keyframePeriodMs(): number | undefined {
		const times = this.keyframeTimes;
		const intervals = times.slice(1).map((t, i) => t - (times[i] as number));
		let best: number | undefined;
		let bestAgreeing = 0;
		for (const candidate of intervals) {
			if (!(candidate > 0)) continue;
			const agreeing = intervals.filter((interval) => this.fitsPeriod(interval, candidate)).length;
			if (agreeing > bestAgreeing) {
				best = candidate;
				bestAgreeing = agreeing;
			}
		}
		return bestAgreeing >= Math.max(MIN_SCHEDULE_INTERVALS, intervals.length / 3) ? best : undefined;
	}

	private fitsPeriod(interval: number, period: number): boolean {
		return Math.abs(interval - period) <= this.periodTolerance * period;
	}

	/** Scene changes with fromMs < t ≤ toMs, oldest first. */
	changes(fromMs = -Infinity, toMs = Infinity): SceneChange[] {
		const period = this.keyframePeriodMs();
		return this.recorded.filter((e) => {
			if (!(e.timeMs > fromMs && e.timeMs <= toMs)) return false;
			if (e.otherEvidence) return true;
			if (e.requested) return false;
			return !(period !== undefined && e.keyframeIntervalMs !== undefined && this.fitsPeriod(e.keyframeIntervalMs, period));
		});
	}

	/** Scene changes in the window ending at nowMs. */
	summary(nowMs: number, windowMs: number): SceneChangeSummary {
		return summarize(this.changes(nowMs - windowMs, nowMs), windowMs);
	}
}

function summarize(inWindow: readonly SceneChange[], windowMs: number): SceneChangeSummary {
	const count = inWindow.length;
	return {
		count,
		perMin: windowMs > 0 ? (count * 60_000) / windowMs : 0,
		meanMagnitude: count === 0 ? 0 : inWindow.reduce((sum, e) => sum + e.magnitude, 0) / count,
	};
}

/**
 * Scene changes of a simulcast stream from the rate of each of its layers. Browsers
 * answer a cut differently per layer: the lowest layers keep their framerate and
 * show the cut as a rate spike, the upper ones may drop frames to stay within their
 * budget, so the stream's total rate flattens what a single layer shows. A change
 * seen on any layer is a change of the stream; evidence on several layers within
 * mergeMs is one change (at its earliest, with the largest magnitude).
 */
export class LayeredSceneChangeDetector {
	private readonly layers = new Map<number, SceneChangeDetector>();
	private readonly mergeMs: number;
	private lastRequestMs = -Infinity;

	constructor(private readonly options: SceneChangeOptions = LAYER_RATE_SCENE_DEFAULTS) {
		this.mergeMs = options.mergeMs ?? 1000;
	}

	/** A PLI or FIR was sent to the stream's sender (mediasoup reports them per stream, so every layer). */
	addKeyframeRequest(timeMs: number): void {
		this.lastRequestMs = timeMs;
		for (const detector of this.layers.values()) detector.addKeyframeRequest(timeMs);
	}

	add(layer: number, timeMs: number, value: number): void {
		let detector = this.layers.get(layer);
		if (!detector) {
			this.layers.set(layer, (detector = new SceneChangeDetector(this.options)));
			detector.addKeyframeRequest(this.lastRequestMs);
		}
		detector.add(timeMs, value);
	}

	/** Scene changes with fromMs < t ≤ toMs, oldest first. */
	changes(fromMs = -Infinity, toMs = Infinity): SceneChange[] {
		const all = [...this.layers.values()].flatMap((d) => d.changes(fromMs, toMs)).sort((a, b) => a.timeMs - b.timeMs);
		const merged: SceneChange[] = [];
		for (const change of all) {
			const previous = merged[merged.length - 1];
			if (previous && change.timeMs - previous.timeMs < this.mergeMs) previous.magnitude = Math.max(previous.magnitude, change.magnitude);
			else merged.push({ ...change });
		}
		return merged;
	}

	/** Scene changes in the window ending at nowMs. */
	summary(nowMs: number, windowMs: number): SceneChangeSummary {
		return summarize(this.changes(nowMs - windowMs, nowMs), windowMs);
	}
}
