import {
	PROFILE_SCHEMA_VERSION,
	type AudioProfile,
	type ConnectionProfile,
	type DataProfile,
	type DataType,
	type LayerProfile,
	type StreamProfile,
	type VideoProfile,
	type WorkerLoadSample,
} from '../profile/schema';
import { LineBuilder, type Row } from './lineProtocol';
import { resolutionBucket } from './semantics';
import type { AllocationAction, ResourceEstimate } from './types';

/**
 * The InfluxDB layout (documented for operators in SCHEMA.md). Encoders and
 * decoders are pure so the exact round trip is unit-testable without a server.
 */
export const MEASUREMENT = {
	stream: 'stream_profile',
	connection: 'connection_profile',
	load: 'worker_load',
	action: 'allocation_action',
} as const;

/**
 * Measurements downsampled into 1-minute means by continuous queries, and the tags
 * the means keep. Stream and transport ids are left out on purpose: kept for 30
 * days they would grow one series per stream ever seen (see SCHEMA.md).
 */
export const DOWNSAMPLING = {
	[MEASUREMENT.stream]: ['worker', 'kind', 'codec', 'res', 'type', 'entity'],
	[MEASUREMENT.connection]: ['worker', 'ttype'],
	[MEASUREMENT.load]: ['worker'],
} as const;
export const DOWNSAMPLED_MEASUREMENTS = Object.keys(DOWNSAMPLING) as (keyof typeof DOWNSAMPLING)[];

const DATA_TYPES: readonly DataType[] = ['video', 'screen', 'audio', 'text', 'binary'];

/**
 * Nested parts of a stream profile that are not worth a field each, as one JSON
 * array with positional members (null = absent): a third of the size of keyed
 * JSON and much cheaper to produce, which is what bounds write throughput. Layout
 * in SCHEMA.md; any change bumps PROFILE_SCHEMA_VERSION (element 0).
 */
type Opt<T> = T | null;
type LayerTuple = [number, Opt<string>, Opt<number>, number, number, Opt<number>, Opt<number>, Opt<number>, Opt<number>, 0 | 1];
type WindowTuple = [number, number, number, number];
type VideoTuple = [Opt<number>, Opt<number>, Opt<[number, number, number]>, number, number, number];
type AudioTuple = [number, number, Opt<string>, Opt<string>, Opt<number>, Opt<0 | 1>, Opt<number>];
type DataTuple = [number, number, number, number, number, Opt<Record<string, number>>];
type StreamDetail = [number, string, Opt<string>, LayerTuple[], WindowTuple[], Opt<VideoTuple>, Opt<AudioTuple>, Opt<DataTuple>];

const opt = <T>(v: T | undefined): Opt<T> => (v === undefined ? null : v);
const und = <T>(v: Opt<T> | undefined): T | undefined => (v === null ? undefined : v);
const bit = (b: boolean | undefined): Opt<0 | 1> => (b === undefined ? null : b ? 1 : 0);

function streamDetail(p: StreamProfile): string {
	const v = p.video;
	const a = p.audio;
	const d = p.data;
	const detail: StreamDetail = [
		p.schemaVersion,
		p.transportId,
		opt(p.producerId),
		p.layers.map((l): LayerTuple => [
			l.spatialLayer,
			opt(l.rid),
			opt(l.ssrc),
			l.bitrateBps,
			l.packetRate,
			opt(l.width),
			opt(l.height),
			opt(l.fps),
			opt(l.temporalLayers),
			l.active ? 1 : 0,
		]),
		p.variance.windows.map((w): WindowTuple => [w.windowS, w.meanBps, w.stdBps, w.cv]),
		v
			? [
					opt(v.temporalLayers),
					opt(v.keyframesPerMin),
					v.frameBytes ? [v.frameBytes.mean, v.frameBytes.p50, v.frameBytes.p95] : null,
					v.sceneChanges.count,
					v.sceneChanges.perMin,
					v.sceneChanges.meanMagnitude,
				]
			: null,
		a ? [a.clockRate, a.channels, opt(a.opusBandwidth), opt(a.opusMode), opt(a.frameMs), bit(a.dtx), opt(a.voiceActivity)] : null,
		d ? [d.messagesPerS, d.bytesPerS, d.meanBytes, d.p95Bytes, d.stringShare, opt(d.keywordCounts)] : null,
	];
	return JSON.stringify(detail);
}

export function encodeStreamProfile(p: StreamProfile): string {
	return new LineBuilder(MEASUREMENT.stream)
		.tag('codec', p.mimeType)
		.tag('entity', p.entity)
		.tag('kind', p.kind)
		.tag('res', resolutionBucket(p))
		.tag('router', p.routerId)
		.tag('stream', p.streamId)
		.tag('type', p.dataType)
		.tag('worker', p.workerId)
		.num('activeLayers', p.video?.activeLayers)
		.num('bitrateBps', p.flow.bitrateBps)
		.num('burstiness', p.variance.burstiness)
		.num('complexity', p.complexity)
		.str('detail', streamDetail(p))
		.num('entropy', p.entropy)
		.num('firCount', p.flow.firCount)
		.num('fps', p.video?.fps)
		.num('height', p.video?.height)
		.num('jitterMs', p.flow.jitterMs)
		.num('lossFraction', p.flow.lossFraction)
		.num('nackCount', p.flow.nackCount)
		.num('packetRate', p.flow.packetRate)
		.num('pliCount', p.flow.pliCount)
		.num('rttMs', p.flow.rttMs)
		.num('score', p.flow.score)
		.num('width', p.video?.width)
		.end(p.ts);
}

function num(row: Row, key: string): number {
	const v = row[key];
	if (typeof v !== 'number') throw new Error(`stored point lacks numeric field ${key}`);
	return v;
}
function optNum(row: Row, key: string): number | undefined {
	const v = row[key];
	return typeof v === 'number' ? v : undefined;
}
function str(row: Row, key: string): string {
	const v = row[key];
	return typeof v === 'string' ? v : '';
}
function optStr(row: Row, key: string): string | undefined {
	const v = row[key];
	return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Drops undefined members so a decoded record equals the written one key for key. */
function compact<T extends object>(o: T): T {
	for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
	return o;
}

export class StoredVersionError extends Error {
	constructor(readonly found: unknown) {
		super(`stored record has schema version ${String(found)}, this reader understands ${PROFILE_SCHEMA_VERSION}`);
		this.name = 'StoredVersionError';
	}
}

function parseDetail<T extends { v: number }>(row: Row): T {
	const detail = JSON.parse(str(row, 'detail')) as T;
	if (detail.v !== PROFILE_SCHEMA_VERSION) throw new StoredVersionError(detail.v);
	return detail;
}

export function decodeStreamProfile(row: Row): StreamProfile {
	const [version, transportId, producerId, layers, windows, v, a, d] = JSON.parse(str(row, 'detail')) as StreamDetail;
	if (version !== PROFILE_SCHEMA_VERSION) throw new StoredVersionError(version);
	return compact<StreamProfile>({
		schemaVersion: PROFILE_SCHEMA_VERSION,
		ts: num(row, 'time'),
		streamId: str(row, 'stream'),
		entity: str(row, 'entity') as StreamProfile['entity'],
		kind: str(row, 'kind') as StreamProfile['kind'],
		dataType: str(row, 'type') as DataType,
		workerId: str(row, 'worker'),
		routerId: str(row, 'router'),
		transportId,
		producerId: und(producerId),
		mimeType: optStr(row, 'codec'),
		flow: compact({
			bitrateBps: num(row, 'bitrateBps'),
			packetRate: num(row, 'packetRate'),
			lossFraction: num(row, 'lossFraction'),
			jitterMs: num(row, 'jitterMs'),
			rttMs: optNum(row, 'rttMs'),
			nackCount: num(row, 'nackCount'),
			pliCount: num(row, 'pliCount'),
			firCount: num(row, 'firCount'),
			score: optNum(row, 'score'),
		}),
		layers: layers.map((l) =>
			compact<LayerProfile>({
				spatialLayer: l[0],
				rid: und(l[1]),
				ssrc: und(l[2]),
				bitrateBps: l[3],
				packetRate: l[4],
				width: und(l[5]),
				height: und(l[6]),
				fps: und(l[7]),
				temporalLayers: und(l[8]),
				active: l[9] === 1,
			}),
		),
		variance: { windows: windows.map(([windowS, meanBps, stdBps, cv]) => ({ windowS, meanBps, stdBps, cv })), burstiness: num(row, 'burstiness') },
		video: v
			? compact<VideoProfile>({
					width: optNum(row, 'width'),
					height: optNum(row, 'height'),
					fps: optNum(row, 'fps'),
					activeLayers: num(row, 'activeLayers'),
					temporalLayers: und(v[0]),
					keyframesPerMin: und(v[1]),
					frameBytes: v[2] ? { mean: v[2][0], p50: v[2][1], p95: v[2][2] } : undefined,
					sceneChanges: { count: v[3], perMin: v[4], meanMagnitude: v[5] },
				})
			: undefined,
		audio: a
			? compact<AudioProfile>({
					clockRate: a[0],
					channels: a[1],
					opusBandwidth: und(a[2]) as AudioProfile['opusBandwidth'],
					opusMode: und(a[3]) as AudioProfile['opusMode'],
					frameMs: und(a[4]),
					dtx: a[5] === null ? undefined : a[5] === 1,
					voiceActivity: und(a[6]),
				})
			: undefined,
		data: d
			? compact<DataProfile>({
					messagesPerS: d[0],
					bytesPerS: d[1],
					meanBytes: d[2],
					p95Bytes: d[3],
					stringShare: d[4],
					keywordCounts: und(d[5]),
				})
			: undefined,
		complexity: num(row, 'complexity'),
		entropy: num(row, 'entropy'),
	});
}

export function encodeConnectionProfile(p: ConnectionProfile): string {
	const line = new LineBuilder(MEASUREMENT.connection)
		.tag('router', p.routerId)
		.tag('transport', p.transportId)
		.tag('ttype', p.transportType)
		.tag('worker', p.workerId)
		.str('detail', JSON.stringify({ v: p.schemaVersion, streamIds: p.streamIds }))
		.num('recvBitrateBps', p.recvBitrateBps)
		.num('sendBitrateBps', p.sendBitrateBps);
	for (const t of DATA_TYPES) line.num(`share_${t}`, p.distribution[t]);
	return line.end(p.ts);
}

export function decodeConnectionProfile(row: Row): ConnectionProfile {
	const d = parseDetail<{ v: number; streamIds: string[] }>(row);
	const distribution = {} as ConnectionProfile['distribution'];
	for (const t of DATA_TYPES) distribution[t] = num(row, `share_${t}`);
	return {
		schemaVersion: PROFILE_SCHEMA_VERSION,
		ts: num(row, 'time'),
		transportId: str(row, 'transport'),
		workerId: str(row, 'worker'),
		routerId: str(row, 'router'),
		transportType: str(row, 'ttype') as ConnectionProfile['transportType'],
		recvBitrateBps: num(row, 'recvBitrateBps'),
		sendBitrateBps: num(row, 'sendBitrateBps'),
		distribution,
		streamIds: d.streamIds,
	};
}

const LOAD_FIELDS = ['consumers', 'cpuPct', 'dataConsumers', 'dataProducers', 'pid', 'producers', 'routers', 'rssBytes', 'transports'] as const;

export function encodeWorkerLoad(s: WorkerLoadSample): string {
	const line = new LineBuilder(MEASUREMENT.load).tag('worker', s.workerId);
	for (const f of LOAD_FIELDS) line.num(f, s[f]);
	return line.end(s.ts);
}

export function decodeWorkerLoad(row: Row): WorkerLoadSample {
	const sample = { ts: num(row, 'time'), workerId: str(row, 'worker') } as WorkerLoadSample;
	for (const f of LOAD_FIELDS) sample[f] = num(row, f);
	return sample;
}

interface ActionDetail {
	v: number;
	targetIds: string[];
	toWorkerId?: string;
	reason: string;
	predictedBefore: ResourceEstimate;
	predictedAfter: ResourceEstimate;
	actualAfter?: ResourceEstimate;
}

export function encodeAction(a: AllocationAction): string {
	const detail: ActionDetail = {
		v: PROFILE_SCHEMA_VERSION,
		targetIds: a.targetIds,
		toWorkerId: a.toWorkerId,
		reason: a.reason,
		predictedBefore: a.predictedBefore,
		predictedAfter: a.predictedAfter,
		actualAfter: a.actualAfter,
	};
	return new LineBuilder(MEASUREMENT.action)
		.tag('action', a.action)
		.tag('dry_run', String(a.dryRun))
		.tag('worker', a.workerId)
		.num('actualAfterCpuPct', a.actualAfter?.cpuPct)
		.str('detail', JSON.stringify(detail))
		.num('predictedAfterCpuPct', a.predictedAfter.cpuPct)
		.num('predictedBeforeCpuPct', a.predictedBefore.cpuPct)
		.end(a.ts);
}

export function decodeAction(row: Row): AllocationAction {
	const d = parseDetail<ActionDetail>(row);
	return compact<AllocationAction>({
		ts: num(row, 'time'),
		action: str(row, 'action'),
		targetIds: d.targetIds,
		workerId: str(row, 'worker'),
		toWorkerId: d.toWorkerId,
		reason: d.reason,
		predictedBefore: d.predictedBefore,
		predictedAfter: d.predictedAfter,
		actualAfter: d.actualAfter,
		dryRun: row.dry_run === 'true',
	});
}
