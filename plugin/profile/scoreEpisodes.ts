/**
 * The producer score trigger of the tiered schedule: whether a producer's score report is a
 * change worth the fast tier, or the stream's usual wobble.
 *
 * mediasoup reports every change of each encoding's 0..10 score. On a real network (and on a
 * busy host, where late packets read as jitter and loss) a stream's score dips and recovers
 * every few seconds: judged report by report, each dip and each recovery was a trigger and held
 * the producer in the fast tier for good. So the trigger works in episodes, on the producer's
 * worst encoding score:
 *  - a score at least SCORE_STEP outside the range the producer's scores covered at its last
 *    trigger is a change: it triggers, and the range grows to include it;
 *  - while reports keep changing (no SCORE_QUIET_MS without a change) the episode goes on, so a
 *    dip that recurs within the range it already showed triggers once, not at every recurrence;
 *  - after SCORE_QUIET_MS without a change the range narrows to the settled score, and the next
 *    move of SCORE_STEP triggers again;
 *  - an encoding that appears or goes (a layer switched on or off) triggers at once.
 */

/** mediasoup's scores move by one point at every wobble; two points is a change of the stream's quality. */
export const SCORE_STEP = 2;
/** Longer than the few-second cycle of a wobbling stream's dips, short enough that a stream settled for half a minute is judged afresh. */
export const SCORE_QUIET_MS = 30_000;

export class ScoreEpisodes {
	private count: number;
	private last: number;
	private lo: number;
	private hi: number;
	private lastChangeMs: number;

	/** `initial`: the producer's scores when it is adopted (its join tier watches its start). */
	constructor(
		initial: ReadonlyArray<{ score: number }>,
		nowMs: number,
		private readonly step = SCORE_STEP,
		private readonly quietMs = SCORE_QUIET_MS,
	) {
		this.count = initial.length;
		this.last = this.lo = this.hi = worst(initial);
		this.lastChangeMs = nowMs;
	}

	/** A score report: whether it is a change that calls for the fast tier. */
	observe(nowMs: number, scores: ReadonlyArray<{ score: number }>): boolean {
		const w = worst(scores);
		if (scores.length !== this.count) {
			this.count = scores.length;
			this.last = this.lo = this.hi = w;
			this.lastChangeMs = nowMs;
			return true;
		}
		if (w === this.last) return false;
		// Quiet since the last change: the episode is over, its range narrows to where the score settled.
		if (nowMs - this.lastChangeMs > this.quietMs) this.lo = this.hi = this.last;
		this.last = w;
		this.lastChangeMs = nowMs;
		if (w > this.lo - this.step && w < this.hi + this.step) return false;
		this.lo = Math.min(this.lo, w);
		this.hi = Math.max(this.hi, w);
		return true;
	}
}

function worst(scores: ReadonlyArray<{ score: number }>): number {
	let w = 10;
	for (const s of scores) if (s.score < w) w = s.score;
	return w;
}
