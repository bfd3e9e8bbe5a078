import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { attach, type StreamProfile } from '../../plugin';
import { parseOpusToc } from '../../plugin/profile/features/opus';
import { parseRtp } from '../../plugin/profile/features/rtp';
import { readRecording, type Recording } from '../../training/record/format';
import { Replayer } from '../../training/loadgen/replayer';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * Profiles of replayed browser recordings against the browser's own getStats()
 * truth and the sources' ground truth stored in each recording: resolution and
 * framerate per layer within 2%, codec and layer count exact; Opus clock rate,
 * channels and bandwidth exact (channels from the source, bandwidth from the
 * packets' TOC); voice activity within 10 points of the source's talk time.
 *
 * The browser's figures are per second, and Chromium varied its framerate
 * within each recording (scene-cuts: 1–31 fps per second on its upper layers),
 * so the truth a profile is held to is the browser's frame count over the same
 * stretch of recording time that the profile's trace windows covered: the
 * replay maps wall time to recording time (it loops the recording from the
 * instant it starts), and the test sees the same trace events as the profiler.
 * Traces and the audio tap run back to back here (windows of 2E − 1 ms every
 * E ms), so the stretch is long and only its two ends fall between the
 * browser's per-second samples; at the default duty cycle (1 s in 30) the
 * same estimators see a thirtieth of the media.
 *
 * Scene cuts are scored against their times in sceneCuts.fixtures.test.ts, on the
 * accumulator the profile is built from: the profile itself carries a count.
 */
const FIXTURES = join(__dirname, '../fixtures/recordings');
const PROFILES_OUT = join(__dirname, '../../test-output/profiles');
const VIDEO = ['talking-head', 'scene-cuts', 'screen-share'];
const AUDIO = ['opus-stereo', 'opus-mono-chat'];
/** Fixtures whose recording has a microphone with the ssrc-audio-level extension. */
const VOICE = ['talking-head', ...AUDIO];
const STATS_INTERVAL_MS = 500;
/**
 * A replay cannot answer the probes' PLIs: they wait for the recording's own keyframes (4 s apart).
 * A fixed trace duty (no backoff) and window statistics every round: the checks compare a profile with the truth up to its `ts`, and
 * with the default period its framerate could be up to 5 s older than that.
 */
const PROFILING = {
	// Sizes read by asking (opt-in): a replay answers no keyframe request, and no consumer here asks for one.
	keyframeProbes: true,
	traceEveryMs: 2000,
	traceWindowMs: 3999,
	traceBackoffMax: 1,
	tapEveryMs: 2500,
	tapWindowMs: 4999,
	probeWaitMs: 9998,
	windowStatsEveryMs: STATS_INTERVAL_MS,
};
/** Three passes over a 12 s recording, so each figure covers every part of it several times. */
const RUN_MS = 38_000;

function median(xs: number[]): number {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The browser's own per-layer figures (medians over the recording's 1 s samples). */
function browserTruth(rec: Recording, label: string): Array<{ width: number; height: number }> {
	const stream = rec.header.streams.find((s) => s.label === label)!;
	return stream.layers.map((layer) => {
		const samples = rec.header.browserStats
			.filter((b) => b.label === label && b.tMs >= 0)
			.flatMap((b) => b.outbound.filter((o) => o.rid === layer.rid && o.frameWidth !== undefined));
		return {
			width: median(samples.map((o) => o.frameWidth!)),
			height: median(samples.map((o) => o.frameHeight!)),
		};
	});
}

/**
 * Frames the browser had encoded for one layer by replay time t ms (0 = replay
 * start; the replay loops the recording), from its cumulative framesEncoded,
 * linear between its samples. Before the first sample and after the last, the
 * browser's own per-second rate of the nearest sample carries on.
 */
function framesEncodedByReplayTime(rec: Recording, label: string, rid: string | undefined): (t: number) => number {
	const samples = rec.header.browserStats
		.filter((b) => b.label === label && b.tMs >= 0)
		.map((b) => ({ tMs: b.tMs, layer: b.outbound.find((o) => o.rid === rid)! }))
		.map(({ tMs, layer }) => ({ tMs, frames: layer.framesEncoded!, fps: layer.framesPerSecond! }));
	const first = samples[0]!;
	const [beforeLast, last] = [samples.at(-2)!, samples.at(-1)!];
	const within = (x: number): number => {
		if (x <= first.tMs) return first.frames - ((first.tMs - x) * first.fps) / 1000;
		for (let i = 1; i < samples.length; i++) {
			const [a, b] = [samples[i - 1]!, samples[i]!];
			if (x <= b.tMs) return a.frames + ((b.frames - a.frames) * (x - a.tMs)) / (b.tMs - a.tMs);
		}
		return last.frames + ((x - last.tMs) * (last.frames - beforeLast.frames)) / (last.tMs - beforeLast.tMs);
	};
	const duration = rec.header.durationMs;
	const perPass = within(duration) - within(0);
	return (t) => {
		const pass = Math.floor(t / duration);
		return pass * perPass + within(t - pass * duration);
	};
}

/** Share of replay time [fromMs, toMs] in which the source was talking (groundTruth.audio.talkS). */
function talkShare(rec: Recording, fromMs: number, toMs: number): number {
	const audio = rec.header.groundTruth.audio as { loopS: number; talkS: Array<[number, number]> };
	const duration = rec.header.durationMs;
	let talking = 0;
	let steps = 0;
	for (let t = fromMs; t <= toMs; t += 5, steps++) {
		const recMs = t % duration;
		const sourceS = ((((recMs - rec.header.groundTruth.captureStartMs) / 1000) % audio.loopS) + audio.loopS) % audio.loopS;
		if (audio.talkS.some(([a, b]) => sourceS >= a && sourceS < b)) talking++;
	}
	return talking / steps;
}

interface FixtureRun {
	rec: Recording;
	profiles: Map<string, StreamProfile>;
	/** Date.now() when the replay started (replay time 0). */
	startMs: number;
	/** Arrival (Date.now()) of every `rtp` trace event per video label, as the profiler saw them. */
	traces: Map<string, number[]>;
	/** When each audio label's profile first had a voice-activity figure. */
	voiceSinceMs: Map<string, number>;
}

/**
 * One fixture at a time on its own worker: with all five replayed at once on one
 * worker, mediasoup's simulcast consumer of the tap did not reach talking-head's
 * top layer within a minute (a known limit of the DirectTransport tap, noted in
 * the profiler), which would test the tap's scheduling rather than accuracy.
 */
async function profileFixture(name: string): Promise<FixtureRun> {
	const foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', statsIntervalMs: STATS_INTERVAL_MS, profiling: PROFILING });
	const worker = await mediasoup.createWorker({ logLevel: 'warn' });
	const replayer = new Replayer({ seed: 11 });
	try {
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const rec = readRecording(join(FIXTURES, `${name}.rec.gz`));
		const pub = await replayer.publish(router, rec, { loop: true, autoStart: false });
		const ids = [...pub.producers].map(([label, p]) => [label, p.id] as const);
		const traces = new Map<string, number[]>();
		for (const [label, producer] of pub.producers) {
			if (producer.kind !== 'video') continue;
			const arrivals: number[] = [];
			traces.set(label, arrivals);
			producer.observer.on('trace', (trace) => {
				if (trace.type === 'rtp') arrivals.push(Date.now());
			});
		}
		const voiceSinceMs = new Map<string, number>();
		const complete = (label: string, id: string): boolean => {
			const p = foresight.profileOf(id);
			if (!p) return false;
			if (p.kind === 'audio') {
				if (p.audio?.voiceActivity !== undefined && !voiceSinceMs.has(label)) voiceSinceMs.set(label, p.ts);
				return p.audio?.opusBandwidth !== undefined && voiceSinceMs.has(label);
			}
			return p.layers.every((l) => l.width !== undefined && l.fps !== undefined);
		};
		const startMs = Date.now();
		replayer.start(pub);
		await waitFor(() => ids.every(([label, id]) => complete(label, id)), 40_000, `${name} profiled`).catch((error: Error) => {
			const state = ids.map(([label, id]) => `${label}: ${JSON.stringify(foresight.profileOf(id)?.layers.map((l) => [l.width, l.height, l.fps]))}`);
			throw new Error(`${error.message}: ${state.join(' ')}`);
		});
		await new Promise((r) => setTimeout(r, Math.max(0, startMs + RUN_MS - Date.now())));
		const profiles = new Map(ids.map(([label, id]) => [label, foresight.profileOf(id)!]));
		// The profiles the checks below judge, kept for reading (the closing note of the profiling issue shows them).
		mkdirSync(PROFILES_OUT, { recursive: true });
		writeFileSync(join(PROFILES_OUT, `${name}.json`), `${JSON.stringify(Object.fromEntries(profiles), null, 2)}\n`);
		return { rec, profiles, startMs, traces, voiceSinceMs };
	} finally {
		replayer.close();
		await foresight.detach();
		worker.close();
	}
}

const runs = new Map<string, Promise<FixtureRun>>();
/** Each fixture is replayed once; its tests share the run. */
function run(name: string): Promise<FixtureRun> {
	let r = runs.get(name);
	if (!r) runs.set(name, (r = profileFixture(name)));
	return r;
}

const videoLabel = (name: string): string => (name === 'screen-share' ? 'screen' : 'camera');

describe('profiles of recorded browser media match the browser truth', () => {
	test.each(VIDEO)(
		'%s: codec, layer count and resolution per layer',
		async (name) => {
			const label = videoLabel(name);
			const { rec, profiles } = await run(name);
			const profile = profiles.get(label)!;
			const truth = browserTruth(rec, label);
			expect(profile.mimeType?.toLowerCase()).toBe('video/vp8');
			expect(profile.layers).toHaveLength(truth.length);
			truth.forEach((t, i) => {
				const layer = profile.layers[i]!;
				expect(Math.abs(layer.width! - t.width) / t.width).toBeLessThanOrEqual(0.02);
				expect(Math.abs(layer.height! - t.height) / t.height).toBeLessThanOrEqual(0.02);
			});
		},
		90_000,
	);

	test.each(VIDEO)(
		'%s: framerate per layer against the browser over the traced stretch',
		async (name) => {
			const label = videoLabel(name);
			const { rec, profiles, startMs, traces } = await run(name);
			const profile = profiles.get(label)!;
			const stream = rec.header.streams.find((s) => s.label === label)!;
			// What the profile at profile.ts had seen: trace events up to then (its horizon is a minute).
			const seen = traces.get(label)!.filter((t) => t <= profile.ts);
			const [from, to] = [seen[0]! - startMs, seen.at(-1)! - startMs];
			expect(to - from).toBeGreaterThan(20_000);
			const figures = stream.layers.map((layer, i) => {
				const frames = framesEncodedByReplayTime(rec, label, layer.rid);
				const truth = (frames(to) - frames(from)) / ((to - from) / 1000);
				return { rid: layer.rid, fps: profile.layers[i]!.fps!, truth };
			});
			console.log(`${name} fps per layer (profile vs browser): ${figures.map((f) => `${f.rid} ${f.fps.toFixed(2)}/${f.truth.toFixed(2)}`).join(', ')}`);
			for (const f of figures) expect(Math.abs(f.fps - f.truth) / f.truth).toBeLessThanOrEqual(0.02);
		},
		90_000,
	);

	test.each(AUDIO)(
		'%s: Opus clock rate, channels and bandwidth',
		async (name) => {
			const { rec, profiles } = await run(name);
			const profile = profiles.get('mic')!;
			const truthChannels = (rec.header.groundTruth.audio as { channels: number }).channels;
			const audioIndex = rec.header.streams.find((s) => s.kind === 'audio')!.index;
			const counts = new Map<string, number>();
			for (const p of rec.packets) {
				if (p.stream !== audioIndex) continue;
				const toc = parseOpusToc(parseRtp(p.data)!.payload);
				if (toc && !toc.dtx) counts.set(toc.bandwidth, (counts.get(toc.bandwidth) ?? 0) + 1);
			}
			const truthBandwidth = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
			expect(profile.audio).toMatchObject({ clockRate: 48000, channels: truthChannels, opusBandwidth: truthBandwidth });
		},
		90_000,
	);

	test.each(VOICE)(
		'%s: voice activity within 10 points of the source talk time',
		async (name) => {
			const { rec, profiles, startMs, voiceSinceMs } = await run(name);
			const profile = profiles.get('mic')!;
			// The profile's minute of tapped audio levels, in replay time.
			const from = Math.max(voiceSinceMs.get('mic')! - STATS_INTERVAL_MS, profile.ts - 60_000) - startMs;
			const truth = talkShare(rec, Math.max(0, from), profile.ts - startMs);
			console.log(`${name} voice activity ${profile.audio!.voiceActivity!.toFixed(3)} vs talk share ${truth.toFixed(3)}`);
			expect(Math.abs(profile.audio!.voiceActivity! - truth)).toBeLessThanOrEqual(0.1);
		},
		90_000,
	);
});
