import { ProfilerMeter } from '../../plugin/profile/meter';

function fakeLog() {
	const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
	const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, msg, obj });
	return { lines, log: { warn: at('warn'), debug: at('debug') } as unknown as ConstructorParameters<typeof ProfilerMeter>[0] };
}

describe('ProfilerMeter', () => {
	afterEach(() => jest.useRealTimers());

	test('counts requests and notifications by kind, and reports each request to onRequest', () => {
		const meter = new ProfilerMeter();
		const seen: string[] = [];
		meter.onRequest = (kind, id) => seen.push(`${kind}:${id}`);
		meter.request('producerStats', 'p1');
		meter.request('producerStats', 'p2');
		meter.request('transportStats', 't1');
		meter.notification('traceRtp');
		const s = meter.stats();
		expect(s.requests.producerStats).toBe(2);
		expect(s.requests.transportStats).toBe(1);
		expect(s.requests.consumerStats).toBe(0);
		expect(s.notifications.traceRtp).toBe(1);
		expect(seen).toEqual(['producerStats:p1', 'producerStats:p2', 'transportStats:t1']);
	});

	test('rates cover the snapshots of the last seconds, not the whole life', () => {
		jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
		const meter = new ProfilerMeter();
		// 12 s at 5 requests per second, then 3 s at 1 per second: the rate follows the recent rounds.
		for (let i = 0; i < 12; i++) {
			for (let k = 0; k < 5; k++) meter.request('consumerStats', 'c');
			jest.advanceTimersByTime(1000);
			meter.snapshot();
		}
		expect(meter.stats().requestsPerS.consumerStats).toBeCloseTo(5, 1);
		for (let i = 0; i < 10; i++) {
			meter.request('consumerStats', 'c');
			jest.advanceTimersByTime(1000);
			meter.snapshot();
		}
		expect(meter.stats().requestsPerS.consumerStats).toBeCloseTo(1, 1);
		expect(meter.stats().requests.consumerStats).toBe(70);
	});

	test('own work adds up and shows as percent of a core', () => {
		jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
		const meter = new ProfilerMeter();
		for (let i = 0; i < 4; i++) {
			const t0 = performance.now();
			jest.advanceTimersByTime(50);
			meter.ownSince(t0);
			jest.advanceTimersByTime(950);
			meter.snapshot();
		}
		const s = meter.stats();
		expect(s.ownCpuMs).toBeCloseTo(200, 0);
		expect(s.ownCpuPct).toBeCloseTo(5, 0);
	});

	test('a handled error is logged once per episode and always counted', () => {
		jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
		const { lines, log } = fakeLog();
		const meter = new ProfilerMeter(log);
		for (let i = 0; i < 5; i++) meter.swallowed('producerStats', new Error('boom'), { streamId: 'p' });
		meter.swallowed('tapConsume', new Error('closed'), { producerId: 'p' }, true);
		expect(lines.map((l) => `${l.level}:${l.obj.kind}`)).toEqual(['warn:producerStats', 'debug:tapConsume']);
		jest.advanceTimersByTime(30_000);
		meter.swallowed('producerStats', new Error('boom'), { streamId: 'p' });
		expect(lines).toHaveLength(2);
		// A minute without one ends the episode: the next is logged again.
		jest.advanceTimersByTime(61_000);
		meter.swallowed('producerStats', new Error('boom'), { streamId: 'p' });
		expect(lines).toHaveLength(3);
		expect(meter.stats().swallowedErrors).toEqual({ producerStats: 7, tapConsume: 1 });
	});
});
