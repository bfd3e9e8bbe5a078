import { randomBytes } from 'node:crypto';
import { InfluxDB } from 'influx';
import { parseOptions } from '../../plugin/config';
import { createLogger } from '../../plugin/log';
import { continuousQueryName, DOWNSAMPLED_RP, InfluxStore, RAW_RP, type InfluxStoreOptions } from '../../plugin/store/influxStore';
import { DOWNSAMPLED_MEASUREMENTS } from '../../plugin/store/influxSchema';
import { createProfileStore } from '../../plugin/store';
import { MemoryStore } from '../../plugin/store/memoryStore';
import { profileStoreContract } from './contract';
import { workerLoad } from './fixtures';

const url = process.env.INFLUX_URL;
if (!url) throw new Error('INFLUX_URL is not set: run through jest (globalSetup starts influxd)');

/** A database of its own per store, so test files and tests never see each other's points. */
const databases: string[] = [];
function uniqueDb(prefix: string): string {
	const db = `${prefix}_${randomBytes(4).toString('hex')}`;
	databases.push(db);
	return db;
}

function options(database: string, extra: Partial<InfluxStoreOptions> = {}): InfluxStoreOptions {
	return { ...parseOptions({ influx: { url: url!, database, flushIntervalMs: 50 } }).influx!, logger: createLogger('silent'), ...extra };
}

const admin = new InfluxDB({ host: new URL(url).hostname, port: Number(new URL(url).port) });

afterAll(async () => {
	for (const db of databases) await admin.dropDatabase(db);
});

profileStoreContract('InfluxStore', () => InfluxStore.open(options(uniqueDb('contract'))));

test('createProfileStore picks InfluxStore when the options have an influx block', async () => {
	const database = uniqueDb('factory');
	const store = await createProfileStore(parseOptions({ influx: { url: url!, database } }), createLogger('silent'));
	expect(store).toBeInstanceOf(InfluxStore);
	await store.close();
	expect(await admin.getDatabaseNames()).toContain(database);
	expect(await createProfileStore(parseOptions({}), createLogger('silent'))).toBeInstanceOf(MemoryStore);
});

describe('InfluxStore schema', () => {
	test('creates the database, the raw (default) and 1-minute retention policies, and one continuous query per measurement', async () => {
		const db = uniqueDb('schema');
		const store = await InfluxStore.open(options(db));
		const cqNames = await store.continuousQueries();
		await store.close();
		expect(await admin.getDatabaseNames()).toContain(db);
		const rps = await admin.showRetentionPolicies(db);
		expect(rps.find((rp) => rp.name === RAW_RP)).toMatchObject({ duration: '24h0m0s', default: true });
		expect(rps.find((rp) => rp.name === DOWNSAMPLED_RP)).toMatchObject({ duration: '720h0m0s', default: false });
		expect(cqNames.sort()).toEqual(DOWNSAMPLED_MEASUREMENTS.map(continuousQueryName).sort());
		const cqs = (await admin.showContinousQueries(db)).filter((cq) => cqNames.includes(cq.name) && cq.query.includes(` ON ${db} `));
		expect(cqs).toHaveLength(DOWNSAMPLED_MEASUREMENTS.length);
		for (const cq of cqs) {
			expect(cq.query).toContain(`INTO ${db}.${DOWNSAMPLED_RP}.`);
			expect(cq.query).toMatch(/GROUP BY time\(1m\), worker\b/);
			expect(cq.query).not.toMatch(/\b(stream|transport|router)\b/);
		}
	});

	test('retention comes from the influx options and is updated when reopened with other values', async () => {
		const db = uniqueDb('retention');
		await (await InfluxStore.open(options(db, { rawRetention: '48h', downsampledRetention: '2w' }))).close();
		let rps = await admin.showRetentionPolicies(db);
		expect(rps.find((rp) => rp.name === RAW_RP)?.duration).toBe('48h0m0s');
		expect(rps.find((rp) => rp.name === DOWNSAMPLED_RP)?.duration).toBe('336h0m0s');
		const reopened = await InfluxStore.open(options(db, { rawRetention: '12h', downsampledRetention: '7d' }));
		const cqNames = await reopened.continuousQueries();
		await reopened.close();
		rps = await admin.showRetentionPolicies(db);
		expect(rps.find((rp) => rp.name === RAW_RP)?.duration).toBe('12h0m0s');
		expect(rps.find((rp) => rp.name === DOWNSAMPLED_RP)?.duration).toBe('168h0m0s');
		expect(cqNames).toHaveLength(DOWNSAMPLED_MEASUREMENTS.length);
	});

	test('a batch the server refuses (field type conflict) is counted as rejected, not retried forever', async () => {
		const db = uniqueDb('rejected');
		const store = await InfluxStore.open(options(db));
		const ts = Date.now() - 60_000;
		// cpuPct as a string in this shard makes every float cpuPct write conflict.
		await admin.writePoints([{ measurement: 'worker_load', tags: { worker: 'x' }, fields: { cpuPct: 'oops' }, timestamp: ts - 1000 }], {
			database: db,
			retentionPolicy: RAW_RP,
			precision: 'ms',
		});
		await store.writeWorkerLoad([workerLoad(0, ts), workerLoad(1, ts)]);
		expect(await store.flush(10_000)).toBe(true);
		expect(store.stats()).toMatchObject({ rejectedPoints: 2, writtenPoints: 0, bufferedPoints: 0, droppedPoints: 0 });
		await store.close();
	});
});

test('a record line protocol cannot carry is rejected and counted on its own; the rest of the batch is stored', async () => {
	const db = uniqueDb('unencodable');
	const store = await InfluxStore.open(options(db));
	const ts = Date.now() - 60_000;
	const good = [workerLoad(0, ts), workerLoad(2, ts)];
	await store.writeWorkerLoad([good[0]!, { ...workerLoad(1, ts), workerId: 'ends-with\\' }, good[1]!]);
	expect(await store.flush(10_000)).toBe(true);
	expect(store.stats()).toMatchObject({ rejectedPoints: 1, writtenPoints: 2 });
	expect(await store.workerLoadHistory(ts, ts)).toEqual(good);
	await store.close();
});

describe('InfluxStore downsampling', () => {
	test('the continuous query writes 1-minute means into the downsampled retention policy', async () => {
		const db = uniqueDb('cq');
		const store = await InfluxStore.open(options(db, { cqResample: { every: '1s', for: '10m' } }));
		// Two whole minutes that have already ended, so the CQ (run-interval 1s in the test influxd) covers them.
		const minute = Math.floor(Date.now() / 60_000) * 60_000 - 3 * 60_000;
		const samples = [0, 1, 2, 3, 4, 5].map((k) => ({ ...workerLoad(1, minute + k * 10_000), cpuPct: 10 + k * 4 }));
		const next = [0, 1, 2].map((k) => ({ ...workerLoad(1, minute + 60_000 + k * 20_000), cpuPct: 50 + k }));
		await store.writeWorkerLoad([...samples, ...next]);
		expect(await store.flush(10_000)).toBe(true);

		const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
		let rows: { time: number; mean_cpuPct: number; mean_rssBytes: number; worker: string }[] = [];
		const deadline = Date.now() + 45_000;
		while (Date.now() < deadline) {
			const raw = (await admin.queryRaw(`SELECT * FROM "${DOWNSAMPLED_RP}"."worker_load" ORDER BY time`, { database: db, precision: 'ms' })) as {
				results: { series?: { columns: string[]; values: unknown[][] }[] }[];
			};
			const series = raw.results[0]?.series?.[0];
			rows = (series?.values ?? []).map((v) => Object.fromEntries(series!.columns.map((c, i) => [c, v[i]])) as (typeof rows)[number]);
			if (rows.length >= 2) break;
			await new Promise((r) => setTimeout(r, 500));
		}
		await store.close();
		expect(rows).toHaveLength(2);
		expect(rows[0]).toMatchObject({ time: minute, worker: 'w1' });
		expect(rows[0]!.mean_cpuPct).toBeCloseTo(mean(samples.map((s) => s.cpuPct)), 9);
		expect(rows[0]!.mean_rssBytes).toBeCloseTo(mean(samples.map((s) => s.rssBytes)), 3);
		expect(rows[1]).toMatchObject({ time: minute + 60_000 });
		expect(rows[1]!.mean_cpuPct).toBeCloseTo(mean(next.map((s) => s.cpuPct)), 9);
	}, 60_000);
});
