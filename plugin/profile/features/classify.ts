/**
 * Data-type inference: camera video vs screen share, and the per-connection
 * distribution of bytes over data types.
 */
import { dataTypeSchema, type DataType } from '../schema';
import { clamp01 } from './stats';

export interface VideoSourceEvidence {
	/** The producer's appData.source, when the app sets one (e.g. 'webcam', 'screen'). */
	appDataSource?: unknown;
	width?: number;
	height?: number;
	fps?: number;
	/** From features/variance.ts. */
	burstiness?: number;
	frameBytes?: { p50: number; p95: number };
}

export interface VideoSourceVerdict {
	dataType: Extract<DataType, 'video' | 'screen'>;
	/** 0 = a coin flip, 1 = certain. */
	confidence: number;
	from: 'appData' | 'inferred' | 'default';
	/** Screen-likeness in [0, 1] of the inferred verdict (≥ 0.5 → screen). */
	score?: number;
}

const SCREEN_SOURCE = /screen|share|display|desktop|window|tab/i;
const CAMERA_SOURCE = /cam|camera|video/i;

/** Common camera aspect ratios; screen captures of windows and monitors often are not. */
const CAMERA_ASPECTS = [16 / 9, 4 / 3, 9 / 16, 3 / 4, 1];

/**
 * Each cue maps evidence to screen-likeness in [0, 1]; the verdict is their
 * weighted mean over the cues with evidence:
 *   fps          ≤ 5 → 1, ≥ 20 → 0 (screen capture runs at 1–15 fps)
 *   resolution   ≤ 0.4 MP → 0, ≥ 1.6 MP → 1 (cameras mostly send ≤ 720p)
 *   aspect       not a camera aspect (±2 %) → 1
 *   burstiness   ≤ 0.3 → 0, ≥ 0.7 → 1 (static content with bursts on change)
 *   frame skew   p95/p50 ≤ 2 → 0, ≥ 8 → 1 (tiny deltas while static, big on change)
 */
const CUES: ReadonlyArray<{ weight: number; cue: (e: VideoSourceEvidence) => number | undefined }> = [
	{ weight: 0.3, cue: (e) => (e.fps === undefined ? undefined : clamp01((20 - e.fps) / 15)) },
	{ weight: 0.2, cue: (e) => (e.width && e.height ? clamp01((e.width * e.height - 0.4e6) / 1.2e6) : undefined) },
	{
		weight: 0.1,
		cue: (e) => {
			if (!e.width || !e.height) return undefined;
			const aspect = e.width / e.height;
			return CAMERA_ASPECTS.some((a) => Math.abs(aspect / a - 1) <= 0.02) ? 0 : 1;
		},
	},
	{ weight: 0.25, cue: (e) => (e.burstiness === undefined ? undefined : clamp01((e.burstiness - 0.3) / 0.4)) },
	{ weight: 0.15, cue: (e) => (e.frameBytes && e.frameBytes.p50 > 0 ? clamp01((e.frameBytes.p95 / e.frameBytes.p50 - 2) / 6) : undefined) },
];

export function classifyVideoSource(evidence: VideoSourceEvidence): VideoSourceVerdict {
	if (typeof evidence.appDataSource === 'string') {
		if (SCREEN_SOURCE.test(evidence.appDataSource)) return { dataType: 'screen', confidence: 1, from: 'appData' };
		if (CAMERA_SOURCE.test(evidence.appDataSource)) return { dataType: 'video', confidence: 1, from: 'appData' };
	}
	let weighted = 0;
	let weights = 0;
	for (const { weight, cue } of CUES) {
		const value = cue(evidence);
		if (value === undefined || !Number.isFinite(value)) continue;
		weighted += weight * value;
		weights += weight;
	}
	if (weights === 0) return { dataType: 'video', confidence: 0, from: 'default' };
	const score = weighted / weights;
	return { dataType: score >= 0.5 ? 'screen' : 'video', confidence: Math.abs(score - 0.5) * 2, from: 'inferred', score };
}

export type DataTypeDistribution = Record<DataType, number>;

/**
 * Share of bytes per data type over a connection's streams (a data channel
 * contributes a 'text' and a 'binary' entry). Sums to 1 when any bytes flowed,
 * all zeros otherwise; every type is present, as the schema's record requires.
 */
export function dataTypeDistribution(entries: Iterable<{ dataType: DataType; bytes: number }>): DataTypeDistribution {
	const totals = Object.fromEntries(dataTypeSchema.options.map((t) => [t, 0])) as DataTypeDistribution;
	let sum = 0;
	for (const { dataType, bytes } of entries) {
		if (!(bytes > 0) || !Number.isFinite(bytes)) continue;
		totals[dataType] += bytes;
		sum += bytes;
	}
	if (sum === 0) return totals;
	for (const t of dataTypeSchema.options) totals[t] /= sum;
	return totals;
}
