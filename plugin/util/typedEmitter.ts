import { EventEmitter } from 'node:events';

/** Event name → listener argument tuple. */
export type EventMap = { [event: string]: unknown[] };

/**
 * EventEmitter with typed events. Listener exceptions are the listener's own
 * problem: emit() never lets one break the emitter's caller (mediasoup's
 * safeEmit does the same), it routes them to `onListenerError`.
 */
export class TypedEmitter<E extends EventMap> {
	private readonly emitter = new EventEmitter();

	constructor(private readonly onListenerError: (event: string, error: unknown) => void = () => {}) {
		this.emitter.setMaxListeners(Infinity);
	}

	on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
		this.emitter.on(event, listener as (...args: unknown[]) => void);
		return this;
	}

	once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
		this.emitter.once(event, listener as (...args: unknown[]) => void);
		return this;
	}

	off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
		this.emitter.off(event, listener as (...args: unknown[]) => void);
		return this;
	}

	listenerCount<K extends keyof E & string>(event: K): number {
		return this.emitter.listenerCount(event);
	}

	protected emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
		// rawListeners, not listeners: a once() listener is a wrapper that removes itself when called.
		for (const listener of this.emitter.rawListeners(event)) {
			try {
				(listener as (...a: E[K]) => void)(...args);
			} catch (error) {
				this.onListenerError(event, error);
			}
		}
	}

	protected removeAllListeners(): void {
		this.emitter.removeAllListeners();
	}
}

/** Any emitter with typed on/off: ours, and mediasoup's EnhancedEventEmitter. */
export interface ListenerTarget<E extends EventMap> {
	on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): unknown;
	off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): unknown;
}

/**
 * Listeners added to someone else's emitters, grouped so they can all be removed
 * at once: on an entity's close, and on detach().
 */
export class Subscriptions {
	private readonly disposers: Array<() => void> = [];

	on<E extends EventMap, K extends keyof E & string>(target: ListenerTarget<E>, event: K, listener: (...args: E[K]) => void): void {
		target.on(event, listener);
		this.disposers.push(() => target.off(event, listener));
	}

	dispose(): void {
		for (const off of this.disposers.splice(0)) off();
	}
}
