import type { InferencePath, TfPredictor } from '../../plugin/predict/model';
import { mulberry32 } from '../../plugin/util/rng';
/**
 * Synthetic workers for pure-logic tests and the inference benchmark, generated from a
 * known cost law (not recorded media: that is what training/ will feed the model).
 *
 *   cpu % = 0.5 + Σ_producers packets/s × (2.5 µs + fan-out × 13 µs) × 100  (+ noise)
 *   rss   = 30 MB + 2 MB per video producer + 0.2 MB per audio producer + 0.5 MB per consumer
 *   network = Σ producer bitrates in, Σ consumer bitrates out
 *
 * Newly joined producers ramp up (bitrate ×(1 − 0.7·e^(−age/8 s))), so the future differs
 * from the present in a way the ramp-up feature can anticipate.
 */
import { PROFILE_SCHEMA_VERSION, type StreamProfile, type WorkerLoadSample } from '../../plugin/profile/schema';
import { buildExamples, type WorkerTimeline } from '../../plugin/predict/dataset';
import { HORIZONS_S, networkOfStreams, type ResourceVector, type StreamEvent, type TrainingExample } from '../../plugin/predict/types';

export const LAW = { baseCpuPct: 0.5, ingressUsPerPacket: 2.5, egressUsPerPacket: 13, baseRss: 30e6 };

export const rng = mulberry32;

function gaussian(random: () => number): number {
	return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export interface StreamSpec {
	streamId: string;
	entity: StreamProfile['entity'];
	kind: StreamProfile['kind'];
	workerId?: string;
	transportId?: string;
	producerId?: string;
	bitrateBps: number;
	packetRate: number;
	/** Simulcast: per-layer [height, kbps]; the first `activeLayers` are active. */
	layers?: Array<[number, number]>;
	activeLayers?: number;
	entropy?: number;
	ts?: number;
}

export function profile(spec: StreamSpec): StreamProfile {
	const active = spec.activeLayers ?? spec.layers?.length ?? 0;
	const top = spec.layers?.[Math.max(0, active - 1)];
	return {
		schemaVersion: PROFILE_SCHEMA_VERSION,
		ts: spec.ts ?? 0,
		streamId: spec.streamId,
		entity: spec.entity,
		kind: spec.kind,
		dataType: spec.kind === 'data' ? 'text' : spec.kind,
		workerId: spec.workerId ?? 'w',
		routerId: 'r',
		transportId: spec.transportId ?? `t-${spec.streamId}`,
		...(spec.producerId !== undefined ? { producerId: spec.producerId } : {}),
		mimeType: spec.kind === 'video' ? 'video/VP8' : 'audio/opus',
		flow: { bitrateBps: spec.bitrateBps, packetRate: spec.packetRate, lossFraction: 0, jitterMs: 2, nackCount: 0, pliCount: 0, firCount: 0 },
		layers: (spec.layers ?? []).map(([height, kbps], i) => ({
			spatialLayer: i,
			bitrateBps: kbps * 1000,
			packetRate: (kbps * 1000) / 8 / 1100,
			width: Math.round((height * 16) / 9),
			height,
			fps: 30,
			active: i < active,
		})),
		variance: { windows: [{ windowS: 5, meanBps: spec.bitrateBps, stdBps: spec.bitrateBps * 0.1, cv: 0.1 }], burstiness: 0.2 },
		...(spec.kind === 'video' && top
			? { video: { width: Math.round((top[0] * 16) / 9), height: top[0], fps: 30, activeLayers: active, keyframesPerMin: 2, sceneChanges: { count: 0, perMin: 0, meanMagnitude: 0 } } }
			: {}),
		...(spec.kind === 'audio' ? { audio: { clockRate: 48000, channels: 2 } } : {}),
		complexity: spec.kind === 'video' ? 1 : 0.1,
		entropy: spec.entropy ?? 0.2,
	};
}

const SIMULCAST_720P: Array<[number, number]> = [
	[180, 150],
	[360, 500],
	[720, 1500],
];

/** A 720p three-layer simulcast producer and `consumers` consumers of its top layer. */
export function videoRoom(id: string, consumers: number, scale = 1, workerId = 'w'): StreamProfile[] {
	const kbps = SIMULCAST_720P.reduce((s, [, k]) => s + k, 0) * scale;
	const producer = profile({
		streamId: id,
		entity: 'producer',
		kind: 'video',
		workerId,
		transportId: `t-${id}`,
		bitrateBps: kbps * 1000,
		packetRate: (kbps * 1000) / 8 / 1100,
		layers: SIMULCAST_720P,
	});
	const consumerKbps = 1500 * scale;
	return [
		producer,
		...Array.from({ length: consumers }, (_, i) =>
			profile({
				streamId: `${id}-c${i}`,
				entity: 'consumer',
				kind: 'video',
				workerId,
				transportId: `t-${id}-c${i}`,
				producerId: id,
				bitrateBps: consumerKbps * 1000,
				packetRate: (consumerKbps * 1000) / 8 / 1100,
				layers: [[720, 1500]],
			}),
		),
	];
}

export function audioRoom(id: string, consumers: number, scale = 1, workerId = 'w'): StreamProfile[] {
	const spec = (streamId: string, entity: 'producer' | 'consumer', transportId: string, producerId?: string): StreamSpec => ({
		streamId,
		entity,
		kind: 'audio',
		workerId,
		transportId,
		...(producerId !== undefined ? { producerId } : {}),
		bitrateBps: 40_000 * scale,
		packetRate: 50 * scale,
		entropy: 0.4,
	});
	return [profile(spec(id, 'producer', `t-${id}`)), ...Array.from({ length: consumers }, (_, i) => profile(spec(`${id}-c${i}`, 'consumer', `t-${id}-c${i}`, id)))];
}

/** The law's noise-free resources of a set of streams. */
export function lawResources(streams: readonly StreamProfile[]): ResourceVector {
	const fanOut = new Map<string, number>();
	for (const s of streams) if (s.entity === 'consumer' && s.producerId) fanOut.set(s.producerId, (fanOut.get(s.producerId) ?? 0) + 1);
	let cpu = LAW.baseCpuPct;
	let rss = LAW.baseRss;
	for (const s of streams) {
		if (s.entity === 'producer') {
			cpu += s.flow.packetRate * (LAW.ingressUsPerPacket + (fanOut.get(s.streamId) ?? 0) * LAW.egressUsPerPacket) * 1e-4;
			rss += s.kind === 'video' ? 2e6 : 2e5;
		} else rss += 5e5;
	}
	return { cpuPct: cpu, rssBytes: rss, ...networkOfStreams(streams) };
}

interface Room {
	id: string;
	video: boolean;
	consumers: number;
	joinedAt: number;
}

const ramp = (ageS: number): number => 1 - 0.7 * Math.exp(-ageS / 8);

function roomStreams(room: Room, t: number, workerId: string): StreamProfile[] {
	const scale = ramp((t - room.joinedAt) / 1000);
	return (room.video ? videoRoom : audioRoom)(room.id, room.consumers, scale, workerId);
}

export interface SessionOptions {
	workers?: number;
	steps?: number;
	/** Relative CPU noise σ (plus 0.2 pp absolute). Default 0.03. */
	noise?: number;
	/** Seconds between examples (consecutive seconds are nearly duplicates). Default 1. */
	stride?: number;
}

/**
 * One recorded-session look-alike: per worker, load samples every second, a profile of
 * every stream every second, and the join/leave events, as the store would export them.
 */
export function syntheticTimelines(seed: number, options: SessionOptions = {}): WorkerTimeline[] {
	const random = rng(seed);
	const workers = options.workers ?? 4;
	const steps = options.steps ?? 90;
	const noise = options.noise ?? 0.03;
	const start = 1_700_000_000_000 + seed * 10_000_000;
	const timelines: WorkerTimeline[] = [];
	for (let w = 0; w < workers; w++) {
		const workerId = `s${seed}-w${w}`;
		const rooms: Room[] = [];
		const profiles: StreamProfile[] = [];
		const samples: WorkerLoadSample[] = [];
		const events: StreamEvent[] = [];
		let nextRoom = 0;
		const newRoom = (joinedAt: number): Room => ({ id: `${workerId}-room${nextRoom++}`, video: random() < 0.6, consumers: Math.floor(random() * 12), joinedAt });
		// Workers start busy with settled rooms, so short sessions already show many of them.
		for (let i = Math.floor(random() * 4); i > 0; i--) rooms.push(newRoom(start - 120_000));
		for (let step = 0; step < steps + HORIZONS_S[HORIZONS_S.length - 1]!; step++) {
			const t = start + step * 1000;
			if (rooms.length < 7 && random() < 0.15) {
				const room = newRoom(t);
				rooms.push(room);
				for (const s of roomStreams(room, t, workerId)) events.push({ ts: t, type: 'join', streamId: s.streamId, entity: s.entity });
			}
			if (rooms.length > 0 && random() < 0.06) {
				const [room] = rooms.splice(Math.floor(random() * rooms.length), 1);
				for (const s of roomStreams(room!, t, workerId)) events.push({ ts: t, type: 'leave', streamId: s.streamId, entity: s.entity });
			}
			const streams = rooms.flatMap((r) => roomStreams(r, t, workerId)).map((s) => ({ ...s, ts: t }));
			profiles.push(...streams);
			const law = lawResources(streams);
			const producers = streams.filter((s) => s.entity === 'producer').length;
			samples.push({
				ts: t,
				workerId,
				pid: 1000 + w,
				cpuPct: Math.max(0, law.cpuPct * (1 + noise * gaussian(random)) + 0.2 * gaussian(random)),
				rssBytes: law.rssBytes * (1 + 0.002 * gaussian(random)),
				routers: rooms.length,
				transports: streams.length,
				producers,
				consumers: streams.length - producers,
				dataProducers: 0,
				dataConsumers: 0,
			});
		}
		timelines.push({ workerId, sessionId: `session-${seed}`, samples, profiles, events });
	}
	return timelines;
}

/** Examples of a synthetic session, built the way training builds them from recorded ones. */
export function syntheticSession(seed: number, options: SessionOptions = {}): TrainingExample[] {
	return syntheticTimelines(seed, options).flatMap((t) => buildExamples(t, { strideS: options.stride ?? 1 }));
}

/** `f` with the model switched to another inference path, restored afterwards. */
export function onPath<T>(model: TfPredictor, inference: InferencePath, f: () => T): T {
	const chosen = model.inference;
	model.inference = inference;
	try {
		return f();
	} finally {
		model.inference = chosen;
	}
}
