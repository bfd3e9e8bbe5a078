import type { Foresight } from '../plugin';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../plugin/profile/schema';
import { KnnPredictor, PredictionEngine, networkOfStreams, type WorkerSnapshot, type StreamEvent } from '../plugin/predict';
import { TypedEmitter } from '../plugin/util/typedEmitter';

/**
 * The dashboard's data feed. Everything the dashboard draws arrives here as an
 * event and leaves as one JSON frame per second over the /dashboard WebSocket:
 *
 *   - actual load: Foresight's 'workerLoad' samples; network is the sum of the
 *     worker's stream bitrates from its 'profiles' rounds (samples carry no bytes);
 *   - predictions: a PredictionEngine (kNN fallback, online bias correction) is
 *     fed every sample and asked for the next 5 s; a shipped model can be
 *     installed with `engine.loadModel(dir)` and the chart follows;
 *   - connection profiles: the latest 'profiles' round of each worker;
 *   - action log: anything calling `feed.recordAction(entry)` (the allocation
 *     manager does; a future plugin actuator plugs in the same way).
 */

export const CHART_HORIZON_S = 5;
const HISTORY_POINTS = 180;
const SAMPLES_FOR_PREDICTION = 30;

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
	samples: WorkerLoadSample[];
	streams: StreamProfile[];
	connections: ConnectionProfile[];
	events: StreamEvent[];
	history: WorkerPoint[];
	/** Predictions waiting for their target time: [targetTs, mean, p95]. */
	pending: Array<[number, number, number]>;
	forecast: { mean: number; p95: number } | null;
	predictor: string | null;
	pid: number;
}

export class DashboardFeed extends TypedEmitter<FeedEvents> {
	readonly engine = new PredictionEngine({ fallback: new KnnPredictor([]) });
	private readonly workers = new Map<string, WorkerState>();
	private readonly actions: ActionEntry[] = [];
	private readonly newActions: ActionEntry[] = [];
	private readonly newlyMeasured: Array<{ id: number; measuredAfterPct: number }> = [];
	private nextActionId = 1;
	private timer: NodeJS.Timeout | undefined;
	botStatus: () => DashboardFrame['bots'] = () => ({ bots: 0, scenario: null });

	constructor(
		private readonly foresight: Foresight,
		private readonly labelOf: (transportId: string) => string,
	) {
		super();
		foresight.on('workerLoad', (s) => this.onSample(s));
		foresight.on('profiles', (p) => this.onProfiles(p.workerId, p.streams, p.connections));
		foresight.on('workerDied', (id) => this.workers.delete(id));
	}

	start(periodMs = 1000): void {
		this.timer = setInterval(() => this.emit('frame', this.frame()), periodMs);
	}

	stop(): void {
		clearInterval(this.timer);
	}

	private state(workerId: string): WorkerState {
		let s = this.workers.get(workerId);
		if (!s) {
			s = { samples: [], streams: [], connections: [], events: [], history: [], pending: [], forecast: null, predictor: null, pid: 0 };
			this.workers.set(workerId, s);
		}
		return s;
	}

	latestSample(workerId: string): WorkerLoadSample | undefined {
		return this.workers.get(workerId)?.samples.at(-1);
	}

	latestForecast(workerId: string): { mean: number; p95: number } | null {
		return this.workers.get(workerId)?.forecast ?? null;
	}

	streamsOf(workerId: string): readonly StreamProfile[] {
		return this.workers.get(workerId)?.streams ?? [];
	}

	workerIds(): string[] {
		return [...this.workers.keys()];
	}

	private onProfiles(workerId: string, streams: StreamProfile[], connections: ConnectionProfile[]): void {
		const s = this.state(workerId);
		const before = new Set(s.streams.map((p) => p.streamId));
		const after = new Set(streams.map((p) => p.streamId));
		const ts = Date.now();
		for (const p of streams) if (!before.has(p.streamId)) s.events.push({ ts, type: 'join', streamId: p.streamId, entity: p.entity });
		for (const p of s.streams) if (!after.has(p.streamId)) s.events.push({ ts, type: 'leave', streamId: p.streamId, entity: p.entity });
		if (s.events.length > 500) s.events.splice(0, s.events.length - 500);
		s.streams = streams;
		s.connections = connections;
	}

	private onSample(sample: WorkerLoadSample): void {
		const s = this.state(sample.workerId);
		s.pid = sample.pid;
		s.samples.push(sample);
		if (s.samples.length > SAMPLES_FOR_PREDICTION) s.samples.shift();
		const net = networkOfStreams(s.streams);
		this.engine.observe({ workerId: sample.workerId, ts: sample.ts, actual: { cpuPct: sample.cpuPct, rssBytes: sample.rssBytes, ...net } });
		const snapshot: WorkerSnapshot = { workerId: sample.workerId, now: sample.ts, samples: s.samples, streams: s.streams, events: s.events };
		const [prediction] = this.engine.predict([snapshot]);
		let due: [number, number, number] | undefined;
		while (s.pending.length > 0 && s.pending[0]![0] <= sample.ts + 500) due = s.pending.shift();
		if (prediction) {
			const cpu = prediction.horizons[CHART_HORIZON_S].total.cpuPct;
			s.forecast = { mean: cpu.mean, p95: cpu.p95 };
			s.predictor = prediction.predictor;
			s.pending.push([sample.ts + CHART_HORIZON_S * 1000, cpu.mean, cpu.p95]);
		}
		s.history.push({
			ts: sample.ts,
			cpuPct: sample.cpuPct,
			rssBytes: sample.rssBytes,
			...net,
			predictedPct: due ? due[1] : null,
			predictedP95Pct: due ? due[2] : null,
		});
		if (s.history.length > HISTORY_POINTS) s.history.shift();
		for (const a of this.actions) {
			if (a.measuredAfterPct === null && a.workerId === sample.workerId && sample.ts - a.ts >= CHART_HORIZON_S * 1000) {
				a.measuredAfterPct = sample.cpuPct;
				this.newlyMeasured.push({ id: a.id, measuredAfterPct: sample.cpuPct });
			}
		}
	}

	recordAction(action: Omit<ActionEntry, 'id'>): void {
		const entry = { ...action, id: this.nextActionId++ };
		this.emit('action', entry);
		// A policy that keeps proposing an action the demo does not execute would flood the log.
		for (let i = this.actions.length - 1; i >= 0 && entry.ts - this.actions[i]!.ts < REPEAT_WINDOW_MS; i--) {
			const a = this.actions[i]!;
			if (a.type === entry.type && a.target === entry.target && a.outcome === entry.outcome) return;
		}
		this.actions.push(entry);
		if (this.actions.length > 200) this.actions.shift();
		this.newActions.push(entry);
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
			const last = s.samples.at(-1);
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
