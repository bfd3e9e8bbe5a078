/**
 * Points/s sustained into a throwaway influxd by InfluxStore, against a raw
 * line-protocol POST of the same points (same batch size, one request in flight,
 * a fresh database each round) measured in the same run:
 *   - raw: lines serialised before the clock starts (ratio_to_raw, the strict figure);
 *   - raw+encode: the bare loop serialises each batch itself (ratio_to_raw_encoding),
 *     i.e. what the store's machinery costs beyond producing line protocol at all.
 * Client and influxd CPU per point are reported for each: on a shared machine they
 * explain the ratios better than wall-clock rates alone.
 *
 *   npx tsx bench/store-write.ts [--points 200000] [--rounds 2] [--batch 5000]
 *
 * Last line: {"points_per_s": …, "ratio_to_raw": …, …}
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../plugin/log';
import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../plugin/profile/schema';
import { encodeConnectionProfile, encodeStreamProfile, encodeWorkerLoad } from '../plugin/store/influxSchema';
import { InfluxStore } from '../plugin/store/influxStore';
import { connectionProfile, streamProfile, workerLoad } from '../test/store/fixtures';
import { Influxd } from '../test/support/influxd';

const { values } = parseArgs({
	options: {
		points: { type: 'string', default: '200000' },
		rounds: { type: 'string', default: '3' },
		batch: { type: 'string', default: '5000' },
		streams: { type: 'string', default: '1000' },
	},
});
const totalPoints = Number(values.points);
const rounds = Number(values.rounds);
const batchSize = Number(values.batch);
const streams = Number(values.streams);
const WORKERS = 8;

/** One stats round per second: every stream's profile, a connection profile per 3 streams, every worker's load. */
interface Tick {
	streams: StreamProfile[];
	connections: ConnectionProfile[];
	loads: WorkerLoadSample[];
}

const TEMPLATE_TICKS = 5;

/**
 * The session as an iterable of ticks made on demand: a few template ticks are
 * re-stamped with each tick's time (one object per point, as a profiler hands over
 * fresh profiles), so the benchmark's own heap stays small and does not inflate the
 * garbage-collection cost of whichever side runs against it.
 */
function workload(): Iterable<Tick> {
	const start = Date.now() - 3_600_000;
	const templates: Tick[] = Array.from({ length: TEMPLATE_TICKS }, (_, t) => {
		const ts = start + t * 1000;
		return {
			streams: Array.from({ length: streams }, (_, i) => streamProfile(i, ts, `w${i % WORKERS}`)),
			connections: Array.from({ length: Math.ceil(streams / 3) }, (_, i) => connectionProfile(i * 3, ts)),
			loads: Array.from({ length: WORKERS }, (_, w) => workerLoad(w, ts)),
		};
	});
	const perTick = templates[0]!.streams.length + templates[0]!.connections.length + templates[0]!.loads.length;
	const tickCount = Math.ceil(totalPoints / perTick);
	return {
		*[Symbol.iterator]() {
			for (let t = 0; t < tickCount; t++) {
				const template = templates[t % TEMPLATE_TICKS]!;
				const ts = start + t * 1000;
				yield {
					streams: template.streams.map((p) => ({ ...p, ts })),
					connections: template.connections.map((p) => ({ ...p, ts })),
					loads: template.loads.map((s) => ({ ...s, ts })),
				};
			}
		},
	};
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(url: string, body: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const req = http.request(url, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
			let text = '';
			res.on('data', (c: Buffer) => (text += c.toString()));
			res.on('error', reject);
			res.on('end', () => (res.statusCode === 204 || res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
		});
		req.on('error', reject);
		req.end(body);
	});
}

function encodeTick(t: Tick, lines: string[]): void {
	for (const p of t.streams) lines.push(encodeStreamProfile(p));
	for (const p of t.connections) lines.push(encodeConnectionProfile(p));
	for (const s of t.loads) lines.push(encodeWorkerLoad(s));
}

interface RoundResult {
	pps: number;
	/** Client CPU (user + system) per point, µs. */
	cpuUsPerPoint: number;
	/** influxd's CPU per point, µs (from /proc; 10 ms resolution). */
	serverCpuUsPerPoint: number;
}

let influxdPid = 0;

/** influxd's user + system CPU so far, µs. */
function serverCpuUs(): number {
	const fields = readFileSync(`/proc/${influxdPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
	// utime and stime are fields 14 and 15 of stat, i.e. 12 and 13 after "pid (comm) ".
	return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

interface Mark {
	started: number;
	cpu: NodeJS.CpuUsage;
	server: number;
}

function mark(): Mark {
	return { started: performance.now(), cpu: process.cpuUsage(), server: serverCpuUs() };
}

function measure(points: number, from: Mark): RoundResult {
	const used = process.cpuUsage(from.cpu);
	return {
		pps: points / ((performance.now() - from.started) / 1000),
		cpuUsPerPoint: (used.user + used.system) / points,
		serverCpuUsPerPoint: (serverCpuUs() - from.server) / points,
	};
}

async function rawRound(influxd: Influxd, db: string, ticks: Iterable<Tick>, encodeInside: boolean): Promise<RoundResult> {
	await post(`${influxd.url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}" WITH DURATION 24h NAME "raw"`)}`, '');
	const url = `${influxd.url}/write?db=${db}&rp=raw&precision=ms`;
	const pre: string[] = [];
	if (!encodeInside) for (const t of ticks) encodeTick(t, pre);
	const from = mark();
	let points = 0;
	if (encodeInside) {
		let pending: string[] = [];
		for (const t of ticks) {
			encodeTick(t, pending);
			while (pending.length >= batchSize) {
				await post(url, pending.slice(0, batchSize).join('\n'));
				points += batchSize;
				pending = pending.slice(batchSize);
			}
		}
		if (pending.length > 0) await post(url, pending.join('\n'));
		points += pending.length;
	} else {
		for (let i = 0; i < pre.length; i += batchSize) await post(url, pre.slice(i, i + batchSize).join('\n'));
		points = pre.length;
	}
	return measure(points, from);
}

async function storeRound(influxd: Influxd, db: string, ticks: Iterable<Tick>): Promise<RoundResult> {
	const store = await InfluxStore.open({
		url: influxd.url,
		version: 1,
		tlsRejectUnauthorized: true,
		database: db,
		rawRetention: '24h',
		downsampledRetention: '30d',
		batchSize,
		flushIntervalMs: 1000,
		maxBufferedPoints: 500_000,
		maxBufferedBytes: 128 * 1024 * 1024,
		logger: createLogger('warn'),
	});
	let points = 0;
	const from = mark();
	// Encoding is the store's work, so it is inside the timed region (the baseline gets it for free).
	for (const t of ticks) {
		await store.writeStreamProfiles(t.streams);
		await store.writeConnectionProfiles(t.connections);
		await store.writeWorkerLoad(t.loads);
		points += t.streams.length + t.connections.length + t.loads.length;
	}
	const complete = await store.flush(120_000);
	const result = measure(points, from);
	const { writtenPoints, droppedPoints, rejectedPoints } = store.stats();
	await store.close();
	if (!complete || droppedPoints > 0 || rejectedPoints > 0 || writtenPoints !== points) {
		throw new Error(`store round incomplete: written ${writtenPoints}/${points}, dropped ${droppedPoints}, rejected ${rejectedPoints}`);
	}
	return result;
}

const SIDES = ['raw', 'raw+encode', 'store'] as const;
type Side = (typeof SIDES)[number];

async function main(): Promise<void> {
	const ticks = workload();
	const influxd = await Influxd.create();
	influxdPid = influxd.pid!;
	const results: Record<Side, RoundResult[]> = { raw: [], 'raw+encode': [], store: [] };
	try {
		for (let r = 0; r < rounds; r++) {
			// Rotate which side goes first so growing server state does not favour one.
			const order = SIDES.map((_, i) => SIDES[(i + r) % SIDES.length]!);
			for (const side of order) {
				const db = `bench_${side.replace(/\W/g, '_')}_${r}`;
				const result = side === 'store' ? await storeRound(influxd, db, ticks) : await rawRound(influxd, db, ticks, side === 'raw+encode');
				results[side].push(result);
				process.stdout.write(`round ${r + 1} ${side}: ${Math.round(result.pps)} points/s, client CPU ${result.cpuUsPerPoint.toFixed(1)} µs/point, influxd CPU ${result.serverCpuUsPerPoint.toFixed(1)} µs/point\n`);
			}
		}
	} finally {
		agent.destroy();
		await influxd.destroy();
	}
	const median = (xs: number[]): number => {
		const s = [...xs].sort((a, b) => a - b);
		return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
	};
	const pps = (side: Side): number => median(results[side].map((x) => x.pps));
	const cpu = (side: Side): number => Number(median(results[side].map((x) => x.cpuUsPerPoint)).toFixed(2));
	const serverCpu = (side: Side): number => Number(median(results[side].map((x) => x.serverCpuUsPerPoint)).toFixed(2));
	process.stdout.write(
		`${JSON.stringify({
			points_per_s: Math.round(pps('store')),
			ratio_to_raw: Number((pps('store') / pps('raw')).toFixed(3)),
			ratio_to_raw_encoding: Number((pps('store') / pps('raw+encode')).toFixed(3)),
			raw_points_per_s: Math.round(pps('raw')),
			raw_encoding_points_per_s: Math.round(pps('raw+encode')),
			client_cpu_us_per_point: { store: cpu('store'), raw: cpu('raw'), raw_encoding: cpu('raw+encode') },
			influxd_cpu_us_per_point: { store: serverCpu('store'), raw: serverCpu('raw'), raw_encoding: serverCpu('raw+encode') },
			load_average_1m: Number(loadavg()[0]!.toFixed(2)),
			points: totalPoints,
			batch_size: batchSize,
			rounds,
		})}\n`,
	);
}

main().catch((err: unknown) => {
	process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
	process.exit(1);
});
