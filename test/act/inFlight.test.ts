import { InFlightActions, RoundOrder, SkipWhileRunning } from '../../plugin/act/inFlight';

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

describe('RoundOrder', () => {
	test("a round's actions on the same media run in the round's order; other media and other rounds are not waited for", async () => {
		const inFlight = new InFlightActions();
		const earlier = deferred();
		// An earlier round still migrates producer q.
		inFlight.track(['producer:q'], earlier.promise);
		const round = new RoundOrder();
		const spread = deferred();
		round.hold(['producer:p', 'consumer:c'], inFlight.track(['producer:p', 'consumer:c'], spread.promise));
		// The round's migration of p: p is busy only through the round's own spread, so it waits for it instead of skipping.
		const own = round.ownKeys(['producer:p']);
		expect([...own]).toEqual(['producer:p']);
		expect(inFlight.busy(['producer:p'].filter((k) => !own.has(k)))).toBe(false);
		// q is held by another round: an action on it is still skipped.
		expect(round.ownKeys(['producer:q']).size).toBe(0);
		expect(inFlight.busy(['producer:q'])).toBe(true);
		const order: string[] = [];
		const migration = round.after([...own]).then(() => order.push('migrate'));
		await new Promise((r) => setTimeout(r, 10));
		expect(order).toEqual([]);
		order.push('spread done');
		// However the spread ended (here: failed), the migration goes on after it.
		spread.reject(new Error('hook failed'));
		await migration;
		expect(order).toEqual(['spread done', 'migrate']);
		earlier.resolve();
		await inFlight.idle();
	});
});
