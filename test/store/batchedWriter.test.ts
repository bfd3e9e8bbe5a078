import pino from 'pino';
import { backoffDelay, BatchedWriter, PermanentWriteError, type BatchedWriterOptions } from '../../plugin/store/batchedWriter';
import { createLogger } from '../../plugin/log';

/** Unit tests of the pure batching/retry logic with an injected send function (no server). */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const lines = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `m,s=a f=${from + i} ${from + i}`);

interface FakeBackend {
	send: BatchedWriterOptions['send'];
	batches: string[][];
	/** Calls, including failed ones. */
	calls: number;
	down: boolean;
	latencyMs: number;
}

function backend(): FakeBackend {
	const b: FakeBackend = {
		batches: [],
		calls: 0,
		down: false,
		latencyMs: 0,
		send: async (body) => {
			b.calls++;
			if (b.latencyMs > 0) await sleep(b.latencyMs);
			if (b.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
			b.batches.push(body.split('\n'));
		},
	};
	return b;
}

function writer(b: FakeBackend, extra: Partial<BatchedWriterOptions> = {}): { w: BatchedWriter; logs: string[] } {
	const logs: string[] = [];
	const logger = createLogger('info', pino({ level: 'info' }, { write: (l: string) => void logs.push(l) }));
	const w = new BatchedWriter({
		send: b.send,
		batchSize: 10,
		flushIntervalMs: 40,
		maxBufferedPoints: 1000,
		maxBufferedBytes: 1 << 20,
		retry: { initialMs: 5, maxMs: 40, jitter: 0.5 },
		logger,
		...extra,
	});
	return { w, logs };
}

test('sends full batches at once and the remainder after the flush interval', async () => {
	const b = backend();
	const { w } = writer(b);
	await w.write(lines(0, 25));
	await sleep(5);
	expect(b.batches.map((x) => x.length)).toEqual([10, 10]);
	await sleep(80);
	expect(b.batches.flat()).toEqual(lines(0, 25));
	expect(w.stats()).toEqual({ bufferedPoints: 0, bufferedBytes: 0, droppedPoints: 0, rejectedPoints: 0, writtenPoints: 25 });
	await w.close();
});

test('retries with backoff through an outage, then delivers everything once, in order, logging one line per episode', async () => {
	const b = backend();
	const { w, logs } = writer(b, { maxInFlight: 2 });
	await w.write(lines(0, 30));
	b.down = true;
	for (let k = 1; k <= 20; k++) {
		await w.write(lines(k * 100, 7));
		await sleep(5);
	}
	expect(w.inOutage).toBe(true);
	const failedCalls = b.calls;
	b.down = false;
	expect(await w.flush(2000)).toBe(true);
	const expected = [...lines(0, 30), ...Array.from({ length: 20 }, (_, i) => lines((i + 1) * 100, 7)).flat()];
	const delivered = b.batches.flat();
	expect(new Set(delivered).size).toBe(delivered.length);
	expect(delivered.sort()).toEqual([...expected].sort());
	// Everything written after the first failure was confirmed in write order.
	const afterFailure = delivered.filter((l) => Number(l.split(' ')[2]) >= 100);
	expect(b.batches.flat().filter((l) => afterFailure.includes(l))).toEqual(expected.filter((l) => afterFailure.includes(l)));
	expect(failedCalls).toBeGreaterThan(2);
	expect(logs.filter((l) => l.includes('backend unreachable'))).toHaveLength(1);
	expect(logs.filter((l) => l.includes('reachable again'))).toHaveLength(1);
	expect(w.stats()).toMatchObject({ droppedPoints: 0, writtenPoints: expected.length, bufferedPoints: 0 });
	await w.close();
});

test('backoff doubles per failure up to the cap, with jitter taking at most its share off', () => {
	const retry = { initialMs: 20, maxMs: 80, jitter: 0.5 };
	expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, retry, () => 0))).toEqual([20, 40, 80, 80, 80]);
	expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, retry, () => 1))).toEqual([10, 20, 40, 40, 40]);
	expect(backoffDelay(3, retry, () => 0.25)).toBe(70);
});

test('retries are spaced by at least the backoff delay', async () => {
	const b = backend();
	b.down = true;
	const times: number[] = [];
	const send: BatchedWriterOptions['send'] = async (body, n) => {
		times.push(performance.now());
		return b.send(body, n);
	};
	const retry = { initialMs: 20, maxMs: 80, jitter: 0.5 };
	const { w } = writer(b, { send, retry, random: () => 1 });
	await w.write(lines(0, 10));
	await sleep(300);
	await w.close(0);
	const gaps = times.slice(1).map((t, i) => t - times[i]!);
	expect(gaps.length).toBeGreaterThanOrEqual(3);
	// Timers never fire early, so each gap is at least its delay (late firing on a busy machine is allowed).
	gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(backoffDelay(i + 1, retry, () => 1) - 1));
});

test('the point bound drops exactly the oldest surplus and counts it', async () => {
	const b = backend();
	b.down = true;
	const { w, logs } = writer(b, { maxBufferedPoints: 50, retry: { initialMs: 10_000, maxMs: 10_000, jitter: 0 } });
	await w.write(lines(0, 10)); // goes in flight and fails: the retry waits 10 s
	await sleep(5);
	for (let k = 1; k <= 13; k++) await w.write(lines(k * 10, 10));
	expect(w.stats()).toMatchObject({ bufferedPoints: 50, droppedPoints: 140 - 50 });
	expect(logs.filter((l) => l.includes('dropping the oldest'))).toHaveLength(1);
	b.down = false;
	await w.close(0);
	expect(w.stats().droppedPoints).toBe(140);
});

test('the byte bound drops exactly as many of the oldest as needed', async () => {
	const b = backend();
	b.down = true;
	const maxBufferedBytes = 1000;
	const { w } = writer(b, { maxBufferedBytes, retry: { initialMs: 10_000, maxMs: 10_000, jitter: 0 } });
	const all: string[] = [];
	for (let k = 0; k < 20; k++) {
		const chunk = Array.from({ length: 5 }, (_, i) => `m,s=${'x'.repeat((k * 5 + i) % 17)} f=1 ${k * 5 + i}`);
		all.push(...chunk);
		await w.write(chunk);
		await sleep(1);
	}
	// Expected: newest lines whose sizes (length + newline) fit, everything older dropped.
	let kept = 0;
	let bytes = 0;
	for (let i = all.length - 1; i >= 0 && bytes + all[i]!.length + 1 <= maxBufferedBytes; i--) {
		bytes += all[i]!.length + 1;
		kept++;
	}
	const stats = w.stats();
	expect(stats.bufferedBytes).toBeLessThanOrEqual(maxBufferedBytes);
	expect(stats.droppedPoints + stats.bufferedPoints).toBe(all.length);
	// The first batch failed at once and went back to the queue (nothing in flight), so drops are strictly oldest-first.
	expect(stats.droppedPoints).toBe(all.length - kept);
	expect(stats.bufferedBytes).toBe(bytes);
	await w.close(0);
});

test('a permanently refused batch is counted as rejected and not retried', async () => {
	let calls = 0;
	const { w } = writer(backend(), {
		send: async () => {
			calls++;
			throw new PermanentWriteError('HTTP 400: field type conflict');
		},
	});
	await w.write(lines(0, 10));
	expect(await w.flush(500)).toBe(true);
	await sleep(50);
	expect(calls).toBe(1);
	expect(w.stats()).toMatchObject({ rejectedPoints: 10, writtenPoints: 0, bufferedPoints: 0 });
	await w.close();
});

test('backpressure: while the backend is up but slow, write() resolves only below the high-water mark', async () => {
	const b = backend();
	b.latencyMs = 30;
	const { w } = writer(b, { highWaterPoints: 20, maxInFlight: 1 });
	let resolved = false;
	const pending = w.write(lines(0, 40)).then(() => (resolved = true));
	await sleep(10);
	expect(resolved).toBe(false);
	await pending;
	expect(w.stats().bufferedPoints).toBeLessThan(20);
	await w.close();
	expect(b.batches.flat()).toEqual(lines(0, 40));
});

test('close() flushes; when the backend never returns it gives up after the timeout and counts the rest as dropped', async () => {
	const b = backend();
	const { w } = writer(b);
	await w.write(lines(0, 15));
	await w.close();
	expect(b.batches.flat()).toEqual(lines(0, 15));

	const down = backend();
	down.down = true;
	const { w: w2, logs } = writer(down);
	await w2.write(lines(0, 15));
	await w2.close(100);
	expect(w2.stats()).toMatchObject({ droppedPoints: 15, writtenPoints: 0, bufferedPoints: 0 });
	expect(logs.some((l) => l.includes('closed before the backend took everything'))).toBe(true);
	await w2.write(lines(100, 3));
	expect(w2.stats().droppedPoints).toBe(18);
});
