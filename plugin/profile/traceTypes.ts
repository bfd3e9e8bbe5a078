import type { types } from 'mediasoup';

type TraceType = types.ProducerTraceEventType;
type EnableTraceEvent = (types?: TraceType[]) => Promise<void>;

/**
 * The trace types of one producer, shared between the app and the profiler. mediasoup keeps
 * one set per producer and each enableTraceEvent() call replaces it, so the profiler's calls
 * used to switch off whatever the app had enabled (and the app's calls the profiler's). The
 * producer's own enableTraceEvent is shadowed by one that records the app's types and asks
 * the worker for the union; release() removes the shadow and leaves the app's types on.
 *
 * Installed when the profiler adopts the producer, i.e. inside transport.produce() before the
 * app holds the producer, so the app cannot have enabled anything yet. The app's 'trace'
 * listeners also receive the profiler's types (mediasoup emits every enabled type to all).
 */
export class SharedTraceTypes {
	private app: readonly TraceType[] = [];
	private own: readonly TraceType[] = [];
	private readonly original: EnableTraceEvent;
	private released = false;

	constructor(
		private readonly producer: types.Producer,
		/** Counts each request the profiler causes, with the types it asks the worker for. */
		private readonly onRequest: (types: readonly TraceType[]) => void = () => undefined,
	) {
		this.original = producer.enableTraceEvent;
		const shadow: EnableTraceEvent = (appTypes = []) => {
			this.app = [...appTypes];
			return this.apply();
		};
		Object.defineProperty(producer, 'enableTraceEvent', { value: shadow, configurable: true, writable: true, enumerable: false });
	}

	/** The profiler's types; resolves when the worker has them (rejects like enableTraceEvent()). */
	set(own: readonly TraceType[]): Promise<void> {
		if (this.released) return Promise.resolve();
		if (sameTypes(own, this.own)) return Promise.resolve();
		this.own = [...own];
		this.onRequest(this.union());
		return this.apply();
	}

	/** Removes the shadow; the worker is left with the app's types only. */
	release(): Promise<void> {
		if (this.released) return Promise.resolve();
		this.released = true;
		delete (this.producer as unknown as Record<string, unknown>).enableTraceEvent;
		const hadOwn = this.own.length > 0;
		this.own = [];
		if (!hadOwn || this.producer.closed) return Promise.resolve();
		this.onRequest(this.union());
		return this.apply();
	}

	private union(): TraceType[] {
		return [...new Set([...this.app, ...this.own])];
	}

	private apply(): Promise<void> {
		return this.original.call(this.producer, this.union());
	}
}

function sameTypes(a: readonly TraceType[], b: readonly TraceType[]): boolean {
	return a.length === b.length && a.every((t) => b.includes(t));
}
