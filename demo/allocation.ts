import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { Foresight } from '../plugin';
import {
	actionEntities,
	foresightPolicy,
	MEASURED_COST_MODEL,
	SAFETY_DEFAULTS,
	withSafety,
	type AllocationAction,
	type AllocationPolicy,
	type AllocationSnapshot,
	type ConsumerView,
	type GuardedState,
	type ForesightState,
	type MediaClass,
	type PendingJoin,
	type ProducerView,
	type WorkerView,
} from '../plugin/allocate';
import type { StreamProfile } from '../plugin/profile/schema';
import type { DashboardFeed } from './feed';

export interface AllocationManagerOptions {
	dryRun: boolean;
	/**
	 * CPU a worker may use, % of one core. The policy's thresholds scale with it, so a
	 * small budget lets a laptop show reallocation under a few dozen bots.
	 */
	capacityPct: number;
	periodMs?: number;
	log: Logger;
}

/**
 * The allocation manager live in the demo: once a second it turns what Foresight
 * observed (load samples, profiles, predictions) into an AllocationSnapshot, runs
 * the guarded Foresight policy, applies the consumer-level actions to mediasoup
 * (layers, pause/resume) and logs every decision to the dashboard. Moves across
 * workers go through `onMigrate` (the demo's hook migrates browser consumers,
 * see Room.migrateConsumer); what it cannot move (replay bots' consumers,
 * producers) is logged as `notApplied` until the plugin's actuator (plugin/act/) lands.
 */
export class AllocationManager {
	dryRun: boolean;
	private readonly policy: AllocationPolicy<GuardedState<ForesightState>>;
	private state: GuardedState<ForesightState>;
	private readonly wanted = new Map<string, { spatial: number; temporal: number }>();
	private readonly pausedByUs = new Set<string>();
	private timer: NodeJS.Timeout | undefined;
	private readonly t0 = Date.now();
	private busy = false;
	/** Every audited decision, e.g. for the profile store. */
	onDecision: (action: AllocationAction, outcome: string) => void = () => {};
	/** The migration hook: moves what it can, returns how many consumers moved. */
	onMigrate: ((action: Extract<AllocationAction, { type: 'migrateProducer' | 'spreadFanout' }>) => Promise<number>) | undefined;

	constructor(
		private readonly foresight: Foresight,
		private readonly feed: DashboardFeed,
		private readonly options: AllocationManagerOptions,
	) {
		this.dryRun = options.dryRun;
		const scale = options.capacityPct / 100;
		// The safety bands are absolute percentages: scale them with the budget too. Dry-run is applied here, not in the guard, so it can be switched live.
		this.policy = withSafety(foresightPolicy(), { highBandPct: SAFETY_DEFAULTS.highBandPct * scale, lowBandPct: SAFETY_DEFAULTS.lowBandPct * scale });
		this.state = this.policy.initialState();
	}

	start(): void {
		this.timer = setInterval(() => void this.tick(), this.options.periodMs ?? 1000);
	}

	stop(): void {
		clearInterval(this.timer);
	}

	snapshot(): AllocationSnapshot {
		const registry = this.foresight.registry;
		const profiles = new Map<string, StreamProfile>();
		const workers: WorkerView[] = [];
		for (const w of registry.all('worker')) {
			for (const p of this.feed.streamsOf(w.id)) profiles.set(p.streamId, p);
			const sample = this.feed.latestSample(w.id);
			const forecast = this.feed.latestForecast(w.id);
			const counts = registry.countsOf(w.id);
			workers.push({
				id: w.id,
				capacityPct: this.options.capacityPct,
				cpuPct: sample?.cpuPct ?? 0,
				forecast: forecast ? [{ horizonS: 5, meanPct: forecast.mean, p95Pct: forecast.p95 }] : [],
				rssBytes: sample?.rssBytes ?? 0,
				routers: counts.routers,
				transports: counts.transports,
				producers: counts.producers,
				consumers: counts.consumers,
			});
		}
		const now = Date.now();
		const producers: ProducerView[] = [];
		for (const p of registry.all('producer')) {
			const profile = profiles.get(p.id);
			const mediaClass: MediaClass = p.mediaKind === 'audio' ? 'audio' : profile?.dataType === 'screen' ? 'screen' : 'video';
			const rate = profile?.flow.packetRate ?? 0;
			producers.push({
				id: p.id,
				peerId: this.peerIdOf(p.handle.appData, p.transportId),
				roomId: this.roomIdOf(p.routerId),
				workerId: p.workerId,
				mediaClass,
				layers: profile && profile.layers.length > 0 ? profile.layers.map((l) => ({ spatial: l.spatialLayer, packetRate: l.packetRate, active: l.active })) : [{ spatial: 0, packetRate: rate, active: rate > 0 }],
				packetRate: rate,
				expectedPacketRate: rate,
				activeSpeaker: false,
				ageS: (now - p.seenAt) / 1000,
			});
		}
		const consumers: ConsumerView[] = [];
		for (const c of registry.all('consumer')) {
			const handle = c.handle;
			const preferred = handle.preferredLayers;
			const wanted = this.wanted.get(c.id) ?? { spatial: preferred?.spatialLayer ?? 2, temporal: preferred?.temporalLayer ?? 2 };
			this.wanted.set(c.id, wanted);
			consumers.push({
				id: c.id,
				peerId: this.peerIdOf(handle.appData, c.transportId),
				producerId: c.producerId,
				workerId: c.workerId,
				priority: handle.priority,
				paused: this.pausedByUs.has(c.id),
				wanted,
				current: preferred ? { spatial: preferred.spatialLayer, temporal: preferred.temporalLayer ?? 2 } : wanted,
				packetRate: profiles.get(c.id)?.flow.packetRate ?? 0,
			});
		}
		for (const id of this.wanted.keys()) if (!registry.has(id)) this.wanted.delete(id);
		const roomWorkers = new Map<string, Set<string>>();
		for (const r of registry.all('router')) {
			const id = this.roomIdOf(r.id);
			if (!roomWorkers.has(id)) roomWorkers.set(id, new Set());
			roomWorkers.get(id)!.add(r.workerId);
		}
		const peersOf = (roomId: string): number => new Set(producers.filter((p) => p.roomId === roomId).map((p) => p.peerId)).size;
		const rooms = [...roomWorkers].map(([id, ws]) => ({ id, workerIds: [...ws], peers: peersOf(id) }));
		return { t: (now - this.t0) / 1000, costModel: MEASURED_COST_MODEL, workers, producers, consumers, rooms, pendingJoins: [] };
	}

	private roomIdOf(routerId: string): string {
		const roomId = this.foresight.registry.get('router', routerId)?.handle.appData.roomId;
		return typeof roomId === 'string' ? roomId : routerId;
	}

	private peerIdOf(appData: Record<string, unknown>, transportId: string): string {
		const own = peerIdIn(appData);
		if (own) return own;
		return peerIdIn(this.foresight.registry.get('transport', transportId)?.handle.appData ?? {}) ?? transportId;
	}

	/**
	 * Admission: asks the policy where a joining peer goes. The demo admits every
	 * peer (a refusal is logged, and the peer goes to the least-loaded worker), so
	 * the room stays usable while the log shows what Foresight would have done.
	 */
	async place(join: PendingJoin): Promise<string> {
		const snapshot = { ...this.snapshot(), pendingJoins: [join] };
		const decision = this.policy.decide(snapshot, this.state);
		this.state = decision.state;
		await this.record(decision);
		const placed = decision.actions.find((a) => a.type === 'place' && a.peerId === join.peerId);
		if (placed) return placed.workerId;
		const leastLoaded = snapshot.workers.reduce((best, w) => (w.cpuPct < best.cpuPct ? w : best));
		this.options.log.info({ peerId: join.peerId, workerId: leastLoaded.id }, 'policy did not place the peer; admitted to the least-loaded worker');
		return leastLoaded.id;
	}

	async tick(): Promise<void> {
		if (this.busy) return;
		this.busy = true;
		try {
			const decision = this.policy.decide(this.snapshot(), this.state);
			this.state = decision.state;
			await this.record(decision);
		} catch (err) {
			this.options.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'allocation round failed');
		} finally {
			this.busy = false;
		}
	}

	/** Applies the approved actions (admissions are applied by the caller) and logs every audited one. */
	private async record(decision: { actions: AllocationAction[]; state: GuardedState<ForesightState> }): Promise<void> {
		const approved = new Set(decision.actions);
		for (const record of decision.state.audit) {
			let outcome: string = record.outcome;
			if (approved.has(record.action)) outcome = record.action.type === 'place' ? 'applied' : this.dryRun ? 'dryRun' : await this.apply(record.action);
			this.onDecision(record.action, outcome);
			this.feed.recordAction({
				ts: Date.now(),
				type: record.action.type,
				workerId: record.action.workerId,
				target: actionEntities(record.action).join(', '),
				reason: record.action.reason,
				outcome,
				predictedBeforePct: record.action.predictedBeforePct,
				predictedAfterPct: record.action.predictedAfterPct,
				measuredAfterPct: null,
			});
		}
	}

	private consumer(id: string): types.Consumer | undefined {
		return this.foresight.registry.get('consumer', id)?.handle;
	}

	/** Applies one approved action; returns the outcome for the log. */
	private async apply(action: AllocationAction): Promise<string> {
		try {
			switch (action.type) {
				case 'setConsumerLayers':
					await this.consumer(action.consumerId)?.setPreferredLayers({ spatialLayer: action.spatial, temporalLayer: action.temporal });
					return 'applied';
				case 'restoreLayers': {
					const w = this.wanted.get(action.consumerId);
					if (w) await this.consumer(action.consumerId)?.setPreferredLayers({ spatialLayer: w.spatial, temporalLayer: w.temporal });
					return 'applied';
				}
				case 'pauseConsumer':
					await this.consumer(action.consumerId)?.pause();
					this.pausedByUs.add(action.consumerId);
					return 'applied';
				case 'resumeConsumer':
					await this.consumer(action.consumerId)?.resume();
					this.pausedByUs.delete(action.consumerId);
					return 'applied';
				case 'migrateProducer':
				case 'spreadFanout':
					if (!this.onMigrate) return 'notApplied';
					return (await this.onMigrate(action)) > 0 ? 'applied' : 'notApplied';
				default:
					return 'notApplied';
			}
		} catch (err) {
			this.options.log.warn({ err: err instanceof Error ? err.message : String(err), action: action.type }, 'allocation action failed');
			return 'failed';
		}
	}
}

function peerIdIn(appData: Record<string, unknown>): string | undefined {
	return typeof appData.peerId === 'string' ? appData.peerId : typeof appData.peer === 'string' ? appData.peer : undefined;
}
