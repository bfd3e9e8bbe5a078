import { BITRATE_SCENE_DEFAULTS, SceneChangeDetector, SpikeDetector } from '../../../plugin/profile/features/spikes';
import { gaussian, loadJson, precisionRecall, rng } from './helpers';
import { syntheticClip } from './syntheticClip';

describe('SceneChangeDetector on synthetic frame sizes with known cuts', () => {
	it.each([1, 2, 3])('reaches precision and recall ≥ 0.9 (seed %i), ignoring scheduled and requested keyframes', (seed) => {
		const clip = syntheticClip(seed);
		const detector = new SceneChangeDetector();
		let r = 0;
		for (const f of clip.frames) {
			while (r < clip.requestsMs.length && clip.requestsMs[r]! <= f.tMs) detector.addKeyframeRequest(clip.requestsMs[r++]!);
			detector.add(f.tMs, f.bytes, f.keyframe);
		}
		expect(detector.keyframePeriodMs()).toBeCloseTo(5000, 0);
		const result = precisionRecall(detector.changes().map((e) => e.timeMs / 1000), clip.cutsS);
		expect(result.cuts).toBeGreaterThan(15);
		expect(result.precision).toBeGreaterThanOrEqual(0.9);
		expect(result.recall).toBeGreaterThanOrEqual(0.9);
		const summary = detector.summary(300_000, 300_000);
		expect(summary.count).toBe(result.detected);
		expect(summary.perMin).toBeCloseTo(result.detected / 5, 10);
		expect(summary.meanMagnitude).toBeGreaterThan(2.5);
	});

	it('reports nothing for a steady stream whose only spikes are scheduled keyframes', () => {
		const noise = gaussian(rng(9));
		const detector = new SceneChangeDetector();
		for (let i = 0; i < 30 * 120; i++) detector.add((i * 1000) / 30, i % 90 === 0 ? 30_000 : 3000 * Math.exp(0.2 * noise()), i % 90 === 0);
		expect(detector.keyframePeriodMs()).toBeCloseTo(3000, 0);
		expect(detector.changes()).toEqual([]);
	});
});

interface SceneCutFixture {
	codec: string;
	fps: number;
	cutsS: number[];
	keyframeIndices: number[];
	frameBytes: number[];
}

describe('SceneChangeDetector on real encoder frame sizes (fixtures/scene-cuts.sh)', () => {
	const fixtures = ['scene-cuts-vp8.json', 'scene-cuts-h264.json'].map((name) => loadJson<SceneCutFixture>(name));

	it('detects the cuts of VP8 (4 s keyframe schedule) and H.264 (scene-cut keyframes) with pooled precision and recall ≥ 0.9', () => {
		let tp = 0;
		let detected = 0;
		let found = 0;
		let cuts = 0;
		for (const fx of fixtures) {
			const keyframes = new Set(fx.keyframeIndices);
			const detector = new SceneChangeDetector();
			fx.frameBytes.forEach((bytes, i) => detector.add((i * 1000) / fx.fps, bytes, keyframes.has(i)));
			const result = precisionRecall(detector.changes().map((e) => e.timeMs / 1000), fx.cutsS);
			// Per codec the weakest figure is 8/9 (a cut from noise-like to plain content in VP8).
			expect(result.precision).toBeGreaterThanOrEqual(0.85);
			expect(result.recall).toBeGreaterThanOrEqual(0.85);
			tp += result.tp;
			detected += result.detected;
			found += result.recall * result.cuts;
			cuts += result.cuts;
		}
		expect(tp / detected).toBeGreaterThanOrEqual(0.9);
		expect(found / cuts).toBeGreaterThanOrEqual(0.9);
	});
});

describe('SceneChangeDetector on 1 s bitrate', () => {
	it('finds slide changes of a screen share as spikes and a switch to video as a level shift', () => {
		const noise = gaussian(rng(4));
		const detector = new SceneChangeDetector(BITRATE_SCENE_DEFAULTS);
		const slideChangesS = [20, 45, 70];
		for (let s = 1; s <= 120; s++) {
			let bps = 30_000 * (1 + 0.1 * noise());
			if (slideChangesS.includes(s)) bps = 900_000;
			if (s >= 95) bps = 1_500_000 * (1 + 0.1 * noise());
			detector.add(s * 1000, bps);
		}
		expect(detector.changes().map((e) => Math.round(e.timeMs / 1000))).toEqual([20, 45, 70, 95]);
	});
});

describe('SpikeDetector', () => {
	it('merges a run of spiky samples into one event with the largest magnitude', () => {
		const d = new SpikeDetector({ minBaselineSamples: 5, refractoryMs: 100 });
		const started: number[] = [];
		const values = [10, 11, 9, 10, 10, 11, 9, 80, 120, 90, 10, 10, 10, 10, 10, 10, 100];
		values.forEach((v, i) => {
			const spike = d.add(i * 33, v);
			if (spike) started.push(i);
		});
		expect(started).toEqual([7, 16]);
	});

	it('ignores non-finite samples and says nothing before its baseline is ready', () => {
		const d = new SpikeDetector({ minBaselineSamples: 3 });
		expect(d.add(0, 1)).toBeUndefined();
		expect(d.add(1, 1000)).toBeUndefined();
		expect(d.add(2, Number.NaN)).toBeUndefined();
	});
});
