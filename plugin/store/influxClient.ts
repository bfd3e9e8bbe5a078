import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { InfluxOptions } from '../config';
import { requirePeer } from '../util/optionalPeer';
import { quoteStringLiteral } from './lineProtocol';

/**
 * How Foresight talks to each InfluxDB line (see SCHEMA.md "InfluxDB versions"):
 * 1.x through node-influx; 2.x and 3.x through their v1-compatible /query and /write,
 * with `Authorization: Token`. Everything the store sends is InfluxQL or line protocol.
 */
export type Placeholders = Record<string, string | number>;

export interface InfluxQlClient {
	/** One InfluxQL request (statements separated by `;`); resolves with /query's JSON. */
	query(q: string, options?: { placeholders?: Placeholders; post?: boolean }): Promise<unknown>;
}

/** An HTTP answer other than 2xx from InfluxDB; `status` decides whether retrying can help. */
export class InfluxHttpError extends Error {
	constructor(
		readonly status: number,
		body: string,
	) {
		super(`HTTP ${status}: ${body.trim().slice(0, 500)}`);
		this.name = 'InfluxHttpError';
	}
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/**
 * Unreachable (worth retrying: the network, a timeout, 5xx, 408, 429) as opposed to
 * rejected (the server answered no: authentication, permissions, a statement it does
 * not implement, a missing database). Only the first may be retried without end.
 */
export function isUnreachable(err: unknown): boolean {
	const e = err as { code?: string; status?: number; res?: { statusCode?: number }; constructor?: { name?: string } } | undefined;
	if (e?.code !== undefined && UNREACHABLE_CODES.has(e.code)) return true;
	// node-influx does not export its ServiceNotAvailableError (5xx, timeouts, no host left), hence the constructor name.
	if (e?.constructor?.name === 'ServiceNotAvailableError') return true;
	const status = e instanceof InfluxHttpError ? e.status : e?.res?.statusCode;
	return status !== undefined && (status >= 500 || status === 408 || status === 429);
}

/** The Authorization header for the configured credentials: a token (2.x/3.x), else 1.x basic auth. */
export function authorizationHeader(options: Pick<InfluxOptions, 'token' | 'username' | 'password'>): string | undefined {
	if (options.token !== undefined) return `Token ${options.token}`;
	if (options.username !== undefined) return `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
	return undefined;
}

/** TLS settings for https URLs: an extra CA (self-signed or private PKI) and whether to verify at all. */
export function tlsOptions(options: Pick<InfluxOptions, 'tlsCaFile' | 'tlsRejectUnauthorized'>): https.AgentOptions {
	const tls: https.AgentOptions = { rejectUnauthorized: options.tlsRejectUnauthorized };
	if (options.tlsCaFile !== undefined) {
		try {
			tls.ca = readFileSync(options.tlsCaFile);
		} catch (e) {
			throw new Error(`INFLUX_TLS_CA_FILE (influx.tlsCaFile) cannot be read: ${(e as Error).message}`);
		}
	}
	return tls;
}

export function keepAliveAgent(url: URL, tls: https.AgentOptions): http.Agent {
	return url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 2, ...tls }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
}

/** One request with a bounded body read; rejects with InfluxHttpError on a non-2xx status. */
export function request(
	url: URL,
	init: { method: 'GET' | 'POST'; agent: http.Agent; headers: http.OutgoingHttpHeaders; body?: string; timeoutMs: number; maxBody?: number },
): Promise<string> {
	return new Promise((resolve, reject) => {
		const headers = { ...init.headers, ...(init.body !== undefined ? { 'content-length': Buffer.byteLength(init.body) } : {}) };
		const req = (url.protocol === 'https:' ? https : http).request(url, { method: init.method, agent: init.agent, headers, timeout: init.timeoutMs }, (res) => {
			const chunks: string[] = [];
			let size = 0;
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => {
				size += chunk.length;
				if (size <= (init.maxBody ?? 64 * 1024 * 1024)) chunks.push(chunk);
			});
			res.on('end', () => {
				const status = res.statusCode ?? 0;
				const text = chunks.join('');
				if (status >= 200 && status < 300) resolve(text);
				else reject(new InfluxHttpError(status, text));
			});
			res.on('error', reject);
		});
		req.on('timeout', () => req.destroy(Object.assign(new Error(`request timed out after ${init.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
		req.on('error', reject);
		req.end(init.body);
	});
}

/**
 * InfluxDB 2.x and 3.x: /query of their v1 compatibility API. 2.x binds `params` like
 * 1.x; 3.x's /query takes no bound parameters, so values are inlined as escaped
 * InfluxQL literals (they are only ever ours: ids, timestamps, codec names).
 */
export class V1CompatClient implements InfluxQlClient {
	private readonly queryUrl: URL;
	private readonly headers: http.OutgoingHttpHeaders;

	constructor(
		base: URL,
		private readonly database: string,
		private readonly version: 2 | 3,
		authorization: string | undefined,
		private readonly agent: http.Agent,
		private readonly timeoutMs: number,
	) {
		this.queryUrl = new URL('/query', base);
		this.headers = { accept: 'application/json', ...(authorization ? { authorization } : {}) };
	}

	async query(q: string, options: { placeholders?: Placeholders; post?: boolean } = {}): Promise<unknown> {
		const params = new URLSearchParams({ db: this.database, epoch: 'ms' });
		const placeholders = options.placeholders ?? {};
		if (this.version === 3) params.set('q', inlinePlaceholders(q, placeholders));
		else {
			params.set('q', q);
			if (Object.keys(placeholders).length > 0) params.set('params', JSON.stringify(placeholders));
		}
		const url = new URL(this.queryUrl);
		url.search = params.toString();
		const text = await request(url, { method: 'GET', agent: this.agent, headers: this.headers, timeoutMs: this.timeoutMs });
		try {
			return JSON.parse(text) as unknown;
		} catch {
			throw new Error(`InfluxDB answered /query with something other than JSON: ${text.slice(0, 200)}`);
		}
	}
}

/** `$name` → an InfluxQL literal: strings single-quoted and escaped, numbers as they are. */
export function inlinePlaceholders(q: string, placeholders: Placeholders): string {
	return q.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
		if (!(name in placeholders)) throw new Error(`no value for placeholder $${name}`);
		const v = placeholders[name]!;
		if (typeof v === 'number') {
			if (!Number.isFinite(v)) throw new RangeError(`placeholder $${name} is not a finite number`);
			return String(v);
		}
		return quoteStringLiteral(v);
	});
}

/** InfluxDB 1.x: node-influx (an optional peer, loaded here, on first use). */
export function nodeInfluxClient(options: InfluxOptions, tls: https.AgentOptions, timeoutMs: number): InfluxQlClient {
	const { InfluxDB } = requirePeer<typeof import('influx')>('influx', 'InfluxStore for InfluxDB 1.x (INFLUX_URL with INFLUX_VERSION=1)');
	const url = new URL(options.url);
	const https = url.protocol === 'https:';
	const influx = new InfluxDB({
		host: url.hostname,
		port: Number(url.port || (https ? 443 : 80)),
		protocol: https ? 'https' : 'http',
		database: options.database,
		username: options.username,
		password: options.password,
		...(https ? { options: tls } : {}),
		pool: { requestTimeout: timeoutMs, maxRetries: 0 },
	});
	return {
		query: (q, o = {}) =>
			influx.queryRaw(q, { database: options.database, precision: 'ms', placeholders: o.placeholders ?? {}, ...(o.post ? { method: 'POST' } : {}) }) as Promise<unknown>,
	};
}
