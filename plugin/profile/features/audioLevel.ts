/**
 * RFC 6464 client-to-mixer audio level ("urn:ietf:params:rtp-hdrext:ssrc-audio-level")
 * and the voice-activity ratio derived from it.
 */
import { TimeSeriesWindow } from './windows';

export interface AudioLevel {
	/** V bit; only meaningful when the extension was negotiated with vad=on (the default). */
	voice: boolean;
	/** Level in dBov, −127…0 (the wire carries its negation). */
	levelDbov: number;
}

export function parseAudioLevel(extension: Uint8Array): AudioLevel | undefined {
	const byte = extension[0];
	if (byte === undefined) return undefined;
	return { voice: (byte & 0x80) !== 0, levelDbov: -(byte & 0x7f) };
}

/**
 * Speech sits around −20…−40 dBov and background noise below −55; −50 dBov
 * separates them for typical microphones (mediasoup's AudioLevelObserver
 * defaults to −80, which is meant to catch any sound, not speech).
 */
export const VOICE_THRESHOLD_DBOV = -50;

export interface VoiceActivityOptions {
	windowMs?: number;
	/** A packet is voiced when its level is ≥ this, in dBov. */
	thresholdDbov?: number;
	/**
	 * Trust the sender's V bit instead of the level threshold. Off by default: with
	 * vad=off negotiated the bit is always 0, and the level is always present.
	 */
	useVoiceBit?: boolean;
	/** Ring-buffer size; 50 packets/s × 60 s by default. */
	capacity?: number;
}

/**
 * Share of audio-level samples in the last window that were voiced. Packets not
 * sent during DTX count as silence only if the caller adds them; the ratio is over
 * the samples seen.
 */
export class VoiceActivity {
	private readonly samples: TimeSeriesWindow;
	private readonly windowMs: number;
	private readonly thresholdDbov: number;
	private readonly useVoiceBit: boolean;

	constructor(options: VoiceActivityOptions = {}) {
		this.windowMs = options.windowMs ?? 10_000;
		this.thresholdDbov = options.thresholdDbov ?? VOICE_THRESHOLD_DBOV;
		this.useVoiceBit = options.useVoiceBit ?? false;
		this.samples = new TimeSeriesWindow(options.capacity ?? 3000);
	}

	isVoiced(level: AudioLevel): boolean {
		return this.useVoiceBit ? level.voice : level.levelDbov >= this.thresholdDbov;
	}

	add(timeMs: number, level: AudioLevel): void {
		this.samples.add(timeMs, this.isVoiced(level) ? 1 : 0);
	}

	/** Adds the raw extension bytes; malformed ones are ignored. */
	addExtension(timeMs: number, extension: Uint8Array): void {
		const level = parseAudioLevel(extension);
		if (level) this.add(timeMs, level);
	}

	/** Voiced share over the window ending at nowMs, undefined without samples. */
	ratio(nowMs: number): number | undefined {
		const { count, sum } = this.samples.countAndSumSince(nowMs - this.windowMs, nowMs);
		return count === 0 ? undefined : sum / count;
	}
}
