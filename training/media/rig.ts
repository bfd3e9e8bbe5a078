import { createSocket, type Socket } from 'node:dgram';
import type { types } from 'mediasoup';
import { ErrorEpisode, guardSocket, stderrLog } from '../../plugin/util/episode';
import { captureRealRtp, OPUS_PT, RtpSender, VP8_PT } from './ffmpegRtp';

export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

/** A local UDP socket standing in for a remote receiver; counts what arrives. */
export class UdpSink {
	packets = 0;
	bytes = 0;
	private constructor(readonly socket: Socket) {
		socket.on('message', (m) => {
			this.packets++;
			this.bytes += m.length;
		});
	}
	static async open(): Promise<UdpSink> {
		const socket = createSocket('udp4');
		guardSocket(socket, new ErrorEpisode(stderrLog('udp-sink'), 'sink socket'));
		await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
		return new UdpSink(socket);
	}
	get port(): number {
		return this.socket.address().port;
	}
	close(): void {
		this.socket.close();
	}
}

/**
 * One sending peer on a router: a comedia PlainTransport with a VP8 and an Opus
 * producer fed by a Node RtpSender replaying real encoded media.
 */
export async function startSendingPeer(router: types.Router, ssrcBase: number) {
	const media = await captureRealRtp();
	const transport = await router.createPlainTransport({
		listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
		rtcpMux: true,
		comedia: true,
	});
	const video = await transport.produce({
		kind: 'video',
		rtpParameters: {
			codecs: [{ mimeType: 'video/VP8', payloadType: VP8_PT, clockRate: 90000 }],
			encodings: [{ ssrc: ssrcBase + 1 }],
		},
	});
	const audio = await transport.produce({
		kind: 'audio',
		rtpParameters: {
			codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2 }],
			encodings: [{ ssrc: ssrcBase + 2 }],
		},
	});
	const sender = new RtpSender({ ip: transport.tuple.localAddress, port: transport.tuple.localPort }, [
		{ stream: media.vp8, ssrc: ssrcBase + 1 },
		{ stream: media.opus, ssrc: ssrcBase + 2 },
	]);
	sender.start();
	return { transport, video, audio, sender };
}

/** A receiving peer: a PlainTransport connected to a UDP sink, consuming the given producers. */
export async function startReceivingPeer(router: types.Router, producers: types.Producer[]) {
	const sink = await UdpSink.open();
	// The sink sends no RTCP feedback: with estimation on, the estimate would stay at its initial value.
	const transport = await router.createPlainTransport({
		listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
		rtcpMux: true,
		comedia: false,
		enableBwe: false,
	});
	await transport.connect({ ip: '127.0.0.1', port: sink.port });
	const consumers: types.Consumer[] = [];
	for (const p of producers) {
		consumers.push(await transport.consume({ producerId: p.id, rtpCapabilities: router.rtpCapabilities }));
	}
	return { transport, consumers, sink };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (await cond()) return;
		await new Promise((r) => setTimeout(r, 25));
	}
	throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
