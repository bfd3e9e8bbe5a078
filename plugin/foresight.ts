import { performance } from 'node:perf_hooks';
import type { types } from 'mediasoup';
import { ForesightConfigError, optionsFromEnv, type ForesightOptions, type ResolvedForesightOptions } from './config';
import { createLogger, type Logger } from './log';
import { GraphObserver, type MediasoupModule } from './observe/attach';
import { isStreamNode, type Registry } from './observe/registry';
import { WorkerLiveness } from './observe/liveness';
import { WorkerLoadSampler } from './observe/workerLoad';
import { Actuator } from './act/actuator';
import { Healer, type HealingEvent } from './act/healer';
import type { MigrationHooks } from './act/hooks';
import { AllocationManager, safetyForCapacity, type AuditEntry, type ManagerActivity } from './act/manager';
import type { MediaCodecsOption } from './act/rooms';
import type { AllocationSnapshot, PendingJoin } from './allocate/snapshot';
import type { AllocationAction } from './allocate/actions';
import { isUnreachable } from './store/influxClient';
import { InfluxStore } from './store/influxStore';
import { DEFAULT_MEMORY_RETENTION_MS, MemoryStore } from './store/memoryStore';
import type { ProfileStore } from './store/types';
import { decideCrossHost, hostFreeShare } from './cluster/decide';
import { InfluxClusterChannel } from './cluster/influxChannel';
import { ClusterMember, type ClusterEvent, type ClusterStats, type ClusterView } from './cluster/member';
import { decideCrossHostRelief, type CrossHostMove } from './cluster/relieve';
import { buildHostReport, localHeadroom } from './cluster/report';
import { guard, initialSafetyState, SAFETY_DEFAULTS, type SafetyOptions, type SafetyState } from './allocate/safety';
import type { ClusterChannel } from './cluster/types';
import { PredictionEngine } from './predict/engine';
import type { GuardSwitch } from './predict/guard';
import { servingEngine } from './predict/serving';
import { LiveHistory } from './predict/live';
import { TfPredictor } from './predict/model';
import { Retrainer, type RetrainResult } from './predict/retrainer';
import { storeTimelines, ThreadTrainer } from './predict/retrainer.io';
import { networkOfStreams, type WorkerPrediction } from './predict/types';
import { hotContributors } from './profile/hot';
import { Profiler, type WorkerRound } from './profile/profiler';
import type { ProfilerStats } from './profile/meter';
import type { StreamProfile, WorkerLoadSample } from './profile/schema';
import { TypedEmitter } from './util/typedEmitter';

export type ForesightEvents = {
	workerLoad: [WorkerLoadSample];
	workerDied: [workerId: string];
	/**
	 * One profiling round of one worker: the latest profile of each of its streams and
	 * transports, and which of them this round built (streams are refreshed on tiers, see
	 * plugin/profile/schedule.ts; a store writes the refreshed ones).
	 */
	profiles: [WorkerRound];
	/** Every worker's predicted load at each horizon, with per-stream attribution; each says which predictor served it. */
	predictions: [WorkerPrediction[]];
	/** The forecast guard switched a worker to last value, or back to its predictor. */
	guard: [GuardSwitch];
	/** One allocation decision round (`round`) or admission answer (`place`), and how long it took. */
	decision: [{ kind: 'round' | 'place'; ms: number }];
	/** An allocation decision (applied, or logged only in dry-run), and later its measured effect. */
	audit: [AuditEntry];
	/** One step of healing after a worker died (see MigrationHooks.replaceWorker / rejoinPeers). */
	healing: [HealingEvent];
	/** A change of the shared cluster view: a host went silent or came back, the view went stale or fresh again. */
	cluster: [ClusterEvent];
};

/** What the app tells place() about a join beyond the peer itself. */
export interface PlaceOptions {
	/**
	 * The client was sent here by another host's redirect: it is placed here or refused,
	 * never redirected again (no ping-pong between hosts whose views differ by a report).
	 */
	redirected?: boolean;
}

export interface AttachOptions extends ForesightOptions {
	/** The app's pino logger; Foresight logs through a child of it. */
	logger?: Logger;
	/** Read FORESIGHT_* and INFLUX_* variables (default true); explicit options win. */
	useEnv?: boolean;
	/** Where profiles, load and audit records go; default: InfluxDB when configured, else in memory. */
	store?: ProfileStore;
	/**
	 * The app's signaling side of moving media between workers (see plugin/act/hooks.ts).
	 * Without it Foresight still places peers, lowers layers and pauses consumers,
	 * but does not spread fan-out or migrate producers.
	 */
	hooks?: MigrationHooks;
	/** Codecs for routers Foresight creates for a room (default: those of the room's existing router). */
	mediaCodecs?: MediaCodecsOption;
	/**
	 * Where the cluster view lives when `cluster.hostId` is set (default: the InfluxDB of
	 * `influx`). A MemoryClusterBus channel runs several Foresights in one process.
	 */
	clusterChannel?: ClusterChannel;
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
	private readonly liveness: WorkerLiveness;
	private readonly profiler: Profiler;
	/** The allocation capacity of a worker (% of a core): what "predicted hot" is measured against. */
	private readonly workerCapacityPct: number;
	private readonly history = new LiveHistory();
	readonly predictor: PredictionEngine;
	private predictTimer: NodeJS.Timeout | undefined;
	private readonly trainer: ThreadTrainer;
	private readonly retrainer: Retrainer<TfPredictor>;
	private retrainTimer: NodeJS.Timeout | undefined;
	private allocateTimer: NodeJS.Timeout | undefined;
	private lastPredictions: WorkerPrediction[] = [];
	private currentStore: ProfileStore;
	private readonly actuator: Actuator;
	private readonly manager: AllocationManager;
	private readonly healer: Healer;
	private readonly cluster: ClusterMember | undefined;
	/** The guard over cross-host moves (cooldowns and rate, as for moves within the host), thresholds at the worker capacity. */
	private readonly reliefSafetyOptions: SafetyOptions;
	private reliefSafety: SafetyState;
	private storeRetry: NodeJS.Timeout | undefined;
	/** A store the app passed in is the app's to close. */
	private readonly ownsStore: boolean;
	private detached = false;

	constructor(
		mediasoup: MediasoupModule,
		options: ResolvedForesightOptions,
		logger: Logger,
		extra: Pick<AttachOptions, 'store' | 'hooks' | 'mediaCodecs' | 'clusterChannel'> = {},
	) {
		super((event, error) => logger.error({ err: error, event }, 'listener of a Foresight event threw'));
		this.options = options;
		this.log = logger;
		this.graph = new GraphObserver(mediasoup, logger);
		this.graph.on('workerDied', (workerId) => this.emit('workerDied', workerId));
		this.loadSampler = new WorkerLoadSampler(this.graph.registry, options.loadSampleIntervalMs, logger);
		const retraining = options.retraining;
		const autoRetrain = retraining.enabled ?? options.modelDir !== undefined;
		const prediction = options.prediction;
		this.predictor = servingEngine(prediction, {
			hasModel: options.modelDir !== undefined,
			loadSampleIntervalMs: options.loadSampleIntervalMs,
			logger,
			onGuardSwitch: (event) => this.emit('guard', event),
			...(autoRetrain ? { onDrift: () => void this.retrainer.retrain('drift') } : {}),
		});
		this.trainer = new ThreadTrainer(options.modelDir ? { modelDir: options.modelDir } : {});
		this.retrainer = new Retrainer<TfPredictor>(
			{
				history: (from, to) => storeTimelines(this.currentStore, from, to),
				deployed: () => {
					const active = this.predictor.active;
					if (!(active instanceof TfPredictor)) return { name: 'retrained', version: 0 };
					return { name: active.manifest.name, version: active.manifest.version, architecture: active.manifest.architecture };
				},
				train: (job) => this.trainer.train(job),
				replace: (candidate, heldOut) => this.predictor.maybeReplace(candidate, heldOut),
				settle: (dir, keep, version) => this.trainer.settle(dir, keep, version),
				now: () => Date.now(),
			},
			{
				historyMs: retraining.historyMs,
				heldOutMs: retraining.heldOutMs,
				epochs: retraining.epochs,
				minIntervalMs: retraining.minIntervalMs,
				examples: { strideS: retraining.strideMs / 1000, historyS: retraining.inputHistoryMs / 1000 },
			},
			logger,
		);
		if (autoRetrain) {
			this.retrainTimer = setInterval(() => void this.retrainer.retrain('period'), retraining.periodMs);
			this.retrainTimer.unref();
		}
		// The in-memory store keeps at least the history live retraining reads.
		this.currentStore = extra.store ?? new MemoryStore({ retentionMs: Math.max(DEFAULT_MEMORY_RETENTION_MS, retraining.historyMs) });
		this.ownsStore = extra.store === undefined;
		if (!extra.store && options.influx) this.openInflux(1000);
		this.loadSampler.on('sample', (s) => {
			this.history.addSample(s);
			void this.currentStore.writeWorkerLoad([s]).catch((err: unknown) => this.log.warn({ err }, 'worker load not stored'));
			const network = networkOfStreams(this.history.streamsOf(s.workerId));
			this.predictor.observe({ workerId: s.workerId, ts: s.ts, actual: { cpuPct: s.cpuPct, rssBytes: s.rssBytes, ...network } });
			this.profiler.observeWorkerLoad(s.workerId, s.ts, s.cpuPct);
			this.emit('workerLoad', s);
		});
		this.loadSampler.start();
		this.workerCapacityPct = options.allocation.workerCapacityPct;
		this.profiler = new Profiler(
			this.graph.registry,
			{ statsIntervalMs: options.statsIntervalMs, ...options.profiling },
			logger,
		);
		this.profiler.on('profiles', (p) => {
			this.history.setStreams(p.workerId, p.streams);
			// Only what this round built: the others are unchanged since they were stored.
			void this.currentStore.writeStreamProfiles(p.refreshed).catch((err: unknown) => this.log.warn({ err }, 'profiles not stored'));
			void this.currentStore.writeConnectionProfiles(p.refreshedConnections).catch((err: unknown) => this.log.warn({ err }, 'profiles not stored'));
			this.emit('profiles', p);
		});
		this.profiler.start();
		this.graph.registry.on('added', (node) => {
			if (isStreamNode(node)) this.history.addEvent(node.workerId, Date.now(), 'join', node.id, node.kind);
		});
		this.graph.registry.on('removed', (node) => {
			if (node.kind === 'worker') {
				this.history.removeWorker(node.id);
				this.predictor.forgetWorker(node.id);
			}
			else if (isStreamNode(node)) this.history.addEvent(node.workerId, Date.now(), 'leave', node.id, node.kind);
		});
		// A trained model is used only when configured: the shipped models/default is
		// deployed by choice (FORESIGHT_MODEL_DIR=models/default) once its report shows
		// it beats the kNN on the operator's own sessions.
		if (options.modelDir) void this.predictor.loadModel(options.modelDir);
		this.actuator = new Actuator(this.graph.registry, {
			hooks: extra.hooks ?? NO_MIGRATION_HOOKS,
			...(extra.mediaCodecs ? { mediaCodecs: extra.mediaCodecs } : {}),
			hookTimeoutMs: options.allocation.hookTimeoutMs,
			logger,
		});
		this.manager = new AllocationManager(
			{
				registry: this.graph.registry,
				latestSample: (id) => this.history.latestSample(id),
				prediction: (id) => this.lastPredictions.find((p) => p.workerId === id),
				profile: (id) => this.profiler.profileOf(id),
				responsive: (id) => this.liveness.responsive(id),
			},
			this.actuator,
			() => this.currentStore,
			{ dryRun: options.dryRun, workerCapacityPct: options.allocation.workerCapacityPct, canMigrate: extra.hooks !== undefined, policy: options.allocation.policy },
			logger,
		);
		this.manager.on('audit', (entry) => this.emit('audit', entry));
		this.healer = new Healer(
			{
				registry: this.graph.registry,
				placeAll: (joins) => this.manager.placeAll(joins),
				roomOf: (router) => this.actuator.roomOfRouter(router),
				adoptWorker: (worker) => this.graph.adoptWorker(worker),
				store: () => this.currentStore,
			},
			{ hooks: extra.hooks ?? {}, hookTimeoutMs: options.allocation.hookTimeoutMs, logger },
		);
		this.healer.on('healing', (event) => this.emit('healing', event));
		this.graph.on('workerDied', (workerId) => this.healer.workerDied(workerId));
		this.liveness = new WorkerLiveness(this.graph.registry, options.loadSampleIntervalMs, logger);
		this.liveness.on('unresponsive', (workerId) => this.healer.workerUnresponsive(workerId));
		this.liveness.on('responsive', (workerId, hungMs) => this.healer.workerResponsive(workerId, hungMs));
		this.liveness.start();
		this.cluster = this.joinCluster(extra.clusterChannel);
		this.reliefSafetyOptions = { ...SAFETY_DEFAULTS, ...safetyForCapacity(options.allocation.workerCapacityPct), dryRun: options.dryRun };
		this.reliefSafety = initialSafetyState(this.reliefSafetyOptions);
		const allocateEveryMs = options.allocation.intervalMs;
		// Same period: one timer, so each decision round sees the predictions made just before it.
		// A skipped round (the previous one still running) is counted by the manager, not timed as a decision.
		const allocate = (): void =>
			void (this.manager.roundRunning ? this.manager.tick() : this.timed('round', () => this.manager.tick())).catch((err: unknown) => this.log.error({ err }, 'allocation round failed'));
		this.predictTimer = setInterval(() => {
			this.predictNow();
			if (allocateEveryMs === undefined) allocate();
		}, options.loadSampleIntervalMs);
		this.predictTimer.unref();
		if (allocateEveryMs !== undefined) {
			this.allocateTimer = setInterval(allocate, allocateEveryMs);
			this.allocateTimer.unref();
		}
	}

	/** Whether allocation decisions are only audited, not applied (admission answers are still given). */
	get dryRun(): boolean {
		return this.manager.dryRun;
	}

	/** Switches dry-run live, e.g. from an operator's console. */
	set dryRun(dryRun: boolean) {
		this.manager.dryRun = dryRun;
	}

	/** Runs one decision and emits how long it took (the metrics export's decision latency). */
	private timed<T>(kind: 'round' | 'place', decide: () => Promise<T>): Promise<T> {
		const started = performance.now();
		const decided = decide();
		const done = (): void => this.emit('decision', { kind, ms: performance.now() - started });
		decided.then(done, done);
		return decided;
	}

	/** Where profiles, worker load and audit records are kept. */
	get store(): ProfileStore {
		return this.currentStore;
	}

	/**
	 * Where should a joining peer (or a new room) go? Answered by predicted p95 load and
	 * headroom including the peer's expected load; the room's router on the chosen worker
	 * is created on demand (with `appData.roomId`). May refuse or redirect when every
	 * worker is predicted over its limit.
	 */
	place(join: PendingJoin, options: PlaceOptions = {}): ReturnType<AllocationManager['place']> {
		return this.timed('place', () => (this.cluster ? this.placeInCluster(this.cluster, join, options) : this.manager.place(join)));
	}

	/**
	 * Cross-host admission (plugin/cluster/decide.ts): the join is placed here unless its room
	 * lives on another host, or this host has no predicted headroom and another has; then it
	 * is redirected, with a reservation on the target that every host sees until it expires.
	 */
	private async placeInCluster(member: ClusterMember, join: PendingJoin, options: PlaceOptions): ReturnType<AllocationManager['place']> {
		const snapshot = this.manager.snapshot([join]);
		const local = localHeadroom(snapshot, join);
		const view = member.view();
		const input: Parameters<typeof decideCrossHost>[0] = {
			selfId: member.options.hostId,
			roomId: join.roomId,
			costPct: local.costPct,
			remoteCostPct: local.remoteCostPct,
			localHeadroomPct: local.headroomPct,
			localHoldsRoom: local.holdsRoom,
			localFreeShare: hostFreeShare(buildHostReport(snapshot)),
			newRoomFreeShare: this.options.cluster.newRoomFreeShare,
			redirected: options.redirected === true,
			hosts: view.hosts,
			reservations: view.reservations,
			nowMs: Date.now(),
		};
		let decision = decideCrossHost(input);
		const stale = view.stale ? { stale: true } : {};
		if (decision.kind === 'local') {
			const answer = await this.manager.place(join);
			if (answer.decision !== 'refuse') return { ...answer, ...stale };
			// The policy's forecast is newer than the view this host published: what the view said fits
			// here may not. Another host with headroom takes the peer rather than a refusal.
			decision = decideCrossHost({ ...input, localHeadroomPct: 0, nowMs: Date.now() });
			if (decision.kind === 'local') return answer;
		}
		const target = decision.target;
		member.reserve(target.hostId, join.roomId, join.peerId, decision.costPct);
		// Audited and stored like any decision: a redirect is a cost the operator should see.
		await this.manager.applyNow({
			type: 'redirect',
			peerId: join.peerId,
			roomId: join.roomId,
			workerId: local.workerId ?? '',
			target: target.hostId,
			reason: decision.reason,
			predictedBeforePct: Math.max(0, -local.headroomPct),
			predictedAfterPct: Math.max(0, -local.headroomPct),
		});
		return { decision: 'redirect', target: target.hostId, reason: decision.reason, ...(target.endpoint ? { endpoint: target.endpoint } : {}), ...stale };
	}

	/**
	 * Cross-host relief (plugin/cluster/relieve.ts) on this host's snapshot and the cluster
	 * view: the moves to make now, each naming the host and worker to serve the receivers from
	 * (a spread) or to publish on (a migration). Every move returned has passed the safety guard
	 * and its load is reserved on its target. The app carries a move out make-before-break over
	 * a cross-host pipe (CrossHostPipes: send the producer to the target, have the receivers
	 * consume it there, then close their old consumers). Empty without a cluster, on a stale
	 * view (other hosts' headroom unknown), in dry-run, or when nothing here is expected over its line.
	 */
	crossHostRelief(): CrossHostMove[] {
		const member = this.cluster;
		if (!member) return [];
		const view = member.view();
		if (view.stale) return [];
		const moves = decideCrossHostRelief({ selfId: member.options.hostId, snapshot: this.manager.snapshot(), hosts: view.hosts, reservations: view.reservations, nowMs: Date.now() });
		if (moves.length === 0) return [];
		const guarded = guard(
			moves.map((m) => m.action),
			Date.now() / 1000,
			this.reliefSafety,
			this.reliefSafetyOptions,
		);
		this.reliefSafety = guarded.state;
		const approved = moves.filter((m) => guarded.approved.includes(m.action));
		for (const m of approved) {
			if (m.costPct > 0) member.reserve(m.targetHost, m.roomId, m.action.producerId, m.costPct);
			this.log.info({ action: m.action.type, producer: m.action.producerId, from: m.action.workerId, target: m.targetHost, toWorker: m.action.toWorkerId, savedS: Math.round(m.exposureSavedS), disruptionS: m.disruptionS }, 'cross-host relief');
		}
		return approved;
	}

	private joinCluster(channel: ClusterChannel | undefined): ClusterMember | undefined {
		const c = this.options.cluster;
		if (c.hostId === undefined) return undefined;
		const influx = this.options.influx;
		const shared = channel ?? (influx ? new InfluxClusterChannel(influx, this.log) : undefined);
		if (!shared) throw new ForesightConfigError('cluster.hostId needs a shared view: set influx (INFLUX_URL) or pass clusterChannel to attach()', ['cluster.hostId']);
		const member = new ClusterMember(
			shared,
			{ hostId: c.hostId, reportIntervalMs: c.reportIntervalMs, silentAfterMs: c.silentAfterMs, reservationTtlMs: c.reservationTtlMs, ...(c.endpoint ? { endpoint: c.endpoint } : {}) },
			() => buildHostReport(this.manager.snapshot()),
			this.log,
		);
		member.on('cluster', (event) => this.emit('cluster', event));
		member.start();
		return member;
	}

	/** What placement sees of the other hosts now (live hosts' latest reports, open reservations, staleness); undefined without a cluster. */
	clusterView(): ClusterView | undefined {
		return this.cluster?.view();
	}

	/** The cluster view's counters and every other host's age; undefined without a cluster. */
	clusterStats(): ClusterStats | undefined {
		return this.cluster?.stats();
	}

	/** One allocation decision round now (also runs every loadSampleIntervalMs). */
	allocateNow(): Promise<AuditEntry[]> {
		return this.timed('round', () => this.manager.tick());
	}

	/**
	 * Carries out one allocation action now, outside the policy (an operator moving a
	 * producer, say): serialized with Foresight's own decisions, applied by its actuator
	 * through the app's hooks even in dry run, audited like a decision.
	 */
	apply(action: AllocationAction): Promise<AuditEntry> {
		return this.manager.applyNow(action);
	}

	/** Allocation rounds skipped because the previous one was still running, and actions still running. */
	allocationActivity(): ManagerActivity {
		return this.manager.activity();
	}

	/** What the allocation policy sees now (workers, forecasts, producers, consumers, rooms): the input of its next decision. */
	allocationSnapshot(): AllocationSnapshot {
		return this.manager.snapshot();
	}

	/**
	 * InfluxDB in the background: until it answers, profiles go to the in-memory
	 * store, and what it holds is copied over once InfluxDB is there.
	 */
	private openInflux(delayMs: number): void {
		const influx = this.options.influx!;
		void InfluxStore.open({ ...influx, logger: this.log }).then(
			async (store) => {
				if (this.detached) return void store.close();
				const memory = this.currentStore;
				this.currentStore = store;
				const now = Date.now();
				await store.writeWorkerLoad(await memory.workerLoadHistory(0, now));
				await store.writeStreamProfiles(await memory.streamHistory(0, now));
				await store.writeConnectionProfiles(await memory.connectionHistory(0, now));
				for (const a of await memory.actionHistory(0, now)) await store.writeAction(a);
				await memory.close();
				this.log.info({ url: influx.url, database: influx.database }, 'InfluxDB store open');
			},
			(error: unknown) => {
				if (this.detached) return;
				// A refusal (credentials, a statement the server does not implement, a missing bucket) is
				// reported once with what to do; only an unreachable server is worth trying again.
				if (!isUnreachable(error)) {
					this.log.error(
						{ err: error, url: influx.url, hint: (error as { hint?: string }).hint },
						'InfluxDB refused the store setup; profiles stay in memory (not retried: fix the setting and restart)',
					);
					return;
				}
				this.log.error({ err: error, url: influx.url, retryInMs: delayMs }, 'InfluxDB unavailable; profiles stay in memory until it answers');
				this.storeRetry = setTimeout(() => this.openInflux(Math.min(delayMs * 2, 30_000)), delayMs);
				this.storeRetry.unref();
			},
		);
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
		// A worker predicted hot is about to be decided on: its top contributors' profiles go to the fast tier.
		for (const p of this.lastPredictions) this.profiler.hurry(hotContributors(p, this.workerCapacityPct));
		this.emit('predictions', this.lastPredictions);
		return this.lastPredictions;
	}

	/**
	 * Trains a candidate model now from the live history (in a worker thread) and deploys
	 * it only if it beats the serving predictor on the most recent held-out window. Resolves
	 * with both scores, or why nothing was trained; the serving predictor is kept on any failure.
	 */
	retrain(): Promise<RetrainResult> {
		if (this.detached) return Promise.resolve({ outcome: 'failed', trigger: 'manual', error: 'Foresight is detached' });
		return this.retrainer.retrain('manual');
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

	/** What profiling costs: channel requests and notifications by kind (totals and per second), own CPU, handled errors. */
	profilerStats(): ProfilerStats {
		return this.profiler.stats();
	}

	/** Stops sampling and removes every listener Foresight added to mediasoup. */
	async detach(): Promise<void> {
		if (this.detached) return;
		this.detached = true;
		clearInterval(this.predictTimer);
		clearInterval(this.allocateTimer);
		clearInterval(this.retrainTimer);
		await this.trainer.close();
		clearTimeout(this.storeRetry);
		this.liveness.stop();
		this.healer.close();
		await this.cluster?.close();
		this.manager.close();
		this.actuator.close();
		this.loadSampler.stop();
		await this.profiler.stop();
		this.graph.detach();
		this.removeAllListeners();
		if (this.ownsStore) await this.currentStore.close();
		else await this.currentStore.flush();
	}
}

/** Stands in when the app gives no hooks; the manager never sends migrating actions there. */
const NO_MIGRATION_HOOKS: MigrationHooks = {
	migrateProducer: () => Promise.reject(new Error('no migration hooks: pass `hooks` to attach()')),
	moveConsumers: () => Promise.reject(new Error('no migration hooks: pass `hooks` to attach()')),
	producerMigrated: () => undefined,
	consumerDropped: () => undefined,
};

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
	const { logger, useEnv = true, store, hooks, mediaCodecs, clusterChannel, ...rest } = options;
	const resolved = optionsFromEnv(useEnv ? process.env : {}, rest);
	if (resolved.cluster.hostId !== undefined && !resolved.influx && !clusterChannel) {
		throw new ForesightConfigError('cluster.hostId needs a shared view: set influx (INFLUX_URL) or pass clusterChannel to attach()', ['cluster.hostId']);
	}
	return new Foresight(mediasoup, resolved, createLogger(resolved.logLevel, logger), {
		...(store ? { store } : {}),
		...(clusterChannel ? { clusterChannel } : {}),
		...(hooks ? { hooks } : {}),
		...(mediaCodecs ? { mediaCodecs } : {}),
	});
}
