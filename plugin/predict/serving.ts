/**
 * The prediction engine as Foresight serves it, from its resolved options: the primary
 * predictor the options name (anchored by default), the kNN fallback, the forecast guard
 * and the online correction. One place, so that the allocation simulator drives exactly
 * what the plugin runs (plugin/allocate/sim/liveView.ts).
 */
import type { ResolvedForesightOptions } from '../config';
import type { Logger } from '../log';
import { AnchoredPredictor } from './anchored';
import { PredictionEngine, type EngineOptions } from './engine';
import { KnnPredictor } from './knn';

export interface ServingEngineExtras {
	/** Whether a model directory is configured (the online correction then defaults on). */
	hasModel: boolean;
	/** Period of the load samples the engine observes, ms. */
	loadSampleIntervalMs: number;
	logger?: Logger;
	onGuardSwitch?: EngineOptions['onGuardSwitch'];
	onDrift?: EngineOptions['onDrift'];
	model?: EngineOptions['model'];
}

export function servingEngine(prediction: ResolvedForesightOptions['prediction'], extras: ServingEngineExtras): PredictionEngine {
	return new PredictionEngine({
		fallback: new KnnPredictor([]),
		...(prediction.predictor === 'anchored'
			? { primary: new AnchoredPredictor({ levelHalfLifeS: prediction.levelHalfLifeS, calibrationOptions: { halfLifeS: prediction.calibrationHalfLifeS } }) }
			: {}),
		...(extras.model ? { model: extras.model } : {}),
		...(extras.logger ? { logger: extras.logger } : {}),
		biasAlpha: prediction.biasAlpha ?? (extras.hasModel || prediction.predictor === 'knn' ? 0.1 : 0),
		// Observations come once per load sample: half a period matches each to one prediction.
		matchToleranceMs: extras.loadSampleIntervalMs / 2,
		guard: prediction.guard
			? { horizonS: prediction.guardHorizonS, windowMs: prediction.guardWindowMs, switchAfterMs: prediction.guardSwitchAfterMs, recoverAfterMs: prediction.guardRecoverAfterMs }
			: false,
		...(extras.onGuardSwitch ? { onGuardSwitch: extras.onGuardSwitch } : {}),
		...(extras.onDrift ? { onDrift: extras.onDrift } : {}),
	});
}
