/**
 * Video resolution per layer from keyframe headers, read on the producer's tap (a paused
 * DirectTransport consumer resumed on one spatial layer until a keyframe arrives).
 *
 * By default without asking the sender for anything: when the worker asks the sender for
 * a keyframe on a layer anyway (a consumer joined, resumed or switched up; seen as a
 * `pli`/`fir` trace), a layer whose size is unknown, derived or stale has the tap resumed on
 * it at once. The tap's own keyframe request then finds that one pending and is folded
 * into it (mediasoup's KeyFrameRequestManager), so the sender sends one keyframe, not two.
 * The other layers follow from the encodings' scale factors (StreamAccumulator.setResolution),
 * and the app's appData.layers, when given, win over both.
 *
 * Opt-in (keyframeProbes): the tap asks itself — on each spatial layer in turn, a few
 * seconds after the producer joins, every resolutionRefreshMs, within seconds for a layer
 * that flows with no known size, and after a keyframe the sender sent unasked (a rescale).
 * Each such keyframe costs the sender bitrate; they are counted in the profile
 * (video.keyframesRequested). Keyframes the profiler caused are marked induced, so they
 * never count as scene changes.
 */
import type { ProducerNode } from '../observe/registry';
import { findSps, parseSps } from './features/h264';
import { parseVp8Payload } from './features/vp8';
import { parseVp9Payload } from './features/vp9';
import type { ProfilerMeter } from './meter';
import type { ProfiledStream } from './stream';
import type { Taps } from './taps';

/** Passes over the layers a resolution probe makes before waiting for the next refresh. */
const PROBE_PASSES = 3;
const FIRST_PROBE_DELAY_MS = 3000;
const UNRESOLVED_LAYER_RETRY_MS = 5000;
/** Least time between two size re-reads of one stream triggered by keyframes its sender sent unasked (each read costs a keyframe). */
const KEYFRAME_REPROBE_MIN_INTERVAL_MS = 15_000;
/** How long after the keyframe a probe read its other layers' keyframes (same request) still count as induced. */
const INDUCED_KEYFRAME_BURST_MS = 500;
/** A probe waiting for a layer that another probe holds tries again this much later. */
const BUSY_RETRY_MS = 1000;
/**
 * mediasoup re-sends a keyframe request that no keyframe answered after this long
 * (KeyFrameRequestManager's retransmission wait).
 */
const KEYFRAME_REQUEST_RETRY_MS = 1000;
/** Beyond that re-sent request: a sender answers one within tens of ms, a busy one within a second. */
const KEYFRAME_ANSWER_MARGIN_MS = 1000;

export interface ProbeOptions {
	resolutionRefreshMs: number;
	probeWaitMs: number;
	/** Opt-in: the tap may ask the sender for keyframes (see the header). */
	keyframeProbes: boolean;
}

export interface ProbeState {
	/** Keyframes until this time were caused by our own tap. */
	inducedUntilMs: number;
	/** Wait before re-probing a flowing layer of unknown size; doubles while probes find nothing. */
	unresolvedRetryMs: number;
	/** A resolution probe is running: another must not interleave its layer switches. */
	probing?: boolean;
	/** Identifies the current chain of scheduled probes: a new chain retires the older one. */
	chain: number;
	/** A keyframe the sender sent unasked re-reads its layer's size, not before this time. */
	keyframeReprobeAfterMs?: number;
	/** Layers (−1: all) with an unasked keyframe whose size is still to be re-read → that keyframe's time. */
	keyframeReprobes?: Map<number, number>;
	/** When each layer's size was last read from a keyframe. */
	sizeReadAtMs?: Map<number, number>;
}

/** A traced keyframe's packet, as the prober needs it. */
export interface KeyframePacket {
	ssrc: number;
	rid?: string | null;
}

export class ResolutionProber {
	constructor(
		private readonly options: ProbeOptions,
		private readonly taps: Taps,
		private readonly meter: ProfilerMeter,
	) {}

	/**
	 * Starts probing a video producer (unless the app states its layers' sizes): the first
	 * probe once the sender has had time to switch its layers on (mediasoup forwards a
	 * simulcast layer only after it has a score), `phaseMs` spreading producers apart.
	 */
	start(s: ProfiledStream, node: ProducerNode, phaseMs: number): void {
		s.probe = { inducedUntilMs: 0, unresolvedRetryMs: UNRESOLVED_LAYER_RETRY_MS, chain: 0 };
		if (s.acc.meta.appDataResolution || !this.options.keyframeProbes) return;
		s.timers.later(FIRST_PROBE_DELAY_MS + phaseMs / 10, () => void this.probe(s, node, undefined, true));
	}

	/**
	 * The worker asked the sender for a keyframe on the layer of `ssrc` (a `pli`/`fir` trace):
	 * if that layer's size is unknown, only derived, or older than resolutionRefreshMs, the tap
	 * reads it from this keyframe (its own request is folded into the pending one).
	 */
	keyframeAsked(s: ProfiledStream, ssrc: number, nowMs: number): void {
		const state = s.probe;
		if (!state || state.probing || s.node.kind !== 'producer' || s.acc.meta.appDataResolution) return;
		// A request our own tap made (an opt-in probe) is not another receiver's.
		if (nowMs <= state.inducedUntilMs) return;
		const layer = s.acc.meta.encodings.length > 1 ? s.acc.layerOfPacket(ssrc) : 0;
		if (layer < 0) return;
		const readAt = state.sizeReadAtMs?.get(layer);
		if (s.acc.hasResolution(layer) && !s.acc.resolutionDerived(layer) && readAt !== undefined && nowMs - readAt < this.options.resolutionRefreshMs) return;
		void this.probe(s, s.node, [layer], false);
	}

	/** Whether a keyframe seen at nowMs is one our own probe asked for. */
	induced(s: ProfiledStream, nowMs: number): boolean {
		return s.probe !== undefined && nowMs <= s.probe.inducedUntilMs;
	}

	/**
	 * Senders change a layer's size with a keyframe on it (Chromium scales a layer down
	 * under CPU or bandwidth pressure and back up when it eases), and keyframes are
	 * traced all the time: one the sender sent unasked has that layer's size re-read
	 * soon rather than at the next full refresh. Keyframes also answer other receivers'
	 * requests, and each read costs the sender one more, so a stream is re-read at most
	 * once per KEYFRAME_REPROBE_MIN_INTERVAL_MS; keyframes in between are kept and
	 * answered by one read when the interval is over, unless a probe read those layers since.
	 */
	senderKeyframe(s: ProfiledStream, packet: KeyframePacket, nowMs: number): void {
		const state = s.probe;
		if (!state || !this.options.keyframeProbes || s.node.kind !== 'producer' || s.acc.meta.appDataResolution) return;
		const node = s.node;
		// Simulcast: the keyframe's own layer. One encoding (SVC or plain): every spatial layer it carries.
		const simulcast = s.acc.meta.encodings.length > 1;
		const layer = simulcast ? s.acc.layerOfPacket(packet.ssrc, packet.rid ?? undefined) : -1;
		if (simulcast && layer < 0) return;
		const pending = (state.keyframeReprobes ??= new Map());
		const scheduled = pending.size > 0;
		pending.set(layer, nowMs);
		if (!scheduled) s.timers.later(Math.max(0, (state.keyframeReprobeAfterMs ?? 0) - nowMs), () => this.keyframeReprobe(s, node, state));
	}

	private keyframeReprobe(s: ProfiledStream, node: ProducerNode, state: ProbeState): void {
		if (!s.live) return;
		if (state.probing) return void s.timers.later(BUSY_RETRY_MS, () => this.keyframeReprobe(s, node, state));
		const readAt = (l: number): number => state.sizeReadAtMs?.get(l) ?? 0;
		const layerCount = Math.max(1, s.acc.meta.encodings.length, s.acc.meta.encodings[0]?.spatialLayers ?? 1);
		const stale = new Set<number>();
		for (const [layer, keyframeAt] of state.keyframeReprobes ?? []) {
			for (const l of layer < 0 ? [...Array(layerCount).keys()] : [layer]) if (readAt(l) < keyframeAt) stale.add(l);
		}
		state.keyframeReprobes?.clear();
		if (stale.size === 0) return;
		state.keyframeReprobeAfterMs = Date.now() + KEYFRAME_REPROBE_MIN_INTERVAL_MS;
		void this.probe(s, node, [...stale], true);
	}

	/** `asks`: the tap's keyframe request is its own (opt-in), not folded into one already pending. */
	private async probe(s: ProfiledStream, node: ProducerNode, onlyLayers: readonly number[] | undefined, asks: boolean): Promise<void> {
		const state = s.probe;
		if (!state || state.probing) return;
		state.probing = true;
		try {
			await this.probeLayers(s, state, node, onlyLayers, asks);
		} catch (error) {
			// Nothing in a probe is expected to throw outside its own request handling: counted, and the chain goes on.
			this.meter.swallowed('probe', error, { producerId: node.id }, node.handle.closed);
		} finally {
			state.probing = false;
		}
	}

	private async probeLayers(s: ProfiledStream, state: ProbeState, node: ProducerNode, onlyLayers: readonly number[] | undefined, asks: boolean): Promise<void> {
		const consumer = await this.taps.consumerOf(s, node);
		if (!consumer) return;
		const mime = s.acc.meta.mimeType?.toLowerCase() ?? '';
		const layers = Math.max(1, s.acc.meta.encodings.length, s.acc.meta.encodings[0]?.spatialLayers ?? 1);
		let wanted = -1;
		let done: (() => void) | undefined;
		this.taps.onPacket(s, (rtp) => {
			// A simulcast consumer switches layer only at a keyframe of the new layer; until
			// then it forwards the old one, whose keyframes must not be taken for the new.
			if (layers > 1 && consumer.currentLayers?.spatialLayer !== wanted) return;
			const size = wanted >= 0 ? resolutionOf(mime, rtp.payload) : undefined;
			if (!size) return;
			s.acc.setResolution(wanted, size.width, size.height);
			(state.sizeReadAtMs ??= new Map()).set(wanted, Date.now());
			// The keyframes this probe caused have arrived (a sender answers one request on all its
			// layers within tens of ms): a keyframe after that burst is the sender's own again, e.g.
			// a rescale, and must not be taken for induced until the window would have ended.
			state.inducedUntilMs = Math.min(state.inducedUntilMs, Date.now() + INDUCED_KEYFRAME_BURST_MS);
			done?.();
		});
		const waitMs = readWaitMs(this.options.probeWaitMs, asks);
		const seen = new Set<number>(onlyLayers ? [...Array(layers).keys()].filter((l) => !onlyLayers.includes(l)) : []);
		// A layer the sender has not switched on yet is retried on the next pass.
		// A folded read has one chance: the keyframe already on its way.
		for (let pass = 0; pass < (asks ? PROBE_PASSES : 1) && seen.size < layers && !consumer.closed; pass++) {
			for (let layer = layers - 1; layer >= 0 && !consumer.closed; layer--) {
				if (seen.has(layer)) continue;
				wanted = layer;
				state.inducedUntilMs = Date.now() + waitMs + 1000;
				try {
					if (layers > 1) {
						this.meter.request('tap', node.id);
						await consumer.setPreferredLayers({ spatialLayer: layer });
					}
					this.meter.request('tap', node.id);
					if (asks) s.acc.keyframeRequested();
					await consumer.resume();
					const found = await new Promise<boolean>((resolve) => {
						done = () => resolve(true);
						s.timers.later(waitMs, () => resolve(false));
					});
					if (found) seen.add(layer);
					this.meter.request('tap', node.id);
					await consumer.pause();
				} catch (error) {
					this.meter.swallowed('probe', error, { producerId: node.id }, consumer.closed);
					pass = PROBE_PASSES;
					break;
				}
			}
		}
		wanted = -1;
		this.taps.onPacket(s, undefined);
		if (!asks) return;
		// Each probe costs the sender a keyframe: a layer whose size cannot be read is not asked every few seconds.
		const newlySeen = [...seen].some((l) => onlyLayers?.includes(l));
		state.unresolvedRetryMs = onlyLayers && !newlySeen ? Math.min(2 * state.unresolvedRetryMs, this.options.resolutionRefreshMs) : UNRESOLVED_LAYER_RETRY_MS;
		if (s.live) this.schedule(s, state, node, this.options.resolutionRefreshMs);
	}

	/**
	 * Senders switch simulcast layers on as their bandwidth estimate ramps up, often
	 * after the probe gave up on them: a layer that is flowing with no known size is
	 * probed within seconds, not at the next full refresh.
	 */
	private schedule(s: ProfiledStream, state: ProbeState, node: ProducerNode, refreshInMs: number): void {
		const refreshAt = Date.now() + refreshInMs;
		const chain = ++state.chain;
		const check = (): void => {
			if (!s.live || state.chain !== chain) return;
			if (Date.now() >= refreshAt) return void this.probe(s, node, undefined, true);
			const missing = s.acc.unresolvedActiveLayers();
			if (missing.length > 0) return void this.probe(s, node, missing, true);
			s.timers.later(Math.min(state.unresolvedRetryMs, refreshAt - Date.now()), check);
		};
		s.timers.later(Math.min(state.unresolvedRetryMs, refreshInMs), check);
	}
}

/**
 * How long a read holds its layer's tap open for a keyframe. A read that asks (opt-in) waits
 * probeWaitMs for the keyframe its own request brings. A read folded into another receiver's
 * request may resume its tap just after that keyframe went by (the tap's setup takes channel
 * round trips, the sender answers within tens of ms): its tap's request then finds none
 * pending and goes out as a new one, which a sender that has just sent a keyframe may leave
 * unanswered until mediasoup re-sends it (KEYFRAME_REQUEST_RETRY_MS). Nobody else asks again
 * for a receiver that stays on its layer, so a read that gave up before that re-sent request
 * was answered would leave the layer without a size (a migrated producer whose one receiver
 * starts on its top layer). Only a read that finds nothing waits that long: a keyframe ends it.
 */
export function readWaitMs(probeWaitMs: number, asks: boolean): number {
	return asks ? probeWaitMs : Math.max(probeWaitMs, KEYFRAME_REQUEST_RETRY_MS + KEYFRAME_ANSWER_MARGIN_MS);
}

export function resolutionOf(mimeType: string, payload: Uint8Array): { width: number; height: number } | undefined {
	if (mimeType.endsWith('/vp8')) {
		const r = parseVp8Payload(payload)?.resolution;
		return r ? { width: r.width, height: r.height } : undefined;
	}
	if (mimeType.endsWith('/vp9')) {
		const v = parseVp9Payload(payload);
		const size = v?.descriptor.ss?.sizes?.at(-1);
		return size ? { width: size.width, height: size.height } : undefined;
	}
	if (mimeType.endsWith('/h264')) {
		const sps = findSps(payload);
		const parsed = sps ? parseSps(sps) : undefined;
		return parsed ? { width: parsed.width, height: parsed.height } : undefined;
	}
	return undefined;
}
