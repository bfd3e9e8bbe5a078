import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import pino from 'pino';
import { attach, MemoryStore } from '../../plugin';
import { parseOptions, type ForesightOptions } from '../../plugin/config';
import { createLogger } from '../../plugin/log';
import { DOWNSAMPLED_RP, InfluxSchemaError, InfluxStore, RAW_RP, type InfluxStoreOptions } from '../../plugin/store/influxStore';
import { startCompatServer, type CompatServer } from '../support/influxCompat';
import { profileStoreContract } from './contract';
import { workerLoad } from './fixtures';

/**
 * InfluxDB 2.x and 3.x through their v1-compatible API, against the documented-behaviour
 * harness of test/support/influxCompat.ts (the real 1.6.7 engine behind it); 1.x schema
 * refusals against the real 1.6.7. No live 2.x or 3.x server is run here.
 */
const upstream = process.env.INFLUX_URL;
if (!upstream) throw new Error('INFLUX_URL is not set: run through jest (globalSetup starts influxd)');
const TOKEN = 'apiv3_test-token';

const servers: CompatServer[] = [];
afterAll(async () => {
	for (const s of servers) await s.close();
});

async function harness(version: 2 | 3, tls?: { key: Buffer; cert: Buffer }): Promise<CompatServer> {
	const server = await startCompatServer({ version, upstream: upstream!, token: TOKEN, ...(tls ? { tls } : {}) });
	servers.push(server);
	return server;
}

function uniqueDb(prefix: string): string {
	return `${prefix}_${randomBytes(4).toString('hex')}`;
}

function storeOptions(influx: NonNullable<ForesightOptions['influx']>, extra: Partial<InfluxStoreOptions> = {}): InfluxStoreOptions {
	return { ...parseOptions({ influx: { flushIntervalMs: 50, ...influx } }).influx!, logger: createLogger('silent'), requestTimeoutMs: 5000, ...extra };
}

/** Log lines of a pino logger, parsed. */
function capturedLogger(): { logger: pino.Logger; lines: { level: number; msg: string; err?: unknown; hint?: string }[] } {
	const lines: { level: number; msg: string }[] = [];
	return { logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) }), lines };
}

async function rejection(p: Promise<unknown>): Promise<InfluxSchemaError> {
	try {
		await p;
	} catch (e) {
		if (e instanceof InfluxSchemaError) return e;
		throw e;
	}
	throw new Error('expected an InfluxSchemaError');
}

describe('InfluxDB 2.x (v1 compatibility, documented-behaviour harness)', () => {
	let v2: CompatServer;
	beforeAll(async () => {
		v2 = await harness(2);
	});

	profileStoreContract('InfluxStore on InfluxDB 2.x', async () => {
		const database = uniqueDb('v2');
		await v2.createBucket(`${database}/${RAW_RP}`);
		await v2.createBucket(`${database}/${DOWNSAMPLED_RP}`);
		return InfluxStore.open(storeOptions({ url: v2.url, version: 2, token: TOKEN, database }));
	});

	test('every request carries Authorization: Token, writes go to db/raw, and bound parameters are sent as params', async () => {
		const database = uniqueDb('v2auth');
		await v2.createBucket(`${database}/${RAW_RP}`);
		const from = v2.requests.length;
		const store = await InfluxStore.open(storeOptions({ url: v2.url, version: 2, token: TOKEN, database }));
		const ts = Date.now() - 60_000;
		await store.writeWorkerLoad([workerLoad(1, ts)]);
		expect(await store.flush(10_000)).toBe(true);
		expect(await store.workerLoadHistory(ts, ts, 'w1')).toHaveLength(1);
		await store.close();
		const mine = v2.requests.slice(from);
		expect(mine.map((r) => r.authorization)).toEqual(mine.map(() => `Token ${TOKEN}`));
		expect(mine.find((r) => r.path === '/write')?.params).toMatchObject({ db: database, rp: RAW_RP, precision: 'ms' });
		const select = mine.find((r) => r.params.q?.startsWith('SELECT'))!;
		expect(select.params.q).toContain('$worker');
		expect(JSON.parse(select.params.params!)).toMatchObject({ worker: 'w1' });
		// External schema: no statement that would change the server was sent.
		expect(mine.filter((r) => /^(CREATE|ALTER|DROP)/.test(r.params.q ?? ''))).toEqual([]);
	});

	test('a wrong token is refused once with what to do (HTTP 401), not retried', async () => {
		const database = uniqueDb('v2token');
		await v2.createBucket(`${database}/${RAW_RP}`);
		const from = v2.requests.length;
		const err = await rejection(InfluxStore.open(storeOptions({ url: v2.url, version: 2, token: 'wrong', database })));
		expect(err.message).toMatch(/HTTP 401/);
		expect(err.hint).toMatch(/INFLUX_TOKEN/);
		expect(v2.requests.length - from).toBe(1);
	});

	test('a missing bucket db/raw is named with the command that creates it; a missing rollup bucket is only warned about', async () => {
		const database = uniqueDb('v2bucket');
		const err = await rejection(InfluxStore.open(storeOptions({ url: v2.url, version: 2, token: TOKEN, database, rawRetention: '48h' })));
		expect(err.hint).toContain(`influx bucket create -n ${database}/${RAW_RP} -r 48h`);
		expect(err.statement).toBe(`SHOW RETENTION POLICIES ON "${database}"`);

		await v2.createBucket(`${database}/${RAW_RP}`);
		const log = capturedLogger();
		const store = await InfluxStore.open(storeOptions({ url: v2.url, version: 2, token: TOKEN, database }, { logger: createLogger('info', log.logger) }));
		expect(store.schemaState).toBe('ready');
		await store.close();
		expect(log.lines.filter((l) => l.msg.includes(`no "${DOWNSAMPLED_RP}"`))).toHaveLength(1);
	});

	test('pointed at 2.x as if it were 1.x, the managed schema is refused ("not implemented") with the setting to change', async () => {
		const database = uniqueDb('v2as1');
		const err = await rejection(InfluxStore.open(storeOptions({ url: v2.url, database, username: 'any', password: TOKEN })));
		expect(err.message).toContain('not implemented: CREATE DATABASE');
		expect(err.statement).toBe(`CREATE DATABASE "${database}"`);
		expect(err.hint).toMatch(/INFLUX_VERSION=2 or 3/);
	});

	test('Foresight reports a refused schema once and keeps profiles in memory; it does not retry', async () => {
		const database = uniqueDb('v2foresight');
		const log = capturedLogger();
		const from = v2.requests.length;
		const foresight = attach(mediasoup, { useEnv: false, logger: log.logger, influx: { url: v2.url, database, username: 'any', password: TOKEN } });
		try {
			// Before the fix, Foresight reopened after 1 s, 2 s, 4 s …: three attempts in this window.
			await new Promise((r) => setTimeout(r, 3500));
			const attempts = v2.requests.slice(from).filter((r) => r.params.q?.startsWith('CREATE DATABASE'));
			expect(attempts).toHaveLength(1);
			const refused = log.lines.filter((l) => l.msg.startsWith('InfluxDB refused the store setup'));
			expect(refused).toHaveLength(1);
			expect(refused[0]!.hint).toMatch(/INFLUX_VERSION=2 or 3/);
			expect(foresight.store).toBeInstanceOf(MemoryStore);
		} finally {
			await foresight.detach();
		}
	});
});

describe('InfluxDB 3.x (v1 compatibility, documented-behaviour harness)', () => {
	let v3: CompatServer;
	beforeAll(async () => {
		v3 = await harness(3);
	});

	profileStoreContract('InfluxStore on InfluxDB 3.x', async () => {
		const database = uniqueDb('v3');
		await v3.createBucket(`${database}/${RAW_RP}`);
		await v3.createBucket(`${database}/${DOWNSAMPLED_RP}`);
		return InfluxStore.open(storeOptions({ url: v3.url, version: 3, token: TOKEN, database }));
	});

	test('values are inlined as escaped literals (3.x /query binds no parameters); writes create the database db/raw', async () => {
		const database = uniqueDb('v3inline');
		const log = capturedLogger();
		const from = v3.requests.length;
		const store = await InfluxStore.open(storeOptions({ url: v3.url, version: 3, token: TOKEN, database }, { logger: createLogger('info', log.logger) }));
		// The databases did not exist: warned about, with the command that gives them a retention period.
		expect(log.lines.map((l) => l.msg).filter((m) => m.includes('influxdb3 create database --retention-period'))).toHaveLength(2);
		const ts = Date.now() - 60_000;
		const odd = { ...workerLoad(1, ts), workerId: `it's "odd", \\ id` };
		await store.writeWorkerLoad([odd, workerLoad(2, ts)]);
		expect(await store.flush(10_000)).toBe(true);
		expect(await store.workerLoadHistory(ts, ts, odd.workerId)).toEqual([odd]);
		await store.close();
		const queries = v3.requests.slice(from).filter((r) => r.path === '/query');
		expect(queries.every((r) => r.params.params === undefined && !/\$\w/.test(r.params.q ?? ''))).toBe(true);
		expect(queries.every((r) => r.status === 200)).toBe(true);
	});

	test('a missing token is refused (HTTP 401) with what to do', async () => {
		const err = await rejection(InfluxStore.open(storeOptions({ url: v3.url, version: 3, database: uniqueDb('v3token') })));
		expect(err.message).toMatch(/HTTP 401/);
		expect(err.hint).toMatch(/INFLUX_TOKEN \(none is set\)/);
	});
});

describe('TLS (https, 3.x harness)', () => {
	let dir: string;
	let server: CompatServer;
	beforeAll(async () => {
		dir = mkdtempSync(join(tmpdir(), 'foresight-tls-'));
		execFileSync('openssl', [
			'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
			'-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
		], { stdio: 'ignore' });
		server = await harness(3, { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
	});
	afterAll(() => rmSync(dir, { recursive: true, force: true }));

	test('a self-signed server is trusted through INFLUX_TLS_CA_FILE, refused without it, accepted with verification off', async () => {
		const database = uniqueDb('tls');
		const base = { url: server.url, version: 3 as const, token: TOKEN, database };
		const trusted = await InfluxStore.open(storeOptions({ ...base, tlsCaFile: join(dir, 'cert.pem') }));
		const ts = Date.now() - 60_000;
		await trusted.writeWorkerLoad([workerLoad(1, ts)]);
		expect(await trusted.flush(10_000)).toBe(true);
		expect(await trusted.workerLoadHistory(ts, ts)).toHaveLength(1);
		await trusted.close();

		const err = await rejection(InfluxStore.open(storeOptions(base)));
		expect(err.hint).toMatch(/INFLUX_TLS_CA_FILE/);

		const unchecked = await InfluxStore.open(storeOptions({ ...base, tlsRejectUnauthorized: false }));
		expect(await unchecked.workerLoadHistory(ts, ts)).toHaveLength(1);
		await unchecked.close();
	});

	test('an unreadable CA file is a clear error naming the variable', async () => {
		await expect(InfluxStore.open(storeOptions({ url: server.url, version: 3, token: TOKEN, database: 'x', tlsCaFile: join(dir, 'missing.pem') }))).rejects.toThrow(
			/INFLUX_TLS_CA_FILE \(influx.tlsCaFile\) cannot be read/,
		);
	});
});

describe('InfluxDB 1.x schema refusals (real influxd 1.6.7)', () => {
	test('a retention policy the server refuses (under 1 h) is reported with the statement, not retried', async () => {
		const database = uniqueDb('refused');
		const err = await rejection(InfluxStore.open(storeOptions({ url: upstream!, database }, { rawRetention: '30m' })));
		expect(err.statement).toMatch(/^CREATE RETENTION POLICY "raw" ON "refused_\w+" DURATION 30m/);
		expect(err.message).toMatch(/duration must be at least 1h/);
	});

	test('external schema on 1.x: a database without the raw policy is refused with the statement to run; with it, the store works and creates nothing', async () => {
		const database = uniqueDb('external');
		const err = await rejection(InfluxStore.open(storeOptions({ url: upstream!, database, schema: 'external' })));
		expect(err.hint).toContain(`CREATE RETENTION POLICY "raw" ON "${database}"`);
		// The operator's statements, checked: a setup that silently failed would read as the store refusing a good schema.
		const admin = async (q: string): Promise<string> => {
			const res = await fetch(`${upstream}/query?${new URLSearchParams({ q })}`, { method: 'POST' });
			const body = await res.text();
			if (!res.ok || /"error"/.test(body)) throw new Error(`${q}: HTTP ${res.status} ${body}`);
			return body;
		};
		await admin(`CREATE DATABASE "${database}"`);
		await admin(`CREATE RETENTION POLICY "raw" ON "${database}" DURATION 24h REPLICATION 1 DEFAULT`);
		// What the store will look for, as the server lists it now (fails here, not in the store, if the policy is missing).
		expect(await admin(`SHOW RETENTION POLICIES ON "${database}"`)).toContain('"raw"');
		const store = await InfluxStore.open(storeOptions({ url: upstream!, database, schema: 'external' }));
		expect(await store.continuousQueries()).toEqual([]);
		const ts = Date.now() - 60_000;
		await store.writeWorkerLoad([workerLoad(1, ts)]);
		expect(await store.flush(10_000)).toBe(true);
		expect(await store.workerLoadHistory(ts, ts)).toHaveLength(1);
		await store.close();
		await admin(`DROP DATABASE "${database}"`);
	});

	test('a server down at open that comes up refusing the schema is reported once; the store stops trying and keeps its points', async () => {
		const port = await freePort();
		const log = capturedLogger();
		const database = uniqueDb('late');
		const store = await InfluxStore.open(
			storeOptions({ url: `http://127.0.0.1:${port}`, database, username: 'any', password: TOKEN }, { logger: createLogger('info', log.logger), retry: { initialMs: 100, maxMs: 200 } }),
		);
		expect(store.schemaState).toBe('waiting');
		await store.writeWorkerLoad([workerLoad(1, Date.now())]);
		// A 2.x server on that port, addressed as 1.x: CREATE DATABASE is "not implemented".
		const late = await startCompatServer({ version: 2, upstream: upstream!, token: TOKEN }, port);
		servers.push(late);
		const deadline = Date.now() + 10_000;
		while (store.schemaState === 'waiting' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
		expect(store.schemaState).toBe('rejected');
		expect(store.schemaRejection?.hint).toMatch(/INFLUX_VERSION=2 or 3/);
		const seen = late.requests.length;
		await new Promise((r) => setTimeout(r, 1000));
		expect(late.requests.length).toBe(seen);
		expect(log.lines.filter((l) => l.msg.includes('refused the schema setup'))).toHaveLength(1);
		expect(store.stats().bufferedPoints).toBe(1);
		await store.close(100);
	});
});

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const s = createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address() as { port: number };
			s.close(() => resolve(port));
		});
	});
}
