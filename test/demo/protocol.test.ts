import { demoConfigFromEnv, DemoConfigError } from '../../demo/config';
import { MAX_MESSAGE_BYTES, parseMessage, TokenBucket } from '../../demo/protocol';

describe('signaling message parsing', () => {
	test('accepts a well-formed request and fills defaults', () => {
		const r = parseMessage(JSON.stringify({ id: 7, method: 'createWebRtcTransport', data: { direction: 'send' } }));
		expect(r).toEqual({ ok: true, request: { id: 7, method: 'createWebRtcTransport', data: { direction: 'send', sctp: false } } });
	});

	test('rejects bad JSON, unknown methods and bad fields, keeping the id for the reply', () => {
		expect(parseMessage('{nope')).toMatchObject({ ok: false, id: null, error: 'message is not valid JSON' });
		expect(parseMessage(JSON.stringify({ id: 3, method: 'explode', data: {} }))).toMatchObject({ ok: false, id: 3 });
		const bad = parseMessage(JSON.stringify({ id: 4, method: 'setPreferredLayers', data: { consumerId: 'c', spatialLayer: 9 } }));
		expect(bad.ok).toBe(false);
		if (!bad.ok) expect(bad.error).toContain('spatialLayer');
	});

	test('a failed producer migration is reported with the producer id and a bounded reason', () => {
		const ok = parseMessage(JSON.stringify({ id: 9, method: 'producerMigrationFailed', data: { producerId: 'p1', error: 'NotAllowedError' } }));
		expect(ok).toEqual({ ok: true, request: { id: 9, method: 'producerMigrationFailed', data: { producerId: 'p1', error: 'NotAllowedError' } } });
		expect(parseMessage(JSON.stringify({ id: 10, method: 'producerMigrationFailed', data: { error: 'x' } }))).toMatchObject({ ok: false, id: 10, error: expect.stringContaining('producerId') });
		expect(parseMessage(JSON.stringify({ id: 11, method: 'producerMigrationFailed', data: { producerId: 'p1', error: 'x'.repeat(257) } }))).toMatchObject({ ok: false, id: 11, error: expect.stringContaining('error') });
		// After a worker died: the page re-created what it lost, or could not.
		expect(parseMessage(JSON.stringify({ id: 12, method: 'rejoined', data: {} }))).toEqual({ ok: true, request: { id: 12, method: 'rejoined', data: {} } });
		expect(parseMessage(JSON.stringify({ id: 13, method: 'rejoined', data: { error: 'x'.repeat(257) } }))).toMatchObject({ ok: false, id: 13 });
	});

	test('rejects messages over the size limit before parsing them', () => {
		const big = JSON.stringify({ id: 1, method: 'leave', data: {}, pad: 'x'.repeat(MAX_MESSAGE_BYTES) });
		expect(parseMessage(big)).toMatchObject({ ok: false, error: expect.stringContaining('too large') });
	});
});

describe('TokenBucket', () => {
	test('allows the burst, then the refill rate', () => {
		const bucket = new TokenBucket(3, 2, 0);
		expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
		expect(bucket.take(499)).toBe(false);
		expect(bucket.take(500)).toBe(true);
		expect(bucket.take(10_000)).toBe(true);
	});
});

describe('demo configuration', () => {
	test('defaults need no environment', () => {
		const c = demoConfigFromEnv({});
		expect(c).toMatchObject({ host: '127.0.0.1', port: 3000, rtcMinPort: 40000, rtcMaxPort: 49999, dryRun: false, workerCapacityPct: undefined });
		expect(c.workers).toBeGreaterThanOrEqual(2);
	});

	test('invalid values name the variable', () => {
		expect(() => demoConfigFromEnv({ DEMO_PORT: 'http' })).toThrow(DemoConfigError);
		expect(() => demoConfigFromEnv({ DEMO_PORT: 'http' })).toThrow(/DEMO_PORT/);
		expect(() => demoConfigFromEnv({ DEMO_RTC_MIN_PORT: '50000', DEMO_RTC_MAX_PORT: '40000' })).toThrow(/DEMO_RTC_MIN_PORT/);
	});
});
