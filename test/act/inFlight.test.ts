import { InFlightActions, SkipWhileRunning } from '../../plugin/act/inFlight';

/** A promise settled from outside, standing in for an action waiting on an app hook. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
	let resolve!: (v: T) => void;
	let reject!: (e: unknown) => void;
	const promise = new Promise<T>((res, rej) => {
		resolve = res;
		reject = rej;
	});
	return { promise, resolve, reject };
}

describe('InFlightActions', () => {
	test('a key is busy while an action holding it runs, and free once it settles (resolved or rejected)', async () => {
		const inFlight = new InFlightActions();
		const a = deferred();
		const b = deferred();
		inFlight.track(['producer:p'], a.promise);
		inFlight.track(['consumer:c'], b.promise).catch(() => undefined);
		expect(inFlight.size).toBe(2);
		expect(inFlight.busy(['producer:p'])).toBe(true);
		expect(inFlight.busy(['consumer:x', 'consumer:c'])).toBe(true);
		expect(inFlight.busy(['consumer:x'])).toBe(false);
		a.resolve();
		b.reject(new Error('hook failed'));
		await inFlight.idle();
		expect(inFlight.busy(['producer:p', 'consumer:c'])).toBe(false);
		expect(inFlight.size).toBe(0);
	});

	test('whenFree waits for the holders of its keys only', async () => {
		const inFlight = new InFlightActions();
		const slow = deferred();
		const other = deferred();
		inFlight.track(['producer:p'], slow.promise);
		inFlight.track(['producer:q'], other.promise);
		let freed = false;
		const waiting = inFlight.whenFree(['producer:p']).then(() => (freed = true));
		other.resolve();
		await new Promise((r) => setImmediate(r));
		expect(freed).toBe(false);
		slow.resolve();
		await waiting;
		expect(freed).toBe(true);
	});
});

describe('SkipWhileRunning', () => {
	test('a run asked for while the previous one runs is skipped and counted, not queued', async () => {
		const rounds = new SkipWhileRunning();
		const first = deferred<string>();
		let started = 0;
		const run = (): Promise<string> => {
			started++;
			return first.promise;
		};
		const a = rounds.run(run);
		expect(a).toBeDefined();
		expect(rounds.running).toBe(true);
		expect(rounds.run(run)).toBeUndefined();
		expect(rounds.run(run)).toBeUndefined();
		expect(rounds.skipped).toBe(2);
		expect(started).toBe(1);
		first.resolve('done');
		await expect(a).resolves.toBe('done');
		expect(rounds.running).toBe(false);
		// After it settled, the next run starts (nothing was queued: one start, not three).
		const b = rounds.run(() => Promise.resolve('next'));
		await expect(b).resolves.toBe('next');
		expect(rounds.skipped).toBe(2);
	});

	test('a failed run frees the slot too', async () => {
		const rounds = new SkipWhileRunning();
		await expect(rounds.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
		expect(rounds.running).toBe(false);
		expect(rounds.run(() => Promise.resolve(1))).toBeDefined();
	});
});
