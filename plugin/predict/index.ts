/** Resource prediction: one Predictor interface, the specification's kNN, baselines, the trained model and the engine. */
export * from './types';
export { STREAM_FEATURES, WORKER_FEATURES, fitNormalization, streamContexts, streamFeatures, workerFeatures, type Normalization } from './features';
export { KnnPredictor, streamPrior, DEFAULT_WORKER_BASE, type ObservedProfile, type KnnOptions, type KnnStreamEstimate } from './knn';
export {
	LastValuePredictor,
	EwmaPredictor,
	LinearTrendPredictor,
	StaticScorePredictor,
	BBB_SCORE,
	CONSUMER_COUNT_SCORE,
	staticScore,
	fitScore,
	type ScoreWeights,
	type ScoreFit,
} from './baselines';
export { TfPredictor, ModelLoadError, MODEL_SCHEMA_VERSION, modelManifestSchema, validateManifest, describeHost, type ModelManifest, type InferencePath } from './model';
export { buildExamples, deriveEvents, splitBySession, type WorkerTimeline, type ExampleOptions } from './dataset';
export { evaluatePredictor, evaluateOnline, acceptanceFigures, type PredictorReport, type AcceptanceFigures } from './evaluate';
export { trainModel, type TrainOptions, type TrainResult, type EpochLog } from './train';
export { PredictionEngine, PageHinkley, scoreCpuMae15, LAST_VALUE_NAME, type EngineOptions, type Observation, type DriftEvent, type ReplaceDecision } from './engine';
export { ForecastGuard, GUARD_DEFAULTS, type GuardMode, type GuardErrors, type GuardStatus, type GuardSwitch, type GuardOptions } from './guard';
