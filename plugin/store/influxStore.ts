import http from 'node:http';
import https from 'node:https';
import { escape, InfluxDB } from 'influx';
import type { InfluxOptions } from '../config';
import type { Logger } from '../log';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../profile/schema';
import { backoffDelay, BatchedWriter, PermanentWriteError, type RetryOptions } from './batchedWriter';
import {
	decodeAction,
	decodeConnectionProfile,
	decodeStreamProfile,
	decodeWorkerLoad,
	DOWNSAMPLED_MEASUREMENTS,
	DOWNSAMPLING,
	encodeAction,
	encodeConnectionProfile,
	encodeStreamProfile,
	encodeWorkerLoad,
	MEASUREMENT,
	StoredVersionError,
} from './influxSchema';
import { rowsOf, type Row } from './lineProtocol';
import {
	actionOrder,
	assertLimit,
	assertRange,
	attachNearestLoad,
	connectionOrder,
	DEFAULT_LOAD_SKEW_MS,
	loadOrder,
	newestStreamFirst,
	streamOrder,
} from './semantics';
import type { AllocationAction, LatestQuery, ProfileStore, SimilarityCandidate, SimilarityQuery, StoreStats } from './types';

export const RAW_RP = 'raw';
export const DOWNSAMPLED_RP = 'rollup_1m';

const DURATION = /^\d+[smhdw]$/;

export interface InfluxStoreOptions extends InfluxOptions {
	logger: Logger;
	/**
	 * RESAMPLE clause of the downsampling continuous queries. InfluxDB's default only
	 * computes the interval that just ended; `for` lets late points (e.g. written
	 * after an outage) still reach the means. Default: for 5m.
	 */
	cqResample?: { every?: string; for?: string };
	/** How far a worker load sample may be from a profile to describe it. */
	loadSkewMs?: number;
	/** One write or query request; past it the request counts as failed. */
	requestTimeoutMs?: number;
	retry?: Partial<RetryOptions>;
	highWaterPoints?: number;
	maxInFlight?: number;
	/** false: only connect (readers such as the training export must not alter retention or queries). Default true. */
	ensureSchema?: boolean;
	/** Each batch InfluxDB confirmed, as line protocol, in confirmation order. */
	onWritten?: (lines: readonly string[]) => void;
}

type Placeholders = Record<string, string | number>;

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * ProfileStore on InfluxDB 1.x. Schema, retention and downsampling are created
 * on open (see SCHEMA.md); writes go through a BatchedWriter as pre-serialised
 * line protocol POSTed on a keep-alive connection; queries go through node-influx
 * with bound parameters only.
 */
export class InfluxStore implements ProfileStore {
	private readonly writer: BatchedWriter;
	private readonly agent: http.Agent;
	private readonly writeUrl: URL;
	private readonly authHeader: string | undefined;
	private readonly loadSkewMs: number;
	private readonly requestTimeoutMs: number;
	private encodeFailuresLogged = false;

	private constructor(
		readonly influx: InfluxDB,
		private readonly options: InfluxStoreOptions,
	) {
		const base = new URL(options.url);
		this.agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 2 }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
		this.writeUrl = new URL('/write', base);
		this.writeUrl.search = new URLSearchParams({ db: options.database, rp: RAW_RP, precision: 'ms' }).toString();
		this.authHeader =
			options.username !== undefined ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}` : undefined;
		this.loadSkewMs = options.loadSkewMs ?? DEFAULT_LOAD_SKEW_MS;
		this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
		this.writer = new BatchedWriter({
			send: (body) => this.post(body),
			batchSize: options.batchSize,
			flushIntervalMs: options.flushIntervalMs,
			maxBufferedPoints: options.maxBufferedPoints,
			maxBufferedBytes: options.maxBufferedBytes,
			highWaterPoints: options.highWaterPoints,
			retry: options.retry,
			maxInFlight: options.maxInFlight,
			onWritten: options.onWritten,
			logger: options.logger,
		});
	}

	/** Connects, creates (or updates) the database, retention policies and continuous queries, and returns the store. */
	static async open(options: InfluxStoreOptions): Promise<InfluxStore> {
		for (const d of [options.rawRetention, options.downsampledRetention, options.cqResample?.every, options.cqResample?.for]) {
			if (d !== undefined && !DURATION.test(d)) throw new RangeError(`not an InfluxDB duration: ${d}`);
		}
		const url = new URL(options.url);
		const influx = new InfluxDB({
			host: url.hostname,
			port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
			protocol: url.protocol === 'https:' ? 'https' : 'http',
			database: options.database,
			username: options.username,
			password: options.password,
			pool: { requestTimeout: options.requestTimeoutMs ?? 10_000, maxRetries: 0 },
		});
		const store = new InfluxStore(influx, options);
		if (options.ensureSchema ?? true) {
			try {
				await store.ensureSchema();
			} catch (err) {
				// A server that is down at start must not stop the SFU or lose profiles: buffer
				// (within the bounds) and create the schema once it answers. Other errors
				// (authentication, an invalid policy) are configuration mistakes and surface now.
				if (!isUnreachable(err)) throw err;
				store.ensureSchemaLater(err as Error);
			}
		}
		return store;
	}

	private schemaTimer: NodeJS.Timeout | undefined;

	private ensureSchemaLater(first: Error): void {
		this.writer.pause();
		this.options.logger.warn(
			{ err: first.message },
			'influx store: InfluxDB unreachable at start; buffering and creating the schema once it answers (logged once)',
		);
		const retry = { initialMs: 250, maxMs: 10_000, jitter: 0.5, ...this.options.retry };
		let attempt = 0;
		const tryAgain = (): void => {
			this.schemaTimer = setTimeout(() => {
				this.ensureSchema().then(
					() => {
						this.schemaTimer = undefined;
						this.options.logger.info({ attempts: attempt }, 'influx store: schema ready; writing the buffered points');
						this.writer.resume();
					},
					(err: unknown) => {
						if (!isUnreachable(err)) this.options.logger.error({ err: (err as Error).message }, 'influx store: creating the schema failed; retrying');
						tryAgain();
					},
				);
			}, backoffDelay(++attempt, retry, Math.random));
		};
		tryAgain();
	}

	/** True until the schema exists when the server was down at open(). */
	get waitingForSchema(): boolean {
		return this.schemaTimer !== undefined;
	}

	private async ensureSchema(): Promise<void> {
		const { database, rawRetention, downsampledRetention } = this.options;
		await this.influx.createDatabase(database);
		const existing = new Set((await this.influx.showRetentionPolicies(database)).map((rp) => rp.name));
		const policies = [
			{ name: RAW_RP, duration: rawRetention, isDefault: true },
			{ name: DOWNSAMPLED_RP, duration: downsampledRetention, isDefault: false },
		];
		for (const rp of policies) {
			// The shard duration is stated so that shortening a policy later is never refused for it.
			const verb = existing.has(rp.name) ? 'ALTER' : 'CREATE';
			await this.admin(
				`${verb} RETENTION POLICY ${escape.quoted(rp.name)} ON ${escape.quoted(database)} DURATION ${rp.duration} REPLICATION 1 ` +
					`SHARD DURATION ${shardDurationFor(rp.duration)}${rp.isDefault ? ' DEFAULT' : ''}`,
			);
		}
		const resample = this.options.cqResample ?? { for: '5m' };
		const resampleClause =
			resample.every || resample.for ? `RESAMPLE${resample.every ? ` EVERY ${resample.every}` : ''}${resample.for ? ` FOR ${resample.for}` : ''}` : '';
		// A continuous query cannot be altered: recreate so configuration changes apply.
		const cqs = new Set(await this.continuousQueries());
		const db = JSON.stringify(database);
		for (const m of DOWNSAMPLED_MEASUREMENTS) {
			const name = continuousQueryName(m);
			if (cqs.has(name)) await this.influx.dropContinuousQuery(name, database);
			await this.influx.createContinuousQuery(
				name,
				`SELECT mean(*) INTO ${db}."${DOWNSAMPLED_RP}"."${m}" FROM ${db}."${RAW_RP}"."${m}" ` +
					`GROUP BY time(1m), ${DOWNSAMPLING[m].map((t) => `"${t}"`).join(', ')}`,
				database,
				resampleClause,
			);
		}
	}

	/** Names of the continuous queries on this store's database (SHOW lists every database's). */
	async continuousQueries(): Promise<string[]> {
		const raw = (await this.influx.queryRaw('SHOW CONTINUOUS QUERIES', { database: this.options.database })) as {
			results?: { series?: { name: string; values?: unknown[][] }[] }[];
		};
		const series = raw.results?.[0]?.series?.find((s) => s.name === this.options.database);
		return (series?.values ?? []).map((v) => String(v[0]));
	}

	/** A schema statement: identifiers escaped, durations validated in open(). */
	private async admin(q: string): Promise<void> {
		rowsOf(await this.influx.queryRaw(q, { database: this.options.database, method: 'POST' }));
	}

	private post(body: string): Promise<void> {
		return new Promise((resolve, reject) => {
			const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) };
			if (this.authHeader) headers.authorization = this.authHeader;
			const req = (this.writeUrl.protocol === 'https:' ? https : http).request(
				this.writeUrl,
				{ method: 'POST', agent: this.agent, headers, timeout: this.requestTimeoutMs },
				(res) => {
					let text = '';
					res.setEncoding('utf8');
					res.on('data', (chunk: string) => {
						if (text.length < 2000) text += chunk;
					});
					res.on('end', () => {
						const status = res.statusCode ?? 0;
						if (status >= 200 && status < 300) resolve();
						// 4xx: the batch itself is wrong (bad line, field type conflict, auth); resending cannot help.
						else if (status >= 400 && status < 500 && status !== 408 && status !== 429)
							reject(new PermanentWriteError(`HTTP ${status}: ${text.trim()}`));
						else reject(new Error(`HTTP ${status}: ${text.trim()}`));
					});
					res.on('error', reject);
				},
			);
			req.on('timeout', () => req.destroy(new Error(`write timed out after ${this.requestTimeoutMs} ms`)));
			req.on('error', reject);
			req.end(body);
		});
	}

	private enqueue<T>(records: readonly T[], encode: (r: T) => string): Promise<void> {
		const lines: string[] = [];
		let failures = 0;
		for (const r of records) {
			try {
				lines.push(encode(r));
			} catch (err) {
				failures++;
				if (!this.encodeFailuresLogged) {
					this.encodeFailuresLogged = true;
					this.options.logger.error({ err: (err as Error).message }, 'influx store: record could not be encoded and was skipped (logged once)');
				}
			}
		}
		if (failures > 0) this.writer.countRejected(failures);
		return this.writer.write(lines);
	}

	writeStreamProfiles(profiles: readonly StreamProfile[]): Promise<void> {
		return this.enqueue(profiles, encodeStreamProfile);
	}

	writeConnectionProfiles(profiles: readonly ConnectionProfile[]): Promise<void> {
		return this.enqueue(profiles, encodeConnectionProfile);
	}

	writeWorkerLoad(samples: readonly WorkerLoadSample[]): Promise<void> {
		return this.enqueue(samples, encodeWorkerLoad);
	}

	writeAction(action: AllocationAction): Promise<void> {
		return this.enqueue([action], encodeAction);
	}

	/** Runs one parameterised statement (epoch ms); identifiers in `q` are ours, values only ever placeholders. */
	async query(q: string, placeholders: Placeholders = {}): Promise<Row[]> {
		const raw: unknown = await this.influx.queryRaw(q, { database: this.options.database, precision: 'ms', placeholders });
		return rowsOf(raw);
	}

	private decodeAll<T>(rows: Row[], decode: (r: Row) => T): T[] {
		const out: T[] = [];
		for (const row of rows) {
			try {
				out.push(decode(row));
			} catch (err) {
				// Readers reject other schema versions rather than misread them.
				if (!(err instanceof StoredVersionError)) throw err;
			}
		}
		return out;
	}

	private history<T>(measurement: string, from: number, to: number, workerId: string | undefined, decode: (r: Row) => T): Promise<T[]> {
		assertRange(from, to);
		const params: Placeholders = { from: iso(from), to: iso(to) };
		let where = 'time >= $from AND time <= $to';
		if (workerId !== undefined) {
			where += ' AND "worker" = $worker';
			params.worker = workerId;
		}
		return this.query(`SELECT * FROM "${RAW_RP}"."${measurement}" WHERE ${where}`, params).then((rows) => this.decodeAll(rows, decode));
	}

	async latestStreamProfiles(query: LatestQuery = {}): Promise<StreamProfile[]> {
		const params: Placeholders = {};
		let where = '';
		if (query.since !== undefined) {
			where = 'WHERE time >= $since';
			params.since = iso(query.since);
		}
		const rows = await this.query(`SELECT * FROM "${RAW_RP}"."${MEASUREMENT.stream}" ${where} GROUP BY "stream" ORDER BY time DESC LIMIT 1`, params);
		// The worker filter applies to each stream's latest profile, so a stream that moved away is not listed.
		return this.decodeAll(rows, decodeStreamProfile)
			.filter((p) => query.workerId === undefined || p.workerId === query.workerId)
			.sort(streamOrder);
	}

	async workerLoadHistory(from: number, to: number, workerId?: string): Promise<WorkerLoadSample[]> {
		return (await this.history(MEASUREMENT.load, from, to, workerId, decodeWorkerLoad)).sort(loadOrder);
	}

	async streamHistory(from: number, to: number, workerId?: string): Promise<StreamProfile[]> {
		return (await this.history(MEASUREMENT.stream, from, to, workerId, decodeStreamProfile)).sort(streamOrder);
	}

	async connectionHistory(from: number, to: number, workerId?: string): Promise<ConnectionProfile[]> {
		return (await this.history(MEASUREMENT.connection, from, to, workerId, decodeConnectionProfile)).sort(connectionOrder);
	}

	async actionHistory(from: number, to: number): Promise<AllocationAction[]> {
		return (await this.history(MEASUREMENT.action, from, to, undefined, decodeAction)).sort(actionOrder);
	}

	async similarityCandidates(query: SimilarityQuery): Promise<SimilarityCandidate[]> {
		assertLimit(query.limit);
		const params: Placeholders = { kind: query.kind };
		const conditions = ['"kind" = $kind'];
		if (query.entity !== undefined) {
			conditions.push('"entity" = $entity');
			params.entity = query.entity;
		}
		if (query.mimeType !== undefined) {
			conditions.push('"codec" = $codec');
			params.codec = query.mimeType;
		}
		if (query.resolutionBucket !== undefined) {
			conditions.push('"res" = $res');
			params.res = query.resolutionBucket;
		}
		if (query.since !== undefined) {
			conditions.push('time >= $since');
			params.since = iso(query.since);
		}
		// limit is a validated integer, not user text; InfluxQL takes no placeholder there.
		const rows = await this.query(
			`SELECT * FROM "${RAW_RP}"."${MEASUREMENT.stream}" WHERE ${conditions.join(' AND ')} ORDER BY time DESC LIMIT ${query.limit}`,
			params,
		);
		const profiles = this.decodeAll(rows, decodeStreamProfile).sort(newestStreamFirst);
		if (profiles.length === 0) return [];
		const workers = [...new Set(profiles.map((p) => p.workerId))];
		const loadParams: Placeholders = {
			from: iso(Math.min(...profiles.map((p) => p.ts)) - this.loadSkewMs),
			to: iso(Math.max(...profiles.map((p) => p.ts)) + this.loadSkewMs),
		};
		const workerClause = workers
			.map((w, i) => {
				loadParams[`w${i}`] = w;
				return `"worker" = $w${i}`;
			})
			.join(' OR ');
		const loadRows = await this.query(
			`SELECT * FROM "${RAW_RP}"."${MEASUREMENT.load}" WHERE time >= $from AND time <= $to AND (${workerClause})`,
			loadParams,
		);
		return attachNearestLoad(profiles, this.decodeAll(loadRows, decodeWorkerLoad), this.loadSkewMs);
	}

	flush(timeoutMs?: number): Promise<boolean> {
		return this.writer.flush(timeoutMs);
	}

	stats(): StoreStats {
		return this.writer.stats();
	}

	get inOutage(): boolean {
		return this.writer.inOutage;
	}

	async close(timeoutMs?: number): Promise<void> {
		if (this.schemaTimer) clearTimeout(this.schemaTimer);
		this.schemaTimer = undefined;
		await this.writer.close(timeoutMs);
		this.agent.destroy();
	}
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

/** Network-level failures (and node-influx's "no host available" after them), as opposed to errors the server answered with. */
function isUnreachable(err: unknown): boolean {
	const e = err as { code?: string; constructor?: { name?: string } } | undefined;
	// node-influx does not export its ServiceNotAvailableError (nor set its name), hence the constructor name.
	return (e?.code !== undefined && UNREACHABLE_CODES.has(e.code)) || e?.constructor?.name === 'ServiceNotAvailableError';
}

const HOURS_PER_UNIT: Record<string, number> = { s: 1 / 3600, m: 1 / 60, h: 1, d: 24, w: 168 };

/** InfluxDB's own default shard group duration for a retention duration (< 2d: 1h; ≤ 6 months: 1d; else 7d). */
export function shardDurationFor(duration: string): string {
	const hours = Number(duration.slice(0, -1)) * HOURS_PER_UNIT[duration.slice(-1)]!;
	if (hours < 48) return '1h';
	if (hours <= 24 * 182) return '1d';
	return '7d';
}

export function continuousQueryName(measurement: string): string {
	return `cq_${measurement}_1m`;
}
