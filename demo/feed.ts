import { auditOutcome, type AuditEntry, type Foresight } from '../plugin';
import { actionEntities } from '../plugin/allocate';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../plugin/profile/schema';
import { networkOfStreams, type WorkerPrediction } from '../plugin/predict';
import { TypedEmitter } from '../plugin/util/typedEmitter';

/**
 * The dashboard's data feed. Everything the dashboard draws arrives here as an
 * event and leaves as one JSON frame per second over the /dashboard WebSocket:
 *
 *   - actual load: Foresight's 'workerLoad' samples; network is the sum of the
 *     worker's stream bitrates from its 'profiles' rounds (samples carry no bytes);
 *   - predictions: Foresight's 'predictions' (its model, or the kNN fallback),
 *     drawn at CHART_HORIZON_S: each point carries what was predicted for it;
 *   - connection profiles: the latest 'profiles' round of each worker;
 *   - action log: Foresight's 'audit' entries (every allocation decision let
 *     through, applied or dry-run), and their measured effect when it arrives.
 */

export const CHART_HORIZON_S = 5;
const HISTORY_POINTS = 180;

export interface WorkerPoint {
	ts: number;
	cpuPct: number;
	rssBytes: number;
	ingressBps: number;
	egressBps: number;
	/** What was predicted, CHART_HORIZON_S earlier, for this instant. */
	predictedPct: number | null;
	predictedP95Pct: number | null;
}

export interface WorkerFrame {
	workerId: string;
	pid: number;
	/** Which predictor served the latest forecast; names the predictor the guard switched out while last value serves. */
	predictor: string | null;
	counts: Pick<WorkerLoadSample, 'routers' | 'transports' | 'producers' | 'consumers' | 'dataProducers' | 'dataConsumers'>;
	/** Latest prediction for now + CHART_HORIZON_S. */
	forecast: { mean: number; p95: number } | null;
	point: WorkerPoint;
}

export interface StreamRow {
	streamId: string;
	entity: StreamProfile['entity'];
	dataType: StreamProfile['dataType'];
	mimeType: string | null;
	bitrateBps: number;
	packetRate: number;
	lossFraction: number;
	activeLayers: number;
	layers: number;
	width: number | null;
	height: number | null;
	fps: number | null;
	complexity: number;
	burstiness: number;
	cv: number;
	entropy: number;
}

export interface ConnectionRow {
	transportId: string;
	workerId: string;
	label: string;
	transportType: ConnectionProfile['transportType'];
	recvBitrateBps: number;
	sendBitrateBps: number;
	distribution: ConnectionProfile['distribution'];
	streams: StreamRow[];
}

export interface ActionEntry {
	id: number;
	ts: number;
	type: string;
	workerId: string;
	target: string;
	reason: string;
	outcome: string;
	predictedBeforePct: number;
	predictedAfterPct: number;
	/** Measured CPU of the worker a few seconds after the action (filled in later). */
	measuredAfterPct: number | null;
}

export interface DashboardFrame {
	type: 'frame';
	ts: number;
	workers: WorkerFrame[];
	connections: ConnectionRow[];
	actions: ActionEntry[];
	/** Actions whose measured effect arrived since the last frame. */
	measured: Array<{ id: number; measuredAfterPct: number }>;
	bots: { bots: number; scenario: { name: string; elapsedS: number; peers: number } | null };
}

type FeedEvents = { frame: [DashboardFrame]; action: [ActionEntry] };

/** The same decision repeated within this window is folded into one log row. */
const REPEAT_WINDOW_MS = 15_000;

interface WorkerState {
	latest: WorkerLoadSample | undefined;
	streams: StreamProfile[];
	connections: ConnectionProfile[];
	history: WorkerPoint[];
	/** Predictions waiting for their target time: [targetTs, mean, p95]. */
	pending: Array<[number, number, number]>;
	forecast: { mean: number; p95: number } | null;
	predictor: string | null;
	pid: number;
}

export class DashboardFeed extends TypedEmitter<FeedEvents> {
	private readonly workers = new Map<string, WorkerState>();
	private readonly actions: ActionEntry[] = [];
	private readonly newActions: ActionEntry[] = [];
	private readonly newlyMeasured: Array<{ id: number; measuredAfterPct: number }> = [];
	private nextActionId = 1;
	/** Foresight emits an audit entry again once its effect is measured: this finds its log row. */
	private readonly logged = new WeakMap<AuditEntry, ActionEntry>();
	private timer: NodeJS.Timeout | undefined;
	botStatus: () => DashboardFrame['bots'] = () => ({ bots: 0, scenario: null });

	constructor(
		private readonly foresight: Foresight,
		private readonly labelOf: (transportId: string) => string,
	) {
		super();
		foresight.on('workerLoad', (s) => this.onSample(s));
		foresight.on('profiles', (p) => this.onProfiles(p.workerId, p.streams, p.connections));
		foresight.on('predictions', (predictions) => this.onPredictions(predictions));
		foresight.on('audit', (entry) => this.onAudit(entry));
		foresight.on('workerDied', (id) => this.workers.delete(id));
	}

	start(periodMs = 1000): void {
		this.timer = setInterval(() => this.emit('frame', this.frame()), periodMs);
		this.timer.unref();
	}

	stop(): void {
		clearInterval(this.timer);
	}

	private state(workerId: string): WorkerState {
		let s = this.workers.get(workerId);
		if (!s) {
			s = { latest: undefined, streams: [], connections: [], history: [], pending: [], forecast: null, predictor: null, pid: 0 };
			this.workers.set(workerId, s);
		}
		return s;
	}

	private onProfiles(workerId: string, streams: StreamProfile[], connections: ConnectionProfile[]): void {
		const s = this.state(workerId);
		s.streams = streams;
		s.connections = connections;
	}

	private onPredictions(predictions: WorkerPrediction[]): void {
		for (const p of predictions) {
			const s = this.workers.get(p.workerId);
			if (!s?.latest) continue;
			const cpu = p.horizons[CHART_HORIZON_S].total.cpuPct;
			s.forecast = { mean: cpu.mean, p95: cpu.p95 };
			s.predictor = p.guardedPredictor ? `${p.predictor} (guard: ${p.guardedPredictor} switched out)` : p.predictor;
			s.pending.push([s.latest.ts + CHART_HORIZON_S * 1000, cpu.mean, cpu.p95]);
			if (s.pending.length > HISTORY_POINTS) s.pending.shift();
		}
	}

	private onSample(sample: WorkerLoadSample): void {
		const s = this.state(sample.workerId);
		s.pid = sample.pid;
		s.latest = sample;
		let due: [number, number, number] | undefined;
		while (s.pending.length > 0 && s.pending[0]![0] <= sample.ts + 500) due = s.pending.shift();
		s.history.push({
			ts: sample.ts,
			cpuPct: sample.cpuPct,
			rssBytes: sample.rssBytes,
			...networkOfStreams(s.streams),
			predictedPct: due ? due[1] : null,
			predictedP95Pct: due ? due[2] : null,
		});
		if (s.history.length > HISTORY_POINTS) s.history.shift();
	}

	private onAudit(entry: AuditEntry): void {
		const row = this.logged.get(entry);
		if (row) {
			if (entry.measuredAfterPct !== undefined && row.measuredAfterPct === null) {
				row.measuredAfterPct = entry.measuredAfterPct;
				this.newlyMeasured.push({ id: row.id, measuredAfterPct: entry.measuredAfterPct });
			}
			return;
		}
		const { action, outcome } = entry;
		const recorded = this.recordAction({
			ts: entry.ts,
			type: action.type,
			workerId: action.workerId,
			target: actionEntities(action).join(', '),
			reason: outcome?.status === 'ok' || outcome === undefined ? action.reason : `${action.reason} (${outcome.reason})`,
			outcome: auditOutcome(entry),
			predictedBeforePct: action.predictedBeforePct,
			predictedAfterPct: action.predictedAfterPct,
			measuredAfterPct: entry.measuredAfterPct ?? null,
		});
		if (recorded) this.logged.set(entry, recorded);
	}

	/** Adds a row to the action log; returns it, or undefined when folded into an identical recent one. */
	recordAction(action: Omit<ActionEntry, 'id'>): ActionEntry | undefined {
		const entry = { ...action, id: this.nextActionId++ };
		this.emit('action', entry);
		// A policy that keeps proposing an action that cannot be applied would flood the log.
		for (let i = this.actions.length - 1; i >= 0 && entry.ts - this.actions[i]!.ts < REPEAT_WINDOW_MS; i--) {
			const a = this.actions[i]!;
			if (a.type === entry.type && a.target === entry.target && a.outcome === entry.outcome) return undefined;
		}
		this.actions.push(entry);
		if (this.actions.length > 200) this.actions.shift();
		this.newActions.push(entry);
		return entry;
	}

	/** What a dashboard that just connected needs: each worker's history and the recent actions. */
	snapshot(): { type: 'history'; horizonS: number; workers: Array<{ workerId: string; pid: number; points: WorkerPoint[] }>; actions: ActionEntry[] } {
		return {
			type: 'history',
			horizonS: CHART_HORIZON_S,
			workers: [...this.workers].map(([workerId, s]) => ({ workerId, pid: s.pid, points: s.history })),
			actions: [...this.actions],
		};
	}

	frame(): DashboardFrame {
		const workers: WorkerFrame[] = [];
		const connections: ConnectionRow[] = [];
		for (const [workerId, s] of this.workers) {
			const last = s.latest;
			const point = s.history.at(-1);
			if (!last || !point) continue;
			workers.push({
				workerId,
				pid: s.pid,
				predictor: s.predictor,
				counts: { routers: last.routers, transports: last.transports, producers: last.producers, consumers: last.consumers, dataProducers: last.dataProducers, dataConsumers: last.dataConsumers },
				forecast: s.forecast,
				point,
			});
			const byId = new Map(s.streams.map((p) => [p.streamId, p]));
			for (const c of s.connections) {
				connections.push({
					transportId: c.transportId,
					workerId,
					label: this.labelOf(c.transportId),
					transportType: c.transportType,
					recvBitrateBps: c.recvBitrateBps,
					sendBitrateBps: c.sendBitrateBps,
					distribution: c.distribution,
					streams: c.streamIds.flatMap((id) => {
						const p = byId.get(id);
						return p ? [streamRow(p)] : [];
					}),
				});
			}
		}
		const actions = this.newActions.splice(0);
		const measured = this.newlyMeasured.splice(0);
		return { type: 'frame', ts: Date.now(), workers, connections, actions, measured, bots: this.botStatus() };
	}
}

function streamRow(p: StreamProfile): StreamRow {
	const active = p.layers.filter((l) => l.active);
	const top = active.reduce<(typeof active)[number] | undefined>((best, l) => (!best || (l.width ?? 0) > (best.width ?? 0) ? l : best), undefined);
	return {
		streamId: p.streamId,
		entity: p.entity,
		dataType: p.dataType,
		mimeType: p.mimeType ?? null,
		bitrateBps: p.flow.bitrateBps,
		packetRate: p.flow.packetRate,
		lossFraction: p.flow.lossFraction,
		activeLayers: p.video?.activeLayers ?? active.length,
		layers: p.layers.length,
		width: p.video?.width ?? top?.width ?? null,
		height: p.video?.height ?? top?.height ?? null,
		fps: p.video?.fps ?? top?.fps ?? null,
		complexity: p.complexity,
		burstiness: p.variance.burstiness,
		cv: p.variance.windows[0]?.cv ?? 0,
		entropy: p.entropy,
	};
}
