/**
 * The live allocation manager: each tick it builds a snapshot of what Foresight
 * observes (registry, profiles, load samples, predictions), lets the guarded
 * Foresight policy decide, applies what the safety guard let through with the
 * Actuator (nothing but admission answers in dry-run), and writes an audit record
 * of every decision — reason, predicted load before/after, and the load measured
 * on that worker a few seconds later — to the store and as typed events.
 */
import type { types } from 'mediasoup';
import { actionClass, type AllocationAction, type AllocationPolicy } from '../allocate/actions';
import { buildLiveSnapshot, type LiveConsumer, type LiveProducer, type LiveWorker } from '../allocate/live';
import { baselinePolicies, guardedForesight } from '../allocate/policies';
import { inheritCooldown, SAFETY_DEFAULTS, withSafety, type GuardedState, type SafetyOptions } from '../allocate/safety';
import type { AllocationPolicyName } from '../config';
import { MOVABLE_KEY, type AllocationSnapshot, type PendingJoin } from '../allocate/snapshot';
import type { Logger } from '../log';
import type { Registry } from '../observe/registry';
import type { WorkerPrediction } from '../predict/types';
import type { StreamProfile, WorkerLoadSample } from '../profile/schema';
import type { ProfileStore } from '../store/types';
import { TypedEmitter } from '../util/typedEmitter';
import type { Actuator } from './actuator';
import { InFlightActions, RoundOrder, SkipWhileRunning, type ActionKeys } from './inFlight';
import { createdEntities, type ActionOutcome } from './outcome';

export interface AuditEntry {
	/** Milliseconds since the epoch. */
	ts: number;
	action: AllocationAction;
	/** applied / dryRun (safety verdicts that let it through or would have). */
	verdict: 'applied' | 'dryRun';
	/** What mediasoup did (absent in dry-run). */
	outcome?: ActionOutcome;
	/** CPU of the concerned worker measured after the action settled (filled in later). */
	measuredAfterPct?: number;
}

/** An admission answer: the room's router on the chosen worker, or why not. */
export type PlaceAnswer =
	/** `stale`: decided in a cluster whose shared view could not be read lately (see ClusterView.stale). */
	| { decision: 'place'; workerId: string; router: types.Router; stale?: boolean }
	| { decision: 'refuse'; reason: string }
	/** `target` is the host (cluster.hostId) or app-defined deployment to use; `endpoint` is what that host published for clients. */
	| { decision: 'redirect'; target: string; reason: string; endpoint?: string; stale?: boolean };

export type ManagerEvents = {
	audit: [AuditEntry];
	/** A timer round was not run because the previous one (its actions included) had not settled. */
	roundSkipped: [{ skipped: number; inFlight: number }];
};

/** How the background side of the manager stands (for metrics and tests). */
export interface ManagerActivity {
	/** Rounds not run because the previous round's actions were still running. */
	skippedRounds: number;
	/** Actions started and not yet settled (migrations waiting on hooks, degrades, …). */
	inFlightActions: number;
	/** Actions a round did not start because an earlier action on the same media was still running. */
	deferredActions: number;
}

/** What one decision answered at once, and the rest of its actions as they settle. */
interface Round {
	/** Audit entries of the admission answers, in the order of the joins. */
	admissions: AuditEntry[];
	/** Every audit entry of the round once its background actions settled. */
	settled: Promise<AuditEntry[]>;
}

export interface ManagerSources {
	registry: Registry;
	latestSample(workerId: string): WorkerLoadSample | undefined;
	prediction(workerId: string): WorkerPrediction | undefined;
	profile(streamId: string): StreamProfile | undefined;
	/** False for a worker that stopped answering (see observe/liveness.ts): left out of decisions until it answers. */
	responsive?(workerId: string): boolean;
}

export interface ManagerOptions {
	dryRun: boolean;
	/** How long after an action the concerned worker's CPU is read for the audit. */
	measureAfterMs?: number;
	safety?: Partial<SafetyOptions>;
	/**
	 * CPU one worker may use, % of one core (default 100). The policy's limits scale
	 * with it, and so do the safety guard's CPU thresholds unless `safety` sets them.
	 */
	workerCapacityPct?: number;
	/** Spread and migration need the app's hooks; without them those actions are not proposed to mediasoup. */
	canMigrate: boolean;
	/** Who decides (default 'foresight'); every policy runs behind the same safety guard and audit. */
	policy?: AllocationPolicyName;
}

/** The guard's thresholds that are CPU percentages of one core (the rest are times and rates). */
const CPU_THRESHOLDS = ['highBandPct', 'lowBandPct', 'consolidateBelowPct', 'consolidateCeilingPct'] as const;

/**
 * Safety options for workers that may use `capacityPct` of a core. The guard's CPU
 * thresholds are absolute: a smaller budget must lower them too, or the bands would hold
 * back every relief and consolidation would be judged against a share of a whole core.
 * Explicit `overrides` are taken as given.
 */
export function safetyForCapacity(capacityPct: number, overrides: Partial<SafetyOptions> = {}): Partial<SafetyOptions> {
	const scaled: Partial<SafetyOptions> = {};
	for (const key of CPU_THRESHOLDS) scaled[key] = SAFETY_DEFAULTS[key] * (capacityPct / 100);
	return { ...scaled, ...overrides };
}

function policyNamed(name: AllocationPolicyName, safety: Partial<SafetyOptions>): AllocationPolicy<GuardedState<unknown>> {
	if (name === 'foresight') return guardedForesight({}, safety) as AllocationPolicy<GuardedState<unknown>>;
	const baseline = baselinePolicies().find((p) => p.name === name);
	if (!baseline) throw new Error(`unknown allocation policy ${name}`);
	return withSafety(baseline, safety) as AllocationPolicy<GuardedState<unknown>>;
}

const MIGRATING_TYPES = new Set<AllocationAction['type']>(['spreadFanout', 'migrateProducer']);

export class AllocationManager extends TypedEmitter<ManagerEvents> {
	private policy: AllocationPolicy<GuardedState<unknown>>;
	private state: GuardedState<unknown>;
	private readonly safety: Partial<SafetyOptions>;
	private readonly capacityPct: number;
	private dryRunNow: boolean;
	private deciding: Promise<unknown> = Promise.resolve();
	private readonly inFlight = new InFlightActions();
	private readonly rounds = new SkipWhileRunning();
	private deferred = 0;
	private readonly measureTimers = new Set<NodeJS.Timeout>();
	private closed = false;

	constructor(
		private readonly sources: ManagerSources,
		private readonly actuator: Actuator,
		private readonly store: () => ProfileStore,
		private readonly options: ManagerOptions,
		private readonly log: Logger,
	) {
		super((event, error) => log.error({ err: error, event }, 'listener of an allocation event threw'));
		this.capacityPct = options.workerCapacityPct ?? 100;
		this.safety = safetyForCapacity(this.capacityPct, options.safety);
		this.dryRunNow = options.dryRun;
		this.policy = this.guardedPolicy(options.dryRun);
		this.state = this.policy.initialState();
	}

	/** Whether decisions are only audited (admission answers are still given). */
	get dryRun(): boolean {
		return this.dryRunNow;
	}

	/** Switches dry-run live; cooldowns and the rate budget carry over (dry runs spend them as live runs do). */
	set dryRun(dryRun: boolean) {
		if (dryRun === this.dryRunNow) return;
		this.dryRunNow = dryRun;
		this.policy = this.guardedPolicy(dryRun);
	}

	private guardedPolicy(dryRun: boolean): AllocationPolicy<GuardedState<unknown>> {
		return policyNamed(this.options.policy ?? 'foresight', { ...this.safety, dryRun });
	}

	/**
	 * One decision round (the manager's timer calls it every sampling interval); resolves
	 * once its actions settled. A round asked for while the previous one is still running
	 * (a migration waiting on the app's hooks, say) is skipped, not queued: it resolves
	 * with no entries and is counted in activity().skippedRounds.
	 */
	tick(): Promise<AuditEntry[]> {
		const round = this.rounds.run(async () => (await this.serialized(() => this.decideAndDispatch([]))).settled);
		if (round) return round;
		this.emit('roundSkipped', { skipped: this.rounds.skipped, inFlight: this.inFlight.size });
		return Promise.resolve([]);
	}

	/** Whether a round (its background actions included) is still running: the next tick() would be skipped. */
	get roundRunning(): boolean {
		return this.rounds.running;
	}

	/** Skipped rounds and actions still running (see tick()). */
	activity(): ManagerActivity {
		return { skippedRounds: this.rounds.skipped, inFlightActions: this.inFlight.size, deferredActions: this.deferred };
	}

	/** Settles once every action started so far has settled (for shutdown and tests). */
	idle(): Promise<void> {
		return this.inFlight.idle();
	}

	/**
	 * Where should a joining peer go? Answered by predicted p95 load and headroom
	 * including the peer's expected load; the room's router on the chosen worker is
	 * created on demand. Refusal and redirect are answers too. The answer never waits
	 * for the round's other actions (migrations, degrades): they run on in the background.
	 */
	async place(join: PendingJoin): Promise<PlaceAnswer> {
		return (await this.placeAll([join]))[0]!;
	}

	/**
	 * place() for several peers in one decision, answered in their order: each is placed
	 * knowing the load of those before it (healing re-places a dead worker's peers so,
	 * highest priority first).
	 */
	async placeAll(joins: PendingJoin[]): Promise<PlaceAnswer[]> {
		if (joins.length === 0) return [];
		const round = await this.serialized(() => this.decideAndDispatch(joins));
		return joins.map((join) => this.answerFor(join, round.admissions));
	}

	private answerFor(join: PendingJoin, entries: AuditEntry[]): PlaceAnswer {
		const answer = entries.find(
			(e) => (e.action.type === 'place' || e.action.type === 'refuse' || e.action.type === 'redirect') && e.action.peerId === join.peerId,
		);
		if (!answer) return { decision: 'refuse', reason: 'no worker available' };
		const a = answer.action;
		if (a.type === 'refuse') return { decision: 'refuse', reason: a.reason };
		if (a.type === 'redirect') return { decision: 'redirect', target: a.target, reason: a.reason };
		if (a.type !== 'place') return { decision: 'refuse', reason: 'unexpected decision' };
		const outcome = answer.outcome;
		const router = outcome?.status === 'ok' && outcome.effect.type === 'place' ? this.sources.registry.get('router', outcome.effect.routerId)?.handle : undefined;
		if (!router) return { decision: 'refuse', reason: outcome?.status === 'error' ? outcome.reason : 'router unavailable' };
		return { decision: 'place', workerId: a.workerId, router };
	}

	/**
	 * Carries out `action` now, outside the policy: an operator's (or the app's own)
	 * decision. It waits for actions still running on the same media (it never races
	 * one), and while it runs the policy starts nothing on that media; admission answers
	 * do not wait for it. Applied by the same actuator (its locks, its migration hooks)
	 * even in dry run, since it was asked for explicitly; audited like a decision. The
	 * policy's cooldowns do not know of it.
	 */
	applyNow(action: AllocationAction): Promise<AuditEntry> {
		const keys = this.keysOf(action);
		const run = async (): Promise<AuditEntry> => {
			await this.inFlight.whenFree(keys.needsFree);
			const entry: AuditEntry = { ts: Date.now(), action, verdict: 'applied', outcome: await this.carryOut(action) };
			this.record(entry);
			return entry;
		};
		return this.inFlight.track(keys.holds, run());
	}

	close(): void {
		this.closed = true;
		for (const t of this.measureTimers) clearTimeout(t);
		this.measureTimers.clear();
		this.removeAllListeners();
	}

	/** Decisions never interleave: the policy state is a chain. */
	private serialized<T>(fn: () => Promise<T>): Promise<T> {
		const next = this.deciding.then(fn, fn);
		this.deciding = next.catch(() => undefined);
		return next;
	}

	/** What the policy sees now (plus `pendingJoins`): the input of the next decision, for inspection and debugging. */
	snapshot(pendingJoins: PendingJoin[] = []): AllocationSnapshot {
		return buildLiveSnapshot({ nowMs: Date.now(), ...this.observe(), pendingJoins });
	}

	/**
	 * Decides one round and answers its joins: admission actions are carried out here, in
	 * order (a router created for one join is there for the next); every other action is
	 * started in the background, unless an earlier action on the same media is still
	 * running, in which case it is audited as skipped and the next round decides again.
	 */
	private async decideAndDispatch(pendingJoins: PendingJoin[]): Promise<Round> {
		const none: Round = { admissions: [], settled: Promise.resolve([]) };
		if (this.closed) return none;
		const snapshot = this.snapshot(pendingJoins);
		if (snapshot.workers.length === 0) return none;
		let decision: ReturnType<typeof this.policy.decide>;
		try {
			decision = this.policy.decide(snapshot, this.state);
		} catch (error) {
			this.log.error({ err: error }, 'allocation policy failed; no action this round');
			return none;
		}
		this.state = decision.state;
		const admissions: AuditEntry[] = [];
		const background: Array<Promise<AuditEntry>> = [];
		const round = new RoundOrder();
		for (const record of decision.state.audit) {
			if (record.outcome !== 'applied' && record.outcome !== 'dryRun') {
				this.log.debug({ action: record.action.type, verdict: record.outcome }, 'allocation action held back by the safety guard');
				continue;
			}
			const action = record.action;
			const verdict = record.outcome;
			const carried = decision.actions.includes(action);
			if (actionClass(action) === 'admission') {
				const outcome = carried ? await this.carryOut(action) : undefined;
				const entry: AuditEntry = { ts: Date.now(), action, verdict, ...(outcome ? { outcome } : {}) };
				admissions.push(entry);
				this.record(entry);
				continue;
			}
			if (!carried) {
				const entry: AuditEntry = { ts: Date.now(), action, verdict };
				background.push(Promise.resolve(entry));
				this.record(entry);
				continue;
			}
			const keys = this.keysOf(action);
			const own = round.ownKeys(keys.needsFree);
			if (this.inFlight.busy(keys.needsFree.filter((k) => !own.has(k)))) {
				this.deferred++;
				const entry: AuditEntry = { ts: Date.now(), action, verdict, outcome: { status: 'skipped', reason: 'an earlier action on the same media is still running' } };
				background.push(Promise.resolve(entry));
				this.record(entry);
				continue;
			}
			const previous = round.after([...own]);
			let started = Date.now();
			const running = this.inFlight.track(
				keys.holds,
				previous.then(() => {
					started = Date.now();
					return this.carryOut(action);
				}).then((outcome) => {
					// Snapshot time is Date.now() in seconds: the new ids' cooldown runs from when they exist.
					this.state = { ...this.state, safety: inheritCooldown(this.state.safety, createdEntities(outcome), Date.now() / 1000) };
					const entry: AuditEntry = { ts: started, action, verdict, outcome };
					this.record(entry);
					return entry;
				}),
			);
			round.hold(keys.holds, running);
			background.push(running);
		}
		return { admissions, settled: Promise.all(background).then((rest) => [...admissions, ...rest]) };
	}

	/** The media an action changes, and what must not be changing when it starts (see ActionKeys). */
	private keysOf(action: AllocationAction): ActionKeys {
		switch (action.type) {
			case 'migrateProducer': {
				const key = `producer:${action.producerId}`;
				return { holds: [key], needsFree: [key] };
			}
			case 'spreadFanout': {
				const holds = [`producer:${action.producerId}`, ...action.consumerIds.map((id) => `consumer:${id}`)];
				return { holds, needsFree: holds };
			}
			case 'setConsumerLayers':
			case 'restoreLayers':
			case 'pauseConsumer':
			case 'resumeConsumer':
			case 'dropConsumer': {
				const key = `consumer:${action.consumerId}`;
				const producerId = this.sources.registry.get('consumer', action.consumerId)?.producerId;
				return { holds: [key], needsFree: producerId === undefined ? [key] : [key, `producer:${producerId}`] };
			}
			case 'place':
			case 'refuse':
			case 'redirect':
				return { holds: [`peer:${action.peerId}`], needsFree: [`peer:${action.peerId}`] };
			case 'cannotRelieve':
				return { holds: [], needsFree: [] };
		}
	}

	/** Applies an action through the actuator; moving media needs the app's migration hooks. */
	private carryOut(action: AllocationAction): Promise<ActionOutcome> {
		if (MIGRATING_TYPES.has(action.type) && !this.options.canMigrate) return Promise.resolve({ status: 'skipped', reason: 'the app provided no migration hooks' });
		return this.actuator.apply(action);
	}

	private record(entry: AuditEntry): void {
		this.emit('audit', entry);
		void this.persist(entry);
		const timer = setTimeout(() => {
			this.measureTimers.delete(timer);
			const sample = this.sources.latestSample(entry.action.workerId);
			if (!sample || this.closed) return;
			entry.measuredAfterPct = sample.cpuPct;
			this.emit('audit', entry);
			void this.persist(entry);
		}, this.options.measureAfterMs ?? 5000);
		timer.unref();
		this.measureTimers.add(timer);
	}

	private async persist(entry: AuditEntry): Promise<void> {
		const a = entry.action;
		try {
			await this.store().writeAction({
				ts: entry.ts,
				action: a.type,
				targetIds: targetIds(a),
				workerId: a.workerId,
				...('toWorkerId' in a ? { toWorkerId: a.toWorkerId } : {}),
				reason: a.reason,
				predictedBefore: { cpuPct: Math.max(0, a.predictedBeforePct) },
				predictedAfter: { cpuPct: Math.max(0, a.predictedAfterPct) },
				...(entry.measuredAfterPct !== undefined ? { actualAfter: { cpuPct: entry.measuredAfterPct } } : {}),
				dryRun: entry.verdict === 'dryRun',
			});
		} catch (error) {
			this.log.warn({ err: error }, 'audit record not stored');
		}
	}

	/** The live graph as plain data for the snapshot builder. */
	private observe(): { workers: LiveWorker[]; producers: LiveProducer[]; consumers: LiveConsumer[] } {
		const { registry } = this.sources;
		// A hung worker looks idle and would draw every newcomer; anything asked of it waits until it runs again.
		const live = (workerId: string): boolean => this.sources.responsive?.(workerId) !== false;
		const workers: LiveWorker[] = [...registry.all('worker')].filter((w) => live(w.id)).map((w) => ({
			id: w.id,
			capacityPct: this.capacityPct,
			sample: this.sources.latestSample(w.id),
			prediction: this.sources.prediction(w.id),
		}));
		const roomOf = (routerId: string): string => {
			const roomId = registry.get('router', routerId)?.handle.appData.roomId;
			return typeof roomId === 'string' ? roomId : routerId;
		};
		const peerOf = (transportId: string): string => {
			const peerId = registry.get('transport', transportId)?.handle.appData.peerId;
			return typeof peerId === 'string' ? peerId : transportId;
		};
		const movable = (appData: types.AppData, transportId: string): boolean =>
			appData[MOVABLE_KEY] !== false && registry.get('transport', transportId)?.handle.appData[MOVABLE_KEY] !== false;
		const producers: LiveProducer[] = [];
		for (const p of registry.all('producer')) {
			if (!live(p.workerId) || p.handle.closed) continue;
			producers.push({
				id: p.id,
				workerId: p.workerId,
				roomId: roomOf(p.routerId),
				peerId: peerOf(p.transportId),
				kind: p.mediaKind,
				profile: this.sources.profile(p.id),
				seenAt: p.seenAt,
				activeSpeaker: p.handle.appData.activeSpeaker === true,
				...(movable(p.handle.appData, p.transportId) ? {} : { movable: false }),
			});
		}
		const consumers: LiveConsumer[] = [];
		for (const c of registry.all('consumer')) {
			const h = c.handle;
			if (!live(c.workerId) || h.closed) continue;
			// A PipeTransport's consumer feeds another router, not a receiver: its cost is the pipe's,
			// no client can move it, and pausing or lowering it would cut every receiver behind it.
			if (registry.get('transport', c.transportId)?.transportType === 'pipe') continue;
			const pausedByForesight = this.actuator.pausedByForesight(c.id);
			// Consumers the app or the remote side paused are not ours to weigh.
			if ((h.paused || h.producerPaused) && !pausedByForesight) continue;
			const wanted = this.actuator.appLayersOf(c.id) ?? h.preferredLayers;
			const current = h.preferredLayers;
			consumers.push({
				id: c.id,
				workerId: c.workerId,
				producerId: c.producerId,
				peerId: peerOf(c.transportId),
				priority: h.priority,
				pausedByManager: pausedByForesight,
				wanted: { spatial: wanted?.spatialLayer ?? 0, temporal: wanted?.temporalLayer ?? 2 },
				current: { spatial: current?.spatialLayer ?? 0, temporal: current?.temporalLayer ?? 2 },
				profile: this.sources.profile(c.id),
				...(movable(h.appData, c.transportId) ? {} : { movable: false }),
			});
		}
		return { workers, producers, consumers };
	}
}

function targetIds(a: AllocationAction): string[] {
	switch (a.type) {
		case 'place':
		case 'refuse':
		case 'redirect':
			return [a.peerId];
		case 'spreadFanout':
			return [a.producerId, ...a.consumerIds];
		case 'migrateProducer':
			return [a.producerId];
		case 'cannotRelieve':
			return [a.workerId];
		default:
			return [a.consumerId];
	}
}
