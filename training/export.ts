/**
 * Exports a recorded session range into a dataset file (format: training/dataset.ts).
 *
 *   npx tsx training/export.ts --from 2026-11-27T10:00:00Z --to 2026-11-27T11:00:00Z --out session.jsonl
 *       [--influx http://127.0.0.1:8086 (default $INFLUX_URL)] [--db foresight (default $INFLUX_DATABASE)]
 *       [--snapshot memory-snapshot.json]  (instead of InfluxDB: a MemoryStore snapshot file)
 *       [--worker <workerId>] [--chunk-minutes 10]
 *
 * --from/--to take ISO-8601 or epoch milliseconds. The range is read in chunks (a
 * progress bar on stderr advances per chunk) so memory stays bounded by one chunk.
 * The last stdout line is a JSON summary.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { parseOptions } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { InfluxStore } from '../plugin/store/influxStore';
import { loadMemorySnapshot } from '../plugin/store/snapshot';
import type { ProfileStore } from '../plugin/store/types';
import { DATASET_FORMAT, DATASET_VERSION, emptyCounts, mergeByTime, type DatasetCounts, type DatasetHeader } from './dataset';
import { PROFILE_SCHEMA_VERSION } from '../plugin/profile/schema';

export interface ExportOptions {
	store: ProfileStore;
	/** Inclusive range, ms since the epoch. */
	from: number;
	to: number;
	out: string;
	source: string;
	workerId?: string;
	chunkMs?: number;
	onProgress?: (doneChunks: number, totalChunks: number, counts: DatasetCounts) => void;
}

export async function exportDataset(options: ExportOptions): Promise<DatasetCounts> {
	const { store, from, to, out, workerId } = options;
	if (!(to >= from)) throw new RangeError('--to must not be before --from');
	const chunkMs = options.chunkMs ?? 10 * 60_000;
	const totalChunks = Math.max(1, Math.ceil((to - from + 1) / chunkMs));
	const counts = emptyCounts();
	const tmp = `${out}.${process.pid}.partial`;
	const file = createWriteStream(tmp, 'utf8');
	const write = async (line: string): Promise<void> => {
		if (!file.write(`${line}\n`)) await once(file, 'drain');
	};
	try {
		const header: DatasetHeader = {
			format: DATASET_FORMAT,
			version: DATASET_VERSION,
			profileSchemaVersion: PROFILE_SCHEMA_VERSION,
			from,
			to,
			source: options.source,
			workerId,
			createdAt: new Date().toISOString(),
		};
		await write(JSON.stringify(header));
		for (let chunk = 0; chunk < totalChunks; chunk++) {
			// Chunks are disjoint and inclusive: [start, end] with end = next start - 1 ms.
			const start = from + chunk * chunkMs;
			const end = Math.min(to, start + chunkMs - 1);
			const [loads, connections, streams, actions] = await Promise.all([
				store.workerLoadHistory(start, end, workerId),
				store.connectionHistory(start, end, workerId),
				store.streamHistory(start, end, workerId),
				store.actionHistory(start, end).then((all) => (workerId === undefined ? all : all.filter((a) => a.workerId === workerId || a.toWorkerId === workerId))),
			]);
			for (const entry of mergeByTime({ worker_load: loads, connection_profile: connections, stream_profile: streams, action: actions })) {
				counts[entry.type]++;
				await write(JSON.stringify(entry));
			}
			options.onProgress?.(chunk + 1, totalChunks, counts);
		}
		await write(JSON.stringify({ type: 'end', counts }));
		file.end();
		await once(file, 'finish');
		await rename(tmp, out);
		return counts;
	} catch (err) {
		file.destroy();
		await rm(tmp, { force: true });
		throw err;
	}
}

function parseTime(name: string, value: string | undefined): number {
	if (value === undefined) throw new Error(`--${name} is required`);
	const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
	if (!Number.isFinite(ms)) throw new Error(`--${name}: not ISO-8601 or epoch ms: ${value}`);
	return ms;
}

async function main(argv: string[]): Promise<void> {
	const { values } = parseArgs({
		args: argv,
		options: {
			from: { type: 'string' },
			to: { type: 'string' },
			out: { type: 'string' },
			influx: { type: 'string' },
			db: { type: 'string' },
			snapshot: { type: 'string' },
			worker: { type: 'string' },
			'chunk-minutes': { type: 'string', default: '10' },
		},
	});
	const from = parseTime('from', values.from);
	const to = parseTime('to', values.to);
	if (!values.out) throw new Error('--out is required');
	const chunkMinutes = Number(values['chunk-minutes']);
	if (!(chunkMinutes > 0)) throw new Error('--chunk-minutes must be a positive number');

	let store: ProfileStore;
	let source: string;
	if (values.snapshot) {
		// A recorded snapshot may span more than the live store's retention: keep all of it.
		store = await loadMemorySnapshot(values.snapshot, { retentionMs: Infinity });
		source = `snapshot:${values.snapshot}`;
	} else {
		const url = values.influx ?? process.env.INFLUX_URL;
		if (!url) throw new Error('no source: pass --snapshot <file>, --influx <url> or set INFLUX_URL');
		// The config schema supplies the defaults and validates url and database name.
		const influx = parseOptions({ influx: { url, database: values.db ?? process.env.INFLUX_DATABASE ?? 'foresight' } }).influx!;
		store = await InfluxStore.open({ ...influx, logger: createLogger('warn'), ensureSchema: false });
		source = `influx:${influx.database}`;
	}

	const bar = new SingleBar(
		{ format: 'export [{bar}] {percentage}% | chunk {value}/{total} | {records} records', stream: process.stderr, hideCursor: true },
		Presets.shades_classic,
	);
	const started = Date.now();
	bar.start(Math.max(1, Math.ceil((to - from + 1) / (chunkMinutes * 60_000))), 0, { records: 0 });
	try {
		const counts = await exportDataset({
			store,
			from,
			to,
			out: values.out,
			source,
			workerId: values.worker,
			chunkMs: chunkMinutes * 60_000,
			onProgress: (done, _total, c) => bar.update(done, { records: Object.values(c).reduce((a, b) => a + b, 0) }),
		});
		bar.stop();
		process.stdout.write(`${JSON.stringify({ out: values.out, source, from, to, counts, seconds: (Date.now() - started) / 1000 })}\n`);
	} finally {
		bar.stop();
		await store.close();
	}
}

if (require.main === module) {
	main(process.argv.slice(2)).catch((err: unknown) => {
		process.stderr.write(`export failed: ${err instanceof Error ? err.message : String(err)}\n`);
		process.exit(1);
	});
}
