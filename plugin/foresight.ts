import type { types } from 'mediasoup';
import { optionsFromEnv, type ForesightOptions, type ResolvedForesightOptions } from './config';
import { createLogger, type Logger } from './log';
import { GraphObserver, type MediasoupModule } from './observe/attach';
import type { Registry } from './observe/registry';
import { WorkerLoadSampler } from './observe/workerLoad';
import { Profiler } from './profile/profiler';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from './profile/schema';
import { TypedEmitter } from './util/typedEmitter';

export type ForesightEvents = {
	workerLoad: [WorkerLoadSample];
	workerDied: [workerId: string];
	/** One profiling round of one worker: every stream and connection on it. */
	profiles: [{ workerId: string; streams: StreamProfile[]; connections: ConnectionProfile[] }];
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
	private detached = false;

	constructor(mediasoup: MediasoupModule, options: ResolvedForesightOptions, logger: Logger) {
		super((event, error) => logger.error({ err: error, event }, 'listener of a Foresight event threw'));
		this.options = options;
		this.log = logger;
		this.graph = new GraphObserver(mediasoup, logger);
		this.graph.on('workerDied', (workerId) => this.emit('workerDied', workerId));
		this.loadSampler = new WorkerLoadSampler(this.graph.registry, options.loadSampleIntervalMs, logger);
		this.loadSampler.on('sample', (s) => this.emit('workerLoad', s));
		this.loadSampler.start();
		this.profiler = new Profiler(
			this.graph.registry,
			{ statsIntervalMs: options.statsIntervalMs, ...options.profiling },
			logger,
		);
		this.profiler.on('profiles', (p) => this.emit('profiles', p));
		this.profiler.start();
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
		this.loadSampler.stop();
		await this.profiler.stop();
		this.graph.detach();
		this.removeAllListeners();
	}
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
