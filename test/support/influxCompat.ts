import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the v1-compatible HTTP API of InfluxDB 2.x and 3.x, in front of the real
 * InfluxDB 1.6.7 the tests start: the front end (authentication, bucket/database mapping,
 * which statements exist, parameters, error statuses and body shapes) follows the
 * documentation and source of those versions; data is stored and queried by the real
 * engine behind it. No 2.x or 3.x server was run; what follows is the documented
 * behaviour this harness reproduces:
 *
 * 2.x (docs.influxdata.com/influxdb/v2/api-guide/influxdb-1x/{query,write,dbrp}; influxdb
 * http/legacy/{influxqld_handler,write_handler}.go, v1/coordinator/statement_executor.go):
 * - `Authorization: Token <token>`, or Basic with the token as password; else 401
 *   `{"code":"unauthorized","message":"unauthorized access"}`.
 * - A bucket named `db/rp` carries a virtual DBRP mapping (db, rp). /write with a db/rp
 *   that maps to no bucket: 404 `{"code":"not found","message":"no dbrp mapping found"}`;
 *   without db: 400 `{"code":"invalid","message":"missing db"}`; success 204.
 * - /query binds `params`. CREATE/ALTER/DROP DATABASE, RETENTION POLICY and CONTINUOUS
 *   QUERY and SHOW CONTINUOUS QUERIES answer 200 with the statement's error
 *   "not implemented: <STATEMENT>". SHOW RETENTION POLICIES ON db lists db's mappings.
 *
 * 3.x Core/Enterprise (docs.influxdata.com/influxdb3/core: compatibility-apis, InfluxQL
 * DBRP naming convention, the OpenAPI spec of /write and /query; influxdb3_server
 * http/v1.rs):
 * - `Authorization: Token|Bearer <token>`; else 401 (ErrorMessage body `{"error":…}`).
 * - db + rp name the database `db/rp`; /write creates a missing database (no retention).
 * - /query takes db, rp, epoch, q but no bound parameters: a `$name` left in the query is
 *   an error (400). A query on a database that does not exist: 404. Statements that
 *   change the schema are not InfluxQL there: 400. Series carry no `tags` member: group
 *   tags are ordinary columns of each row.
 * Error texts marked "illustrative" below are not quoted from a server.
 */
export interface CompatOptions {
	version: 2 | 3;
	/** The real InfluxDB 1.x behind it. */
	upstream: string;
	token: string;
	/** https with this key and certificate. */
	tls?: { key: Buffer; cert: Buffer };
}

export interface RecordedRequest {
	method: string;
	path: string;
	params: Record<string, string>;
	authorization: string | undefined;
	status: number;
}

export interface CompatServer {
	url: string;
	requests: RecordedRequest[];
	/** Creates a bucket (2.x) or database (3.x) named `db/rp`, as an operator would. */
	createBucket(name: string): Promise<void>;
	close(): Promise<void>;
}

const SCHEMA_STATEMENT = /^\s*(CREATE|ALTER|DROP)\s+(DATABASE|RETENTION\s+POLICY|CONTINUOUS\s+QUERY)\b|^\s*SHOW\s+CONTINUOUS\s+QUERIES\b/i;

export async function startCompatServer(options: CompatOptions, port = 0): Promise<CompatServer> {
	const buckets = new Set<string>();
	const requests: RecordedRequest[] = [];

	async function upstream(path: string, params: Record<string, string>, init: { method: string; body?: string }): Promise<{ status: number; text: string }> {
		const url = new URL(path, options.upstream);
		url.search = new URLSearchParams(params).toString();
		const res = await fetch(url, { method: init.method, ...(init.body !== undefined ? { body: init.body } : {}) });
		return { status: res.status, text: await res.text() };
	}

	async function createBucket(name: string): Promise<void> {
		const [db, rp] = split(name);
		buckets.add(name);
		await upstream('/query', { q: `CREATE DATABASE "${db}"` }, { method: 'POST' });
		const made = await upstream('/query', { q: `CREATE RETENTION POLICY "${rp}" ON "${db}" DURATION 0s REPLICATION 1` }, { method: 'POST' });
		const refused = (JSON.parse(made.text) as { results?: { error?: string }[] }).results?.[0]?.error;
		if (made.status !== 200 || (refused !== undefined && !refused.includes('already exists'))) throw new Error(`harness: upstream refused to create ${name}: ${made.text}`);
	}

	function authorized(header: string | undefined): boolean {
		if (header === `Token ${options.token}`) return true;
		if (options.version === 3 && header === `Bearer ${options.token}`) return true;
		if (header?.startsWith('Basic ')) {
			const [, password] = Buffer.from(header.slice(6), 'base64').toString().split(':');
			return password === options.token;
		}
		return false;
	}

	function send(res: ServerResponse, status: number, body?: unknown): number {
		if (body === undefined) res.writeHead(status).end();
		else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
		return status;
	}

	function error(res: ServerResponse, status: number, code: string, message: string): number {
		return send(res, status, options.version === 2 ? { code, message } : { error: message, data: null });
	}

	async function handle(req: IncomingMessage, res: ServerResponse, params: Record<string, string>, body: string): Promise<number> {
		const url = new URL(req.url ?? '/', 'http://harness');
		if (!authorized(req.headers.authorization)) return error(res, 401, 'unauthorized', 'unauthorized access');
		if (url.pathname === '/write' && req.method === 'POST') {
			if (!params.db) return error(res, 400, 'invalid', 'missing db');
			const bucket = `${params.db}/${params.rp ?? 'autogen'}`;
			if (!buckets.has(bucket)) {
				if (options.version === 2) return error(res, 404, 'not found', 'no dbrp mapping found');
				await createBucket(bucket);
			}
			const up = await upstream('/write', { db: params.db, rp: params.rp ?? 'autogen', precision: params.precision ?? 'ns' }, { method: 'POST', body });
			if (up.status === 204) return send(res, 204);
			return error(res, up.status === 404 ? 404 : 400, 'invalid', up.text);
		}
		if (url.pathname === '/query') return query(res, params);
		return error(res, 404, 'not found', 'path not found');
	}

	async function query(res: ServerResponse, params: Record<string, string>): Promise<number> {
		const q = params.q ?? '';
		const db = params.db ?? '';
		if (SCHEMA_STATEMENT.test(q)) {
			if (options.version === 3) return error(res, 400, 'invalid', `error parsing query: unsupported statement (illustrative): ${q.slice(0, 40)}`);
			const op = q.trim().toUpperCase().match(/^(CREATE|ALTER|DROP)\s+(DATABASE|RETENTION\s+POLICY|CONTINUOUS\s+QUERY)|^SHOW\s+CONTINUOUS\s+QUERIES/)![0].replace(/\s+/g, ' ');
			return send(res, 200, { results: [{ statement_id: 0, error: `not implemented: ${op}` }] });
		}
		const showRp = /^\s*SHOW\s+RETENTION\s+POLICIES\s+ON\s+"([^"]+)"\s*$/i.exec(q);
		if (showRp) {
			const values = [...buckets].filter((b) => split(b)[0] === showRp[1]).map((b) => [split(b)[1], '0s', '168h0m0s', 1, false]);
			return send(res, 200, { results: [{ statement_id: 0, series: [{ columns: ['name', 'duration', 'shardGroupDuration', 'replicaN', 'default'], values }] }] });
		}
		if (/^\s*SHOW\s+DATABASES\s*$/i.test(q)) {
			const names = options.version === 3 ? [...buckets] : [...new Set([...buckets].map((b) => split(b)[0]))];
			return send(res, 200, { results: [{ statement_id: 0, series: [{ name: 'databases', columns: ['name'], values: names.map((n) => [n]) }] }] });
		}
		if (options.version === 3) {
			const unbound = /\$([A-Za-z_]\w*)/.exec(q);
			if (unbound) return error(res, 400, 'invalid', `bind parameter '$${unbound[1]}' was not found (illustrative)`);
		}
		// Every source of a SELECT must map to a bucket (2.x: a DBRP mapping; 3.x: a database named db/rp).
		for (const m of q.matchAll(/FROM\s+"([^"]+)"\."[^"]+"/gi)) {
			if (!buckets.has(`${db}/${m[1]}`)) {
				if (options.version === 3) return error(res, 404, 'not found', `database not found: ${db}/${m[1]}`);
				return send(res, 200, { results: [{ statement_id: 0, error: `database not found: ${db}` }] });
			}
		}
		const forwarded: Record<string, string> = { db, q };
		if (params.epoch) forwarded.epoch = params.epoch;
		if (options.version === 2 && params.params) forwarded.params = params.params;
		const up = await upstream('/query', forwarded, { method: 'GET' });
		if (up.status !== 200) return error(res, up.status, 'invalid', up.text);
		const json = JSON.parse(up.text) as { results: { series?: { name?: string; tags?: Record<string, string>; columns: string[]; values?: unknown[][] }[] }[] };
		if (options.version === 3) {
			for (const result of json.results) {
				for (const series of result.series ?? []) {
					if (!series.tags) continue;
					const tagNames = Object.keys(series.tags);
					series.columns = [...series.columns, ...tagNames];
					series.values = (series.values ?? []).map((row) => [...row, ...tagNames.map((t) => series.tags![t])]);
					delete series.tags;
				}
			}
		}
		return send(res, 200, json);
	}

	const listener = (req: IncomingMessage, res: ServerResponse): void => {
		const chunks: Buffer[] = [];
		req.on('data', (c: Buffer) => chunks.push(c));
		req.on('end', () => {
			const url = new URL(req.url ?? '/', 'http://harness');
			const params = Object.fromEntries(url.searchParams);
			// node-influx (1.x clients) sends /query's parameters as a form body.
			if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) Object.assign(params, Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString())));
			const record: RecordedRequest = {
				method: req.method ?? '',
				path: url.pathname,
				params,
				authorization: req.headers.authorization,
				status: 0,
			};
			requests.push(record);
			handle(req, res, params, Buffer.concat(chunks).toString()).then(
				(status) => void (record.status = status),
				(e: unknown) => void (record.status = send(res, 500, { error: String(e) })),
			);
		});
	};
	const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', () => resolve());
	});
	const address = server.address() as AddressInfo;
	return {
		url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
		requests,
		createBucket,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

function split(bucket: string): [string, string] {
	const i = bucket.indexOf('/');
	return [bucket.slice(0, i), bucket.slice(i + 1)];
}
