/**
 * Producer traces: `keyframe` traces stay on for video producers (keyframe rate, scene
 * changes, unasked keyframes that call for a size re-read), and so do `sr` traces (the
 * sender's RTCP reports, about one a second per layer, a few more on a high-bitrate layer:
 * each layer's rate for scene changes without a stats request), and `rtp` traces open for
 * traceWindowMs every traceEveryMs × the stream's back-off (framerate per layer, frame
 * sizes). The rtp trace costs the worker ~1 µs per packet while on.
 */
import { performance } from 'node:perf_hooks';
import type { types } from 'mediasoup';
import type { ProducerNode } from '../observe/registry';
import type { ProfilerMeter } from './meter';
import type { KeyframePacket } from './probes';
import type { FastTrigger } from './schedule';
import type { ProfiledStream } from './stream';
import { KeyframeCadence } from './keyframeCadence';
import { SharedTraceTypes } from './traceTypes';

/**
 * A trace window agrees with the earlier ones when every layer's framerate is within this
 * fraction: a 1 s window counts whole frames (±3 % at 30 fps), an encoder that drops frames
 * under load halves them.
 */
const TRACE_AGREEMENT = 0.1;

export interface TraceOptions {
	traceEveryMs: number;
	traceWindowMs: number;
	/** See ProfilerOptions.traceBackoffMax. */
	traceBackoffMax: number;
	/** See ProfilerOptions.senderReports (default true). */
	senderReports?: boolean;
}

export interface TraceState {
	types: SharedTraceTypes;
	/** Multiple of traceEveryMs between this stream's trace windows. */
	backoff: number;
	/** Counts rtp trace windows, so frames of different windows never join one segment. */
	window: number;
	ssrc?: number;
	/** Whether ssrc is the top layer's (else a lower one stands in until the top flows). */
	onTop?: boolean;
	/** When the last rtp trace window opened (0: none yet). */
	openedAtMs: number;
	/** Identifies the current chain of cycles: a hurried window starts a new one and retires the older. */
	chain: number;
	/** Opens a window now and restarts the cycle from it (video producers only). */
	restart?: () => void;
	/** Which of its keyframes were asked for or on cadence. */
	readonly cadence: KeyframeCadence;
}

/** What a trace tells the resolution prober about keyframes. */
export interface KeyframeSink {
	/** Whether a keyframe seen now was asked for by the profiler itself. */
	induced(s: ProfiledStream, nowMs: number): boolean;
	/**
	 * A keyframe the profiler did not cause; `unexpected`: nobody asked for it and it is off the
	 * stream's keyframe cadence (see KeyframeCadence), i.e. the sender changed something.
	 */
	senderKeyframe(s: ProfiledStream, packet: KeyframePacket, nowMs: number, unexpected: boolean): void;
	/** The worker asked the sender for a keyframe on `ssrc` (for whichever receiver). */
	keyframeAsked(s: ProfiledStream, ssrc: number, nowMs: number): void;
}

/** The part of a producer trace's `info` (mediasoup's RtpPacketDump) the profiler reads. */
interface TracedPacket extends KeyframePacket {
	timestamp: number;
	marker: boolean;
	isKeyFrame: boolean;
	payloadSize: bigint | number;
}

/**
 * Trace info comes from our own peer dependency, not from outside, and arrives
 * at packet rate while a trace window is open: a structural check, not zod.
 */
function tracedPacket(info: Record<string, unknown> | undefined): TracedPacket | undefined {
	if (!info || info.isRtx === true) return undefined;
	const p = info.rtpPacket as Partial<TracedPacket> | undefined;
	if (!p || typeof p.timestamp !== 'number' || typeof p.ssrc !== 'number') return undefined;
	return p as TracedPacket;
}

/**
 * The multiple of traceEveryMs until a stream's next trace window, decided as a window opens
 * from whether the previous one's framerates agreed with those before it: doubled (up to
 * `max`) when they did, back to 1 when they did not. Hurried windows (the stream entered the
 * fast tier) are judged alike: a trigger says the stream may be changing, and the window it
 * opens shows whether its framerates did. Were every trigger to reset the back-off, a stream
 * with a trigger a minute (a score or rate move, a looped clip's seam) would be traced at the
 * shortest period for good while its framerates held.
 */
export function nextTraceBackoff(backoff: number, previousAgreed: boolean, max: number): number {
	return previousAgreed ? Math.min(2 * backoff, max) : 1;
}

/**
 * Whether a stream entering the fast tier for `reason` opens its trace (video) or tap (audio)
 * window at once. Not for a keyframe: the keyframe trace, always on, has seen it whole (its
 * size and layer, for the resolution prober), and a scene cut or an encoder restart changes
 * no framerate a window would show; the fast tier's stats rounds still follow it. Every other
 * trigger may change framerates or layers (a layer, score or rate move, a pause) or asks for a
 * fresh profile (a rising or hot worker).
 */
export function triggerOpensWindow(reason: FastTrigger): boolean {
	return reason !== 'keyframe';
}

export class TraceSampler {
	constructor(
		private readonly options: TraceOptions,
		private readonly keyframes: KeyframeSink,
		private readonly meter: ProfilerMeter,
	) {}

	/**
	 * Listens to the producer's traces and, for video, keeps keyframe traces on and
	 * starts its rtp trace cycle `phaseMs` from now (a random phase, so many producers
	 * do not switch traces on in the same instant).
	 */
	start(s: ProfiledStream, node: ProducerNode, phaseMs: number): void {
		const producer = node.handle;
		const video = node.mediaKind === 'video';
		// Keyframes, and the worker's keyframe requests to the sender (one event per request, rare):
		// a requested keyframe is the one a layer's size is read from without asking for another.
		// Sender reports (one per layer about every second): each layer's rate for scene changes
		// at that spacing without a stats request (see StreamAccumulator.addSenderReport).
		const baseTypes: types.ProducerTraceEventType[] = video ? ['keyframe', 'pli', 'fir', ...(this.options.senderReports !== false ? (['sr'] as const) : [])] : [];
		producer.observer.on('trace', this.listenerOf(s));
		const traceTypes = new SharedTraceTypes(producer, (types) => this.meter.request('traceSwitch', node.id, types));
		const state: TraceState = { types: traceTypes, backoff: 1, window: 0, openedAtMs: 0, chain: 0, cadence: new KeyframeCadence() };
		s.trace = state;
		const setTypes = (wanted: types.ProducerTraceEventType[]): void =>
			void traceTypes.set(wanted).catch((error: unknown) => this.meter.swallowed('traceSwitch', error, { producerId: node.id }, producer.closed));
		if (!video) return;
		setTypes(baseTypes);
		const cycle = (chain: number): void => {
			if (!s.live || producer.closed || chain !== state.chain) return;
			state.backoff = nextTraceBackoff(state.backoff, s.acc.traceWindowAgreed(TRACE_AGREEMENT), this.options.traceBackoffMax);
			const periodMs = this.options.traceEveryMs * state.backoff;
			s.acc.traceWindowsEvery(periodMs);
			state.window++;
			state.openedAtMs = Date.now();
			s.acc.rtpTraceSwitched(state.openedAtMs, true);
			setTypes([...baseTypes, 'rtp']);
			s.timers.later(this.options.traceWindowMs, () => {
				s.acc.rtpTraceSwitched(Date.now(), false);
				if (!producer.closed) setTypes(baseTypes);
			});
			s.timers.later(periodMs, () => cycle(chain));
		};
		state.restart = () => cycle(++state.chain);
		s.timers.later(phaseMs, () => cycle(state.chain));
	}

	/**
	 * The stream entered the fast tier (it joined or is changing): its next trace window opens
	 * now unless one opened within `withinMs` (a window shows what the fast tier is there to see:
	 * layers' framerates and frame sizes now), and its cycle restarts from it (see nextTraceBackoff).
	 */
	hurry(s: ProfiledStream, withinMs: number): void {
		const state = s.trace;
		if (!state?.restart || (state.openedAtMs > 0 && Date.now() - state.openedAtMs < withinMs)) return;
		// A window still open (the last one started less than a window ago) is not cut short.
		if (Date.now() - state.openedAtMs < this.options.traceWindowMs) return;
		state.restart();
	}

	/** The stream is forgotten: its listener goes, and the worker keeps only the app's own trace types. */
	release(s: ProfiledStream): void {
		if (s.node.kind !== 'producer' || !s.trace) return;
		const producer = s.node.handle;
		producer.observer.off('trace', this.listenerOf(s));
		void s.trace.types.release().catch((error: unknown) => this.meter.swallowed('traceSwitch', error, { producerId: producer.id }, producer.closed));
	}

	private readonly listeners = new WeakMap<ProfiledStream, (trace: types.ProducerTraceEventData) => void>();

	private listenerOf(s: ProfiledStream): (trace: types.ProducerTraceEventData) => void {
		let l = this.listeners.get(s);
		if (!l) this.listeners.set(s, (l = (trace) => this.onTrace(s, trace)));
		return l;
	}

	private onTrace(s: ProfiledStream, trace: types.ProducerTraceEventData): void {
		const t0 = performance.now();
		this.meter.notification(trace.type === 'rtp' ? 'traceRtp' : trace.type === 'keyframe' ? 'traceKeyframe' : trace.type === 'sr' ? 'traceSr' : 'traceRequest');
		try {
			this.handle(s, trace);
		} catch (error) {
			// A trace event is the worker's notification: a throw here would reach mediasoup's emitter.
			this.meter.swallowed('traceEvent', error, { producerId: s.node.id });
		} finally {
			this.meter.ownSince(t0);
		}
	}

	private handle(s: ProfiledStream, trace: types.ProducerTraceEventData): void {
		const state = s.trace;
		if (!state) return;
		if (trace.type === 'sr') {
			const info = trace.info as { ssrc?: unknown; octetCount?: unknown } | undefined;
			if (typeof info?.ssrc === 'number' && typeof info.octetCount === 'number') s.acc.addSenderReport(Date.now(), info.ssrc, info.octetCount);
			return;
		}
		if (trace.type === 'pli' || trace.type === 'fir') {
			const ssrc = (trace.info as { ssrc?: unknown } | undefined)?.ssrc;
			const now = Date.now();
			state.cadence.asked(now);
			s.acc.keyframeRequestSent(now);
			if (typeof ssrc === 'number') this.keyframes.keyframeAsked(s, ssrc, now);
			return;
		}
		if (trace.type !== 'rtp' && trace.type !== 'keyframe') return;
		const p = tracedPacket(trace.info);
		if (!p) return;
		const now = Date.now();
		// With both traces on, the worker reports a keyframe's first packet as `keyframe` only;
		// the framerate needs it (a one-packet keyframe is a whole frame), outside a window it is dropped.
		s.acc.addLayerRtpEvent(now, p.ssrc, p.rid || undefined, p.timestamp, p.marker);
		if (trace.type === 'keyframe') {
			const induced = this.keyframes.induced(s, now);
			s.acc.addKeyframe(now, induced);
			if (!induced) this.keyframes.senderKeyframe(s, p, now, state.cadence.keyframe(now));
			return;
		}
		// Frame sizes of one layer only: the top encoding's when it flows, else the first seen.
		// Through layerOfPacket, which also knows the SSRCs of rid-only layers (browsers).
		if (p.ssrc !== state.ssrc) {
			const onTop = s.acc.layerOfPacket(p.ssrc, p.rid ?? undefined) === Math.max(0, s.acc.meta.encodings.length - 1);
			if (state.ssrc !== undefined && (state.onTop || !onTop)) return;
			state.ssrc = p.ssrc;
			state.onTop = onTop;
		}
		s.acc.addRtpEvent({
			arrivalMs: now,
			rtpTimestamp: p.timestamp,
			marker: p.marker,
			bytes: Number(p.payloadSize),
			isKeyframe: p.isKeyFrame,
			segment: state.window,
		});
	}
}
