const TAG_SPECIAL = /[,= \n]/;
const TAG_ESCAPED = /[,= ]/g;
const MEASUREMENT_ESCAPED = /[, ]/g;
const STRING_SPECIAL = /["\\]/g;
const LITERAL_SPECIAL = /['\\]/g;

/**
 * Tag values (and keys): commas, equals signs and spaces backslash-escaped (line
 * protocol's rule), behind a cheap test since ids rarely need it. InfluxDB 1.x cannot
 * represent a tag value ending in a backslash (it escapes the separator after it and
 * the whole batch fails to parse), so such a value is refused here, costing one record
 * instead of a batch.
 */
export function escapeTag(value: string): string {
	if (value.endsWith('\\')) throw new RangeError(`tag value ends with a backslash, which line protocol cannot carry: ${JSON.stringify(value)}`);
	if (!TAG_SPECIAL.test(value)) return value;
	return value.replace(/\n/g, ' ').replace(TAG_ESCAPED, '\\$&');
}

/** An InfluxQL string literal, single-quoted. */
export function quoteStringLiteral(value: string): string {
	return `'${value.replace(LITERAL_SPECIAL, '\\$&')}'`;
}

/** A quoted string field value; one native replace instead of a per-match loop (details are long JSON). */
export function quoteString(value: string): string {
	return `"${value.replace(STRING_SPECIAL, '\\$&')}"`;
}

/** An InfluxQL identifier (database, retention policy, query name): the same double-quoting rule. */
export const quoteIdent = quoteString;

const escapedMeasurements = new Map<string, string>();

/**
 * Builds one InfluxDB line-protocol line at millisecond precision. Serialising
 * here (rather than handing IPoint objects to node-influx) keeps batches as
 * ready-to-send strings whose size the writer can bound, and is the cheapest path
 * (no intermediate objects), which matters because encoding shares the CPU with
 * the server it feeds.
 *
 * Tags with an empty/undefined value and fields that are undefined or non-finite
 * are left out (line protocol has no null). Callers add tags, then fields, in key
 * order (InfluxDB's fast path), with keys free of special characters.
 */
export class LineBuilder {
	private line: string;
	private fieldCount = 0;

	constructor(private readonly measurement: string) {
		let escaped = escapedMeasurements.get(measurement);
		if (escaped === undefined) escapedMeasurements.set(measurement, (escaped = measurement.replace(MEASUREMENT_ESCAPED, '\\$&')));
		this.line = escaped;
	}

	tag(key: string, value: string | undefined): this {
		if (value !== undefined && value !== '') this.line += `,${key}=${escapeTag(value)}`;
		return this;
	}

	/** Every number is written as a float (no "i" suffix), so a field never changes type between points. */
	num(key: string, value: number | undefined): this {
		if (value !== undefined && Number.isFinite(value)) this.line += `${this.fieldCount++ === 0 ? ' ' : ','}${key}=${value}`;
		return this;
	}

	str(key: string, value: string | undefined): this {
		if (value !== undefined) this.line += `${this.fieldCount++ === 0 ? ' ' : ','}${key}=${quoteString(value)}`;
		return this;
	}

	end(tsMs: number): string {
		if (this.fieldCount === 0) throw new Error(`a ${this.measurement} point needs at least one field`);
		const line = `${this.line} ${Math.round(tsMs)}`;
		// Built by appending, a line is a rope of ~40 pieces; reading a character makes V8
		// flatten it now, so only one flat string outlives the young generation while the
		// line waits in a batch (copying the ropes through scavenges was most of the store's GC).
		line.charCodeAt(0);
		return line;
	}
}

export type Row = Record<string, string | number | boolean | null>;

interface RawSeries {
	name?: string;
	tags?: Record<string, string>;
	columns: string[];
	values?: unknown[][];
}
interface RawResult {
	series?: RawSeries[];
	error?: string;
}

/**
 * Flattens the JSON of /query (epoch=ms) into rows, GROUP BY tags merged in.
 * Throws on a statement error so a bad query is never mistaken for "no data".
 */
export function rowsOf(raw: unknown): Row[] {
	const results = (raw as { results?: RawResult[]; error?: string }) ?? {};
	if (results.error) throw new Error(`InfluxDB: ${results.error}`);
	const rows: Row[] = [];
	for (const result of results.results ?? []) {
		if (result.error) throw new Error(`InfluxDB: ${result.error}`);
		for (const series of result.series ?? []) {
			for (const values of series.values ?? []) {
				const row: Row = { ...series.tags };
				series.columns.forEach((column, i) => {
					const v = values[i];
					if (v !== null || !(column in row)) row[column] = v as Row[string];
				});
				rows.push(row);
			}
		}
	}
	return rows;
}
