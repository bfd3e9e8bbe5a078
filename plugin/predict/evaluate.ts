import { quantile } from './stats';
import type { Observation, PredictionEngine } from './engine';
import { HORIZONS_S, TARGETS, type HorizonS, type Predictor, type Target, type TrainingExample, type WorkerPrediction } from './types';

/** How one predictor did on held-out examples. */
export interface PredictorReport {
	name: string;
	examples: number;
	mae: Record<HorizonS, Record<Target, number>>;
	/** 90th percentile of |CPU error| in percentage points. */
	p90AbsErrCpu: Record<HorizonS, number>;
	/** Share of actual CPU values at or below the predicted p95. */
	p95CoverageCpu: Record<HorizonS, number>;
}

export function evaluatePredictor(predictor: Predictor, examples: readonly TrainingExample[]): PredictorReport {
	const predictions = examples.length > 0 ? predictor.predict(examples.map((e) => e.snapshot)) : [];
	return reportOf(predictor.name, examples, predictions);
}

/**
 * Replays held-out examples through an engine in time order, as it would run live:
 * before predicting at `now` it is shown every actual with ts ≤ now (the targets of
 * earlier examples), never a later one. Measures model + online bias correction.
 */
export function evaluateOnline(engine: PredictionEngine, examples: readonly TrainingExample[]): PredictorReport {
	const order = examples.map((_, i) => i).sort((a, b) => examples[a]!.snapshot.now - examples[b]!.snapshot.now);
	// Examples arrive in time order, so each horizon's observations are already sorted by ts.
	const due = HORIZONS_S.map(() => [] as Observation[]);
	const heads = HORIZONS_S.map(() => 0);
	const predictions: WorkerPrediction[] = new Array<WorkerPrediction>(examples.length);
	for (const i of order) {
		const e = examples[i]!;
		const now = e.snapshot.now;
		due.forEach((queue, q) => {
			while (heads[q]! < queue.length && queue[heads[q]!]!.ts <= now) engine.observe(queue[heads[q]!++]!);
		});
		predictions[i] = engine.predict([e.snapshot])[0]!;
		HORIZONS_S.forEach((h, q) => due[q]!.push({ workerId: e.snapshot.workerId, ts: now + h * 1000, actual: e.targets[h] }));
	}
	return reportOf(`${engine.active.name}+online`, examples, predictions);
}

function reportOf(name: string, examples: readonly TrainingExample[], predictions: readonly WorkerPrediction[]): PredictorReport {
	const mae = {} as PredictorReport['mae'];
	const p90AbsErrCpu = {} as PredictorReport['p90AbsErrCpu'];
	const p95CoverageCpu = {} as PredictorReport['p95CoverageCpu'];
	for (const h of HORIZONS_S) {
		mae[h] = {} as Record<Target, number>;
		for (const t of TARGETS) {
			let sum = 0;
			predictions.forEach((p, i) => (sum += Math.abs(p.horizons[h].total[t].mean - examples[i]!.targets[h][t])));
			mae[h][t] = examples.length > 0 ? sum / examples.length : Number.NaN;
		}
		const cpuErrors = predictions.map((p, i) => Math.abs(p.horizons[h].total.cpuPct.mean - examples[i]!.targets[h].cpuPct));
		p90AbsErrCpu[h] = quantile(cpuErrors, 0.9);
		const covered = predictions.filter((p, i) => examples[i]!.targets[h].cpuPct <= p.horizons[h].total.cpuPct.p95).length;
		p95CoverageCpu[h] = examples.length > 0 ? covered / examples.length : Number.NaN;
	}
	return { name, examples: examples.length, mae, p90AbsErrCpu, p95CoverageCpu };
}

/** The closing-note figures at the 15 s horizon; gains are fractions (0.3 = 30% lower MAE). */
export interface AcceptanceFigures {
	p90_abs_err_pp_15s: number;
	mae_gain_vs_last: number;
	mae_gain_vs_ewma: number;
	mae_gain_vs_knn: number;
	p95_coverage: number;
}

export function acceptanceFigures(model: PredictorReport, baselines: { last: PredictorReport; ewma: PredictorReport; knn: PredictorReport }): AcceptanceFigures {
	const gain = (b: PredictorReport) => 1 - model.mae[15].cpuPct / b.mae[15].cpuPct;
	return {
		p90_abs_err_pp_15s: model.p90AbsErrCpu[15],
		mae_gain_vs_last: gain(baselines.last),
		mae_gain_vs_ewma: gain(baselines.ewma),
		mae_gain_vs_knn: gain(baselines.knn),
		p95_coverage: model.p95CoverageCpu[15],
	};
}
