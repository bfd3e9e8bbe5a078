import type { types } from 'mediasoup';
import { optionsFromEnv, type ForesightOptions, type ResolvedForesightOptions } from './config';
import { createLogger, type Logger } from './log';
import { GraphObserver, type MediasoupModule } from './observe/attach';
import type { Registry } from './observe/registry';
import { WorkerLoadSampler } from './observe/workerLoad';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PredictionEngine } from './predict/engine';
import { KnnPredictor } from './predict/knn';
import { LiveHistory } from './predict/live';
import { networkOfStreams, type WorkerPrediction } from './predict/types';
import { Profiler } from './profile/profiler';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from './profile/schema';
import { TypedEmitter } from './util/typedEmitter';

export type ForesightEvents = {
	workerLoad: [WorkerLoadSample];
	workerDied: [workerId: string];
	/** One profiling round of one worker: every stream and connection on it. */
	profiles: [{ workerId: string; streams: StreamProfile[]; connections: ConnectionProfile[] }];
	/** Every worker's predicted load at each horizon, with per-stream attribution. */
	predictions: [WorkerPrediction[]];
};

export interface AttachOptions extends ForesightOptions {
	/** The app's pino logger; Foresight logs through a child of it. */
	logger?: Logger;
	/** Read FORESIGHT_* and INFLUX_* variables (default true); explicit options win. */
	useEnv?: boolean;
}

/**
 * Foresight attached to one mediasoup module. Created by attach(); everything
 * it observes is discovered through mediasoup's observer events.
 */
export class Foresight extends TypedEmitter<ForesightEvents> {
	readonly options: ResolvedForesightOptions;
	readonly log: Logger;
	private readonly graph: GraphObserver;
	private readonly loadSampler: WorkerLoadSampler;
	private readonly profiler: Profiler;
	private readonly history = new LiveHistory();
	readonly predictor: PredictionEngine;
	private predictTimer: NodeJS.Timeout | undefined;
	private lastPredictions: WorkerPrediction[] = [];
	private detached = false;

	constructor(mediasoup: MediasoupModule, options: ResolvedForesightOptions, logger: Logger) {
		super((event, error) => logger.error({ err: error, event }, 'listener of a Foresight event threw'));
		this.options = options;
		this.log = logger;
		this.graph = new GraphObserver(mediasoup, logger);
		this.graph.on('workerDied', (workerId) => this.emit('workerDied', workerId));
		this.loadSampler = new WorkerLoadSampler(this.graph.registry, options.loadSampleIntervalMs, logger);
		this.predictor = new PredictionEngine({ fallback: new KnnPredictor([]), logger });
		this.loadSampler.on('sample', (s) => {
			this.history.addSample(s);
			const network = networkOfStreams(this.history.streamsOf(s.workerId));
			this.predictor.observe({ workerId: s.workerId, ts: s.ts, actual: { cpuPct: s.cpuPct, rssBytes: s.rssBytes, ...network } });
			this.emit('workerLoad', s);
		});
		this.loadSampler.start();
		this.profiler = new Profiler(
			this.graph.registry,
			{ statsIntervalMs: options.statsIntervalMs, ...options.profiling },
			logger,
		);
		this.profiler.on('profiles', (p) => {
			this.history.setStreams(p.workerId, p.streams);
			this.emit('profiles', p);
		});
		this.profiler.start();
		this.graph.registry.on('added', (node) => {
			if (node.kind === 'producer' || node.kind === 'consumer' || node.kind === 'dataProducer' || node.kind === 'dataConsumer') {
				this.history.addEvent(node.workerId, Date.now(), 'join', node.id, node.kind);
			}
		});
		this.graph.registry.on('removed', (node) => {
			if (node.kind === 'worker') this.history.removeWorker(node.id);
			else if (node.kind === 'producer' || node.kind === 'consumer' || node.kind === 'dataProducer' || node.kind === 'dataConsumer') {
				this.history.addEvent(node.workerId, Date.now(), 'leave', node.id, node.kind);
			}
		});
		const modelDir = options.modelDir ?? defaultModelDir();
		if (modelDir) void this.predictor.loadModel(modelDir);
		this.predictTimer = setInterval(() => this.predictNow(), options.loadSampleIntervalMs);
		this.predictTimer.unref();
	}

	/** Predicts every worker's load now (also runs every loadSampleIntervalMs). */
	predictNow(): WorkerPrediction[] {
		const snapshots = this.history.snapshots(Date.now());
		if (snapshots.length === 0) return [];
		try {
			this.lastPredictions = this.predictor.predict(snapshots);
		} catch (error) {
			this.log.error({ err: error }, 'prediction failed');
			return this.lastPredictions;
		}
		this.emit('predictions', this.lastPredictions);
		return this.lastPredictions;
	}

	/** The latest prediction of each worker. */
	get predictions(): readonly WorkerPrediction[] {
		return this.lastPredictions;
	}

	/** The live graph of workers, routers, transports, producers and consumers. */
	get registry(): Registry {
		return this.graph.registry;
	}

	/** Hands over a worker the app created before attach(). */
	adoptWorker(worker: types.Worker): void {
		this.graph.adoptWorker(worker);
	}

	/** One immediate load sampling round (also runs on the configured period). */
	sampleLoad(): Promise<WorkerLoadSample[]> {
		return this.loadSampler.tick();
	}

	/** One immediate profiling round (also runs every statsIntervalMs). */
	async sampleProfiles(): Promise<ForesightEvents['profiles'][0][]> {
		return this.profiler.tick();
	}

	/** Latest profile of one producer, consumer, data producer or data consumer. */
	profileOf(streamId: string): StreamProfile | undefined {
		return this.profiler.profileOf(streamId);
	}

	/** Stops sampling and removes every listener Foresight added to mediasoup. */
	async detach(): Promise<void> {
		if (this.detached) return;
		this.detached = true;
		clearInterval(this.predictTimer);
		this.loadSampler.stop();
		await this.profiler.stop();
		this.graph.detach();
		this.removeAllListeners();
	}
}

/** The model shipped with the package (models/default), if present. */
function defaultModelDir(): string | undefined {
	for (const dir of [join(__dirname, '..', 'models', 'default'), join(__dirname, '..', '..', 'models', 'default')]) {
		if (existsSync(join(dir, 'manifest.json'))) return dir;
	}
	return undefined;
}

/**
 * Attaches Foresight to an app's mediasoup module. Call it before the app
 * creates workers (or hand earlier ones over with adoptWorker()).
 *
 * @throws ForesightConfigError naming each invalid option (or environment variable).
 */
export function attach(mediasoup: MediasoupModule, options: AttachOptions = {}): Foresight {
	if (!mediasoup || typeof mediasoup !== 'object' || typeof mediasoup.observer?.on !== 'function') {
		throw new TypeError('attach(mediasoup): expected the mediasoup module (with its `observer` emitter)');
	}
	const { logger, useEnv = true, ...rest } = options;
	const resolved = optionsFromEnv(useEnv ? process.env : {}, rest);
	return new Foresight(mediasoup, resolved, createLogger(resolved.logLevel, logger));
}
