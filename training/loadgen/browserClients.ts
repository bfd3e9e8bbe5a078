import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { types } from 'mediasoup';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_PATH, HEADLESS_CHROMIUM_FLAGS } from '../media/chromium';
import type { PageConfig } from '../record/page';
import { bundlePage, pageSignals, serve, SESSIONS, type BrowserPeer, type SessionSpec } from '../record/record';
import { makeAudioSource, makeVideoSource } from '../record/sources';
import type { TimelineEventOf } from './scenario';
import type { ExternalPublication } from './runner';

/**
 * Real browser peers for the load generator: one headless Chromium, one page per
 * publication, each joining a router with mediasoup-client over WebRTC (ICE + DTLS +
 * SRTP on 127.0.0.1) and publishing the recorder's generated sources through Chromium's
 * fake capture (`--use-file-for-fake-video-capture` / `-audio-capture`): the same Y4M/WAV
 * the committed recordings were made from, encoded live (VP8 simulcast ×3, Opus).
 *
 * Fake capture files are per process, so every page of one Chromium sends the same
 * source (`spec`); one process with several pages is what a 2-core host affords.
 */

export interface BrowserClientsOptions {
	/** Where the generated Y4M/WAV sources are written (made once, reused). */
	sourcesDir: string;
	/** Which recorder session's sources and encodings the pages send (record.ts SESSIONS). */
	spec?: string;
	chromiumPath?: string;
	/** The pages' getStats() period (page.ts samples its producers; nothing here keeps them). */
	statsIntervalMs?: number;
	/** How long a page may take from opening to producing before its publication fails. */
	readyTimeoutMs?: number;
}

/** Default sources: the camera + microphone of the talking-head recording every generated meeting replays most. */
export const DEFAULT_BROWSER_SPEC = 'talking-head';
/** Page start (bundle load, getUserMedia, ICE/DTLS, produce) on a loaded 2-core host takes a few seconds; beyond this it is stuck. */
export const PAGE_READY_TIMEOUT_MS = 20_000;
/** Mean gap of a page's chat messages (as the recorder's). */
const CHAT_MEAN_GAP_MS = 1500;
const CHAT_LINES = ['can you hear me?', 'yes', '+1', 'brb', 'next item?', 'sharing in a sec', 'agreed'];

export class BrowserClients {
	private pagesOpened = 0;
	private readonly open = new Set<Page>();

	private constructor(
		private readonly context: BrowserContext,
		private readonly server: Server,
		private readonly url: string,
		private readonly profileDir: string,
		private readonly spec: SessionSpec,
		private readonly capture: { width: number; height: number; fps: number } | undefined,
		private readonly options: BrowserClientsOptions,
	) {}

	static async launch(options: BrowserClientsOptions): Promise<BrowserClients> {
		const spec = SESSIONS[options.spec ?? DEFAULT_BROWSER_SPEC];
		if (!spec) throw new Error(`unknown browser source ${options.spec} (known: ${Object.keys(SESSIONS).join(', ')})`);
		const video = spec.video ? await makeVideoSource(spec.video.source, options.sourcesDir) : undefined;
		const audio = spec.audio ? await makeAudioSource(spec.audio.source, options.sourcesDir) : undefined;
		const args = [...HEADLESS_CHROMIUM_FLAGS];
		if (video) args.push(`--use-file-for-fake-video-capture=${video.path}`);
		if (audio) args.push(`--use-file-for-fake-audio-capture=${audio.path}`);
		const { server, url } = await serve(await bundlePage());
		const profileDir = mkdtempSync(join(tmpdir(), 'foresight-browser-'));
		try {
			const context = await chromium.launchPersistentContext(profileDir, { executablePath: options.chromiumPath ?? CHROMIUM_PATH, headless: true, args });
			const capture = video ? { width: video.truth.width, height: video.truth.height, fps: video.truth.fps } : undefined;
			return new BrowserClients(context, server, url, profileDir, spec, capture, options);
		} catch (err) {
			server.close();
			rmSync(profileDir, { recursive: true, force: true });
			throw err;
		}
	}

	/** Pages open now (one per live publication). */
	get pages(): number {
		return this.open.size;
	}

	/**
	 * Opens a page that joins `router` and publishes what `event` asks of the spec's
	 * tracks (camera if a video track is listed, microphone if an audio one, chat if
	 * `data`); resolves once it is producing. Closing it closes the page and its transport.
	 */
	async publish(router: types.Router, event: TimelineEventOf<'publish'>, appData: Record<string, unknown>): Promise<ExternalPublication> {
		const wantsVideo = event.tracks.some((t) => t.kind === 'video');
		const wantsAudio = event.tracks.some((t) => t.kind === 'audio');
		const { video, audio } = this.spec;
		const config: PageConfig = {
			statsIntervalMs: this.options.statsIntervalMs ?? 1000,
			video: wantsVideo && video && this.capture ? { label: video.label, ...this.capture, frameRate: this.capture.fps, maxBitrates: video.maxBitrates, contentHint: video.contentHint } : undefined,
			audio: wantsAudio && audio ? { label: audio.label, stereo: audio.stereo } : undefined,
			chat: event.data ? { label: 'chat', meanGapMs: CHAT_MEAN_GAP_MS, messages: CHAT_LINES, seed: ++this.pagesOpened } : undefined,
		};
		if (!config.video && !config.audio) throw new Error(`browser source ${this.spec.name} has none of the tracks ${event.tracks.map((t) => t.label).join(', ')}`);
		const peer = { producers: [], dataProducers: [], stats: [], captureAt: 0, browser: '', handler: '' } as unknown as BrowserPeer;
		const page = await this.context.newPage();
		this.open.add(page);
		const close = async (): Promise<void> => {
			this.open.delete(page);
			// The transport first: the SFU side stops at once, as when a tab's connection drops.
			peer.transport?.close();
			await page.close().catch(() => undefined);
		};
		try {
			await page.exposeFunction('signal', pageSignals(router, config, peer, appData));
			await page.goto(this.url);
			await page.waitForFunction(() => window.recorderReady === true || window.recorderError !== undefined, undefined, { timeout: this.options.readyTimeoutMs ?? PAGE_READY_TIMEOUT_MS });
			const pageError = await page.evaluate(() => window.recorderError);
			if (pageError) throw new Error(`browser page failed: ${pageError}`);
		} catch (err) {
			await close();
			throw err;
		}
		return { producers: peer.producers.map(({ producer, label }) => ({ label, producer, router })), close };
	}

	async close(): Promise<void> {
		for (const page of [...this.open]) await page.close().catch(() => undefined);
		await this.context.close().catch(() => undefined);
		this.server.close();
		rmSync(this.profileDir, { recursive: true, force: true });
	}
}
