import { join } from 'node:path';
import { StreamAccumulator } from '../../plugin/profile/accumulator';
import { BITRATE_SCENE_DEFAULTS, LAYER_RATE_SCENE_DEFAULTS, LayeredSceneChangeDetector, SceneChangeDetector } from '../../plugin/profile/features/spikes';
import { layerIndexOf, readRecording, rtpSsrc } from '../../training/record/format';
import { precisionRecall } from './features/helpers';
import { rtpStats } from './rtpStats';

/**
 * Scene changes as the live profile finds them: the browser fixtures' video packets,
 * looped, turned into the per-layer counters a getStats() round reads every second
 * (with the PLIs the recorder sent), fed to the real StreamAccumulator, and scored
 * against the sources' cut times (±1 s; each source's loop point is a cut too).
 * The baseline is the previous live input, the stream's total rate in one detector,
 * measured on the same samples.
 */
const FIXTURES = join(__dirname, '../fixtures/recordings');
const STATS_INTERVAL_MS = 1000;
const LOOPS = 5;
/** The first seconds only fill the detector's baseline; the last one is cut short. */
const SCORED_FROM_S = 10;

type Scored = ReturnType<typeof precisionRecall>;

function replayStats(name: string): { layered: Scored; total: Scored } {
	const rec = readRecording(join(FIXTURES, `${name}.rec.gz`));
	const video = rec.header.groundTruth.video as { loopS: number; cutsS?: number[] };
	const index = rec.header.streams.findIndex((s) => s.kind === 'video');
	const stream = rec.header.streams[index]!;
	const durationMs = rec.header.durationMs;
	const acc = new StreamAccumulator({ streamId: name, entity: 'producer', kind: 'video', workerId: 'w', routerId: 'r', transportId: 't', mimeType: stream.rtpParameters.codecs[0]!.mimeType, clockRate: stream.rtpParameters.codecs[0]!.clockRate, encodings: stream.layers.map((l) => ({ ssrc: l.ssrc })) });
	const total = new SceneChangeDetector(BITRATE_SCENE_DEFAULTS);

	type Arrival = { atMs: number; layer: number; bytes: number } | { atMs: number; pli: true };
	const arrivals: Arrival[] = [];
	for (let k = 0; k < LOOPS; k++) {
		for (const p of rec.packets) if (p.stream === index) arrivals.push({ atMs: p.arrivalUs / 1000 + k * durationMs, layer: layerIndexOf(stream, rtpSsrc(p.data)), bytes: p.data.length });
		for (const t of rec.header.groundTruth.keyFrameRequestsMs ?? []) arrivals.push({ atMs: t + k * durationMs, pli: true });
	}
	arrivals.sort((a, b) => a.atMs - b.atMs);
	const bytes = stream.layers.map(() => 0);
	const packets = stream.layers.map(() => 0);
	let plis = 0;
	let next = 0;
	let lastTotal = 0;
	for (let t = STATS_INTERVAL_MS; t <= LOOPS * durationMs; t += STATS_INTERVAL_MS) {
		for (; next < arrivals.length && arrivals[next]!.atMs <= t; next++) {
			const a = arrivals[next]!;
			if ('pli' in a) plis++;
			else {
				bytes[a.layer]! += a.bytes;
				packets[a.layer]!++;
			}
		}
		acc.addRtpStats(rtpStats(t, stream.layers.map((l, i) => ({ ssrc: l.ssrc, byteCount: bytes[i]!, packetCount: packets[i]! })), { pliCount: plis }));
		const sum = bytes.reduce((a, b) => a + b, 0);
		total.add(t, ((sum - lastTotal) * 8 * 1000) / STATS_INTERVAL_MS);
		lastTotal = sum;
	}
	const endS = (LOOPS * durationMs) / 1000 - 1;
	const cutsS: number[] = [];
	for (let loopStartS = rec.header.groundTruth.captureStartMs / 1000; loopStartS < endS; loopStartS += video.loopS) {
		for (const c of [0, ...(video.cutsS ?? [])]) if (loopStartS + c > SCORED_FROM_S && loopStartS + c < endS) cutsS.push(loopStartS + c);
	}
	const detectedS = (changes: Array<{ timeMs: number }>): number[] => changes.map((c) => c.timeMs / 1000);
	return {
		layered: precisionRecall(detectedS(acc.sceneChangesBetween(SCORED_FROM_S * 1000, endS * 1000)), cutsS),
		total: precisionRecall(detectedS(total.changes(SCORED_FROM_S * 1000, endS * 1000)), cutsS),
	};
}

describe('scene changes of the browser fixtures from 1 s per-layer rates (the live profile input)', () => {
	const report: string[] = [];
	afterAll(() => console.log(report.join('\n')));

	const nineInTen = (name: string): void => {
		const { layered, total } = replayStats(name);
		report.push(`${name}: per-layer P ${layered.precision.toFixed(2)} / R ${layered.recall.toFixed(2)} (${layered.detected} found, ${layered.cuts} cuts); total rate P ${total.precision.toFixed(2)} / R ${total.recall.toFixed(2)}`);
		expect(layered.cuts).toBeGreaterThan(10);
		expect(layered.recall).toBeGreaterThan(total.recall);
		expect(layered.precision).toBeGreaterThanOrEqual(0.9);
		expect(layered.recall).toBeGreaterThanOrEqual(0.9);
	};
	const goal = 'nine in ten changes found are real cuts, nine in ten cuts are found, more than from the total rate';
	test(`screen-share: ${goal}`, () => nineInTen('screen-share'));
	// Not met (README's accuracy rows): its cuts come 1.5 s apart and the detector finds 17 of
	// 25, one-to-one. Marked failing so that meeting the goal turns this red and it is made a plain test.
	test.failing(`scene-cuts: ${goal} (goal not met)`, () => nineInTen('scene-cuts'));

	test('talking-head: no change is reported away from its loop point', () => {
		const { layered } = replayStats('talking-head');
		report.push(`talking-head: per-layer ${layered.detected} found (${layered.cuts} loop points)`);
		expect(layered.detected - layered.tp).toBe(0);
	});
});

describe('LayeredSceneChangeDetector (pure)', () => {
	const steady = (detector: LayeredSceneChangeDetector, fromS: number, toS: number): void => {
		for (let s = fromS; s < toS; s++) for (const [layer, bps] of [[0, 150_000], [1, 500_000], [2, 1_500_000]] as const) detector.add(layer, s * 1000, bps * (1 + 0.03 * Math.sin(s * 1.7 + layer)));
	};

	test('a burst on one layer is a change of the stream; the same burst right after a PLI is the requested keyframe', () => {
		const unasked = new LayeredSceneChangeDetector();
		steady(unasked, 0, 20);
		unasked.add(0, 20_000, 600_000);
		steady(unasked, 21, 30);
		expect(unasked.changes().map((c) => c.timeMs)).toEqual([20_000]);

		const asked = new LayeredSceneChangeDetector();
		steady(asked, 0, 20);
		asked.addKeyframeRequest(19_600);
		asked.add(0, 20_000, 600_000);
		steady(asked, 21, 30);
		expect(asked.changes()).toEqual([]);
	});

	test('a one-sample valley below both neighbours and the quiet level is a short scene; the quiet between bursts is not', () => {
		const withScene = new LayeredSceneChangeDetector();
		steady(withScene, 0, 20);
		// A 1 s static scene between two busy ones: every layer drops to a third, then recovers.
		for (const [layer, bps] of [[0, 50_000], [1, 170_000], [2, 500_000]] as const) withScene.add(layer, 20_000, bps);
		steady(withScene, 21, 30);
		expect(withScene.changes().map((c) => c.timeMs)).toEqual([20_000]);

		// A static screen refreshed on request every 2 s: each quiet second lies 10× below both
		// neighbours, at the level the stream keeps returning to. (Level shifts off: their
		// 3-sample medians flip on an alternating series, which is not what is tested here.)
		const screen = (valleyQuietRatio: number): SceneChangeDetector => {
			const detector = new SceneChangeDetector({ ...LAYER_RATE_SCENE_DEFAULTS, shiftSamples: 0, valleyQuietRatio });
			for (let s = 0; s < 40; s++) {
				if (s % 2 === 0) detector.addKeyframeRequest(s * 1000 - 500);
				detector.add(s * 1000, s % 2 === 0 ? 300_000 : 30_000 * (1 + 0.05 * Math.sin(s)));
			}
			return detector;
		};
		expect(screen(LAYER_RATE_SCENE_DEFAULTS.valleyQuietRatio!).changes()).toEqual([]);
		// Without the quiet margin, the quieter half of those seconds would read as scenes.
		expect(screen(1).changes().length).toBeGreaterThan(0);
	});

	test('evidence on several layers within mergeMs is one change, at the earliest, with the largest magnitude', () => {
		const detector = new LayeredSceneChangeDetector();
		steady(detector, 0, 20);
		detector.add(0, 20_000, 450_000);
		detector.add(2, 20_500, 6_000_000);
		steady(detector, 21, 30);
		const changes = detector.changes();
		expect(changes).toHaveLength(1);
		expect(changes[0]!.timeMs).toBe(20_000);
		expect(changes[0]!.magnitude).toBeGreaterThan(3.5);
		expect(detector.summary(30_000, 60_000).count).toBe(1);
	});
});
