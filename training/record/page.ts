/**
 * Browser side of a recording (bundled with esbuild, runs in headless Chromium).
 * Joins the recorder's router with mediasoup-client and produces what the
 * session config asks for; the server side is record.ts, reached through the
 * `signal` function that playwright exposes on window.
 */
import { Device } from 'mediasoup-client';
import type { types } from 'mediasoup-client';
import { Rng } from '../../plugin/util/rng';

export interface PageConfig {
	video?: { label: string; width: number; height: number; frameRate: number; maxBitrates: [number, number, number]; contentHint: string };
	audio?: { label: string; stereo: boolean };
	chat?: { label: string; meanGapMs: number; messages: string[]; seed: number };
	statsIntervalMs: number;
}

type Signal = (method: string, data?: unknown) => Promise<unknown>;
declare global {
	interface Window {
		signal: Signal;
		recorderReady?: boolean;
		recorderError?: string;
	}
}

async function sampleStats(producer: types.Producer, label: string): Promise<void> {
	const report = await producer.getStats();
	const outbound: Array<Record<string, unknown>> = [];
	let audioLevel: number | undefined;
	let totalAudioEnergy: number | undefined;
	report.forEach((s: Record<string, unknown>) => {
		if (s.type === 'outbound-rtp') {
			outbound.push({
				kind: s.kind,
				ssrc: s.ssrc,
				rid: s.rid,
				bytesSent: s.bytesSent,
				packetsSent: s.packetsSent,
				frameWidth: s.frameWidth,
				frameHeight: s.frameHeight,
				framesPerSecond: s.framesPerSecond,
				framesEncoded: s.framesEncoded,
				keyFramesEncoded: s.keyFramesEncoded,
				qualityLimitationReason: s.qualityLimitationReason,
				targetBitrate: s.targetBitrate,
				encoderImplementation: s.encoderImplementation,
				active: s.active,
			});
		} else if (s.type === 'media-source' && s.kind === 'audio') {
			audioLevel = s.audioLevel as number | undefined;
			totalAudioEnergy = s.totalAudioEnergy as number | undefined;
		}
	});
	await window.signal('stats', { label, outbound, audioLevel, totalAudioEnergy });
}

async function main(): Promise<void> {
	const config = (await window.signal('config')) as PageConfig;
	const device = new Device();
	await device.load({ routerRtpCapabilities: (await window.signal('routerRtpCapabilities')) as types.RtpCapabilities });
	const params = (await window.signal('createSendTransport')) as types.TransportOptions;
	const transport = device.createSendTransport(params);
	transport.on('connect', ({ dtlsParameters }, ok, fail) => {
		window.signal('connect', { dtlsParameters }).then(() => ok(), fail);
	});
	transport.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
		window.signal('produce', { kind, rtpParameters, label: appData.label }).then((r) => ok(r as { id: string }), fail);
	});
	transport.on('producedata', ({ sctpStreamParameters, label, protocol }, ok, fail) => {
		window.signal('produceData', { sctpStreamParameters, label, protocol }).then((r) => ok(r as { id: string }), fail);
	});

	const stream = await navigator.mediaDevices.getUserMedia({
		video: config.video ? { width: config.video.width, height: config.video.height, frameRate: config.video.frameRate } : false,
		audio: config.audio
			? { channelCount: config.audio.stereo ? 2 : 1, echoCancellation: false, autoGainControl: false, noiseSuppression: false }
			: false,
	});
	await window.signal('captureStarted', { handler: device.handlerName, browser: navigator.userAgent });

	const producers: Array<{ producer: types.Producer; label: string }> = [];
	if (config.video) {
		const track = stream.getVideoTracks()[0]!;
		track.contentHint = config.video.contentHint;
		const [low, mid, high] = config.video.maxBitrates;
		const producer = await transport.produce({
			track,
			encodings: [
				{ rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: low, scalabilityMode: 'L1T3' },
				{ rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: mid, scalabilityMode: 'L1T3' },
				{ rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: high, scalabilityMode: 'L1T3' },
			],
			// Start the browser's bandwidth estimate near the target instead of ramping from
			// ~300 kbps, so that all three layers are on within the warm-up.
			codecOptions: { videoGoogleStartBitrate: Math.round((low + mid + high) / 1000) },
			appData: { label: config.video.label },
		});
		// The recorder runs on a shared 2-core box; keep the resolutions the source
		// has so the layers are what a capable sender emits (frame rate may drop).
		const sender = producer.rtpSender;
		if (sender) {
			const p = sender.getParameters();
			p.degradationPreference = 'maintain-resolution';
			await sender.setParameters(p).catch(() => undefined);
		}
		producers.push({ producer, label: config.video.label });
	}
	if (config.audio) {
		const producer = await transport.produce({
			track: stream.getAudioTracks()[0]!,
			codecOptions: { opusStereo: config.audio.stereo, opusDtx: false, opusFec: true },
			appData: { label: config.audio.label },
		});
		producers.push({ producer, label: config.audio.label });
	}
	if (config.chat) {
		const chat = config.chat;
		const dataProducer = await transport.produceData({ ordered: true, label: chat.label });
		await new Promise<void>((r) => (dataProducer.readyState === 'open' ? r() : dataProducer.on('open', () => r())));
		const rng = new Rng(chat.seed);
		let n = 0;
		// Chat arrives in bursts: exponential gaps, and now and then a quick
		// follow-up message from the same person.
		const next = (): void => {
			const burst = rng.next() < 0.3;
			const gap = burst ? rng.uniform(150, 750) : rng.exponential(chat.meanGapMs);
			setTimeout(() => {
				const text = chat.messages[rng.int(0, chat.messages.length - 1)]!;
				dataProducer.send(JSON.stringify({ n: n++, from: 'recorder', at: Date.now(), text }));
				next();
			}, gap);
		};
		next();
	}
	setInterval(() => {
		for (const { producer, label } of producers) sampleStats(producer, label).catch(() => undefined);
	}, config.statsIntervalMs);
	window.recorderReady = true;
}

main().catch((err: unknown) => {
	window.recorderError = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
});
