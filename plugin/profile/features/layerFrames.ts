/**
 * Framerate per simulcast layer from sampled `rtp` traces. A trace window sees
 * the packets of every layer, so each layer's frames are counted over the same
 * windows, and
 *
 *     fps_layer = Σ_windows frames_layer / Σ_windows duration
 *
 * over the windows in which the layer sent anything (one switched off is not a
 * slow one). The duration is the time the trace was on, as the caller reports
 * it (openWindow/closeWindow), and a frame counts when its last packet (RTP
 * marker) arrives within it, so the expected count is exactly rate × duration
 * whatever the content does near the window's edges. Estimating the duration
 * from the frames themselves (span × n/(n − 1)) is off by up to 2% per window
 * when the rate changes within it, as Chromium's does after scene cuts, and
 * counting a sparse layer over its own first-to-last span overstates it.
 *
 * Durations are wall time, not RTP time: framerate is frames per second as the
 * sender's own statistics report it, and a sender's RTP clock may run off the
 * wall clock (Chromium's fake capture device's does by 0.35%; a replayed loop
 * adds the gap it stitches in at each pass).
 */

export interface LayerFrameEvent {
	arrivalMs: number;
	/** Spatial layer (encoding index) of the packet. */
	layer: number;
	rtpTimestamp: number;
	/** RTP marker bit: the last packet of a frame. */
	marker: boolean;
}

export interface LayerFrameRatesOptions {
	/** Windows that ended longer ago than this no longer count. */
	horizonMs?: number;
	/** Windows kept at most (oldest dropped). */
	maxWindows?: number;
}

/** How long after a window closed its packets may still be arriving. */
const LATE_DELIVERY_MS = 250;

interface TraceWindow {
	openMs: number;
	closeMs?: number;
	/** Per layer: frames ended in the window and the timestamp of the last one. */
	layers: Map<number, { frames: number; lastTs: number }>;
}

export class LayerFrameRates {
	private horizonMs: number;
	private readonly maxWindows: number;
	private readonly windows: TraceWindow[] = [];

	constructor(options: LayerFrameRatesOptions = {}) {
		this.horizonMs = options.horizonMs ?? 60_000;
		this.maxWindows = options.maxWindows ?? 256;
	}

	private get open(): TraceWindow | undefined {
		const w = this.windows[this.windows.length - 1];
		return w && w.closeMs === undefined ? w : undefined;
	}

	/** The trace was switched on (again); a window still open ends here. */
	openWindow(atMs: number): void {
		this.closeWindow(atMs);
		this.windows.push({ openMs: atMs, layers: new Map() });
		if (this.windows.length > this.maxWindows) this.windows.shift();
	}

	closeWindow(atMs: number): void {
		const w = this.open;
		if (w) w.closeMs = Math.max(atMs, w.openMs);
	}

	/**
	 * A traced packet. One arriving after its window was reported closed was
	 * traced while it was open (the switch takes a channel round trip to reach
	 * the worker, as the packets take to come back) and counts in that window;
	 * later ones (a trace the app itself switched on) are not the sampler's.
	 */
	add(e: LayerFrameEvent): void {
		const w = this.windows[this.windows.length - 1];
		if (!w || (w.closeMs !== undefined && e.arrivalMs - w.closeMs > LATE_DELIVERY_MS)) return;
		if (!e.marker || !Number.isInteger(e.layer) || e.layer < 0) return;
		const count = w.layers.get(e.layer);
		if (!count) w.layers.set(e.layer, { frames: 1, lastTs: e.rtpTimestamp });
		// A retransmitted or duplicated marker packet is not another frame.
		else if (count.lastTs !== e.rtpTimestamp) {
			count.frames++;
			count.lastTs = e.rtpTimestamp;
		}
	}

	/** Windows sampled less often need a longer horizon to keep more than one (see the profiler's trace backoff). */
	setHorizon(horizonMs: number): void {
		this.horizonMs = horizonMs;
	}

	/** Frames per second of each layer over the windows within the horizon ending at nowMs. */
	rates(nowMs: number): Map<number, number> {
		return this.ratesOver(this.windows, nowMs);
	}

	/**
	 * Whether the newest closed window's framerates agree with those of the windows before it
	 * (same layers sending, each within `tolerance` as a fraction): the sampled rate held. False
	 * with no earlier window to compare with.
	 */
	newestWindowAgrees(tolerance: number): boolean {
		const newest = this.windows[this.windows.length - 1];
		if (!newest || newest.closeMs === undefined || this.windows.length < 2) return false;
		const latest = this.ratesOver([newest], newest.closeMs);
		const before = this.ratesOver(this.windows.slice(0, -1), newest.openMs);
		if (before.size === 0 || latest.size !== before.size) return false;
		for (const [layer, fps] of latest) {
			const earlier = before.get(layer);
			if (earlier === undefined || Math.abs(fps - earlier) > tolerance * earlier) return false;
		}
		return true;
	}

	private ratesOver(windows: readonly TraceWindow[], nowMs: number): Map<number, number> {
		const frames = new Map<number, number>();
		const seconds = new Map<number, number>();
		for (const w of windows) {
			const end = Math.min(w.closeMs ?? nowMs, nowMs);
			if (end <= nowMs - this.horizonMs || !(end > w.openMs)) continue;
			for (const [layer, c] of w.layers) {
				frames.set(layer, (frames.get(layer) ?? 0) + c.frames);
				seconds.set(layer, (seconds.get(layer) ?? 0) + (end - w.openMs) / 1000);
			}
		}
		const fps = new Map<number, number>();
		for (const [layer, n] of frames) fps.set(layer, n / seconds.get(layer)!);
		return fps;
	}
}
