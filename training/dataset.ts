import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import {
	connectionProfileSchema,
	PROFILE_SCHEMA_VERSION,
	streamProfileSchema,
	workerLoadSampleSchema,
	type StreamProfile,
	type WorkerLoadSample,
} from '../plugin/profile/schema';
import { timelinesByWorker } from '../plugin/predict/dataset';
import { allocationActionSchema } from '../plugin/store/types';

/**
 * Dataset file of a recorded session range, for training (JSON Lines, UTF-8):
 *
 *   line 1     {"format":"foresight-dataset","version":1,"profileSchemaVersion":1,"from":…,"to":…,"source":"…","workerId"?:…,"createdAt":…}
 *   lines 2…   {"type":"stream_profile"|"connection_profile"|"worker_load"|"action","record":{…}}
 *              ordered by record.ts (ties: worker_load, connection_profile, stream_profile, action)
 *   last line  {"type":"end","counts":{"stream_profile":n,…}}
 *
 * Records are exactly the store's (plugin/profile/schema.ts, plugin/store/types.ts).
 * The end line makes a truncated file detectable; readers reject one without it.
 */
export const DATASET_FORMAT = 'foresight-dataset';
export const DATASET_VERSION = 1;

export const datasetHeaderSchema = z.object({
	format: z.literal(DATASET_FORMAT),
	version: z.literal(DATASET_VERSION),
	profileSchemaVersion: z.literal(PROFILE_SCHEMA_VERSION),
	from: z.number(),
	to: z.number(),
	source: z.string(),
	workerId: z.string().optional(),
	createdAt: z.string(),
});
export type DatasetHeader = z.infer<typeof datasetHeaderSchema>;

export const datasetRecordSchema = z.discriminatedUnion('type', [
	z.object({ type: z.literal('worker_load'), record: workerLoadSampleSchema }),
	z.object({ type: z.literal('connection_profile'), record: connectionProfileSchema }),
	z.object({ type: z.literal('stream_profile'), record: streamProfileSchema }),
	z.object({ type: z.literal('action'), record: allocationActionSchema }),
]);
export type DatasetRecord = z.infer<typeof datasetRecordSchema>;
export type DatasetRecordType = DatasetRecord['type'];
export const RECORD_TYPES: readonly DatasetRecordType[] = ['worker_load', 'connection_profile', 'stream_profile', 'action'];

export type DatasetCounts = Record<DatasetRecordType, number>;

const endSchema = z.object({
	type: z.literal('end'),
	counts: z.object({ worker_load: z.int(), connection_profile: z.int(), stream_profile: z.int(), action: z.int() }),
});

export function emptyCounts(): DatasetCounts {
	return { worker_load: 0, connection_profile: 0, stream_profile: 0, action: 0 };
}

/** Merges per-type lists (each sorted by ts) into the file's record order. */
export function mergeByTime(lists: { [K in DatasetRecordType]: Extract<DatasetRecord, { type: K }>['record'][] }): DatasetRecord[] {
	const out: DatasetRecord[] = [];
	for (const type of RECORD_TYPES) for (const record of lists[type]) out.push({ type, record } as DatasetRecord);
	const rank = (t: DatasetRecordType): number => RECORD_TYPES.indexOf(t);
	// Stable sort keeps each list's own order among equal timestamps.
	return out.sort((a, b) => a.record.ts - b.record.ts || rank(a.type) - rank(b.type));
}

/** One worker's share of a dataset, shaped for the predictor's example builder (plugin/predict/dataset.ts). */
export interface DatasetWorkerTimeline {
	workerId: string;
	sessionId: string;
	samples: WorkerLoadSample[];
	profiles: StreamProfile[];
}

/** Reads a dataset file and groups its load samples and stream profiles by worker. */
export async function readWorkerTimelines(path: string, sessionId = path): Promise<DatasetWorkerTimeline[]> {
	const samples: WorkerLoadSample[] = [];
	const profiles: StreamProfile[] = [];
	for await (const item of readDataset(path)) {
		if (!('type' in item)) continue;
		if (item.type === 'worker_load') samples.push(item.record);
		else if (item.type === 'stream_profile') profiles.push(item.record);
	}
	return timelinesByWorker(samples, profiles, () => sessionId).sort((a, b) => (a.workerId < b.workerId ? -1 : 1));
}

export class DatasetFormatError extends Error {
	constructor(path: string, line: number, reason: string) {
		super(`${path}:${line}: ${reason}`);
		this.name = 'DatasetFormatError';
	}
}

/** Streams a dataset file: the header first, then validated records; throws if the end line is missing or its counts disagree. */
export async function* readDataset(path: string): AsyncGenerator<DatasetHeader | DatasetRecord> {
	const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
	let lineNo = 0;
	let ended = false;
	const counts = emptyCounts();
	for await (const line of lines) {
		lineNo++;
		if (line === '') continue;
		if (ended) throw new DatasetFormatError(path, lineNo, 'data after the end line');
		const json: unknown = JSON.parse(line);
		if (lineNo === 1) {
			const header = datasetHeaderSchema.safeParse(json);
			if (!header.success) throw new DatasetFormatError(path, lineNo, `bad header: ${header.error.issues[0]?.message}`);
			yield header.data;
			continue;
		}
		if ((json as { type?: unknown }).type === 'end') {
			const end = endSchema.safeParse(json);
			if (!end.success) throw new DatasetFormatError(path, lineNo, 'bad end line');
			for (const t of RECORD_TYPES) {
				if (end.data.counts[t] !== counts[t]) throw new DatasetFormatError(path, lineNo, `end line counts ${end.data.counts[t]} ${t}, file has ${counts[t]}`);
			}
			ended = true;
			continue;
		}
		const record = datasetRecordSchema.safeParse(json);
		if (!record.success) throw new DatasetFormatError(path, lineNo, `bad record: ${record.error.issues[0]?.message}`);
		counts[record.data.type]++;
		yield record.data;
	}
	if (lineNo === 0) throw new DatasetFormatError(path, 0, 'empty file');
	if (!ended) throw new DatasetFormatError(path, lineNo, 'truncated: no end line');
}
