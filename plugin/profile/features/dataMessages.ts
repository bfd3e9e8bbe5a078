/**
 * Data-channel message features: rate, size distribution, string vs binary share
 * and opt-in keyword counts. Message content is looked at only to count the
 * configured keywords and is never kept.
 */
import type { DataProfile } from '../schema';
import { mean, quantile } from './stats';
import { TimeSeriesWindow } from './windows';

/** WebRTC SCTP payload protocol identifiers (RFC 8831 §8): which carry strings. */
const STRING_PPIDS = new Set([51, 54, 56]);
const BINARY_PPIDS = new Set([52, 53, 57]);

/** true for WebRTC string PPIDs, false for binary ones, undefined for others. */
export function isStringPpid(ppid: number): boolean | undefined {
	if (STRING_PPIDS.has(ppid)) return true;
	if (BINARY_PPIDS.has(ppid)) return false;
	return undefined;
}

export interface DataMessageStatsOptions {
	windowMs?: number;
	/** Messages remembered (sizes only); beyond it the oldest are forgotten. */
	capacity?: number;
	/** Case-insensitive whole-word keywords to count in string messages. */
	keywords?: readonly string[];
}

export class DataMessageStats {
	private readonly sizes: TimeSeriesWindow;
	private readonly strings: TimeSeriesWindow;
	private readonly windowMs: number;
	private readonly keywordPatterns: Array<[string, RegExp]>;
	private readonly keywordCounts = new Map<string, number>();

	constructor(options: DataMessageStatsOptions = {}) {
		this.windowMs = options.windowMs ?? 10_000;
		const capacity = options.capacity ?? 10_000;
		this.sizes = new TimeSeriesWindow(capacity);
		this.strings = new TimeSeriesWindow(capacity);
		this.keywordPatterns = (options.keywords ?? [])
			.filter((k) => k.length > 0)
			.map((k) => [k, new RegExp(`(?<![\\p{L}\\p{N}_])${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}_])`, 'giu')]);
		for (const [k] of this.keywordPatterns) this.keywordCounts.set(k, 0);
	}

	/**
	 * Records one message. Pass the text of string messages only when keywords
	 * are configured; it is scanned and dropped.
	 */
	add(timeMs: number, bytes: number, isString: boolean, text?: string): void {
		if (!this.sizes.add(timeMs, bytes)) return;
		this.strings.add(timeMs, isString ? 1 : 0);
		if (!isString || text === undefined) return;
		for (const [keyword, pattern] of this.keywordPatterns) {
			const hits = text.match(pattern)?.length ?? 0;
			if (hits > 0) this.keywordCounts.set(keyword, (this.keywordCounts.get(keyword) ?? 0) + hits);
		}
	}

	/** The data block of the profile over the window ending at nowMs; keyword counts are since creation. */
	summary(nowMs: number): DataProfile {
		const from = nowMs - this.windowMs;
		const sizes = this.sizes.valuesSince(from, nowMs);
		const strings = this.strings.valuesSince(from, nowMs);
		const seconds = this.windowMs / 1000;
		const total = sizes.reduce((a, b) => a + b, 0);
		return {
			messagesPerS: sizes.length / seconds,
			bytesPerS: total / seconds,
			meanBytes: mean(sizes),
			p95Bytes: quantile(sizes, 0.95),
			stringShare: mean(strings),
			keywordCounts: this.keywordPatterns.length > 0 ? Object.fromEntries(this.keywordCounts) : undefined,
		};
	}
}
