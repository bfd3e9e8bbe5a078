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
 *     through, applied or dry-run) with their predicted saving, and the change of
 *     the worker's measured CPU once Foresight measures it (5 s after); identical
 *     actions on one worker fold into one row with a count (ActionLog).
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
	/** When the first action of the row was taken. */
	ts: number;
	/** When the latest action folded into the row was taken. */
	lastTs: number;
	/** Identical actions on one worker folded into this row (see ActionLog). */
	count: number;
	type: string;
	workerId: string;
	/** Where a cross-worker action moved load to. */
	toWorkerId: string | null;
	/** The latest action's target; `+N` when more were folded in. */
	target: string;
	reason: string;
	outcome: string;
	/** Predicted p95 of the worker before → after the latest action. */
	predictedBeforePct: number;
	predictedAfterPct: number;
	/** Predicted saving on the worker, summed over the folded actions (pp; negative: the worker gains load). */
	predictedSavingPct: number;
	/** Measured CPU of the worker when the row's first action was taken. */
	measuredBeforePct: number | null;
	/** Measured CPU of the worker a few seconds (Foresight's measureAfterMs, 5 s) after the latest measured action; filled in later. */
	measuredAfterPct: number | null;
	/** measuredAfterPct − measuredBeforePct: what the actions changed, as measured (null until measured). */
	measuredChangePct: number | null;
}

/** What the dashboard shows of one audited action. */
export type ActionInput = Omit<ActionEntry, 'id' | 'lastTs' | 'count' | 'predictedSavingPct' | 'measuredChangePct'>;

export interface DashboardFrame {
	type: 'frame';
	ts: number;
	workers: WorkerFrame[];
	connections: ConnectionRow[];
	/** Rows added or changed (folded into, or measured) since the last frame: the client upserts them by id. */
	actions: ActionEntry[];
	bots: { bots: number; scenario: { name: string; elapsedS: number; peers: number } | null };
}

/** The same action on the same worker repeated within this window of the row's latest is folded into that row. */
export const REPEAT_WINDOW_MS = 15_000;
/** Rows kept for a dashboard that connects later. */
const LOG_ROWS = 200;

/**
 * The action log: one row per action, except that identical actions (type, worker,
 * target worker, outcome) within REPEAT_WINDOW_MS of each other fold into one row with
 * a count, their predicted savings summed. A policy that sheds load one consumer at a
 * time, or keeps proposing what cannot be applied, shows as one row, not a hundred.
 */
export class ActionLog {
	readonly rows: ActionEntry[] = [];
	private readonly changed = new Set<ActionEntry>();
	private nextId = 1;

	/** Adds an action; returns the row it landed in (new or folded into). */
	add(input: ActionInput): ActionEntry {
		const saving = input.predictedBeforePct - input.predictedAfterPct;
		for (let i = this.rows.length - 1; i >= 0 && input.ts - this.rows[i]!.lastTs < REPEAT_WINDOW_MS; i--) {
			const row = this.rows[i]!;
			if (row.type !== input.type || row.workerId !== input.workerId || row.toWorkerId !== input.toWorkerId || row.outcome !== input.outcome) continue;
			row.count++;
			row.lastTs = input.ts;
			row.target = `${input.target} +${row.count - 1}`;
			row.reason = input.reason;
			row.predictedBeforePct = input.predictedBeforePct;
			row.predictedAfterPct = input.predictedAfterPct;
			row.predictedSavingPct += saving;
			this.changed.add(row);
			return row;
		}
		const row: ActionEntry = { ...input, id: this.nextId++, lastTs: input.ts, count: 1, predictedSavingPct: saving, measuredChangePct: null };
		if (row.measuredAfterPct !== null && row.measuredBeforePct !== null) row.measuredChangePct = row.measuredAfterPct - row.measuredBeforePct;
		this.rows.push(row);
		if (this.rows.length > LOG_ROWS) this.rows.shift();
		this.changed.add(row);
		return row;
	}

	/** An action of `row` was measured `measuredAfterPct` some seconds after it; the latest measurement of a row wins. */
	measured(row: ActionEntry, measuredAfterPct: number): void {
		row.measuredAfterPct = measuredAfterPct;
		row.measuredChangePct = row.measuredBeforePct === null ? null : measuredAfterPct - row.measuredBeforePct;
		this.changed.add(row);
	}

	/** Rows added or changed since the last call. */
	takeChanged(): ActionEntry[] {
		const out = [...this.changed];
		this.changed.clear();
		return out;
	}
}

type FeedEvents = { frame: [DashboardFrame] };

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
	readonly actionLog = new ActionLog();
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
			if (entry.measuredAfterPct !== undefined) this.actionLog.measured(row, entry.measuredAfterPct);
			return;
		}
		const { action, outcome } = entry;
		const recorded = this.actionLog.add({
			ts: entry.ts,
			type: action.type,
			workerId: action.workerId,
			toWorkerId: 'toWorkerId' in action ? action.toWorkerId : null,
			target: actionEntities(action).join(', '),
			reason: outcome?.status === 'ok' || outcome === undefined ? action.reason : `${action.reason} (${outcome.reason})`,
			outcome: auditOutcome(entry),
			predictedBeforePct: action.predictedBeforePct,
			predictedAfterPct: action.predictedAfterPct,
			measuredBeforePct: this.workers.get(action.workerId)?.latest?.cpuPct ?? null,
			measuredAfterPct: entry.measuredAfterPct ?? null,
		});
		this.logged.set(entry, recorded);
	}

	/** What a dashboard that just connected needs: each worker's history and the recent actions. */
	snapshot(): { type: 'history'; horizonS: number; workers: Array<{ workerId: string; pid: number; points: WorkerPoint[] }>; actions: ActionEntry[] } {
		return {
			type: 'history',
			horizonS: CHART_HORIZON_S,
			workers: [...this.workers].map(([workerId, s]) => ({ workerId, pid: s.pid, points: s.history })),
			actions: [...this.actionLog.rows],
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
		return { type: 'frame', ts: Date.now(), workers, connections, actions: this.actionLog.takeChanged(), bots: this.botStatus() };
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
