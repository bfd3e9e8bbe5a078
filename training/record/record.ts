/**
 * Records what a real browser sends to mediasoup.
 *
 *   npx tsx training/record/record.ts [session…] [--out test/fixtures/recordings] [--seconds 12] [--warmup 5] [--keyframe-interval 4]
 *
 * Headless Chromium (fake capture fed with ffmpeg-made sources of known ground
 * truth) joins a real router through mediasoup-client over WebRtcTransport
 * (ICE + DTLS + SRTP on 127.0.0.1). The server taps every producer with a
 * PipeTransport consumer, which forwards every simulcast layer on its own SSRC,
 * to a local UDP socket, and taps the chat data channel with a DirectTransport
 * DataConsumer. The result is written in the format of FORMAT.md.
 */
import { createServer, type Server } from 'node:http';
import { CHROMIUM_PATH, HEADLESS_CHROMIUM_FLAGS } from '../media/chromium';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { chromium } from 'playwright-core';
import type { PageConfig } from './page';
import {
	FORMAT_VERSION,
	MAGIC,
	type BrowserStatsSample,
	type DataMessage,
	type RecordedStream,
	type Recording,
	type RecordedRtpParameters,
	writeRecording,
} from './format';
import { Tap } from './tap';
import { makeAudioSource, makeVideoSource, type AudioGroundTruth, type AudioSourceName, type VideoGroundTruth, type VideoSourceName } from './sources';
import { MEDIA_CODECS } from '../media/rig';

export interface SessionSpec {
	name: string;
	video?: { source: VideoSourceName; label: string; maxBitrates: [number, number, number]; contentHint: string };
	audio?: { source: AudioSourceName; label: string; stereo: boolean };
	chat?: boolean;
}

const CHAT_LINES = [
	'can you hear me?',
	'yes, loud and clear',
	'sharing my screen in a sec',
	'+1',
	'the numbers on slide 3 look off',
	'brb',
	'can you drop the link to the doc here please',
	'agreed, lets ship it on thursday',
	'sorry, my connection dropped for a moment — what was the decision on the rollout?',
	'👍',
	'lol',
	'next item?',
];

export const SESSIONS: Record<string, SessionSpec> = {
	'talking-head': {
		name: 'talking-head',
		video: { source: 'talking-head', label: 'camera', maxBitrates: [150_000, 500_000, 1_500_000], contentHint: 'motion' },
		audio: { source: 'speech-mono', label: 'mic', stereo: false },
		chat: true,
	},
	'scene-cuts': {
		name: 'scene-cuts',
		video: { source: 'scene-cuts', label: 'camera', maxBitrates: [150_000, 400_000, 1_200_000], contentHint: 'motion' },
	},
	'screen-share': {
		name: 'screen-share',
		video: { source: 'screen-share', label: 'screen', maxBitrates: [100_000, 300_000, 1_200_000], contentHint: 'detail' },
	},
	'opus-stereo': { name: 'opus-stereo', audio: { source: 'speech-stereo', label: 'mic', stereo: true } },
	'opus-mono-chat': { name: 'opus-mono-chat', audio: { source: 'speech-mono', label: 'mic', stereo: false }, chat: true },
};



export interface RecordOptions {
	outDir: string;
	sourcesDir: string;
	/** Length of the stored recording. */
	seconds: number;
	/** Time for the browser's bandwidth estimate to open all layers before the tap opens. */
	warmupSeconds: number;
	/** Key-frame requests during the recording; 0 = only the one at the start. */
	keyFrameIntervalSeconds: number;
	chromiumPath?: string;
	log?: (line: string) => void;
}

export async function bundlePage(): Promise<string> {
	const out = await build({
		entryPoints: [join(__dirname, 'page.ts')],
		bundle: true,
		write: false,
		format: 'iife',
		platform: 'browser',
		target: 'chrome120',
		logLevel: 'silent',
	});
	return out.outputFiles[0]!.text;
}

export function serve(js: string): Promise<{ server: Server; url: string }> {
	const html = '<!doctype html><meta charset="utf-8"><title>recorder</title><script src="/page.js"></script>';
	const server = createServer((req, res) => {
		if (req.url === '/page.js') {
			res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
		} else {
			res.writeHead(200, { 'content-type': 'text/html' }).end(html);
		}
	});
	return new Promise((r) => server.listen(0, '127.0.0.1', () => {
		const addr = server.address();
		r({ server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/` });
	}));
}

function toRecorded(p: types.RtpParameters): RecordedRtpParameters {
	return JSON.parse(JSON.stringify(p)) as RecordedRtpParameters;
}

export interface BrowserPeer {
	producers: Array<{ producer: types.Producer; label: string }>;
	dataProducers: types.DataProducer[];
	transport: types.WebRtcTransport;
	/** getStats() samples; tMs is performance.now() at arrival until a caller rebases it. */
	stats: BrowserStatsSample[];
	captureAt: number;
	browser: string;
	handler: string;
}

export interface BrowserPeers {
	peers: BrowserPeer[];
	video?: { path: string; truth: VideoGroundTruth };
	audio?: { path: string; truth: AudioGroundTruth };
	close(): Promise<void>;
}

/**
 * The server side of one recorder page's signaling (page.ts calls `window.signal`):
 * its send transport on `router`, its producers, its getStats() samples into `peer`.
 * `appData` goes on the transport and every producer, so that Foresight groups them
 * as one peer (`appData.peerId`) as it does a load-generator peer's.
 */
export function pageSignals(router: types.Router, config: PageConfig, peer: BrowserPeer, appData: Record<string, unknown> = {}): (method: string, data: Record<string, unknown>) => Promise<unknown> {
	return async (method, data) => {
		switch (method) {
			case 'config':
				return config;
			case 'routerRtpCapabilities':
				return router.rtpCapabilities;
			case 'createSendTransport': {
				peer.transport = await router.createWebRtcTransport({
					listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }],
					enableSctp: true,
					appData,
				});
				const t = peer.transport;
				return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters, sctpParameters: t.sctpParameters };
			}
			case 'connect':
				await peer.transport.connect({ dtlsParameters: data.dtlsParameters as types.DtlsParameters });
				return null;
			case 'produce': {
				const producer = await peer.transport.produce({ kind: data.kind as types.MediaKind, rtpParameters: data.rtpParameters as types.RtpParameters, appData: { ...appData, label: data.label } });
				peer.producers.push({ producer, label: data.label as string });
				return { id: producer.id };
			}
			case 'produceData': {
				const dp = await peer.transport.produceData({ sctpStreamParameters: data.sctpStreamParameters as types.SctpStreamParameters, label: data.label as string, protocol: data.protocol as string, appData });
				peer.dataProducers.push(dp);
				return { id: dp.id };
			}
			case 'captureStarted':
				peer.captureAt = performance.now();
				peer.browser = data.browser as string;
				peer.handler = data.handler as string;
				return null;
			case 'stats':
				peer.stats.push({ ...(data as Omit<BrowserStatsSample, 'tMs'>), tMs: performance.now() });
				return null;
			default:
				throw new Error(`unknown signal ${method}`);
		}
	};
}

/**
 * Launches one headless Chromium with `pages` tabs, each a peer that joins
 * `router` over its own WebRtcTransport and produces what `spec` says.
 * Resolves once every page is producing.
 */
export async function startBrowserPeers(
	router: types.Router,
	spec: SessionSpec,
	opts: {
		sourcesDir: string;
		pages?: number;
		chromiumPath?: string;
		/** A Y4M file made elsewhere (e.g. a seeded clip of clips.ts) captured instead of spec.video.source; `video` is then not returned. */
		clip?: { path: string; width: number; height: number; fps: number };
	},
): Promise<BrowserPeers> {
	const video = spec.video && !opts.clip ? await makeVideoSource(spec.video.source, opts.sourcesDir) : undefined;
	const capture = opts.clip ?? (video ? { path: video.path, width: video.truth.width, height: video.truth.height, fps: video.truth.fps } : undefined);
	const audio = spec.audio ? await makeAudioSource(spec.audio.source, opts.sourcesDir) : undefined;
	const { server, url } = await serve(await bundlePage());
	const profileDir = mkdtempSync(join(tmpdir(), 'foresight-rec-'));
	const args = [...HEADLESS_CHROMIUM_FLAGS];
	if (capture) args.push(`--use-file-for-fake-video-capture=${capture.path}`);
	if (audio) args.push(`--use-file-for-fake-audio-capture=${audio.path}`);
	const config: PageConfig = {
		statsIntervalMs: 1000,
		video: spec.video && capture ? { label: spec.video.label, width: capture.width, height: capture.height, frameRate: capture.fps, maxBitrates: spec.video.maxBitrates, contentHint: spec.video.contentHint } : undefined,
		audio: spec.audio ? { label: spec.audio.label, stereo: spec.audio.stereo } : undefined,
		chat: spec.chat ? { label: 'chat', meanGapMs: 1500, messages: CHAT_LINES, seed: 7 } : undefined,
	};
	let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
	const close = async (): Promise<void> => {
		await context?.close().catch(() => undefined);
		for (const p of peers) p.transport?.close();
		server.close();
		rmSync(profileDir, { recursive: true, force: true });
	};
	const peers: BrowserPeer[] = [];
	try {
		context = await chromium.launchPersistentContext(profileDir, { executablePath: opts.chromiumPath ?? CHROMIUM_PATH, headless: true, args });
		for (let i = 0; i < (opts.pages ?? 1); i++) {
			const peer = { producers: [], dataProducers: [], stats: [], captureAt: 0, browser: '', handler: '' } as unknown as BrowserPeer;
			peers.push(peer);
			const page = i === 0 ? (context.pages()[0] ?? (await context.newPage())) : await context.newPage();
			await page.exposeFunction('signal', pageSignals(router, config, peer));
			await page.goto(url);
			await page.waitForFunction(() => window.recorderReady === true || window.recorderError !== undefined, undefined, { timeout: 20_000 });
			const pageError = await page.evaluate(() => window.recorderError);
			if (pageError) throw new Error(`recorder page failed: ${pageError}`);
		}
	} catch (err) {
		await close();
		throw err;
	}
	return { peers, video, audio, close };
}

export async function recordSession(spec: SessionSpec, opts: RecordOptions): Promise<{ path: string; bytes: number; packets: number }> {
	const log = opts.log ?? (() => undefined);
	const worker = await mediasoup.createWorker({ logLevel: 'warn' });
	let workerDied: Error | undefined;
	worker.on('died', (e) => (workerDied = e));
	const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
	const tap = await Tap.open(router);
	let browser: BrowserPeers | undefined;
	try {
		browser = await startBrowserPeers(router, spec, { sourcesDir: opts.sourcesDir, chromiumPath: opts.chromiumPath });
		const { video, audio } = browser;
		const peer = browser.peers[0]!;
		log(`${spec.name}: browser producing (${peer.handler}); warming up ${opts.warmupSeconds}s`);
		await new Promise((r) => setTimeout(r, opts.warmupSeconds * 1000));

		// Consumers first, then t0: the first packets arrive only after consume().
		const streams: RecordedStream[] = [];
		const consumers: types.Consumer[] = [];
		for (const [index, { producer, label }] of peer.producers.entries()) {
			const consumer = await tap.consume(producer, index);
			consumers.push(consumer);
			const encodings = consumer.rtpParameters.encodings ?? [];
			const opusCodec = consumer.rtpParameters.codecs.find((c) => c.mimeType.toLowerCase() === 'audio/opus');
			streams.push({
				index,
				kind: producer.kind,
				label,
				rtpParameters: toRecorded(consumer.rtpParameters),
				producerRtpParameters: toRecorded(producer.rtpParameters),
				layers: encodings.map((e, i) => ({ ssrc: e.ssrc!, spatialIndex: i, rid: producer.rtpParameters.encodings?.[i]?.rid })),
				opusStereo: opusCodec ? opusCodec.parameters?.['sprop-stereo'] === 1 || opusCodec.parameters?.stereo === 1 : undefined,
			});
		}
		const messages: DataMessage[] = [];
		let t0 = Number.POSITIVE_INFINITY;
		let direct: types.DirectTransport | undefined;
		const dataProducer = peer.dataProducers[0];
		if (dataProducer) {
			direct = await router.createDirectTransport();
			const dc = await direct.consumeData({ dataProducerId: dataProducer.id });
			dc.on('message', (msg, ppid) => messages.push({ tMs: performance.now() - t0, ppid, text: msg.toString('utf8') }));
		}
		t0 = performance.now();
		tap.start(t0);
		// A fresh consumer starts mid-GOP: ask every layer for a key frame so the file
		// decodes from its start, and again periodically, standing in for the PLIs of
		// receivers joining a real call. A replay cannot answer PLIs, so these are the
		// key frames its late-joining consumers start from.
		const keyFrameRequestsMs: number[] = [];
		const requestKeyFrames = async (): Promise<void> => {
			keyFrameRequestsMs.push(performance.now() - t0);
			for (const c of consumers) if (c.kind === 'video') await c.requestKeyFrame();
		};
		await requestKeyFrames();
		const keyFrameTimer = opts.keyFrameIntervalSeconds > 0 ? setInterval(() => void requestKeyFrames(), opts.keyFrameIntervalSeconds * 1000) : undefined;
		await new Promise((r) => setTimeout(r, opts.seconds * 1000));
		clearInterval(keyFrameTimer);
		const durationMs = performance.now() - t0;
		await new Promise((r) => setTimeout(r, 100));
		if (workerDied) throw new Error(`mediasoup worker died during recording: ${workerDied.message}`);
		const packets = tap.packets.filter((p) => p.arrivalUs <= durationMs * 1000);
		direct?.close();
		const recording: Recording = {
			header: {
				format: MAGIC,
				version: FORMAT_VERSION,
				name: spec.name,
				createdAt: new Date().toISOString(),
				durationMs,
				recorder: { browser: peer.browser, mediasoup: mediasoup.version, mediasoupClientHandler: peer.handler },
				streams,
				// Warm-up samples have no place on the recording's clock.
				browserStats: peer.stats.map((s) => ({ ...s, tMs: s.tMs - t0 })).filter((s) => s.tMs >= 0 && s.tMs <= durationMs),
				dataChannel: dataProducer ? { label: dataProducer.label, ordered: true, messages: messages.filter((m) => m.tMs <= durationMs) } : undefined,
				groundTruth: {
					captureStartMs: peer.captureAt - t0,
					keyFrameRequestsMs: consumers.some((c) => c.kind === 'video') ? keyFrameRequestsMs : undefined,
					video: video ? (video.truth as VideoGroundTruth & Record<string, unknown>) : undefined,
					audio: audio ? (audio.truth as AudioGroundTruth & Record<string, unknown>) : undefined,
				},
				packetCount: packets.length,
			},
			packets,
		};
		mkdirSync(opts.outDir, { recursive: true });
		const path = join(opts.outDir, `${spec.name}.rec.gz`);
		writeRecording(path, recording);
		return { path, bytes: statSync(path).size, packets: packets.length };
	} finally {
		await browser?.close();
		tap.close();
		worker.close();
	}
}

async function cli(): Promise<void> {
	const argv = process.argv.slice(2);
	const flag = (name: string, fallback: string): string => {
		const i = argv.indexOf(name);
		if (i < 0) return fallback;
		const v = argv[i + 1]!;
		argv.splice(i, 2);
		return v;
	};
	const outDir = resolve(flag('--out', 'test/fixtures/recordings'));
	const sourcesDir = resolve(flag('--sources', join(tmpdir(), 'foresight-sources')));
	const seconds = Number(flag('--seconds', '12'));
	const warmupSeconds = Number(flag('--warmup', '5'));
	const keyFrameIntervalSeconds = Number(flag('--keyframe-interval', '4'));
	const names = argv.length ? argv : Object.keys(SESSIONS);
	for (const name of names) {
		const spec = SESSIONS[name];
		if (!spec) throw new Error(`unknown session ${name}; known: ${Object.keys(SESSIONS).join(', ')}`);
		const r = await recordSession(spec, { outDir, sourcesDir, seconds, warmupSeconds, keyFrameIntervalSeconds, log: (l) => process.stderr.write(`${l}\n`) });
		process.stdout.write(`${name}: ${r.packets} packets, ${(r.bytes / 1e6).toFixed(2)} MB → ${r.path}\n`);
	}
}

if (require.main === module) {
	cli().catch((err: unknown) => {
		process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
		process.exit(1);
	});
}
