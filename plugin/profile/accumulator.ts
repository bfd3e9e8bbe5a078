/**
 * Per-stream profile state, fed by the profiler's I/O side (stats rounds, sampled
 * traces, the payload tap) and turned into a StreamProfile on demand. Pure: no
 * mediasoup, no clocks of its own (every input carries its time), so it is unit
 * tested with recorded or constructed inputs.
 */
import { parseAudioLevel, VoiceActivity } from './features/audioLevel';
import { classifyVideoSource } from './features/classify';
import { audioComplexity, dataComplexity, videoComplexity } from './features/complexity';
import { EntropyTracker } from './features/entropy';
import { frameStats, type RtpFrameEvent } from './features/frames';
import { LayerFrameRates } from './features/layerFrames';
import { OpusSummary } from './features/opus';
import { DataMessageStats } from './features/dataMessages';
import { LAYER_RATE_SCENE_DEFAULTS, LayeredSceneChangeDetector, type SceneChange } from './features/spikes';
import { varianceProfile } from './features/variance';
import { TimeSeriesWindow } from './features/windows';
import {
	PROFILE_SCHEMA_VERSION,
	type AudioProfile,
	type LayerProfile,
	type StreamEntityKind,
	type StreamProfile,
	type VideoProfile,
} from './schema';

export interface StreamMeta {
	streamId: string;
	entity: StreamEntityKind;
	kind: 'audio' | 'video' | 'data';
	workerId: string;
	routerId: string;
	transportId: string;
	producerId?: string;
	mimeType?: string;
	clockRate?: number;
	/** Negotiated channels (Opus: 2 only with stereo=1; its rtpParameters always say 2). */
	channels?: number;
	/** Encodings as negotiated: one per simulcast layer (or one for SVC/single). */
	encodings: Array<{ ssrc?: number; rid?: string; temporalLayers?: number; spatialLayers?: number; scaleResolutionDownBy?: number }>;
	/** The app's appData.source (e.g. 'webcam', 'screen', 'mic', 'chat'). */
	appDataSource?: unknown;
	/** The app's own per-layer resolution (appData), preferred over the tap when present. */
	appDataResolution?: Array<{ width: number; height: number }>;
	/** Keywords to count in string data messages (opt-in; counts only). */
	keywords?: readonly string[];
	/**
	 * A consumer whose profile takes its producer's window statistics (profileFrom): its
	 * own entropy and scene-change detection are not kept, since they would only restate
	 * its producer's.
	 */
	inheritsWindows?: boolean;
}

/** One getStats() round for an RTP stream, normalized by the I/O side. */
export interface RtpStatsSample {
	atMs: number;
	byteCount: number;
	packetCount: number;
	/** Per encoding, matched to meta.encodings by ssrc or rid. */
	layers: Array<{ ssrc?: number; rid?: string; byteCount: number; packetCount: number }>;
	/** RTCP fraction lost, 0..255. */
	fractionLost: number;
	/** RTP timestamp units. */
	jitter: number;
	nackCount: number;
	pliCount: number;
	firCount: number;
	score?: number;
	roundTripTimeMs?: number;
	/** For consumers: the spatial/temporal layer currently forwarded. */
	currentLayers?: { spatialLayer: number; temporalLayer?: number };
}

export interface DataStatsSample {
	atMs: number;
	messageCount: number;
	byteCount: number;
}

interface Counter {
	atMs: number;
	bytes: number;
	packets: number;
}

const MAX_FRAME_EVENTS = 4096;
/** Stats rounds closer than this to the previous one update counters' baseline only later. */
const MIN_RATE_INTERVAL_MS = 250;
/** A layer without bytes for longer than this is off. */
const LAYER_IDLE_MS = 3000;
/** 1 s samples for an hour: the longest variance window plus slack. */
const SERIES_CAPACITY = 3600;
/**
 * The entropy score covers a 60-sample window, so one new sample moves it by
 * ~2 %: it is rescored every this many samples, however often profile() runs
 * (every round when windowStatsEveryMs is the stats interval).
 */
const ENTROPY_RESCORE_SAMPLES = 5;
const VOICE_WINDOW_MS = 60_000;
/** Trace windows of the last minute make the per-layer framerate. */
const FPS_HORIZON_MS = 60_000;
/**
 * A layer whose sender report arrived this recently has its scene-change rates from sender
 * reports, not from getStats() rounds. Browsers send one per SSRC every second or so (RFC 3550
 * randomises it between 0.5× and 1.5× the interval); several seconds without one means the
 * sender stopped reporting and the rounds take over again.
 */
const SENDER_REPORTS_FRESH_MS = 5000;

export class StreamAccumulator {
	private readonly bitrate = new TimeSeriesWindow(SERIES_CAPACITY);
	private readonly entropy = new EntropyTracker();
	private entropyScore: number | undefined;
	/** Samples the entropy tracker has taken since entropyScore was computed. */
	private entropyPending = 0;
	private readonly sceneChanges = new LayeredSceneChangeDetector(LAYER_RATE_SCENE_DEFAULTS);
	/** Natural (not Foresight-induced) keyframes seen by the keyframe trace, for the keyframe rate. */
	private readonly keyframes = new TimeSeriesWindow(1024);
	private readonly layerRates = new Map<number, { bps: number; pps: number; last?: Counter; lastFlowMs?: number }>();
	/** Per layer: the last RTCP sender report's arrival and octet count, and whether the layer flowed up to it. */
	private readonly reported = new Map<number, { atMs: number; octets: number; flowed: boolean }>();
	/** The keyframe requests come from traces, at the moment they are sent (see keyframeRequestSent). */
	private requestsTraced = false;
	private last: Counter | undefined;
	private lastStats: RtpStatsSample | undefined;
	private lastBps = 0;
	private lastPps = 0;
	private lastPliFir = 0;
	private readonly frameEvents: RtpFrameEvent[] = [];
	/** frameStats() of frameEvents, recomputed only after new events (they arrive in sampled bursts). */
	private frameCache: ReturnType<typeof frameStats> | undefined;
	private readonly resolution = new Map<number, { width: number; height: number }>();
	/** Layers whose size in `resolution` is derived from another layer's by the scale factors. */
	private readonly derived = new Set<number>();
	private keyframesRequested = 0;
	/**
	 * SSRC → layer index for rid-only encodings. A browser tags only its first packets
	 * with the RID header extension, so most traced packets carry just an SSRC; the
	 * pairing is learned from stats (which report both) and from the tagged packets.
	 */
	private readonly layerBySsrc = new Map<number, number>();
	private readonly opus = new OpusSummary();
	/**
	 * Over a minute: with the tap sampled (1 s in 10 by default) a shorter window holds one
	 * tap window, i.e. says whether someone spoke in that second, not how much they talk.
	 */
	private readonly voice = new VoiceActivity({ windowMs: VOICE_WINDOW_MS });
	private readonly layerFrames: LayerFrameRates;
	private readonly messages: DataMessageStats;
	private dataLast: DataStatsSample | undefined;
	private dataRate = { messagesPerS: 0, bytesPerS: 0 };

	constructor(readonly meta: StreamMeta) {
		meta.appDataResolution?.forEach((r, layer) => this.resolution.set(layer, r));
		this.messages = new DataMessageStats({ keywords: meta.keywords ?? [] });
		this.layerFrames = new LayerFrameRates({ horizonMs: FPS_HORIZON_MS });
	}

	/** A getStats() round for a producer or consumer. */
	addRtpStats(s: RtpStatsSample): void {
		// Rates over a very short interval are mostly rounding: keep the older baseline.
		if (this.last && s.atMs - this.last.atMs < MIN_RATE_INTERVAL_MS) {
			this.lastStats = { ...s, layers: this.lastStats?.layers ?? s.layers };
			return;
		}
		const last = this.last;
		if (last && s.atMs > last.atMs && s.byteCount >= last.bytes) {
			const dt = (s.atMs - last.atMs) / 1000;
			this.lastBps = (8 * (s.byteCount - last.bytes)) / dt;
			this.lastPps = Math.max(0, s.packetCount - last.packets) / dt;
			this.bitrate.add(s.atMs, this.lastBps);
			if (!this.meta.inheritsWindows) {
				this.addEntropySample(this.lastBps);
				const requests = s.pliCount + s.firCount;
				// A keyframe answering a PLI/FIR is not a scene change.
				if (requests > this.lastPliFir && !this.requestsTraced) this.sceneChanges.addKeyframeRequest(s.atMs);
				// A rate is the mean over its interval: the change it shows happened within it, at its middle on average.
				if (this.meta.kind === 'video' && s.layers.length <= 1 && !this.reportsFresh(0, s.atMs)) this.sceneChanges.add(0, (s.atMs + last.atMs) / 2, this.lastBps);
			}
		}
		this.lastPliFir = s.pliCount + s.firCount;
		// Counters are updated in place: one object per stream and layer for its whole life.
		if (last) {
			last.atMs = s.atMs;
			last.bytes = s.byteCount;
			last.packets = s.packetCount;
		} else this.last = { atMs: s.atMs, bytes: s.byteCount, packets: s.packetCount };
		for (let i = 0; i < s.layers.length; i++) {
			const layer = s.layers[i]!;
			const index = this.layerIndex(layer, i);
			if (layer.ssrc !== undefined && layer.rid !== undefined) this.layerBySsrc.set(layer.ssrc, index);
			let state = this.layerRates.get(index);
			if (!state) this.layerRates.set(index, (state = { bps: 0, pps: 0 }));
			const last = state.last;
			if (last && s.atMs > last.atMs && layer.byteCount >= last.bytes) {
				const dt = (s.atMs - last.atMs) / 1000;
				state.bps = (8 * (layer.byteCount - last.bytes)) / dt;
				state.pps = Math.max(0, layer.packetCount - last.packets) / dt;
				// A layer switching on or off (bandwidth, CPU, no receiver) changes its rate without any
				// change of scene: only intervals it flowed through from end to end are evidence.
				const flowedThrough = layer.byteCount > last.bytes && state.lastFlowMs === last.atMs;
				if (layer.byteCount > last.bytes) state.lastFlowMs = s.atMs;
				if (this.meta.kind === 'video' && s.layers.length > 1 && flowedThrough && !this.meta.inheritsWindows && !this.reportsFresh(index, s.atMs)) {
					this.sceneChanges.add(index, (s.atMs + last.atMs) / 2, state.bps);
				}
			}
			if (last) {
				last.atMs = s.atMs;
				last.bytes = layer.byteCount;
				last.packets = layer.packetCount;
			} else state.last = { atMs: s.atMs, bytes: layer.byteCount, packets: layer.packetCount };
		}
		this.lastStats = s;
	}

	/**
	 * An RTCP sender report of a video producer's layer (the `sr` trace), at its arrival. The
	 * sender counts its octets itself about once a second per layer, without a request, so the
	 * scene-change detector gets each layer's rate at that spacing whatever the getStats()
	 * tier: a cut is placed within a second only from rates that fine (a slow-tier round's 5 s
	 * rate holds a cut somewhere in 5 s). Like the rounds' rates, only intervals the layer
	 * flowed through from end to end are evidence.
	 */
	addSenderReport(atMs: number, ssrc: number, octetCount: number): void {
		if (this.meta.kind !== 'video' || this.meta.inheritsWindows) return;
		const layer = this.layerOfPacket(ssrc);
		if (layer < 0) return;
		const last = this.reported.get(layer);
		if (!last) {
			this.reported.set(layer, { atMs, octets: octetCount, flowed: false });
			return;
		}
		if (!(atMs > last.atMs)) return;
		// The sender's octet count is 32 bits and wraps.
		const octets = (octetCount - last.octets) >>> 0;
		const flowed = octets > 0;
		// A rate is the mean over its interval: the change it shows happened within it, at its middle on average.
		if (flowed && last.flowed) this.sceneChanges.add(layer, (atMs + last.atMs) / 2, (8 * octets * 1000) / (atMs - last.atMs));
		last.atMs = atMs;
		last.octets = octetCount;
		last.flowed = flowed;
	}

	/** The worker asked the sender for a keyframe (a `pli` or `fir` trace): its burst in the next rates is no scene change. */
	keyframeRequestSent(atMs: number): void {
		this.requestsTraced = true;
		this.sceneChanges.addKeyframeRequest(atMs);
	}

	private reportsFresh(layer: number, atMs: number): boolean {
		const r = this.reported.get(layer);
		return r !== undefined && atMs - r.atMs <= SENDER_REPORTS_FRESH_MS;
	}

	/** A sampled `rtp` trace event (or a tapped packet) of a video stream. */
	addRtpEvent(event: RtpFrameEvent & { spatialLayer?: number }): void {
		if (this.frameEvents.length >= MAX_FRAME_EVENTS) this.frameEvents.splice(0, this.frameEvents.length - MAX_FRAME_EVENTS / 2);
		this.frameEvents.push(event);
		this.frameCache = undefined;
	}

	/** The `rtp` trace was switched on (a new window starts) or off, for the framerate per layer. */
	rtpTraceSwitched(atMs: number, on: boolean): void {
		if (on) this.layerFrames.openWindow(atMs);
		else this.layerFrames.closeWindow(atMs);
	}

	/** Whether the last trace window's framerate per layer agreed with the earlier ones (within `tolerance`). */
	traceWindowAgreed(tolerance: number): boolean {
		return this.layerFrames.newestWindowAgrees(tolerance);
	}

	/** The trace windows now come `periodMs` apart: the framerate keeps the last two or so (at least FPS_HORIZON_MS). */
	traceWindowsEvery(periodMs: number): void {
		this.layerFrames.setHorizon(Math.max(FPS_HORIZON_MS, 2 * periodMs));
	}

	/**
	 * A sampled `rtp` trace event of any layer of a video producer, for the framerate per layer
	 * (frames end at marker packets) and the SSRCs of rid-only layers (packets tagged with a RID).
	 * Positional: it runs for every traced packet.
	 */
	addLayerRtpEvent(arrivalMs: number, ssrc: number, rid: string | undefined, rtpTimestamp: number, marker: boolean): void {
		if (!marker && rid === undefined) return;
		const layer = this.layerOfPacket(ssrc, rid);
		if (layer >= 0 && marker) this.layerFrames.add({ arrivalMs, layer, rtpTimestamp, marker });
	}

	/** The encoding (simulcast layer) index of a packet of this producer; 0 with one encoding; −1 when not yet known. */
	layerOfPacket(ssrc: number, rid?: string): number {
		const encodings = this.meta.encodings;
		if (encodings.length <= 1) return 0;
		// A loop, not findIndex: this runs for traced packets, without a closure per call.
		let byId = -1;
		for (let i = 0; i < encodings.length; i++) {
			const e = encodings[i]!;
			if (e.ssrc === ssrc || (rid !== undefined && e.rid === rid)) {
				byId = i;
				break;
			}
		}
		if (byId >= 0 && rid !== undefined) this.layerBySsrc.set(ssrc, byId);
		return byId >= 0 ? byId : (this.layerBySsrc.get(ssrc) ?? -1);
	}

	/** The scene changes detected with fromMs < t ≤ toMs, oldest first. */
	sceneChangesBetween(fromMs: number, toMs: number): SceneChange[] {
		return this.sceneChanges.changes(fromMs, toMs);
	}

	/** A keyframe seen by the keyframe trace. */
	addKeyframe(atMs: number, inducedByFores: boolean): void {
		// Keyframes Foresight itself caused (tap resumes) say nothing about the content,
		// and their burst in the next rate sample is no scene change.
		if (inducedByFores) {
			this.sceneChanges.addKeyframeRequest(atMs);
			return;
		}
		this.keyframes.add(atMs, 1);
	}

	/** Spatial layers that carried bytes lately but whose resolution is still unknown. */
	unresolvedActiveLayers(): number[] {
		return this.layers()
			.filter((l) => l.active && !this.resolution.has(l.spatialLayer))
			.map((l) => l.spatialLayer);
	}

	setResolution(spatialLayer: number, width: number, height: number): void {
		// The app's own figures win: it knows its capture settings.
		if (this.meta.appDataResolution?.[spatialLayer]) return;
		this.resolution.set(spatialLayer, { width, height });
		this.derived.delete(spatialLayer);
		this.deriveByScale(spatialLayer, width, height);
	}

	/**
	 * Simulcast layers are the capture scaled down by their encodings' scaleResolutionDownBy
	 * (a browser sends them with the encodings; the encoder truncates): one layer read from a
	 * keyframe gives the others without asking the sender for theirs. A size read from a
	 * layer's own keyframe replaces a derived one, and a newer read re-derives the rest.
	 */
	private deriveByScale(fromLayer: number, width: number, height: number): void {
		const encodings = this.meta.encodings;
		const scale = encodings[fromLayer]?.scaleResolutionDownBy;
		if (encodings.length <= 1 || !(scale !== undefined && scale >= 1)) return;
		encodings.forEach((e, layer) => {
			const s = e.scaleResolutionDownBy;
			if (layer === fromLayer || !(s !== undefined && s >= 1) || this.meta.appDataResolution?.[layer]) return;
			if (this.resolution.has(layer) && !this.derived.has(layer)) return;
			this.resolution.set(layer, { width: Math.floor((width * scale) / s), height: Math.floor((height * scale) / s) });
			this.derived.add(layer);
		});
	}

	hasResolution(spatialLayer: number): boolean {
		return this.resolution.has(spatialLayer);
	}

	/** Whether a layer's size is only derived from another layer's (see deriveByScale). */
	resolutionDerived(spatialLayer: number): boolean {
		return this.derived.has(spatialLayer);
	}

	/** The profiler asked the sender for a keyframe to read a size (counted in the video profile). */
	keyframeRequested(): void {
		this.keyframesRequested++;
	}

	/** A tapped audio packet: Opus payload and, if negotiated, its ssrc-audio-level extension. */
	addAudioPacket(atMs: number, payload: Uint8Array, audioLevelExtension?: Uint8Array): void {
		this.opus.add(payload);
		if (audioLevelExtension) {
			const level = parseAudioLevel(audioLevelExtension);
			if (level) this.voice.add(atMs, level);
		}
	}

	addDataStats(s: DataStatsSample): void {
		const prev = this.dataLast;
		if (prev && s.atMs - prev.atMs < MIN_RATE_INTERVAL_MS) return;
		if (prev && s.atMs > prev.atMs && s.byteCount >= prev.byteCount) {
			const dt = (s.atMs - prev.atMs) / 1000;
			this.dataRate = {
				messagesPerS: Math.max(0, s.messageCount - prev.messageCount) / dt,
				bytesPerS: (s.byteCount - prev.byteCount) / dt,
			};
			this.bitrate.add(s.atMs, 8 * this.dataRate.bytesPerS);
			this.addEntropySample(8 * this.dataRate.bytesPerS);
		}
		this.dataLast = s;
	}

	/** A tapped data message; its text is scanned for keywords and then forgotten. */
	addDataMessage(atMs: number, size: number, text: string | undefined): void {
		this.messages.add(atMs, size, text !== undefined, text);
	}

	/**
	 * What a consumer receives from this stream per second: for a simulcast
	 * `spatialLayer`, that layer's rate; otherwise everything (a single encoding,
	 * SVC or a pipe; the consumer's own stats scale it for what it drops).
	 */
	forwardedRate(spatialLayer?: number): { bps: number; pps: number } {
		if (spatialLayer === undefined || this.meta.encodings.length <= 1) return { bps: this.lastBps, pps: this.lastPps };
		const layer = this.layerRates.get(spatialLayer);
		return layer ? { bps: layer.bps, pps: layer.pps } : { bps: 0, pps: 0 };
	}

	/**
	 * `previous`, a full profile() of this stream, with this round's flow and layer
	 * rates: for streams whose window statistics (variance, entropy, scene changes)
	 * are rebuilt on a slower cadence than their flow.
	 */
	withCurrentFlow(previous: StreamProfile, nowMs: number): StreamProfile {
		// Which layers flow changes with the flow: a profile must not pair this round's bitrate with an old round's layers.
		const layers = previous.layers.map((l) => {
			const rate = this.layerRates.get(l.spatialLayer);
			return { ...l, bitrateBps: rate?.bps ?? 0, packetRate: rate?.pps ?? 0, active: this.layerActive(l.spatialLayer, rate) };
		});
		const profile: StreamProfile = { ...previous, ts: nowMs, flow: this.flow(), layers };
		const video = previous.video;
		if (video) {
			const { top, activeLayers } = topActiveLayer(layers);
			// Most rounds change no layer's state: the previous video summary is still true and is shared.
			if (top?.width !== video.width || top?.height !== video.height || activeLayers !== video.activeLayers) {
				const { width: _w, height: _h, ...rest } = video;
				profile.video = { ...rest, ...(top?.width !== undefined ? { width: top.width, height: top.height } : {}), activeLayers };
			}
		}
		return profile;
	}

	get currentBitrateBps(): number {
		return this.meta.kind === 'data' ? 8 * this.dataRate.bytesPerS : this.lastBps;
	}

	/**
	 * Built field by field: spreads of optional fields (`...(x ? { x } : {})`) made
	 * building a profile several times slower than computing what is in it.
	 */
	profile(nowMs: number): StreamProfile {
		const m = this.meta;
		const variance = varianceProfile(this.bitrate, nowMs);
		const profile: StreamProfile = {
			schemaVersion: PROFILE_SCHEMA_VERSION,
			ts: nowMs,
			streamId: m.streamId,
			entity: m.entity,
			kind: m.kind,
			// dataType, layers and complexity are set below for each kind.
			dataType: 'audio',
			workerId: m.workerId,
			routerId: m.routerId,
			transportId: m.transportId,
			flow: this.flow(),
			layers: [],
			variance,
			complexity: 0,
			entropy: this.currentEntropy(),
		};
		if (m.producerId !== undefined) profile.producerId = m.producerId;
		if (m.mimeType !== undefined) profile.mimeType = m.mimeType;
		if (m.kind === 'data') {
			// Rates from the worker's counters (exact); sizes, string share and keywords from the tap.
			const tapped = this.messages.summary(nowMs);
			profile.dataType = tapped.stringShare < 0.5 && tapped.meanBytes > 0 ? 'binary' : 'text';
			profile.flow.bitrateBps = 8 * this.dataRate.bytesPerS;
			profile.flow.packetRate = this.dataRate.messagesPerS;
			profile.data = { ...tapped, messagesPerS: this.dataRate.messagesPerS, bytesPerS: this.dataRate.bytesPerS };
			profile.complexity = dataComplexity(this.dataRate.bytesPerS);
			return profile;
		}
		if (m.kind === 'audio') {
			const opus = this.opus.summary();
			const audio: AudioProfile = {
				clockRate: m.clockRate ?? 48000,
				// What the encoder actually sends (TOC stereo flag) beats what was negotiated.
				channels: this.opus.packets > 0 ? (this.opus.stereoShare >= 0.5 ? 2 : 1) : (m.channels ?? 1),
			};
			if (opus.opusMode !== undefined) audio.opusMode = opus.opusMode;
			if (opus.opusBandwidth !== undefined) audio.opusBandwidth = opus.opusBandwidth;
			if (opus.frameMs !== undefined) audio.frameMs = opus.frameMs;
			if (opus.dtx !== undefined) audio.dtx = opus.dtx;
			const voiceActivity = this.voice.ratio(nowMs);
			if (voiceActivity !== undefined) audio.voiceActivity = voiceActivity;
			profile.layers = this.layers();
			profile.audio = audio;
			profile.complexity = audioComplexity(audio);
			return profile;
		}
		const frames = (this.frameCache ??= frameStats(this.frameEvents, { clockRate: m.clockRate ?? 90000 }));
		const scenes = this.sceneChanges.summary(nowMs, 60_000);
		const layers = this.layers(this.layerFrames.rates(nowMs), frames.fps);
		const { top, activeLayers } = topActiveLayer(layers);
		const video: VideoProfile = { activeLayers, sceneChanges: scenes };
		if (top?.width !== undefined) {
			video.width = top.width;
			video.height = top.height;
		}
		const fps = top?.fps ?? frames.fps;
		if (fps !== undefined) video.fps = fps;
		const temporalLayers = m.encodings[0]?.temporalLayers;
		if (temporalLayers !== undefined) video.temporalLayers = temporalLayers;
		const keyframesPerMin = this.keyframesPerMin(nowMs, frames.keyframesPerMin);
		if (keyframesPerMin !== undefined) video.keyframesPerMin = keyframesPerMin;
		if (frames.frameBytes) video.frameBytes = frames.frameBytes;
		if (this.keyframesRequested > 0) video.keyframesRequested = this.keyframesRequested;
		const source = classifyVideoSource({
			appDataSource: m.appDataSource,
			width: video.width,
			height: video.height,
			fps: video.fps,
			burstiness: variance.burstiness,
			frameBytes: video.frameBytes,
		});
		profile.dataType = source.dataType;
		profile.layers = layers;
		profile.video = video;
		profile.complexity = videoComplexity({ mimeType: m.mimeType, layers, sceneChangesPerMin: scenes.perMin, bitrateBps: this.lastBps });
		return profile;
	}

	/**
	 * A consumer's profile from its own flow and layers and its producer's window statistics
	 * (variance, entropy, scene changes, keyframe rate, frame sizes, framerates, data type,
	 * audio details): a consumer forwards its producer's media, so recomputing them from its
	 * own derived counters would only restate them at more cost. Its variance windows' levels
	 * are its producer's scaled by its current share of the producer's bitrate (the layers
	 * and temporal layers it receives); their shape (cv, burstiness) is the producer's.
	 */
	profileFrom(producer: StreamProfile, nowMs: number): StreamProfile {
		const m = this.meta;
		const flow = this.flow();
		const share = producer.flow.bitrateBps > 0 ? flow.bitrateBps / producer.flow.bitrateBps : 0;
		const profile: StreamProfile = {
			schemaVersion: PROFILE_SCHEMA_VERSION,
			ts: nowMs,
			streamId: m.streamId,
			entity: m.entity,
			kind: m.kind,
			dataType: producer.dataType,
			workerId: m.workerId,
			routerId: m.routerId,
			transportId: m.transportId,
			flow,
			layers: [],
			variance: {
				windows: producer.variance.windows.map((w) => ({ windowS: w.windowS, meanBps: w.meanBps * share, stdBps: w.stdBps * share, cv: w.cv })),
				burstiness: producer.variance.burstiness,
			},
			complexity: producer.complexity,
			entropy: producer.entropy,
		};
		if (m.producerId !== undefined) profile.producerId = m.producerId;
		if (m.mimeType !== undefined) profile.mimeType = m.mimeType;
		if (m.kind === 'audio') {
			profile.layers = this.layers();
			if (producer.audio) profile.audio = producer.audio;
			return profile;
		}
		const fpsByLayer = new Map<number, number>();
		for (const l of producer.layers) {
			if (l.fps !== undefined) fpsByLayer.set(l.spatialLayer, l.fps);
			if (l.width !== undefined && l.height !== undefined && !this.resolution.has(l.spatialLayer)) this.resolution.set(l.spatialLayer, { width: l.width, height: l.height });
		}
		const layers = this.layers(fpsByLayer, producer.video?.fps);
		const { top, activeLayers } = topActiveLayer(layers);
		const pv = producer.video;
		const video: VideoProfile = { activeLayers, sceneChanges: pv?.sceneChanges ?? { count: 0, perMin: 0, meanMagnitude: 0 } };
		if (top?.width !== undefined) {
			video.width = top.width;
			video.height = top.height;
		}
		const fps = top?.fps ?? pv?.fps;
		if (fps !== undefined) video.fps = fps;
		if (pv?.temporalLayers !== undefined) video.temporalLayers = pv.temporalLayers;
		if (pv?.keyframesPerMin !== undefined) video.keyframesPerMin = pv.keyframesPerMin;
		if (pv?.frameBytes) video.frameBytes = pv.frameBytes;
		profile.layers = layers;
		profile.video = video;
		profile.complexity = videoComplexity({ mimeType: m.mimeType, layers, sceneChangesPerMin: video.sceneChanges.perMin, bitrateBps: this.lastBps });
		return profile;
	}

	private addEntropySample(bps: number): void {
		this.entropy.add(bps);
		this.entropyPending++;
	}

	private currentEntropy(): number {
		if (this.entropyScore === undefined || this.entropyPending >= ENTROPY_RESCORE_SAMPLES) {
			this.entropyScore = this.entropy.predictive();
			if (this.entropyScore !== undefined) this.entropyPending = 0;
		}
		return this.entropyScore ?? 0;
	}

	/** The keyframe trace sees every keyframe; sampled frames only some (and a tap starts at one). */
	private keyframesPerMin(nowMs: number, sampled: number | undefined): number | undefined {
		if (this.keyframes.size > 0) return this.keyframes.countAndSumSince(nowMs - 60_000, nowMs).count;
		return sampled;
	}

	private flow(): StreamProfile['flow'] {
		const s = this.lastStats;
		const clockRate = this.meta.clockRate ?? 90000;
		const flow: StreamProfile['flow'] = {
			bitrateBps: this.lastBps,
			packetRate: this.lastPps,
			lossFraction: s ? Math.min(1, s.fractionLost / 256) : 0,
			jitterMs: s ? (1000 * s.jitter) / clockRate : 0,
			nackCount: s?.nackCount ?? 0,
			pliCount: s?.pliCount ?? 0,
			firCount: s?.firCount ?? 0,
		};
		if (s?.roundTripTimeMs !== undefined) flow.rttMs = s.roundTripTimeMs;
		if (s?.score !== undefined) flow.score = s.score;
		return flow;
	}

	/**
	 * Layers as negotiated; for consumers, the one(s) being forwarded are active.
	 * fpsByLayer comes from the traces of every layer; a layer the traces have not
	 * seen falls back to the top layer's (simulcast layers share the capture rate
	 * unless the encoder drops frames).
	 */
	private layers(fpsByLayer?: ReadonlyMap<number, number>, topFps?: number): LayerProfile[] {
		const m = this.meta;
		const count = Math.max(m.encodings.length, m.encodings[0]?.spatialLayers ?? 1);
		const out: LayerProfile[] = [];
		for (let i = 0; i < count; i++) {
			const enc = m.encodings[i];
			const rate = this.layerRates.get(i);
			const res = this.resolution.get(i);
			const fps = m.kind === 'video' ? (fpsByLayer?.get(i) ?? topFps) : undefined;
			const active = this.layerActive(i, rate);
			// Assigned field by field: spreads of optional fields cost more than the rest of a profile.
			const layer: LayerProfile = { spatialLayer: i, bitrateBps: rate?.bps ?? 0, packetRate: rate?.pps ?? 0, active };
			if (enc?.rid !== undefined) layer.rid = enc.rid;
			if (enc?.ssrc !== undefined) layer.ssrc = enc.ssrc;
			if (res) {
				layer.width = res.width;
				layer.height = res.height;
			}
			if (fps !== undefined) layer.fps = fps;
			if (enc?.temporalLayers !== undefined) layer.temporalLayers = enc.temporalLayers;
			out.push(layer);
		}
		return out;
	}

	/**
	 * A consumer's layers up to the one forwarded are on; a producer's layer is on if it
	 * carried bytes lately: one quiet stats interval (a slide deck between changes, a
	 * stalled sender) does not switch it off.
	 */
	private layerActive(spatialLayer: number, rate: { lastFlowMs?: number } | undefined): boolean {
		const current = this.lastStats?.currentLayers;
		if (this.meta.entity === 'consumer' && current) return current.spatialLayer >= spatialLayer;
		return rate?.lastFlowMs !== undefined && (this.lastStats?.atMs ?? 0) - rate.lastFlowMs <= LAYER_IDLE_MS;
	}

	private layerIndex(layer: { ssrc?: number; rid?: string }, position: number): number {
		const encodings = this.meta.encodings;
		const { ssrc, rid } = layer;
		for (let i = 0; i < encodings.length; i++) {
			const e = encodings[i]!;
			if ((ssrc !== undefined && e.ssrc === ssrc) || (rid !== undefined && e.rid === rid)) return i;
		}
		return position;
	}
}

/**
 * The stream's size is its top active layer's; while that layer's size is not yet
 * known (it switched on after the last probe), a lower layer's would understate it.
 */
function topActiveLayer(layers: readonly LayerProfile[]): { top: LayerProfile | undefined; activeLayers: number } {
	let top: LayerProfile | undefined;
	let activeLayers = 0;
	for (const l of layers) {
		if (!l.active) continue;
		activeLayers++;
		if (!top || l.spatialLayer > top.spatialLayer) top = l;
	}
	return { top, activeLayers };
}
