import pino from 'pino';
import { createLogger } from '../../plugin/log';
import { parseOptions } from '../../plugin/config';
import { encodeStreamProfile } from '../../plugin/store/influxSchema';
import { InfluxStore, type InfluxStoreOptions } from '../../plugin/store/influxStore';
import type { StreamProfile } from '../../plugin/profile/schema';
import { Influxd } from '../support/influxd';
import { streamProfile } from './fixtures';

/**
 * The database goes away by PID and comes back on the same data directory while
 * profiles keep streaming in. Each test has its own influxd (the shared one must stay up).
 */
jest.setTimeout(120_000);

const STREAMS = 20;
const TICK_MS = 100;

function storeOptions(influxd: Influxd, database: string, extra: Partial<InfluxStoreOptions>): InfluxStoreOptions {
	return {
		...parseOptions({ influx: { url: influxd.url, database, batchSize: 500, flushIntervalMs: 100 } }).influx!,
		logger: createLogger('silent'),
		retry: { initialMs: 100, maxMs: 2000, jitter: 0.5 },
		requestTimeoutMs: 5000,
		...extra,
	};
}

const key = (p: Pick<StreamProfile, 'streamId' | 'ts'>): string => `${p.streamId}@${p.ts}`;

describe('InfluxDB outage', () => {
	let influxd: Influxd;

	beforeEach(async () => {
		influxd = await Influxd.create();
	});
	afterEach(async () => {
		await influxd.destroy();
	});

	test('a 30 s outage loses nothing: every point is stored once, and the backlog is written in production order', async () => {
		const confirmed: string[] = [];
		// Captured rather than printed: the outage must be logged once, not once per retry.
		const logLines: string[] = [];
		const logger = createLogger('info', pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }));
		const store = await InfluxStore.open(storeOptions(influxd, 'outage', { onWritten: (lines) => confirmed.push(...lines), logger }));

		const produced: StreamProfile[] = [];
		const errors: unknown[] = [];
		let producing = true;
		let tick = 0;
		const t0 = Date.now() - 120_000;
		const producer = (async () => {
			while (producing) {
				// Timestamps are synthetic (one per tick) so every point is distinct and ordered by production.
				const batch = Array.from({ length: STREAMS }, (_, i) => streamProfile(i, t0 + tick));
				tick++;
				produced.push(...batch);
				try {
					await store.writeStreamProfiles(batch);
				} catch (err) {
					errors.push(err);
				}
				await new Promise((r) => setTimeout(r, TICK_MS));
			}
		})();

		await new Promise((r) => setTimeout(r, 3000));
		const pid = influxd.pid!;
		await influxd.stop();
		expect(() => process.kill(pid, 0)).toThrow();
		const outageFrom = produced.length;
		await new Promise((r) => setTimeout(r, 30_000));
		expect(store.inOutage).toBe(true);
		const outageTo = produced.length;
		await influxd.start();
		await new Promise((r) => setTimeout(r, 3000));
		producing = false;
		await producer;
		expect(await store.flush(30_000)).toBe(true);

		const stats = store.stats();
		const stored = await store.streamHistory(t0, t0 + tick);
		await store.close();

		expect(errors).toEqual([]);
		expect(outageTo - outageFrom).toBeGreaterThan(STREAMS * 200);
		expect(stats).toMatchObject({ droppedPoints: 0, rejectedPoints: 0, bufferedPoints: 0, writtenPoints: produced.length });
		// Every produced point, exactly once, with its content intact.
		expect(stored).toHaveLength(produced.length);
		expect(new Set(stored.map(key)).size).toBe(produced.length);
		expect(stored).toEqual([...produced].sort((a, b) => a.ts - b.ts || (a.streamId < b.streamId ? -1 : 1)));
		// Points produced while the server was down were confirmed in exactly the order they were produced.
		const outageLines = new Set(produced.slice(outageFrom, outageTo).map(encodeStreamProfile));
		const confirmedOutage = confirmed.filter((l) => outageLines.has(l));
		expect(confirmedOutage).toEqual(produced.slice(outageFrom, outageTo).map(encodeStreamProfile));
		expect(confirmed).toHaveLength(produced.length);
		expect(logLines.filter((l) => l.includes('backend unreachable'))).toHaveLength(1);
		expect(logLines.filter((l) => l.includes('reachable again'))).toHaveLength(1);
		expect(logLines.filter((l) => l.includes('dropping'))).toHaveLength(0);
	});

	test('a server that is down at start: open() still succeeds, points buffer, and the schema and points arrive once it is up', async () => {
		await influxd.stop();
		const logLines: string[] = [];
		const logger = createLogger('info', pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }));
		const store = await InfluxStore.open(storeOptions(influxd, 'late', { logger }));
		expect(store.waitingForSchema).toBe(true);
		const t0 = Date.now() - 60_000;
		const produced = Array.from({ length: 5 }, (_, tick) => Array.from({ length: STREAMS }, (_, i) => streamProfile(i, t0 + tick))).flat();
		await store.writeStreamProfiles(produced);
		await new Promise((r) => setTimeout(r, 1500));
		expect(store.stats()).toMatchObject({ bufferedPoints: produced.length, writtenPoints: 0 });
		await influxd.start();
		expect(await store.flush(30_000)).toBe(true);
		expect(store.waitingForSchema).toBe(false);
		expect(await store.streamHistory(t0, t0 + 10)).toEqual([...produced].sort((a, b) => a.ts - b.ts || (a.streamId < b.streamId ? -1 : 1)));
		expect(await store.continuousQueries()).toHaveLength(3);
		expect(store.stats()).toMatchObject({ writtenPoints: produced.length, droppedPoints: 0, rejectedPoints: 0 });
		expect(logLines.filter((l) => l.includes('unreachable at start'))).toHaveLength(1);
		await store.close();
	});

	test('past the buffer bound the oldest points are dropped, and the dropped count is exact', async () => {
		const maxBufferedPoints = 1000;
		const store = await InfluxStore.open(storeOptions(influxd, 'overflow', { maxBufferedPoints }));
		const t0 = Date.now() - 60_000;
		await influxd.stop();
		const produced: StreamProfile[] = [];
		for (let tick = 0; tick < 125; tick++) {
			const batch = Array.from({ length: STREAMS }, (_, i) => streamProfile(i, t0 + tick));
			produced.push(...batch);
			await store.writeStreamProfiles(batch);
			if (tick % 25 === 0) await new Promise((r) => setTimeout(r, 150));
		}
		expect(produced).toHaveLength(2500);
		expect(store.stats()).toMatchObject({ droppedPoints: 2500 - maxBufferedPoints, bufferedPoints: maxBufferedPoints, writtenPoints: 0 });
		await influxd.start();
		expect(await store.flush(30_000)).toBe(true);
		const stats = store.stats();
		const stored = await store.streamHistory(t0, t0 + 1000);
		await store.close();
		expect(stats).toMatchObject({ droppedPoints: 1500, writtenPoints: 1000, bufferedPoints: 0, rejectedPoints: 0 });
		expect(stored).toHaveLength(1000);
		const producedKeys = new Set(produced.map(key));
		expect(stored.every((p) => producedKeys.has(key(p)))).toBe(true);
		expect(new Set(stored.map(key)).size).toBe(1000);
		// Oldest first: what survived is the newest 1000, except that a batch already in flight cannot be recalled.
		const newest = new Set(produced.slice(-maxBufferedPoints).map(key));
		const batchSize = 500;
		expect(stored.filter((p) => !newest.has(key(p))).length).toBeLessThanOrEqual(batchSize);
	});
});
