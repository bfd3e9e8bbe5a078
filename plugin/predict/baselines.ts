import type { StreamProfile, WorkerLoadSample } from '../profile/schema';
import { assembleWorkerPrediction, asStreamList, perHorizon, sumNeeds, type PerHorizon, type StreamCost } from './assemble';
import { leastSquares, std, Z95 } from './stats';
import {
	HORIZONS_S,
	networkOfStreams,
	TARGETS,
	zeroResources,
	type HorizonS,
	type Predictor,
	type ResourceNeeds,
	type ResourceVector,
	type Target,
	type TrainingExample,
	type WorkerPrediction,
	type WorkerSnapshot,
} from './types';

/**
 * Evaluation baselines. The time-series ones see only the worker's own history, so
 * they attribute nothing to streams (all cost is base, needs of a connection are 0).
 * Load samples carry no network counters, so their network "history" is the present
 * sum of stream bitrates, i.e. every time-series baseline forecasts network as last value.
 */

export type SampleTarget = 'cpuPct' | 'rssBytes';

/**
 * Spread of a naive forecast: Z95 × σ of the h-second changes seen in the history
 * (how much the series moved over one horizon before), 0 without enough history.
 */
export function laggedSpread(samples: readonly WorkerLoadSample[], target: SampleTarget, h: HorizonS): number {
	const diffs: number[] = [];
	let j = 0;
	for (let i = 0; i < samples.length; i++) {
		const want = samples[i]!.ts - h * 1000;
		while (j + 1 < i && samples[j + 1]!.ts <= want) j++;
		if (samples[j]!.ts <= want) diffs.push(samples[i]![target] - samples[j]![target]);
	}
	return Z95 * std(diffs);
}

abstract class TimeSeriesBaseline implements Predictor {
	abstract readonly name: string;

	/** Forecast of one sample series at now + h; undefined when there are no samples. */
	protected abstract forecast(samples: readonly WorkerLoadSample[], target: SampleTarget, now: number, h: HorizonS): number | undefined;

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		return snapshots.map((snap) => {
			const net = networkOfStreams(snap.streams);
			const base: PerHorizon = perHorizon((h) => ({
				cpuPct: Math.max(0, this.forecast(snap.samples, 'cpuPct', snap.now, h) ?? 0),
				rssBytes: Math.max(0, this.forecast(snap.samples, 'rssBytes', snap.now, h) ?? 0),
				...net,
			}));
			const spread: PerHorizon = perHorizon((h) => ({
				cpuPct: laggedSpread(snap.samples, 'cpuPct', h),
				rssBytes: laggedSpread(snap.samples, 'rssBytes', h),
				ingressBps: 0,
				egressBps: 0,
			}));
			return assembleWorkerPrediction(snap.workerId, this.name, base, spread, []);
		});
	}

	predictResourceNeeds(): ResourceNeeds {
		return sumNeeds([]);
	}
}

export class LastValuePredictor extends TimeSeriesBaseline {
	readonly name = 'last-value';
	protected forecast(samples: readonly WorkerLoadSample[], target: SampleTarget): number | undefined {
		return samples[samples.length - 1]?.[target];
	}
}

/** Exponentially weighted mean of a sample series with a half-life in seconds, exact for irregular sampling. */
export function ewmaLevel(samples: readonly WorkerLoadSample[], target: SampleTarget, halfLifeS: number): number | undefined {
	let value: number | undefined;
	let prevTs = 0;
	for (const s of samples) {
		if (value === undefined) value = s[target];
		else {
			const alpha = 1 - Math.pow(0.5, Math.max(0, s.ts - prevTs) / 1000 / halfLifeS);
			value += alpha * (s[target] - value);
		}
		prevTs = s.ts;
	}
	return value;
}

/** Exponentially weighted mean with a half-life in seconds, exact for irregular sampling. */
export class EwmaPredictor extends TimeSeriesBaseline {
	readonly name: string;
	constructor(private readonly halfLifeS = 10) {
		super();
		if (!(halfLifeS > 0)) throw new RangeError(`EWMA half-life must be > 0, got ${halfLifeS}`);
		this.name = `ewma-${halfLifeS}s`;
	}
	protected forecast(samples: readonly WorkerLoadSample[], target: SampleTarget): number | undefined {
		return ewmaLevel(samples, target, this.halfLifeS);
	}
}

/** Least-squares line over the last windowS seconds, extrapolated to now + h. */
export class LinearTrendPredictor extends TimeSeriesBaseline {
	readonly name: string;
	constructor(private readonly windowS = 30) {
		super();
		if (!(windowS > 0)) throw new RangeError(`trend window must be > 0, got ${windowS}`);
		this.name = `trend-${windowS}s`;
	}
	protected forecast(samples: readonly WorkerLoadSample[], target: SampleTarget, now: number, h: HorizonS): number | undefined {
		const recent = samples.filter((s) => s.ts >= now - this.windowS * 1000 && s.ts <= now);
		if (recent.length === 0) return samples[samples.length - 1]?.[target];
		const line = leastSquares(recent.map((s) => ({ x: (s.ts - now) / 1000, y: s[target] })));
		return line.intercept + line.slope * h;
	}
}

/** Points per entity of a static score; transports are not streams, so their points stay in the base. */
export interface ScoreWeights {
	transport: number;
	producer: number;
	consumer: number;
}
/** BigBlueButton's mediasoup load score. */
export const BBB_SCORE: ScoreWeights = { transport: 10, producer: 5, consumer: 2 };
export const CONSUMER_COUNT_SCORE: ScoreWeights = { transport: 0, producer: 0, consumer: 1 };

/** y = intercept + slope·score, with the residual σ, per horizon and target. */
export type ScoreFit = Record<HorizonS, Record<Target, { intercept: number; slope: number; residualStd: number }>>;

function counts(snap: WorkerSnapshot): { transports: number; producers: number; consumers: number } {
	const last = snap.samples[snap.samples.length - 1];
	if (last) return { transports: last.transports, producers: last.producers, consumers: last.consumers };
	const transports = new Set(snap.streams.map((s) => s.transportId)).size;
	return {
		transports,
		producers: snap.streams.filter((s) => s.entity === 'producer').length,
		consumers: snap.streams.filter((s) => s.entity === 'consumer').length,
	};
}

export function staticScore(snap: WorkerSnapshot, w: ScoreWeights): number {
	const c = counts(snap);
	return w.transport * c.transports + w.producer * c.producers + w.consumer * c.consumers;
}

/** Fits the score → resource mapping ("mapped to CPU by a fitted scale") by least squares. */
export function fitScore(examples: readonly TrainingExample[], weights: ScoreWeights): ScoreFit {
	const fit = {} as ScoreFit;
	for (const h of HORIZONS_S) {
		fit[h] = {} as ScoreFit[HorizonS];
		for (const t of TARGETS) {
			const points = examples.map((e) => ({ x: staticScore(e.snapshot, weights), y: e.targets[h][t] }));
			const line = leastSquares(points);
			fit[h][t] = { ...line, residualStd: std(points.map((p) => p.y - (line.intercept + line.slope * p.x))) };
		}
	}
	return fit;
}

/** A static score (BigBlueButton's, or the consumer count) turned into resources by a fitted line. */
export class StaticScorePredictor implements Predictor {
	constructor(
		readonly name: string,
		private readonly weights: ScoreWeights,
		private readonly fit: ScoreFit,
	) {}

	static fitted(name: string, weights: ScoreWeights, examples: readonly TrainingExample[]): StaticScorePredictor {
		return new StaticScorePredictor(name, weights, fitScore(examples, weights));
	}

	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		return snapshots.map((snap) => {
			const c = counts(snap);
			const base = perHorizon((h) => this.line(h, (f) => f.intercept + f.slope * this.weights.transport * c.transports));
			// Counts from samples may differ from the listed streams; the difference stays in the base.
			const listed = this.streamCosts(snap.streams);
			const listedProducers = snap.streams.filter((s) => s.entity === 'producer').length;
			const listedConsumers = snap.streams.filter((s) => s.entity === 'consumer').length;
			const unlisted = this.weights.producer * (c.producers - listedProducers) + this.weights.consumer * (c.consumers - listedConsumers);
			for (const h of HORIZONS_S) for (const t of TARGETS) base[h][t] += this.fit[h][t].slope * unlisted;
			const spread = perHorizon((h) => this.line(h, (f) => Z95 * f.residualStd));
			return assembleWorkerPrediction(snap.workerId, this.name, base, spread, listed);
		});
	}

	predictResourceNeeds(streams: StreamProfile | readonly StreamProfile[]): ResourceNeeds {
		return sumNeeds(this.streamCosts(asStreamList(streams)));
	}

	private line(h: HorizonS, f: (fit: ScoreFit[HorizonS][Target]) => number): ResourceVector {
		const out = zeroResources();
		for (const t of TARGETS) out[t] = f(this.fit[h][t]);
		return out;
	}

	private streamCosts(streams: readonly StreamProfile[]): StreamCost[] {
		const zero = perHorizon(zeroResources);
		return streams.map((s) => {
			const points = s.entity === 'producer' ? this.weights.producer : s.entity === 'consumer' ? this.weights.consumer : 0;
			return { streamId: s.streamId, transportId: s.transportId, cost: perHorizon((h) => this.line(h, (f) => f.slope * points)), spread: zero };
		});
	}
}
