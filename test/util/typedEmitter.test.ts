import { TypedEmitter } from '../../plugin/util/typedEmitter';

type Events = { tick: [n: number]; other: [] };

class Emitter extends TypedEmitter<Events> {
	fire<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
		this.emit(event, ...args);
	}
}

describe('TypedEmitter', () => {
	test('once() fires on the first emit only and is then removed', () => {
		const e = new Emitter();
		const seen: number[] = [];
		e.once('tick', (n) => seen.push(n));
		expect(e.listenerCount('tick')).toBe(1);
		e.fire('tick', 1);
		e.fire('tick', 2);
		expect(seen).toEqual([1]);
		expect(e.listenerCount('tick')).toBe(0);
	});

	test('once() beside on(): each keeps its own semantics, and off() removes a once listener before it fires', () => {
		const e = new Emitter();
		const always: number[] = [];
		const first: number[] = [];
		const never: number[] = [];
		const cancelled = (n: number): void => void never.push(n);
		e.on('tick', (n) => always.push(n));
		e.once('tick', (n) => first.push(n));
		e.once('tick', cancelled);
		e.off('tick', cancelled);
		for (const n of [1, 2, 3]) e.fire('tick', n);
		expect(always).toEqual([1, 2, 3]);
		expect(first).toEqual([1]);
		expect(never).toEqual([]);
	});

	test('a once listener that throws is still removed, the error goes to onListenerError and later listeners run', () => {
		const errors: string[] = [];
		const e = new (class extends Emitter {
			constructor() {
				super((event, error) => errors.push(`${event}: ${(error as Error).message}`));
			}
		})();
		const after: number[] = [];
		e.once('tick', () => {
			throw new Error('boom');
		});
		e.on('tick', (n) => after.push(n));
		e.fire('tick', 1);
		e.fire('tick', 2);
		expect(errors).toEqual(['tick: boom']);
		expect(after).toEqual([1, 2]);
		expect(e.listenerCount('tick')).toBe(1);
	});
});
