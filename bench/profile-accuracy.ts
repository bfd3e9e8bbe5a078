/**
 * npm run bench -- profile-accuracy [--seeds 1000-1019] [--clip-s 60] [--warmup-s 20]
 *   [--measure-s 120] [--window-s 10] [--clips-dir test-output/clips] [--keep-clips]
 *
 * How right is a video producer's profile at the DEFAULT settings, on clips nobody tuned on?
 * For each seed, training/record/clips.ts makes a clip (random size, framerate, sources,
 * motion and cut times; ground truth beside it). Seeds 1000–1019 are the held-out report set:
 * nothing is tuned on them (tuning seeds are < 100). Headless Chromium captures the clip
 * (Y4M fake capture, looped) and sends it with mediasoup-client as 3 simulcast layers to a real
 * mediasoup worker, where one consumer (a PlainTransport, as a receiver in a room) takes the
 * top layer. The profiler runs with its default options (parseOptions({})).
 *
 * Scored over `--measure-s` seconds after `--warmup-s`:
 *  - per layer and per `--window-s` window, against Chromium's own outbound-rtp stats of that
 *    layer (rid) over the same window: the framerate (framesEncoded over the window) and the
 *    resolution (frameWidth × frameHeight) it reported, and what the last profile built in the
 *    window said. A layer Chromium did not send in a window is not scored; a window in which
 *    Chromium changed the layer's size is not scored for size (either answer would be right for
 *    part of it); a profile without a figure counts as wrong;
 *  - scene cuts: the clip's cuts (and its loop point, where the picture jumps back to frame 0)
 *    placed in time from the moment capture started, against the profile's scene-change times
 *    (the profile carries their count; the times are read from the profiler's accumulator of
 *    that stream, which the count is made from), one-to-one within ±1 s.
 *
 * Last line: one JSON object with scene_cut_precision, scene_cut_recall, fps_within_5pct_share,
 * resolution_exact_share (pooled over seeds), per-seed figures and the settings.
 */
import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as mediasoup from 'mediasoup';
import { parseOptions } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { GraphObserver } from '../plugin/observe/attach';
import { Profiler } from '../plugin/profile/profiler';
import type { StreamProfile } from '../plugin/profile/schema';
import type { ProfiledStream } from '../plugin/profile/stream';
import { MEDIA_CODECS } from '../training/media/rig';
import { makeClip, type ClipTruth } from '../training/record/clips';
import { startBrowserPeers, type SessionSpec } from '../training/record/record';

function arg(name: string, fallback: number): number {
	const i = process.argv.indexOf(`--${name}`);
	if (i === -1) return fallback;
	const v = Number(process.argv[i + 1]);
	if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: expected a positive number, got ${process.argv[i + 1]}`);
	return v;
}
function argText(name: string): string | undefined {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? undefined : process.argv[i + 1];
}
function seedRange(text: string): number[] {
	const m = /^(\d+)(?:-(\d+))?$/.exec(text);
	if (!m) throw new Error(`--seeds: expected a or a-b, got ${text}`);
	const a = Number(m[1]);
	const b = Number(m[2] ?? m[1]);
	if (b < a) throw new Error(`--seeds: ${b} < ${a}`);
	return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

const SEEDS = seedRange(argText('seeds') ?? '1000-1019');
const CLIP_S = arg('clip-s', 60);
const WARMUP_S = arg('warmup-s', 20);
const MEASURE_S = arg('measure-s', 120);
const WINDOW_S = arg('window-s', 10);
const CLIPS_DIR = resolve(argText('clips-dir') ?? 'test-output/clips');
const KEEP_CLIPS = process.argv.includes('--keep-clips');
/** The issue's tolerance for a detected cut. */
const CUT_TOLERANCE_MS = 1000;
/** The issue's tolerance for a layer's framerate. */
const FPS_TOLERANCE = 0.05;

if (SEEDS.some((s) => s < 1000)) process.stderr.write('profile-accuracy: seeds below 1000 are tuning seeds; the report set is 1000-1019\n');

/** The talking-head session's simulcast bitrates at 720p; 540p clips get the same caps (the encoder stays below them). */
const SPEC: SessionSpec = {
	name: 'profile-accuracy',
	video: { source: 'talking-head', label: 'camera', maxBitrates: [150_000, 500_000, 1_500_000], contentHint: 'motion' },
};

interface LayerWindow {
	layer: number;
	fromMs: number;
	chromeFps: number;
	profileFps?: number;
	chromeSize?: { width: number; height: number };
	profileSize?: { width: number; height: number };
}

interface SeedResult {
	seed: number;
	truth: { width: number; height: number; fps: number; cuts_in_scored_time: number };
	cuts: { truth: number; detected: number; matched: number; offsetsMs: number[] };
	fps: { scored: number; within: number };
	resolution: { scored: number; exact: number };
	windows: LayerWindow[];
	qualityLimitation: Record<string, number>;
}

/** Epoch ms of a performance.now() reading in this process. */
const epochOf = (perfMs: number): number => performance.timeOrigin + perfMs;

async function runSeed(seed: number): Promise<SeedResult> {
	const clip = await makeClip(seed, CLIPS_DIR, CLIP_S);
	const truth: ClipTruth = clip.truth;
	const options = parseOptions({ logLevel: 'error' });
	const logger = createLogger(options.logLevel);
	const graph = new GraphObserver(mediasoup, logger);
	const profiler = new Profiler(graph.registry, { statsIntervalMs: options.statsIntervalMs, ...options.profiling }, logger);
	const profiles: StreamProfile[] = [];
	profiler.on('profiles', (r) => {
		for (const p of r.refreshed) if (p.entity === 'producer' && p.kind === 'video') profiles.push(p);
	});
	profiler.start();
	const worker = await mediasoup.createWorker({ logLevel: 'error' });
	const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
	const sink = createSocket('udp4');
	await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
	let peers: Awaited<ReturnType<typeof startBrowserPeers>> | undefined;
	try {
		peers = await startBrowserPeers(router, SPEC, { sourcesDir: CLIPS_DIR, clip: { path: clip.path, width: truth.width, height: truth.height, fps: truth.fps } });
		const peer = peers.peers[0]!;
		const producer = peer.producers.find((p) => p.producer.kind === 'video')!.producer;
		// One receiver of the top layer, as in a room: the worker forwards and asks for keyframes as it would.
		const recv = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
		await recv.connect({ ip: '127.0.0.1', port: sink.address().port });
		const consumer = await recv.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const captureStartMs = epochOf(peer.captureAt);
		await sleep(WARMUP_S * 1000);
		const fromMs = Date.now();
		await sleep(MEASURE_S * 1000);
		const toMs = Date.now();
		const stream = (profiler as unknown as { streams: Map<string, ProfiledStream> }).streams.get(producer.id);
		const detected = stream ? stream.acc.sceneChangesBetween(fromMs - CUT_TOLERANCE_MS, toMs + CUT_TOLERANCE_MS).map((c) => c.timeMs) : [];
		consumer.close();
		recv.close();
		const stats = peer.stats.filter((s) => s.label === 'camera').map((s) => ({ ...s, atMs: epochOf(s.tMs) }));
		const windows = layerWindows(stats, profiles, fromMs, toMs);
		const cuts = scoreCuts(truthCutTimes(truth, captureStartMs, fromMs - CUT_TOLERANCE_MS, toMs + CUT_TOLERANCE_MS), detected, fromMs, toMs);
		const qualityLimitation: Record<string, number> = {};
		for (const s of stats) {
			if (s.atMs < fromMs || s.atMs > toMs) continue;
			for (const o of s.outbound) if (o.qualityLimitationReason) qualityLimitation[o.qualityLimitationReason] = (qualityLimitation[o.qualityLimitationReason] ?? 0) + 1;
		}
		const fpsScored = windows.filter((w) => w.chromeFps > 0);
		const sizeScored = windows.filter((w) => w.chromeSize);
		return {
			seed,
			truth: { width: truth.width, height: truth.height, fps: truth.fps, cuts_in_scored_time: cuts.truth },
			cuts,
			fps: { scored: fpsScored.length, within: fpsScored.filter((w) => w.profileFps !== undefined && Math.abs(w.profileFps - w.chromeFps) <= FPS_TOLERANCE * w.chromeFps).length },
			resolution: {
				scored: sizeScored.length,
				exact: sizeScored.filter((w) => w.profileSize && w.profileSize.width === w.chromeSize!.width && w.profileSize.height === w.chromeSize!.height).length,
			},
			windows,
			qualityLimitation,
		};
	} finally {
		await peers?.close();
		await profiler.stop();
		graph.detach();
		worker.close();
		sink.close();
		if (!KEEP_CLIPS) rmSync(clip.path, { force: true });
	}
}

type TimedStats = Array<{ atMs: number; outbound: Array<{ rid?: string | undefined; framesEncoded?: number | undefined; frameWidth?: number | undefined; frameHeight?: number | undefined }> }>;

/** Per layer (rid r<i> is spatial layer i, as page.ts produces them) and window: Chromium's figures and the profile's. */
function layerWindows(stats: TimedStats, profiles: StreamProfile[], fromMs: number, toMs: number): LayerWindow[] {
	const out: LayerWindow[] = [];
	for (let a = fromMs; a + WINDOW_S * 1000 <= toMs + 1; a += WINDOW_S * 1000) {
		const b = a + WINDOW_S * 1000;
		// Chromium's samples bracketing the window (1 s apart): the last at or before a, the last at or before b.
		const first = lastAtOrBefore(stats, a);
		const last = lastAtOrBefore(stats, b);
		const profile = lastAtOrBefore(
			profiles.map((p) => ({ ...p, atMs: p.ts })),
			b,
		);
		if (!first || !last || last.atMs - first.atMs < 0.5 * WINDOW_S * 1000) continue;
		const inWindow = stats.filter((s) => s.atMs >= first.atMs && s.atMs <= last.atMs);
		for (let layer = 0; layer < 3; layer++) {
			const rid = `r${layer}`;
			const o0 = first.outbound.find((o) => o.rid === rid);
			const o1 = last.outbound.find((o) => o.rid === rid);
			if (o0?.framesEncoded === undefined || o1?.framesEncoded === undefined) continue;
			const chromeFps = (o1.framesEncoded - o0.framesEncoded) / ((last.atMs - first.atMs) / 1000);
			if (!(chromeFps > 0)) continue;
			const sizes = new Set(inWindow.map((s) => s.outbound.find((o) => o.rid === rid)).map((o) => `${o?.frameWidth}x${o?.frameHeight}`));
			const p = profile && profile.ts >= a ? profile.layers.find((l) => l.spatialLayer === layer) : undefined;
			const w: LayerWindow = { layer, fromMs: a, chromeFps: round2(chromeFps) };
			if (p?.fps !== undefined) w.profileFps = round2(p.fps);
			if (sizes.size === 1 && o1.frameWidth !== undefined && o1.frameHeight !== undefined) w.chromeSize = { width: o1.frameWidth, height: o1.frameHeight };
			if (p?.width !== undefined && p.height !== undefined) w.profileSize = { width: p.width, height: p.height };
			out.push(w);
		}
	}
	return out;
}

function lastAtOrBefore<T extends { atMs: number }>(xs: readonly T[], t: number): T | undefined {
	let best: T | undefined;
	for (const x of xs) if (x.atMs <= t && (!best || x.atMs > best.atMs)) best = x;
	return best;
}

/** The clip's cuts and loop points in wall time, from when Chromium started capturing it. */
function truthCutTimes(truth: ClipTruth, captureStartMs: number, fromMs: number, toMs: number): number[] {
	const out: number[] = [];
	const loopMs = truth.loopS * 1000;
	for (let k = 0; captureStartMs + k * loopMs <= toMs; k++) {
		const base = captureStartMs + k * loopMs;
		for (const c of [...(k > 0 ? [0] : []), ...truth.cutsS]) {
			const t = base + c * 1000;
			if (t >= fromMs && t <= toMs) out.push(t);
		}
	}
	return out;
}

/**
 * One-to-one matching within the tolerance, nearest pairs first. Precision counts detections
 * inside the scored time, recall the true cuts inside it; the tolerance margin around it lets
 * an edge cut pair with a detection just outside.
 */
function scoreCuts(truthMs: number[], detectedMs: number[], fromMs: number, toMs: number): SeedResult['cuts'] {
	const pairs: Array<[number, number, number]> = [];
	truthMs.forEach((t, i) => detectedMs.forEach((d, j) => Math.abs(d - t) <= CUT_TOLERANCE_MS && pairs.push([Math.abs(d - t), i, j])));
	pairs.sort((x, y) => x[0] - y[0]);
	const usedT = new Set<number>();
	const usedD = new Set<number>();
	const offsetsMs: number[] = [];
	for (const [, i, j] of pairs) {
		if (usedT.has(i) || usedD.has(j)) continue;
		usedT.add(i);
		usedD.add(j);
		offsetsMs.push(Math.round(detectedMs[j]! - truthMs[i]!));
	}
	const inside = (t: number): boolean => t >= fromMs && t <= toMs;
	return {
		truth: truthMs.filter(inside).length,
		detected: detectedMs.filter(inside).length,
		matched: [...usedT].filter((i) => inside(truthMs[i]!)).length,
		offsetsMs,
	};
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round2 = (x: number): number => Math.round(x * 100) / 100;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const share = (a: number, b: number): number | null => (b > 0 ? round3(a / b) : null);

async function main(): Promise<void> {
	const results: SeedResult[] = [];
	for (const seed of SEEDS) {
		const r = await runSeed(seed);
		results.push(r);
		process.stdout.write(
			`seed ${seed} ${r.truth.width}x${r.truth.height}@${r.truth.fps} cuts truth=${r.cuts.truth} detected=${r.cuts.detected} matched=${r.cuts.matched} ` +
				`offsets=${JSON.stringify(r.cuts.offsetsMs)} fps ${r.fps.within}/${r.fps.scored} size ${r.resolution.exact}/${r.resolution.scored} ` +
				`quality_limitation=${JSON.stringify(r.qualityLimitation)}\n` +
				r.windows.map((w) => `    L${w.layer} +${Math.round((w.fromMs - r.windows[0]!.fromMs) / 1000)}s chrome ${w.chromeFps}fps ${w.chromeSize ? `${w.chromeSize.width}x${w.chromeSize.height}` : '(size changed)'} profile ${w.profileFps ?? '-'}fps ${w.profileSize ? `${w.profileSize.width}x${w.profileSize.height}` : '-'}\n`).join(''),
		);
	}
	const sum = (f: (r: SeedResult) => number): number => results.reduce((a, r) => a + f(r), 0);
	const summary = {
		scene_cut_precision: share(sum((r) => r.cuts.matched), sum((r) => r.cuts.detected)),
		scene_cut_recall: share(sum((r) => r.cuts.matched), sum((r) => r.cuts.truth)),
		fps_within_5pct_share: share(sum((r) => r.fps.within), sum((r) => r.fps.scored)),
		resolution_exact_share: share(sum((r) => r.resolution.exact), sum((r) => r.resolution.scored)),
		layer_windows: { fps: sum((r) => r.fps.scored), resolution: sum((r) => r.resolution.scored) },
		cuts: { truth: sum((r) => r.cuts.truth), detected: sum((r) => r.cuts.detected), matched: sum((r) => r.cuts.matched) },
		per_seed: results.map((r) => ({
			seed: r.seed,
			clip: `${r.truth.width}x${r.truth.height}@${r.truth.fps}`,
			cuts: { truth: r.cuts.truth, detected: r.cuts.detected, matched: r.cuts.matched },
			fps: `${r.fps.within}/${r.fps.scored}`,
			resolution: `${r.resolution.exact}/${r.resolution.scored}`,
			quality_limitation: r.qualityLimitation,
		})),
		settings: { seeds: `${SEEDS[0]}-${SEEDS[SEEDS.length - 1]}`, clip_s: CLIP_S, warmup_s: WARMUP_S, measure_s: MEASURE_S, window_s: WINDOW_S, profiler: 'defaults', cut_tolerance_ms: CUT_TOLERANCE_MS, fps_tolerance: FPS_TOLERANCE },
	};
	process.stdout.write(`${JSON.stringify(summary)}\n`);
	process.exit(0);
}

main().catch((error: unknown) => {
	process.stderr.write(`profile-accuracy bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
	process.exit(1);
});

