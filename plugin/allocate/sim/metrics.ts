/**
 * Per-policy, per-scenario outcome of a simulation. Units are consumer-seconds unless
 * named otherwise; every figure is computed from the simulator's ground truth. The
 * definitions, in one place: docs/allocation-metrics.md.
 */
export interface ScenarioMetrics {
	scenario: string;
	policy: string;
	/** Σ over seconds and workers whose true CPU demand exceeded 85% of a core, of the un-paused consumers on them. */
	exposureConsumerS: number;
	/** Part of the exposure on workers at saturation, where ~20% of ingress is dropped. */
	overloadLossConsumerS: number;
	/** Consumer-seconds spent below the layers the client wanted (video and screen only). */
	layerDowngradeS: number;
	/** Consumer-seconds paused by the allocation manager. */
	pausedConsumerS: number;
	/** Consumer-seconds receivers got no media because their consumer moved (≥ 1 s each) or their producer migrated (≥ 2 s each). */
	disruptionConsumerS: number;
	droppedConsumers: number;
	refusedPeers: number;
	redirectedPeers: number;
	/** Consumers refused peers would have had (room producers at the time). */
	refusedConsumers: number;
	/** QUALITY_WEIGHTS-weighted sum of the quality figures above, consumer-seconds. */
	qualityCost: number;
	/** Producers moved between workers. */
	migrations: number;
	/** Receivers of migrated producers (each disrupted for producerMoveDisruptionS). */
	migratedProducerConsumers: number;
	/** Consumers moved to another worker by fan-out spreading. */
	movedConsumers: number;
	/** Corrective (non-admission) actions applied. */
	actions: number;
	/** Most rooms at once with streams on more than one worker (reported, not scored). */
	peakSplitRooms: number;
	/** Most pipes at once: producer × other worker it is consumed on, each a pipe consumer (reported, not scored). */
	peakPipes: number;
	/** Time-mean over seconds of the mean unused share of a core over workers hosting any stream. */
	meanSlack: number;
	/** Time-mean over seconds of the mean of max(0, 85 − load)/85 over workers hosting any stream (S85). */
	s85: number;
	/** Worker-seconds with true demand above the overload line (85 % of a core). */
	overloadWorkerS: number;
	/** Seconds between the first corrective action of a load rise and its threshold crossing (see LeadTimeTracker). */
	leadTimesS: number[];
	crossings: number;
	/** Crossings with no corrective action on that worker up to 30 s after. */
	unansweredCrossings: number;
	peakStreams: number;
	unansweredJoins: number;
	decisionMsMedian: number;
	slackSum: number;
	s85Sum: number;
	slackTicks: number;
}

/**
 * Quality cost weights, consumer-seconds per unit: a downgraded consumer still shows
 * video (half a second lost per second), a paused one shows nothing, nor does one whose
 * media a move interrupted; a dropped or refused consumer is counted as one minute of nothing.
 */
export const QUALITY_WEIGHTS = Object.freeze({ downgradeS: 0.5, pausedS: 1, disruptionS: 1, dropped: 60, refusedConsumer: 60 });

export function emptyMetrics(scenario: string, policy: string): ScenarioMetrics {
	return {
		scenario,
		policy,
		exposureConsumerS: 0,
		overloadLossConsumerS: 0,
		layerDowngradeS: 0,
		pausedConsumerS: 0,
		disruptionConsumerS: 0,
		droppedConsumers: 0,
		refusedPeers: 0,
		redirectedPeers: 0,
		refusedConsumers: 0,
		qualityCost: 0,
		migrations: 0,
		migratedProducerConsumers: 0,
		movedConsumers: 0,
		actions: 0,
		peakSplitRooms: 0,
		peakPipes: 0,
		meanSlack: 0,
		s85: 0,
		overloadWorkerS: 0,
		leadTimesS: [],
		crossings: 0,
		unansweredCrossings: 0,
		peakStreams: 0,
		unansweredJoins: 0,
		decisionMsMedian: 0,
		slackSum: 0,
		s85Sum: 0,
		slackTicks: 0,
	};
}

export function qualityCost(m: Pick<ScenarioMetrics, 'layerDowngradeS' | 'pausedConsumerS' | 'disruptionConsumerS' | 'droppedConsumers' | 'refusedConsumers'>): number {
	return (
		QUALITY_WEIGHTS.downgradeS * m.layerDowngradeS +
		QUALITY_WEIGHTS.pausedS * m.pausedConsumerS +
		QUALITY_WEIGHTS.disruptionS * m.disruptionConsumerS +
		QUALITY_WEIGHTS.dropped * m.droppedConsumers +
		QUALITY_WEIGHTS.refusedConsumer * m.refusedConsumers
	);
}

export function median(values: readonly number[]): number | null {
	if (values.length === 0) return null;
	const sorted = [...values].sort((a, b) => a - b);
	const mid = sorted.length >> 1;
	return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Lead time of the first action before a threshold crossing. Actions change where load
 * lands, so crossings are detected on the counterfactual load of a worker: what it would
 * carry had every stream stayed on the worker it was first placed on, at the layers its
 * client wanted, never paused (pipe costs left out). A crossing is the first second that
 * counterfactual exceeds the threshold after having been below the calm level; the first
 * corrective action concerning that worker since it was last calm (and at most 30 s after
 * the crossing) gives lead time = crossing − action, negative when the action came late.
 * Corrective means relieving: a rebalance off the worker or a degrade on it; restores and
 * consolidation (emptying a light worker) answer no crossing and are not reported here.
 */
export class LeadTimeTracker {
	private readonly lastCalmT = new Map<string, number>();
	private readonly armed = new Map<string, boolean>();
	private readonly crossings: Array<{ workerId: string; t: number; calmT: number }> = [];
	private readonly actionTimes = new Map<string, number[]>();

	constructor(
		private readonly thresholdPct: number,
		private readonly calmPct = 70,
		private readonly lateS = 30,
	) {}

	sample(workerId: string, t: number, counterfactualPct: number): void {
		if (counterfactualPct < this.calmPct) {
			this.lastCalmT.set(workerId, t);
			this.armed.set(workerId, true);
		} else if (counterfactualPct > this.thresholdPct && this.armed.get(workerId) !== false) {
			this.armed.set(workerId, false);
			this.crossings.push({ workerId, t, calmT: this.lastCalmT.get(workerId) ?? 0 });
		}
	}

	acted(workerId: string, t: number): void {
		const times = this.actionTimes.get(workerId);
		if (!times) this.actionTimes.set(workerId, [t]);
		else if (times[times.length - 1] !== t) times.push(t);
	}

	result(): { leadTimesS: number[]; crossings: number; unanswered: number } {
		const leadTimesS: number[] = [];
		let unanswered = 0;
		for (const c of this.crossings) {
			const first = (this.actionTimes.get(c.workerId) ?? []).find((t) => t >= c.calmT && t <= c.t + this.lateS);
			if (first === undefined) unanswered++;
			else leadTimesS.push(c.t - first);
		}
		return { leadTimesS, crossings: this.crossings.length, unanswered };
	}
}

export function finishMetrics(m: ScenarioMetrics, leadTimes: LeadTimeTracker, decisionMs: readonly number[]): void {
	const lead = leadTimes.result();
	m.leadTimesS = lead.leadTimesS;
	m.crossings = lead.crossings;
	m.unansweredCrossings = lead.unanswered;
	m.qualityCost = qualityCost(m);
	m.meanSlack = m.slackTicks > 0 ? m.slackSum / m.slackTicks : 1;
	m.s85 = m.slackTicks > 0 ? m.s85Sum / m.slackTicks : 1;
	m.decisionMsMedian = median(decisionMs) ?? 0;
}

/** A worker's unused share of a core (`corePct`, % of a core at saturation): 0 when saturated or beyond. */
export function workerSlack(loadPct: number, corePct: number): number {
	return 1 - Math.min(corePct, loadPct) / corePct;
}

/** A worker's room left under the overload line, as a share of it: max(0, line − load)/line. */
export function s85(loadPct: number, linePct: number): number {
	return Math.max(0, linePct - loadPct) / linePct;
}

/** Mean slack over workers with these loads; 0 with none. */
export function meanSlack(loadsPct: readonly number[], corePct: number): number {
	if (loadsPct.length === 0) return 0;
	let sum = 0;
	for (const load of loadsPct) sum += workerSlack(load, corePct);
	return sum / loadsPct.length;
}
