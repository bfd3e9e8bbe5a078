import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { InfluxDB } from 'influx';
import { parseOptions } from '../../plugin/config';
import { createLogger } from '../../plugin/log';
import { InfluxStore } from '../../plugin/store/influxStore';
import { MemoryStore } from '../../plugin/store/memoryStore';
import { saveMemorySnapshot } from '../../plugin/store/snapshot';
import type { ProfileStore } from '../../plugin/store/types';
import { readDataset, readWorkerTimelines, type DatasetHeader, type DatasetRecord } from '../../training/dataset';
import { exportDataset } from '../../training/export';
import { allocationAction, connectionProfile, streamProfile, workerLoad } from './fixtures';

const ROOT = resolve(__dirname, '../..');
const run = promisify(execFile);

let dir: string;
beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'foresight-export-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Ten seconds of a small session: 6 streams and 3 workers at 1 Hz, a connection profile and an action. */
async function recordSession(store: ProfileStore, t0: number): Promise<void> {
	for (let s = 0; s < 10; s++) {
		const ts = t0 + s * 1000;
		await store.writeStreamProfiles([0, 1, 2, 3, 4, 5].map((i) => streamProfile(i, ts + i)));
		await store.writeWorkerLoad([0, 1, 2].map((w) => workerLoad(w, ts)));
	}
	await store.writeConnectionProfiles([connectionProfile(0, t0 + 4000)]);
	await store.writeAction(allocationAction(1, t0 + 5000));
	expect(await store.flush(10_000)).toBe(true);
}

async function readAll(path: string): Promise<{ header: DatasetHeader; records: DatasetRecord[] }> {
	const items: (DatasetHeader | DatasetRecord)[] = [];
	for await (const item of readDataset(path)) items.push(item);
	return { header: items[0] as DatasetHeader, records: items.slice(1) as DatasetRecord[] };
}

async function expectedRecords(store: ProfileStore, from: number, to: number, workerId?: string): Promise<DatasetRecord[]> {
	const rank = { worker_load: 0, connection_profile: 1, stream_profile: 2, action: 3 } as const;
	const all: DatasetRecord[] = [
		...(await store.workerLoadHistory(from, to, workerId)).map((record) => ({ type: 'worker_load' as const, record })),
		...(await store.connectionHistory(from, to, workerId)).map((record) => ({ type: 'connection_profile' as const, record })),
		...(await store.streamHistory(from, to, workerId)).map((record) => ({ type: 'stream_profile' as const, record })),
		...(await store.actionHistory(from, to))
			.filter((a) => workerId === undefined || a.workerId === workerId || a.toWorkerId === workerId)
			.map((record) => ({ type: 'action' as const, record })),
	];
	return all.sort((a, b) => a.record.ts - b.record.ts || rank[a.type] - rank[b.type]);
}

test('the CLI exports a MemoryStore snapshot range into a dataset file that reads back record for record', async () => {
	const store = new MemoryStore();
	const t0 = 1_790_000_000_000;
	await recordSession(store, t0);
	const snapshot = join(dir, 'snap.json');
	await saveMemorySnapshot(store, snapshot);
	const out = join(dir, 'cli.jsonl');
	const from = t0 + 2000;
	const to = t0 + 7999;
	const { stdout } = await run(
		join(ROOT, 'node_modules/.bin/tsx'),
		['training/export.ts', '--snapshot', snapshot, '--from', new Date(from).toISOString(), '--to', String(to), '--out', out, '--chunk-minutes', '0.05'],
		{ cwd: ROOT, env: { ...process.env, INFLUX_URL: '' } },
	);
	const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { counts: Record<string, number>; from: number; to: number };
	const { header, records } = await readAll(out);
	const expected = await expectedRecords(store, from, to);
	expect(records).toEqual(expected);
	expect(header).toMatchObject({ format: 'foresight-dataset', version: 1, from, to, source: `snapshot:${snapshot}` });
	expect(summary).toMatchObject({ from, to, counts: { stream_profile: 36, worker_load: 18, connection_profile: 1, action: 1 } });
}, 60_000);

test('exporting from InfluxDB in chunks, for one worker, gives the same records the store returns, with progress per chunk', async () => {
	const url = process.env.INFLUX_URL!;
	const database = `export_${randomBytes(4).toString('hex')}`;
	const influx = parseOptions({ influx: { url, database, flushIntervalMs: 50 } }).influx!;
	const writer = await InfluxStore.open({ ...influx, logger: createLogger('silent') });
	const t0 = Math.floor((Date.now() - 300_000) / 1000) * 1000;
	await recordSession(writer, t0);
	await writer.close();

	const reader = await InfluxStore.open({ ...influx, logger: createLogger('silent'), ensureSchema: false });
	try {
		const out = join(dir, 'influx.jsonl');
		const progress: number[] = [];
		const counts = await exportDataset({
			store: reader,
			from: t0,
			to: t0 + 9999,
			out,
			source: `influx:${database}`,
			workerId: 'w1',
			chunkMs: 3000,
			onProgress: (done, total) => progress.push(done / total),
		});
		expect(progress).toEqual([0.25, 0.5, 0.75, 1]);
		const { records } = await readAll(out);
		expect(records).toEqual(await expectedRecords(reader, t0, t0 + 9999, 'w1'));
		expect(counts).toEqual({ stream_profile: 20, worker_load: 10, connection_profile: 0, action: 1 });
		expect(records.every((r) => r.type === 'action' || r.record.workerId === 'w1')).toBe(true);
		const timelines = await readWorkerTimelines(out, 'session-1');
		expect(timelines).toEqual([
			{
				workerId: 'w1',
				sessionId: 'session-1',
				samples: await reader.workerLoadHistory(t0, t0 + 9999, 'w1'),
				profiles: await reader.streamHistory(t0, t0 + 9999, 'w1'),
			},
		]);
	} finally {
		await new InfluxDB({ host: new URL(url).hostname, port: Number(new URL(url).port) }).dropDatabase(database);
		await reader.close();
	}
});

test('a dataset file without its end line is rejected as truncated', async () => {
	const store = new MemoryStore();
	const t0 = 1_790_000_000_000;
	await recordSession(store, t0);
	const out = join(dir, 'full.jsonl');
	await exportDataset({ store, from: t0, to: t0 + 60_000, out, source: 'test' });
	const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
	const cut = join(dir, 'cut.jsonl');
	writeFileSync(cut, `${lines.slice(0, -1).join('\n')}\n`);
	await expect(readAll(cut)).rejects.toThrow(/truncated/);
	expect((await readAll(out)).records).toHaveLength(lines.length - 2);
});
