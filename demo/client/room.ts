import { Device } from 'mediasoup-client';
import type { types } from 'mediasoup-client';
import { SignalingClient } from './signalingClient';

/**
 * The room page: camera + mic as VP8 simulcast (3 layers) and Opus, chat over an
 * SCTP data channel, remote peers' media, screen share. `window.demo` exposes the
 * state the end-to-end test checks.
 */

interface TransportInfo {
	id: string;
	iceParameters: types.IceParameters;
	iceCandidates: types.IceCandidate[];
	dtlsParameters: types.DtlsParameters;
	sctpParameters?: types.SctpParameters;
}

interface SendingLayer {
	rid: string;
	width: number;
	height: number;
	limitation: string;
}

interface RemoteProducer {
	producerId: string;
	peerId: string;
	kind: 'audio' | 'video';
	displayName: string;
}

const state = {
	peerId: '',
	joined: false,
	producers: {} as Record<string, string>,
	consumers: 0,
	migrations: 0,
	chatReceived: [] as string[],
	errors: [] as string[],
};
(window as unknown as { demo: typeof state }).demo = state;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const statusEl = $('status');
const setStatus = (text: string): void => {
	statusEl.textContent = text;
};

const SIMULCAST: RTCRtpEncodingParameters[] = [
	{ rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
	{ rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
	{ rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

async function main(): Promise<void> {
	const displayName = new URLSearchParams(location.search).get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`;
	const signaling = await SignalingClient.open(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
	const device = new Device();
	await device.load({ routerRtpCapabilities: await signaling.request<types.RtpCapabilities>('getRouterRtpCapabilities') });
	const joined = await signaling.request<{ peerId: string; producers: RemoteProducer[]; dataProducers: Array<{ dataProducerId: string; displayName: string }> }>('join', {
		displayName,
		rtpCapabilities: device.rtpCapabilities,
	});
	state.peerId = joined.peerId;
	$('me').textContent = `${displayName} · ${joined.peerId.slice(0, 8)}`;

	const makeTransport = async (direction: 'send' | 'recv'): Promise<types.Transport> => {
		const info = await signaling.request<TransportInfo>('createWebRtcTransport', { direction, sctp: true });
		const opts = { id: info.id, iceParameters: info.iceParameters, iceCandidates: info.iceCandidates, dtlsParameters: info.dtlsParameters, sctpParameters: info.sctpParameters };
		const transport = direction === 'send' ? device.createSendTransport(opts) : device.createRecvTransport(opts);
		transport.on('connect', ({ dtlsParameters }, ok, fail) => {
			signaling.request('connect', { transportId: transport.id, dtlsParameters }).then(() => ok(), fail);
		});
		transport.on('connectionstatechange', (s) => setStatus(`${direction} transport ${s}`));
		if (direction === 'send') {
			transport.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
				signaling.request<{ id: string }>('produce', { transportId: transport.id, kind, rtpParameters, appData }).then(ok, fail);
			});
			transport.on('producedata', ({ sctpStreamParameters, label, protocol }, ok, fail) => {
				signaling.request<{ id: string }>('produceData', { transportId: transport.id, sctpStreamParameters, label, protocol }).then(ok, fail);
			});
		}
		return transport;
	};
	const sendTransport = await makeTransport('send');
	const recvTransport = await makeTransport('recv');
	const recvTransports = new Map<string, types.Transport>([[recvTransport.id, recvTransport]]);
	const consumers = new Map<string, types.Consumer>();

	// Remote media.
	const remoteTiles = new Map<string, HTMLElement>();
	const tileOf = (peerId: string, name: string): HTMLElement => {
		let tile = remoteTiles.get(peerId);
		if (!tile) {
			tile = document.createElement('figure');
			tile.className = 'tile';
			tile.dataset.peer = peerId;
			tile.innerHTML = `<figcaption>${name.replace(/[<>&]/g, '')}</figcaption>`;
			$('remotes').append(tile);
			remoteTiles.set(peerId, tile);
		}
		return tile;
	};
	const consumerTiles = new Map<string, HTMLMediaElement>();
	const consume = async (p: RemoteProducer): Promise<void> => {
		const params = await signaling.request<{ id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: types.RtpParameters; type: string }>('consume', { producerId: p.producerId });
		const consumer = await recvTransport.consume({ id: params.id, producerId: params.producerId, kind: params.kind, rtpParameters: params.rtpParameters });
		consumers.set(consumer.id, consumer);
		const tile = tileOf(p.peerId, p.displayName);
		const el = document.createElement(params.kind === 'video' ? 'video' : 'audio');
		el.autoplay = true;
		(el as HTMLVideoElement).playsInline = true;
		el.muted = params.kind === 'audio' ? false : true;
		el.srcObject = new MediaStream([consumer.track]);
		el.dataset.consumer = consumer.id;
		tile.prepend(el);
		consumerTiles.set(consumer.id, el);
		if (params.type === 'simulcast') {
			const select = document.createElement('select');
			select.title = 'preferred simulcast layer';
			select.innerHTML = '<option value="2">high</option><option value="1">medium</option><option value="0">low</option>';
			select.onchange = () => void signaling.request('setPreferredLayers', { consumerId: el.dataset.consumer, spatialLayer: Number(select.value) });
			tile.append(select);
		}
		await signaling.request('resume', { consumerId: consumer.id });
		state.consumers++;
	};
	const consumeSafely = (p: RemoteProducer): void => void consume(p).catch((e: Error) => state.errors.push(e.message));
	signaling.on('newProducer', (d) => consumeSafely(d as unknown as RemoteProducer));
	signaling.on('consumerClosed', (d) => {
		const el = consumerTiles.get(String(d.consumerId));
		const tile = el?.parentElement;
		el?.remove();
		consumerTiles.delete(String(d.consumerId));
		if (tile && !tile.querySelector('video,audio')) {
			remoteTiles.delete(tile.dataset.peer ?? '');
			tile.remove();
		}
	});
	// Migration: the server moved one of our consumers to another worker. Swap the track in place.
	signaling.on('consumerMigrated', (d) => {
		void (async () => {
			const m = d as unknown as { oldConsumerId: string; transportId: string; transport: TransportInfo | null; consumer: { id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: types.RtpParameters } };
			let transport = recvTransports.get(m.transportId);
			if (!transport && m.transport) {
				transport = device.createRecvTransport({ id: m.transport.id, iceParameters: m.transport.iceParameters, iceCandidates: m.transport.iceCandidates, dtlsParameters: m.transport.dtlsParameters });
				const t = transport;
				t.on('connect', ({ dtlsParameters }, ok, fail) => {
					signaling.request('connect', { transportId: t.id, dtlsParameters }).then(() => ok(), fail);
				});
				recvTransports.set(t.id, t);
			}
			if (!transport) throw new Error(`migration to unknown transport ${m.transportId}`);
			const consumer = await transport.consume(m.consumer);
			consumers.set(consumer.id, consumer);
			const el = consumerTiles.get(m.oldConsumerId);
			if (el) {
				el.srcObject = new MediaStream([consumer.track]);
				el.dataset.consumer = consumer.id;
				consumerTiles.delete(m.oldConsumerId);
				consumerTiles.set(consumer.id, el);
			}
			await signaling.request('resume', { consumerId: consumer.id });
			consumers.get(m.oldConsumerId)?.close();
			consumers.delete(m.oldConsumerId);
			state.migrations++;
		})().catch((e: Error) => state.errors.push(`migration: ${e.message}`));
	});
	signaling.on('layersChanged', (d) => {
		const el = consumerTiles.get(String(d.consumerId));
		if (el) el.title = `receiving spatial layer ${String(d.spatialLayer)}`;
	});
	for (const p of joined.producers) consumeSafely(p);

	// Chat.
	const chatLog = $('chat-log');
	const addChat = (who: string, text: string): void => {
		const line = document.createElement('div');
		line.textContent = `${who}: ${text}`;
		chatLog.append(line);
		chatLog.scrollTop = chatLog.scrollHeight;
	};
	const consumeData = async (dataProducerId: string, name: string): Promise<void> => {
		const params = await signaling.request<{ id: string; dataProducerId: string; sctpStreamParameters: types.SctpStreamParameters; label: string; protocol: string }>('consumeData', { dataProducerId });
		const dc = await recvTransport.consumeData({ id: params.id, dataProducerId: params.dataProducerId, sctpStreamParameters: params.sctpStreamParameters, label: params.label, protocol: params.protocol });
		dc.on('message', (m: unknown) => {
			state.chatReceived.push(String(m));
			addChat(name, String(m));
		});
	};
	signaling.on('newDataProducer', (d) => void consumeData(String(d.dataProducerId), String(d.displayName)).catch((e: Error) => state.errors.push(e.message)));
	for (const d of joined.dataProducers) void consumeData(d.dataProducerId, d.displayName).catch((e: Error) => state.errors.push(e.message));
	const chat = await sendTransport.produceData({ ordered: true, label: 'chat', protocol: 'text' });
	$<HTMLFormElement>('chat-form').onsubmit = (e) => {
		e.preventDefault();
		const input = $<HTMLInputElement>('chat-input');
		if (!input.value) return;
		chat.send(input.value);
		addChat('me', input.value);
		input.value = '';
	};
	(window as unknown as { sendChat: (t: string) => void }).sendChat = (t) => chat.send(t);
	state.producers.chat = chat.id;

	// Camera and mic.
	const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } } });
	const local = $<HTMLVideoElement>('local');
	local.srcObject = media;
	const vp8 = device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
	const video = await sendTransport.produce({ track: media.getVideoTracks()[0]!, encodings: SIMULCAST, codecOptions: { videoGoogleStartBitrate: 1000 }, codec: vp8, appData: { source: 'camera' } });
	state.producers.video = video.id;
	// What the browser is sending right now, per simulcast layer: the ground truth a profile is checked against.
	(window as unknown as { sendingLayers: () => Promise<SendingLayer[]> }).sendingLayers = async () => {
		const layers: SendingLayer[] = [];
		(await video.getStats()).forEach((s: { type: string; rid?: string; frameWidth?: number; frameHeight?: number; qualityLimitationReason?: string }) => {
			if (s.type === 'outbound-rtp' && s.rid) layers.push({ rid: s.rid, width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, limitation: s.qualityLimitationReason ?? 'none' });
		});
		return layers;
	};
	const audio = await sendTransport.produce({ track: media.getAudioTracks()[0]!, appData: { source: 'mic' } });
	state.producers.audio = audio.id;

	// Screen share.
	let screen: types.Producer | undefined;
	const shareButton = $<HTMLButtonElement>('share');
	shareButton.onclick = async () => {
		if (screen) {
			await signaling.request('closeProducer', { producerId: screen.id });
			screen.close();
			screen = undefined;
			shareButton.textContent = 'Share screen';
			return;
		}
		try {
			const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 } });
			const track = display.getVideoTracks()[0]!;
			screen = await sendTransport.produce({ track, codec: vp8, appData: { source: 'screen' } });
			track.onended = () => shareButton.click();
			shareButton.textContent = 'Stop sharing';
		} catch (e) {
			state.errors.push((e as Error).message);
		}
	};
	$<HTMLButtonElement>('mute').onclick = () => {
		if (audio.paused) audio.resume();
		else audio.pause();
		$('mute').textContent = audio.paused ? 'Unmute' : 'Mute';
	};
	state.joined = true;
	setStatus('connected');
}

main().catch((e: Error) => {
	state.errors.push(e.message);
	setStatus(`error: ${e.message}`);
});
