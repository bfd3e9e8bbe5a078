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

type Source = 'camera' | 'mic' | 'screen';
/** Where `window.demo.producers` lists each source's current producer id. */
const STATE_KEY: Partial<Record<Source, string>> = { camera: 'video', mic: 'audio' };

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
	/** Consumers moved to another worker (track swapped in place). */
	migrations: 0,
	/** Own producers re-published on another worker. */
	producerMigrations: 0,
	/** Re-joins after a media server (worker) died. */
	rejoins: 0,
	/** Audio only since a re-join found the servers full. */
	audioOnly: false,
	/** The notice shown (or last shown) at the top of the page. */
	notice: '',
	chatReceived: [] as string[],
	errors: [] as string[],
};
(window as unknown as { demo: typeof state }).demo = state;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const statusEl = $('status');
const setStatus = (text: string): void => {
	statusEl.textContent = text;
};
const noticeEl = $('notice');
let noticeTimer: ReturnType<typeof setTimeout> | undefined;
/** A short notice at the top of the page; `hideAfterMs` undefined keeps it up until the next one. */
const showNotice = (text: string, hideAfterMs?: number): void => {
	state.notice = text;
	noticeEl.textContent = text;
	noticeEl.hidden = false;
	clearTimeout(noticeTimer);
	if (hideAfterMs !== undefined) noticeTimer = setTimeout(() => (noticeEl.hidden = true), hideAfterMs);
};

/** What the server says the page lost with its worker (see demo/rejoin.ts). */
interface RejoinNotice {
	mode: 'full' | 'audioOnly';
	lostTransportIds: string[];
	lostProducerIds: string[];
	lostConsumerIds: string[];
	lostDataProducerIds: string[];
	lostDataConsumerIds: string[];
	/** Live transports of ours on the new router, if any: used instead of opening new ones. */
	sendTransportId: string | null;
	recvTransportId: string | null;
	producers: RemoteProducer[];
	dataProducers: Array<{ dataProducerId: string; displayName: string }>;
}

/** How long a migrated consumer's new track may take to show a frame before it replaces the old one anyway. */
const FIRST_FRAME_WAIT_MS = 3000;

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

	// Also for transports the server opens on its own (migrations): their parameters come in a notification.
	const openTransport = (direction: 'send' | 'recv', info: TransportInfo): types.Transport => {
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
	const makeTransport = async (direction: 'send' | 'recv'): Promise<types.Transport> =>
		openTransport(direction, await signaling.request<TransportInfo>('createWebRtcTransport', { direction, sctp: true }));
	// The transports new media goes on; a re-join after a worker died replaces the ones that died.
	let sendTransport = await makeTransport('send');
	let recvTransport = await makeTransport('recv');
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
	/**
	 * Consumer id → settles once that consumer's element is on screen (or failed). The server may
	 * migrate a consumer again, or for the first time, before the page has shown it: the
	 * migration then waits for it, or its track would be attached nowhere and the tile freeze
	 * on a closed consumer.
	 */
	const tileSettled = new Map<string, Promise<void>>();
	const consume = async (p: RemoteProducer): Promise<void> => {
		if (state.audioOnly && p.kind !== 'audio') return;
		const params = await signaling.request<{ id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: types.RtpParameters; type: string }>('consume', { producerId: p.producerId });
		let settle!: () => void;
		tileSettled.set(params.id, new Promise<void>((resolve) => (settle = resolve)));
		try {
			await showConsumer(p, params);
		} finally {
			settle();
		}
		await signaling.request('resume', { consumerId: params.id });
		state.consumers++;
	};
	const showConsumer = async (p: RemoteProducer, params: { id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: types.RtpParameters; type: string }): Promise<void> => {
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
			// Follows the tile's consumer across migrations.
			select.dataset.consumer = consumer.id;
			select.onchange = () => void signaling.request('setPreferredLayers', { consumerId: select.dataset.consumer, spatialLayer: Number(select.value) });
			tile.append(select);
		}
	};
	/**
	 * Plays `track` in a twin of `el` laid over it, invisible until the track has
	 * a frame (or FIRST_FRAME_WAIT_MS), then replaces `el` with it: swapping
	 * srcObject in place shows nothing until the new track's first keyframe.
	 */
	const playAlongside = async (el: HTMLMediaElement, track: MediaStreamTrack): Promise<HTMLMediaElement> => {
		const next = el.cloneNode(false) as HTMLMediaElement;
		next.muted = el.muted;
		next.srcObject = new MediaStream([track]);
		if (next instanceof HTMLVideoElement) {
			next.style.cssText = 'position:absolute;opacity:0;pointer-events:none';
			el.after(next);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, FIRST_FRAME_WAIT_MS);
				next.requestVideoFrameCallback(() => {
					clearTimeout(timer);
					resolve();
				});
			});
			next.style.cssText = '';
		} else {
			el.before(next);
		}
		el.remove();
		return next;
	};
	const consumeSafely = (p: RemoteProducer): void => void consume(p).catch((e: Error) => state.errors.push(e.message));
	signaling.on('newProducer', (d) => consumeSafely(d as unknown as RemoteProducer));
	const removeTile = (consumerId: string): void => {
		const el = consumerTiles.get(consumerId);
		const tile = el?.parentElement;
		el?.remove();
		consumerTiles.delete(consumerId);
		tileSettled.delete(consumerId);
		if (tile && !tile.querySelector('video,audio')) {
			remoteTiles.delete(tile.dataset.peer ?? '');
			tile.remove();
		}
	};
	signaling.on('consumerClosed', (d) => removeTile(String(d.consumerId)));
	// Migration: the server moved one of our consumers to another worker (or onto a migrated producer). Swap the tile's track.
	signaling.on('consumerMigrated', (d) => {
		const m = d as unknown as { oldConsumerId: string; transportId: string; transport: TransportInfo | null; consumer: { id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: types.RtpParameters } };
		let settle!: () => void;
		tileSettled.set(m.consumer.id, new Promise<void>((resolve) => (settle = resolve)));
		void (async () => {
			await tileSettled.get(m.oldConsumerId);
			tileSettled.delete(m.oldConsumerId);
			let transport = recvTransports.get(m.transportId);
			if (!transport && m.transport) {
				transport = openTransport('recv', m.transport);
				recvTransports.set(transport.id, transport);
			}
			if (!transport) throw new Error(`migration to unknown transport ${m.transportId}`);
			const consumer = await transport.consume(m.consumer);
			consumers.set(consumer.id, consumer);
			await signaling.request('resume', { consumerId: consumer.id });
			// Make-before-break on screen too: the old consumer keeps playing until the new one has a frame.
			const old = consumerTiles.get(m.oldConsumerId);
			if (old) {
				const next = await playAlongside(old, consumer.track);
				next.dataset.consumer = consumer.id;
				consumerTiles.delete(m.oldConsumerId);
				consumerTiles.set(consumer.id, next);
				const select = next.parentElement?.querySelector<HTMLSelectElement>(`select[data-consumer="${m.oldConsumerId}"]`);
				if (select) select.dataset.consumer = consumer.id;
			}
			await signaling.request('closeConsumer', { consumerId: m.oldConsumerId }).catch(() => {}); // closed already (its producer went)
			consumers.get(m.oldConsumerId)?.close();
			consumers.delete(m.oldConsumerId);
			state.migrations++;
		})()
			.catch((e: Error) => state.errors.push(`migration: ${e.message}`))
			.finally(settle);
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
	/** Data consumer id → the data producer it receives (to consume it again after a re-join). */
	const dataConsumers = new Map<string, string>();
	const consumeData = async (dataProducerId: string, name: string): Promise<void> => {
		const params = await signaling.request<{ id: string; dataProducerId: string; sctpStreamParameters: types.SctpStreamParameters; label: string; protocol: string }>('consumeData', { dataProducerId });
		dataConsumers.set(params.id, dataProducerId);
		const dc = await recvTransport.consumeData({ id: params.id, dataProducerId: params.dataProducerId, sctpStreamParameters: params.sctpStreamParameters, label: params.label, protocol: params.protocol });
		dc.on('message', (m: unknown) => {
			state.chatReceived.push(String(m));
			addChat(name, String(m));
		});
	};
	signaling.on('newDataProducer', (d) => void consumeData(String(d.dataProducerId), String(d.displayName)).catch((e: Error) => state.errors.push(e.message)));
	for (const d of joined.dataProducers) void consumeData(d.dataProducerId, d.displayName).catch((e: Error) => state.errors.push(e.message));
	const openChat = (): Promise<types.DataProducer> => sendTransport.produceData({ ordered: true, label: 'chat', protocol: 'text' });
	let chat = await openChat();
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

	// Camera and mic. The page owns the tracks (the preview shows them), so closing a producer does not stop its track.
	const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } } });
	const local = $<HTMLVideoElement>('local');
	local.srcObject = media;
	const vp8 = device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
	/** The live producer of each source; a migration swaps in its replacement, so mute and share follow it. */
	const sources = new Map<Source, types.Producer>();
	/** How each source was published, so a migration re-publishes it identically. */
	const publishedWith = new Map<Source, types.ProducerOptions>();
	const publish = async (transport: types.Transport, source: Source, options: types.ProducerOptions): Promise<types.Producer> => {
		const producer = await transport.produce({ ...options, stopTracks: false, appData: { ...options.appData, source } });
		publishedWith.set(source, options);
		sources.set(source, producer);
		const key = STATE_KEY[source];
		if (key) state.producers[key] = producer.id;
		return producer;
	};
	const sourceOf = (producerId: string): Source | undefined => [...sources].find(([, p]) => p.id === producerId)?.[0];
	await publish(sendTransport, 'camera', { track: media.getVideoTracks()[0]!, encodings: SIMULCAST, codecOptions: { videoGoogleStartBitrate: 1000 }, codec: vp8 });
	// What the browser is sending right now, per simulcast layer: the ground truth a profile is checked against.
	(window as unknown as { sendingLayers: () => Promise<SendingLayer[]> }).sendingLayers = async () => {
		const layers: SendingLayer[] = [];
		(await sources.get('camera')!.getStats()).forEach((s: { type: string; rid?: string; frameWidth?: number; frameHeight?: number; qualityLimitationReason?: string }) => {
			if (s.type === 'outbound-rtp' && s.rid) layers.push({ rid: s.rid, width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, limitation: s.qualityLimitationReason ?? 'none' });
		});
		return layers;
	};
	await publish(sendTransport, 'mic', { track: media.getAudioTracks()[0]! });
	// What the browser receives per video consumer, for diagnosing a frozen tile (the fault suite reads it).
	(window as unknown as { receivingStats: () => Promise<Record<string, Record<string, number | string>>> }).receivingStats = async () => {
		const out: Record<string, Record<string, number | string>> = {};
		for (const [id, consumer] of consumers) {
			if (consumer.kind !== 'video' || consumer.closed) continue;
			(await consumer.getStats()).forEach((st: Record<string, number | string>) => {
				if (st.type !== 'inbound-rtp') return;
				const keep = ['ssrc', 'packetsReceived', 'packetsLost', 'packetsDiscarded', 'retransmittedPacketsReceived', 'framesReceived', 'framesAssembledFromMultiplePackets', 'framesDecoded', 'keyFramesDecoded', 'framesDropped', 'jitterBufferEmittedCount', 'nackCount', 'pliCount', 'firCount', 'freezeCount', 'frameWidth', 'lastPacketReceivedTimestamp', 'decoderImplementation'];
				out[id] = Object.fromEntries(keep.filter((k) => st[k] !== undefined).map((k) => [k, st[k]!]));
			});
		}
		for (const [id, t] of recvTransports) {
			(await t.getStats()).forEach((st: Record<string, number | string>) => {
				if (st.type === 'candidate-pair' && st.nominated) out[`transport ${id}`] = { state: st.state!, bytesReceived: st.bytesReceived!, responsesReceived: st.responsesReceived!, consentRequestsSent: st.consentRequestsSent ?? '-' };
			});
			out[`transport ${id}`] = { ...(out[`transport ${id}`] ?? {}), connectionState: t.connectionState };
		}
		// What each video element shows: a tile can freeze while its consumer decodes.
		document.querySelectorAll<HTMLVideoElement>('#remotes video').forEach((v, i) => {
			const track = (v.srcObject as MediaStream | null)?.getVideoTracks()[0];
			out[`element ${i}`] = {
				consumer: v.dataset.consumer ?? '-',
				frames: v.getVideoPlaybackQuality().totalVideoFrames,
				readyState: v.readyState,
				paused: String(v.paused),
				currentTime: v.currentTime,
				track: track ? `${track.readyState}${track.muted ? '/muted' : ''}${track.id === consumers.get(v.dataset.consumer ?? '')?.track.id ? '' : '/not-its-consumer'}` : 'none',
			};
		});
		out.page = { visibility: document.visibilityState, focus: String(document.hasFocus()), tiles: consumerTiles.size, consumers: consumers.size };
		return out;
	};

	// Producer migration: the server opened a send transport on another worker; publish the same source there
	// (same track, encodings and codec) tagged with the producer it replaces. The old one keeps sending until
	// the server says every consumer has moved (producerMigrated).
	const sendTransports = new Map<string, types.Transport>([[sendTransport.id, sendTransport]]);
	const migrating = new Map<string, { transport: types.Transport; producer?: types.Producer }>();
	signaling.on('migrateProducer', (d) => {
		const m = d as unknown as { producerId: string; transport: TransportInfo };
		void (async () => {
			const source = sourceOf(m.producerId);
			const old = source ? sources.get(source) : undefined;
			if (!source || !old || old.closed) throw new Error(`no open producer ${m.producerId} to migrate`);
			if (!old.track) throw new Error(`producer ${m.producerId} has no track to re-publish`);
			const transport = openTransport('send', m.transport);
			sendTransports.set(transport.id, transport);
			const entry: { transport: types.Transport; producer?: types.Producer } = { transport };
			migrating.set(m.producerId, entry);
			const options = publishedWith.get(source)!;
			entry.producer = await transport.produce({ ...options, track: old.track, stopTracks: false, appData: { ...options.appData, source, replaces: m.producerId } });
			if (old.paused) entry.producer.pause();
		})().catch((e: Error) => {
			const message = `producer migration of ${m.producerId}: ${e.message}`;
			state.errors.push(message);
			void signaling.request('producerMigrationFailed', { producerId: m.producerId, error: e.message.slice(0, 256) }).catch(() => {});
		});
	});
	signaling.on('producerMigrated', (d) => {
		const m = d as unknown as { oldProducerId: string; newProducerId: string; closedTransportId: string | null };
		const entry = migrating.get(m.oldProducerId);
		migrating.delete(m.oldProducerId);
		const source = sourceOf(m.oldProducerId);
		if (!entry?.producer || entry.producer.id !== m.newProducerId || !source) return void state.errors.push(`producerMigrated for unknown producer ${m.oldProducerId}`);
		sources.get(source)!.close();
		sources.set(source, entry.producer);
		const key = STATE_KEY[source];
		if (key) state.producers[key] = entry.producer.id;
		if (m.closedTransportId) {
			sendTransports.get(m.closedTransportId)?.close();
			sendTransports.delete(m.closedTransportId);
		}
		state.producerMigrations++;
	});
	signaling.on('producerMigrationFailed', (d) => {
		const m = d as unknown as { producerId: string; transportId?: string; reason: string };
		const entry = migrating.get(m.producerId);
		migrating.delete(m.producerId);
		// Before the client re-published, the server closed the new transport: close ours too.
		if (entry && m.transportId) {
			entry.transport.close();
			sendTransports.delete(entry.transport.id);
		}
		state.errors.push(`producer migration of ${m.producerId} failed: ${m.reason}`);
	});

	// A media server (worker) died: re-create on the router the server now gives us what died with it,
	// keeping the session, the tracks and whatever runs on live servers. Then tell the server.
	const rejoin = async (m: RejoinNotice): Promise<void> => {
		showNotice('A media server failed: reconnecting…');
		state.audioOnly = m.mode === 'audioOnly';
		const lost = new Set(m.lostTransportIds);
		for (const map of [recvTransports, sendTransports]) {
			for (const [id, t] of map) {
				if (!lost.has(id)) continue;
				t.close();
				map.delete(id);
			}
		}
		const lostConsumed = m.lostConsumerIds.map((id) => consumers.get(id)?.producerId);
		const lostDataConsumed = m.lostDataConsumerIds.map((id) => dataConsumers.get(id));
		for (const id of m.lostConsumerIds) {
			consumers.get(id)?.close();
			consumers.delete(id);
			removeTile(id);
		}
		for (const id of m.lostDataConsumerIds) dataConsumers.delete(id);
		// New consumers go on a transport on the new router (the server consumes there from now on), one we have or a new one.
		const keptRecv = m.recvTransportId !== null ? recvTransports.get(m.recvTransportId) : undefined;
		recvTransport = keptRecv ?? (await makeTransport('recv'));
		recvTransports.set(recvTransport.id, recvTransport);
		const consuming = new Set([...consumers.values()].map((c) => c.producerId));
		for (const p of m.producers) if (lostConsumed.includes(p.producerId) && !consuming.has(p.producerId)) await consume(p);
		for (const d of m.dataProducers) if (lostDataConsumed.includes(d.dataProducerId)) await consumeData(d.dataProducerId, d.displayName);
		if (m.lostProducerIds.length > 0 || m.lostDataProducerIds.length > 0) {
			const keptSend = m.sendTransportId !== null ? sendTransports.get(m.sendTransportId) : undefined;
			sendTransport = keptSend ?? (await makeTransport('send'));
			sendTransports.set(sendTransport.id, sendTransport);
			for (const id of m.lostProducerIds) {
				const source = sourceOf(id);
				if (!source) continue;
				sources.delete(source);
				const key = STATE_KEY[source];
				if (key) delete state.producers[key];
				if (state.audioOnly && source !== 'mic') continue;
				await publish(sendTransport, source, publishedWith.get(source)!);
			}
			if (m.lostDataProducerIds.includes(chat.id)) {
				chat = await openChat();
				state.producers.chat = chat.id;
			}
		}
		await signaling.request('rejoined', {});
		state.rejoins++;
		showNotice(`Reconnected to another media server${state.audioOnly ? ' (audio only: the servers are full)' : ''}`, 6000);
	};
	signaling.on('rejoin', (d) => {
		void rejoin(d as unknown as RejoinNotice).catch((e: Error) => {
			state.errors.push(`rejoin: ${e.message}`);
			showNotice(`Could not reconnect: ${e.message}`);
			void signaling.request('rejoined', { error: e.message.slice(0, 256) }).catch(() => {});
		});
	});
	signaling.on('rejoinRefused', (d) => showNotice(`A media server failed and none has room for you now (${String(d.reason)})`));

	// Screen share.
	const shareButton = $<HTMLButtonElement>('share');
	shareButton.onclick = async () => {
		const screen = sources.get('screen');
		if (screen) {
			sources.delete('screen');
			await signaling.request('closeProducer', { producerId: screen.id });
			screen.close();
			screen.track?.stop();
			shareButton.textContent = 'Share screen';
			return;
		}
		try {
			const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 } });
			const track = display.getVideoTracks()[0]!;
			await publish(sendTransport, 'screen', { track, codec: vp8 });
			track.onended = () => shareButton.click();
			shareButton.textContent = 'Stop sharing';
		} catch (e) {
			state.errors.push((e as Error).message);
		}
	};
	$<HTMLButtonElement>('mute').onclick = () => {
		const mic = sources.get('mic');
		if (!mic) return;
		if (mic.paused) mic.resume();
		else mic.pause();
		$('mute').textContent = mic.paused ? 'Unmute' : 'Mute';
	};
	state.joined = true;
	setStatus('connected');
}

main().catch((e: Error) => {
	state.errors.push(e.message);
	setStatus(`error: ${e.message}`);
});
