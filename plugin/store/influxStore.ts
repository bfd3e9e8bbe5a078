import type http from 'node:http';
import type { InfluxOptions } from '../config';
import type { Logger } from '../log';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../profile/schema';
import { backoffDelay, BatchedWriter, PermanentWriteError, type RetryOptions } from './batchedWriter';
import {
	authorizationHeader,
	InfluxHttpError,
	isUnreachable,
	keepAliveAgent,
	nodeInfluxClient,
	request,
	tlsOptions,
	V1CompatClient,
	type InfluxQlClient,
	type Placeholders,
} from './influxClient';
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
import { quoteIdent, rowsOf, type Row } from './lineProtocol';
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
	/** false: only connect, check nothing (readers such as the training export must not alter retention or queries). Default true. */
	ensureSchema?: boolean;
	/** Each batch InfluxDB confirmed, as line protocol, in confirmation order. */
	onWritten?: (lines: readonly string[]) => void;
}

/**
 * InfluxDB refused a schema statement (or the schema an external setup must provide is
 * missing). Retrying cannot help; `hint` says what the operator should do.
 */
export class InfluxSchemaError extends Error {
	constructor(
		message: string,
		/** What to change: a setting, a grant, or the buckets/databases to create. */
		readonly hint: string,
		/** The statement InfluxDB refused, when one was. */
		readonly statement?: string,
	) {
		super(`${message}. ${hint}`);
		this.name = 'InfluxSchemaError';
	}
}

/** Where the store's schema stands: created or checked, waiting for an unreachable server, or refused (reported once, not retried). */
export type InfluxSchemaState = 'ready' | 'waiting' | 'rejected';

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * ProfileStore on InfluxDB 1.x, 2.x or 3.x. In `managed` schema mode (1.x) the
 * database, retention policies and downsampling are created on open (SCHEMA.md); in
 * `external` mode nothing is created and what the store needs is checked. Writes go
 * through a BatchedWriter as pre-serialised line protocol POSTed to /write on a
 * keep-alive connection; queries are InfluxQL with bound parameters (inlined as
 * escaped literals on 3.x, whose /query binds none).
 */
export class InfluxStore implements ProfileStore {
	private readonly writer: BatchedWriter;
	private readonly agent: http.Agent;
	private readonly writeUrl: URL;
	private readonly authHeader: string | undefined;
	private readonly loadSkewMs: number;
	private readonly requestTimeoutMs: number;
	private encodeFailuresLogged = false;
	private state: InfluxSchemaState = 'ready';
	private rejection: InfluxSchemaError | undefined;

	private constructor(
		private readonly client: InfluxQlClient,
		agent: http.Agent,
		private readonly options: InfluxStoreOptions,
	) {
		this.agent = agent;
		this.writeUrl = new URL('/write', options.url);
		this.writeUrl.search = new URLSearchParams({ db: options.database, rp: RAW_RP, precision: 'ms' }).toString();
		this.authHeader = authorizationHeader(options);
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

	/**
	 * Connects and sets up or checks the schema (by schema mode), then returns the store.
	 * A server that is down is waited for in the background (points are buffered); one
	 * that refuses a schema statement rejects with an InfluxSchemaError naming what to do.
	 */
	static async open(options: InfluxStoreOptions): Promise<InfluxStore> {
		for (const d of [options.rawRetention, options.downsampledRetention, options.cqResample?.every, options.cqResample?.for]) {
			if (d !== undefined && !DURATION.test(d)) throw new RangeError(`not an InfluxDB duration: ${d}`);
		}
		const base = new URL(options.url);
		const tls = tlsOptions(options);
		const timeoutMs = options.requestTimeoutMs ?? 10_000;
		const agent = keepAliveAgent(base, tls);
		const client =
			options.version === 1
				? nodeInfluxClient(options, tls, timeoutMs)
				: new V1CompatClient(base, options.database, options.version, authorizationHeader(options), agent, timeoutMs);
		const store = new InfluxStore(client, agent, options);
		if (options.ensureSchema ?? true) {
			try {
				await store.ensureSchema();
			} catch (err) {
				// A server that is down at start must not stop the SFU or lose profiles: buffer
				// (within the bounds) and set up the schema once it answers. A refusal is a
				// configuration mistake: it surfaces now, once, with what to do.
				if (!isUnreachable(err)) {
					agent.destroy();
					throw err;
				}
				store.ensureSchemaLater(err as Error);
			}
		}
		return store;
	}

	private schemaTimer: NodeJS.Timeout | undefined;

	private ensureSchemaLater(first: Error): void {
		this.writer.pause();
		this.state = 'waiting';
		this.options.logger.warn(
			{ err: first.message },
			'influx store: InfluxDB unreachable at start; buffering and setting up the schema once it answers (logged once)',
		);
		const retry = { initialMs: 250, maxMs: 10_000, jitter: 0.5, ...this.options.retry };
		let attempt = 0;
		const tryAgain = (): void => {
			this.schemaTimer = setTimeout(() => {
				this.ensureSchema().then(
					() => {
						this.schemaTimer = undefined;
						this.state = 'ready';
						this.options.logger.info({ attempts: attempt }, 'influx store: schema ready; writing the buffered points');
						this.writer.resume();
					},
					(err: unknown) => {
						if (isUnreachable(err)) return tryAgain();
						// Refused: retrying cannot help. Points stay buffered (within the bounds, oldest
						// dropped and counted) until the operator fixes the setup and restarts.
						this.schemaTimer = undefined;
						this.state = 'rejected';
						this.rejection = err instanceof InfluxSchemaError ? err : new InfluxSchemaError((err as Error).message, GENERIC_HINT);
						this.options.logger.error(
							{ err: this.rejection.message, statement: this.rejection.statement },
							'influx store: InfluxDB refused the schema setup; not retried, points stay buffered until restart',
						);
					},
				);
			}, backoffDelay(++attempt, retry, Math.random));
		};
		tryAgain();
	}

	/** True until the schema exists when the server was down at open(). */
	get waitingForSchema(): boolean {
		return this.state === 'waiting';
	}

	/** Whether the schema is set up, still waited for, or was refused (then `schemaRejection` says what to do). */
	get schemaState(): InfluxSchemaState {
		return this.state;
	}

	get schemaRejection(): InfluxSchemaError | undefined {
		return this.rejection;
	}

	private get schemaMode(): 'managed' | 'external' {
		return this.options.schema ?? (this.options.version === 1 ? 'managed' : 'external');
	}

	private ensureSchema(): Promise<void> {
		return this.schemaMode === 'managed' ? this.createSchema() : this.checkExternalSchema();
	}

	/** 1.x, managed: database, both retention policies (updated to the options) and the downsampling continuous queries. */
	private async createSchema(): Promise<void> {
		const { database, rawRetention, downsampledRetention } = this.options;
		const db = quoteIdent(database);
		await this.admin(`CREATE DATABASE ${db}`);
		const existing = new Set((await this.admin(`SHOW RETENTION POLICIES ON ${db}`)).map((r) => String(r.name)));
		const policies = [
			{ name: RAW_RP, duration: rawRetention, isDefault: true },
			{ name: DOWNSAMPLED_RP, duration: downsampledRetention, isDefault: false },
		];
		for (const rp of policies) {
			// The shard duration is stated so that shortening a policy later is never refused for it.
			const verb = existing.has(rp.name) ? 'ALTER' : 'CREATE';
			await this.admin(
				`${verb} RETENTION POLICY ${quoteIdent(rp.name)} ON ${db} DURATION ${rp.duration} REPLICATION 1 ` +
					`SHARD DURATION ${shardDurationFor(rp.duration)}${rp.isDefault ? ' DEFAULT' : ''}`,
			);
		}
		const resample = this.options.cqResample ?? { for: '5m' };
		const resampleClause =
			resample.every || resample.for ? ` RESAMPLE${resample.every ? ` EVERY ${resample.every}` : ''}${resample.for ? ` FOR ${resample.for}` : ''}` : '';
		// A continuous query cannot be altered: recreate so configuration changes apply.
		const cqs = new Set(await this.continuousQueries());
		for (const m of DOWNSAMPLED_MEASUREMENTS) {
			const name = quoteIdent(continuousQueryName(m));
			if (cqs.has(continuousQueryName(m))) await this.admin(`DROP CONTINUOUS QUERY ${name} ON ${db}`);
			await this.admin(
				`CREATE CONTINUOUS QUERY ${name} ON ${db}${resampleClause} BEGIN ` +
					`SELECT mean(*) INTO ${db}."${DOWNSAMPLED_RP}"."${m}" FROM ${db}."${RAW_RP}"."${m}" ` +
					`GROUP BY time(1m), ${DOWNSAMPLING[m].map((t) => `"${t}"`).join(', ')} END`,
			);
		}
	}

	/**
	 * External schema: nothing is created; what writes and queries need is checked. 1.x and
	 * 2.x list the database's retention policies (2.x: its DBRP mappings); 3.x creates a
	 * database on first write, so a missing one is only warned about (it would have no
	 * retention period).
	 */
	private async checkExternalSchema(): Promise<void> {
		const { database, version, rawRetention, downsampledRetention } = this.options;
		if (version === 3) {
			const names = new Set((await this.admin('SHOW DATABASES')).map((r) => String(r.name)));
			for (const [rp, retention] of [[RAW_RP, rawRetention], [DOWNSAMPLED_RP, downsampledRetention]] as const) {
				if (!names.has(`${database}/${rp}`)) {
					this.options.logger.warn(
						{ database: `${database}/${rp}` },
						`influx store: database ${database}/${rp} does not exist; the first write creates it without a retention period. ` +
							`Create it first: influxdb3 create database --retention-period ${retention} ${database}/${rp}`,
					);
				}
			}
			return;
		}
		const statement = `SHOW RETENTION POLICIES ON ${quoteIdent(database)}`;
		const missing = (): InfluxSchemaError =>
			new InfluxSchemaError(
				`InfluxDB has no retention policy "${RAW_RP}" for database "${database}" (INFLUX_SCHEMA=external)`,
				version === 2
					? `Create the bucket "${database}/${RAW_RP}" with retention ${rawRetention} (influx bucket create -n ${database}/${RAW_RP} -r ${rawRetention}); ` +
							`its DBRP mapping db=${database} rp=${RAW_RP} comes with it. Or map an existing bucket: influx v1 dbrp create --db ${database} --rp ${RAW_RP} --bucket-id <id> --default`
					: `Create it: CREATE DATABASE "${database}"; CREATE RETENTION POLICY "${RAW_RP}" ON "${database}" DURATION ${rawRetention} REPLICATION 1 DEFAULT ` +
							'(or set INFLUX_SCHEMA=managed with an admin user)',
				statement,
			);
		let policies: Set<string>;
		try {
			policies = new Set((await this.admin(statement)).map((r) => String(r.name)));
		} catch (err) {
			if (err instanceof InfluxSchemaError && /database not found/i.test(err.message)) throw missing();
			throw err;
		}
		if (!policies.has(RAW_RP)) throw missing();
		if (!policies.has(DOWNSAMPLED_RP)) {
			this.options.logger.warn(
				{ database },
				`influx store: no "${DOWNSAMPLED_RP}" retention policy/bucket: 1-minute means are not kept (Foresight itself reads only "${RAW_RP}"; SCHEMA.md shows the downsampling setup)`,
			);
		}
	}

	/** A schema statement (identifiers quoted, durations validated in open()); a refusal becomes an InfluxSchemaError with what to do. */
	private async admin(statement: string): Promise<Row[]> {
		try {
			return rowsOf(await this.client.query(statement, { post: !statement.startsWith('SHOW') }));
		} catch (err) {
			if (isUnreachable(err)) throw err;
			throw new InfluxSchemaError(`InfluxDB refused \`${statement}\`: ${(err as Error).message}`, schemaHint(err, this.options), statement);
		}
	}

	/** Names of the continuous queries on this store's database (1.x; SHOW lists every database's). */
	async continuousQueries(): Promise<string[]> {
		const raw = (await this.client.query('SHOW CONTINUOUS QUERIES')) as {
			results?: { series?: { name: string; values?: unknown[][] }[] }[];
		};
		const series = raw.results?.[0]?.series?.find((s) => s.name === this.options.database);
		return (series?.values ?? []).map((v) => String(v[0]));
	}

	private post(body: string): Promise<void> {
		const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain; charset=utf-8' };
		if (this.authHeader) headers.authorization = this.authHeader;
		return request(this.writeUrl, { method: 'POST', agent: this.agent, headers, body, timeoutMs: this.requestTimeoutMs, maxBody: 2000 }).then(
			() => undefined,
			(err: unknown) => {
				// 4xx other than 408/429: the batch itself is wrong (bad line, field type conflict, auth); resending cannot help.
				if (err instanceof InfluxHttpError && !isUnreachable(err) && err.status >= 400 && err.status < 500) throw new PermanentWriteError(err.message);
				throw err;
			},
		);
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
		return rowsOf(await this.client.query(q, { placeholders }));
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

const GENERIC_HINT =
	'Fix the setting or grant it names; or create the schema yourself and set INFLUX_SCHEMA=external (plugin/store/SCHEMA.md)';

/** What to do about a refused schema statement, from its status and message. */
export function schemaHint(err: unknown, options: Pick<InfluxOptions, 'version' | 'token'>): string {
	const message = (err as Error | undefined)?.message ?? '';
	const code = (err as { code?: unknown } | undefined)?.code;
	if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/.test(code)) {
		return `TLS: the server's certificate was not accepted (${code}). Trust its CA with INFLUX_TLS_CA_FILE (or, for testing only, INFLUX_TLS_REJECT_UNAUTHORIZED=false)`;
	}
	const status = err instanceof InfluxHttpError ? err.status : (err as { res?: { statusCode?: number } } | undefined)?.res?.statusCode;
	if (status === 401 || status === 403 || /unauthori[sz]ed|authenticat|authoriz|privilege|permission|forbidden/i.test(message)) {
		return options.version === 1
			? 'Check INFLUX_USERNAME/INFLUX_PASSWORD; managed schema needs an admin user. Without one, let your DBA create the schema (SCHEMA.md) and set INFLUX_SCHEMA=external'
			: `Check INFLUX_TOKEN${options.token === undefined ? ' (none is set)' : ''}: it needs read and write access to the ${options.version === 2 ? 'buckets' : 'databases'} of SCHEMA.md`;
	}
	if (/not implemented|not supported|unsupported/i.test(message) && options.version === 1) {
		return 'This looks like InfluxDB 2.x or 3.x: set INFLUX_VERSION=2 or 3 (external schema, INFLUX_TOKEN) and create the buckets or databases as in SCHEMA.md';
	}
	return GENERIC_HINT;
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
