import type http from 'node:http';
import type { InfluxOptions } from '../config';
import type { Logger } from '../log';
import { authorizationHeader, keepAliveAgent, request, tlsOptions } from '../store/influxClient';
import { RAW_RP } from '../store/influxStore';
import { escapeTag, quoteIdent, quoteString } from '../store/lineProtocol';
import { hostReportSchema, reservationSchema, type ClusterChannel, type ClusterState, type HostReport, type Reservation } from './types';

export const CLUSTER_MEASUREMENTS = { host: 'cluster_host', reservation: 'cluster_reservation' } as const;

/**
 * Reservations live at most this long (the option's upper bound), so a read never has to
 * look further back for one that is still open.
 */
export const MAX_RESERVATION_TTL_MS = 60_000;

/** One request to the shared store: well under the report interval's multiple that marks a host silent. */
const REQUEST_TIMEOUT_MS = 2000;

/**
 * The shared view in the InfluxDB every host already writes its profiles to. Reports and
 * reservations are written straight to /write (not through the profile store's outage
 * buffer: only the latest state matters, and a late report would only mislead), into the
 * raw retention policy the store sets up; each report is one JSON string field, parsed
 * back with zod since any host (or anything else with write access) may have written it.
 */
export class InfluxClusterChannel implements ClusterChannel {
	private readonly agent: http.Agent;
	private readonly writeUrl: URL;
	private readonly queryUrl: URL;
	private readonly headers: http.OutgoingHttpHeaders;
	private malformedLogged = false;
	/** Last reservation time per target: two reservations of one host on one target must not share a timestamp (the second would overwrite the first). */
	private readonly lastReservationTs = new Map<string, number>();

	constructor(
		private readonly options: InfluxOptions,
		private readonly log: Logger,
	) {
		const base = new URL(options.url);
		this.agent = keepAliveAgent(base, tlsOptions(options));
		this.writeUrl = new URL('/write', base);
		this.writeUrl.search = new URLSearchParams({ db: options.database, rp: RAW_RP, precision: 'ms' }).toString();
		this.queryUrl = new URL('/query', base);
		const auth = authorizationHeader(options);
		this.headers = auth ? { authorization: auth } : {};
	}

	private async write(line: string): Promise<void> {
		await request(this.writeUrl, {
			method: 'POST',
			agent: this.agent,
			headers: { ...this.headers, 'content-type': 'text/plain; charset=utf-8' },
			body: line,
			timeoutMs: REQUEST_TIMEOUT_MS,
			maxBody: 2000,
		});
	}

	publish(report: HostReport): Promise<void> {
		const line = `${CLUSTER_MEASUREMENTS.host},host=${escapeTag(report.hostId)} report=${quoteString(JSON.stringify(report))},seq=${report.seq}i ${Math.round(report.ts)}`;
		return this.write(line);
	}

	reserve(reservation: Reservation): Promise<void> {
		const key = reservation.targetHost;
		const ts = Math.max(Math.round(reservation.createdAt), (this.lastReservationTs.get(key) ?? 0) + 1);
		this.lastReservationTs.set(key, ts);
		const line = `${CLUSTER_MEASUREMENTS.reservation},target=${escapeTag(reservation.targetHost)},from=${escapeTag(reservation.fromHost)} r=${quoteString(JSON.stringify(reservation))} ${ts}`;
		return this.write(line);
	}

	private async query(q: string): Promise<Array<{ tags?: Record<string, string>; values?: unknown[][]; columns?: string[] }>> {
		const url = new URL(this.queryUrl);
		url.search = new URLSearchParams({ db: this.options.database, q, epoch: 'ms' }).toString();
		const text = await request(url, { method: 'GET', agent: this.agent, headers: { ...this.headers, accept: 'application/json' }, timeoutMs: REQUEST_TIMEOUT_MS });
		const body = JSON.parse(text) as { results?: Array<{ series?: Array<{ tags?: Record<string, string>; values?: unknown[][]; columns?: string[] }>; error?: string }> };
		const result = body.results?.[0];
		if (result?.error) {
			// Nothing written yet (a fresh database) is an empty view, not a failure.
			if (/measurement not found|database not found|retention policy not found/i.test(result.error)) return [];
			throw new Error(`InfluxDB refused the cluster query: ${result.error}`);
		}
		return result?.series ?? [];
	}

	private parse<T>(raw: unknown, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): T | undefined {
		let value: unknown;
		try {
			value = typeof raw === 'string' ? JSON.parse(raw) : undefined;
		} catch {
			value = undefined;
		}
		const parsed = schema.safeParse(value);
		if (parsed.success) return parsed.data;
		if (!this.malformedLogged) {
			this.malformedLogged = true;
			this.log.warn('cluster view: a malformed record in the shared store was skipped (logged once)');
		}
		return undefined;
	}

	async read(sinceMs: number, nowMs: number): Promise<ClusterState> {
		const rp = `${quoteIdent(this.options.database)}.${quoteIdent(RAW_RP)}`;
		const [hosts, reservations] = await Promise.all([
			this.query(`SELECT last("report") AS "report" FROM ${rp}."${CLUSTER_MEASUREMENTS.host}" WHERE time >= ${Math.floor(sinceMs)}ms GROUP BY "host"`),
			this.query(`SELECT "r" FROM ${rp}."${CLUSTER_MEASUREMENTS.reservation}" WHERE time >= ${Math.floor(nowMs - MAX_RESERVATION_TTL_MS)}ms`),
		]);
		const reports: HostReport[] = [];
		for (const s of hosts) {
			const column = s.columns?.indexOf('report') ?? -1;
			const report = column >= 0 ? this.parse(s.values?.[0]?.[column], hostReportSchema) : undefined;
			if (report) reports.push(report);
		}
		const open: Reservation[] = [];
		for (const s of reservations) {
			const column = s.columns?.indexOf('r') ?? -1;
			for (const row of s.values ?? []) {
				const r = column >= 0 ? this.parse(row[column], reservationSchema) : undefined;
				if (r && r.expiresAt > nowMs) open.push(r);
			}
		}
		return { reports, reservations: open };
	}

	async close(): Promise<void> {
		this.agent.destroy();
	}
}
