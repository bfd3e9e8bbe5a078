/**
 * Compacts recorded sessions for committing: the same dataset format (training/dataset.ts),
 * read by the same code, at a fraction of the size.
 *
 *   npx tsx training/compact.ts --from training/data/loso --to models/default/sessions [--ids a,b] [--append]
 *
 * `--append` keeps the sessions already indexed in `--to` (a compacted id replaces its old
 * entry), e.g. to add the browser family beside the replayed ones.
 *
 * - keeps worker load samples and stream profiles (what the predictors read); connection
 *   profiles and actions are dropped;
 * - ids (stream, transport, router, producer) become short per-file aliases, consistently
 *   within the file (a consumer's producerId still names its producer);
 * - non-integer numbers keep 4 significant digits (far below the measurement noise of
 *   CPU samples and of 1 s rate windows); timestamps and integers are exact;
 * - gzip level 9.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { emptyCounts } from './dataset';
import { readSessionsIndex, SESSIONS_INDEX, type SessionsIndex } from './sessions';

const ID_KEYS = new Set(['streamId', 'transportId', 'routerId', 'producerId']);
/** Exact: times, integer counters and SSRCs. */
const EXACT_KEYS = new Set(['ts', 'from', 'to', 'ssrc', 'pid']);

function round(v: number): number {
	if (Number.isInteger(v) || !Number.isFinite(v) || v === 0) return v;
	return Number(v.toPrecision(4));
}

function compactValue(key: string, v: unknown, alias: (id: string) => string): unknown {
	if (typeof v === 'string' && ID_KEYS.has(key)) return alias(v);
	if (typeof v === 'number') return EXACT_KEYS.has(key) ? v : round(v);
	if (Array.isArray(v)) return v.map((x) => compactValue(key, x, alias));
	if (v !== null && typeof v === 'object') {
		const out: Record<string, unknown> = {};
		for (const [k, x] of Object.entries(v)) out[k] = compactValue(k, x, alias);
		return out;
	}
	return v;
}

async function* lines(path: string): AsyncGenerator<string> {
	const input = path.endsWith('.gz') ? createReadStream(path).pipe(createGunzip()) : createReadStream(path);
	for await (const line of createInterface({ input, crlfDelay: Infinity })) if (line !== '') yield line;
}

/** Compacts one dataset file into `out` (gzipped). */
export async function compactDataset(path: string, out: string): Promise<void> {
	const ids = new Map<string, string>();
	const alias = (id: string): string => {
		let a = ids.get(id);
		if (!a) ids.set(id, (a = ids.size.toString(36)));
		return a;
	};
	const counts = emptyCounts();
	const kept: string[] = [];
	for await (const line of lines(path)) {
		const json = JSON.parse(line) as { type?: string; record?: unknown; counts?: unknown };
		if (json.type === undefined) {
			kept.push(line);
			continue;
		}
		if (json.type === 'end') {
			kept.push(JSON.stringify({ ...json, counts }));
			continue;
		}
		if (json.type !== 'worker_load' && json.type !== 'stream_profile') continue;
		counts[json.type]++;
		kept.push(JSON.stringify({ type: json.type, record: compactValue('record', json.record, alias) }));
	}
	await pipeline(Readable.from(kept.map((l) => `${l}\n`)), createGzip({ level: 9 }), createWriteStream(out));
}

async function main(argv: string[]): Promise<void> {
	const { values } = parseArgs({ args: argv, options: { from: { type: 'string' }, to: { type: 'string' }, ids: { type: 'string' }, append: { type: 'boolean', default: false } } });
	if (!values.from || !values.to) throw new Error('usage: compact.ts --from DIR --to DIR [--ids a,b] [--append]');
	const from = resolve(values.from);
	const to = resolve(values.to);
	const index = await readSessionsIndex(from);
	const wanted = values.ids ? new Set(values.ids.split(',')) : undefined;
	await mkdir(to, { recursive: true });
	const sessions: SessionsIndex['sessions'] = [];
	for (const entry of index.sessions) {
		if (wanted && !wanted.has(entry.id)) continue;
		const file = `${entry.id}.jsonl.gz`;
		await compactDataset(join(from, entry.file), join(to, file));
		sessions.push({ ...entry, file, counts: { ...entry.counts, connection_profile: 0, action: 0 } });
	}
	const fresh = new Set(sessions.map((s) => s.id));
	// Appending keeps the target's header (its creation time, store, host) and its other sessions.
	const target = values.append && existsSync(join(to, SESSIONS_INDEX)) ? await readSessionsIndex(to) : undefined;
	const out: SessionsIndex = { ...(target ?? index), sessions: [...(target?.sessions.filter((s) => !fresh.has(s.id)) ?? []), ...sessions] };
	await writeFile(join(to, SESSIONS_INDEX), `${JSON.stringify(out, null, '\t')}\n`);
	process.stdout.write(`${JSON.stringify({ to, sessions: sessions.length })}\n`);
}

if (require.main === module) {
	main(process.argv.slice(2)).catch((err: unknown) => {
		process.stderr.write(`compact failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
		process.exit(1);
	});
}

