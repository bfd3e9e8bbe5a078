import { createSocket } from 'node:dgram';
import type { types } from 'mediasoup';
import { captureRealRtp, RtpSender, VP8_PT } from '../../training/media/ffmpegRtp';
import type { UdpSink } from '../../training/media/rig';

/** RTCP packet types occupy 192..223 in the second byte; everything else arriving at a sink is RTP. */
function isRtcp(packet: Buffer): boolean {
	const second = packet[1] ?? 0;
	return second >= 192 && second <= 223;
}

/** Counts the RTP (not RTCP) reaching a sink, per SSRC, and the longest silence since the last reset. */
export class RtpTap {
	rtp = 0;
	readonly bySsrc = new Map<number, number>();
	private lastAt = 0;
	private longestGap = 0;
	private readonly listener = (packet: Buffer): void => {
		if (packet.length < 12 || isRtcp(packet)) return;
		const now = performance.now();
		if (this.lastAt > 0) this.longestGap = Math.max(this.longestGap, now - this.lastAt);
		this.lastAt = now;
		this.rtp++;
		const ssrc = packet.readUInt32BE(8);
		this.bySsrc.set(ssrc, (this.bySsrc.get(ssrc) ?? 0) + 1);
	};

	constructor(readonly sink: UdpSink) {
		sink.socket.on('message', this.listener);
	}

	of(ssrc: number | undefined): number {
		return ssrc === undefined ? 0 : (this.bySsrc.get(ssrc) ?? 0);
	}

	/** Longest time between two RTP packets since resetGap(), including the silence up to now. */
	maxGapMs(): number {
		return Math.max(this.longestGap, performance.now() - this.lastAt);
	}

	resetGap(): void {
		this.longestGap = 0;
		this.lastAt = performance.now();
	}
}

export function ssrcOf(consumer: types.Consumer): number | undefined {
	return consumer.rtpParameters.encodings?.[0]?.ssrc;
}

/** A consumer of `producerId` on `router`, sending over a new PlainTransport to an existing sink. */
export async function consumeInto(router: types.Router, producerId: string, sinkPort: number, rtpCapabilities = router.rtpCapabilities) {
	// The sink sends no RTCP feedback: with estimation on, mediasoup's estimate stays at its
	// initial 600 kbps and a simulcast consumer is given no layer at all.
	const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false, enableBwe: false });
	await transport.connect({ ip: '127.0.0.1', port: sinkPort });
	const consumer = await transport.consume({ producerId, rtpCapabilities });
	return { transport, consumer };
}

/**
 * A VP8 simulcast producer with three "layers": the same captured stream sent on
 * three SSRCs. Switching spatial layers needs RTCP Sender Reports on every layer
 * (mediasoup aligns layer timestamps by them), so one SR per layer goes out every
 * 500 ms on the transport's separate RTCP port (comedia learns it from the first SR).
 */
export async function startSimulcastProducer(router: types.Router, ssrcBase: number) {
	const media = await captureRealRtp();
	const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: false, comedia: true });
	const ssrcs = [ssrcBase + 1, ssrcBase + 2, ssrcBase + 3];
	const producer = await transport.produce({
		kind: 'video',
		rtpParameters: {
			codecs: [{ mimeType: 'video/VP8', payloadType: VP8_PT, clockRate: 90000 }],
			encodings: ssrcs.map((ssrc) => ({ ssrc })),
		},
	});
	const sender = new RtpSender(
		{ ip: transport.tuple.localAddress, port: transport.tuple.localPort },
		ssrcs.map((ssrc) => ({ stream: media.vp8, ssrc })),
	);
	const ts0 = media.vp8.packets[0]!.readUInt32BE(4);
	const t0 = performance.now();
	sender.start();
	const rtcp = createSocket('udp4');
	const rtcpPort = transport.rtcpTuple!.localPort;
	let sent = 0;
	const sendReports = (): void => {
		const nowMs = Date.now();
		const ntpSeconds = Math.floor(nowMs / 1000) + 2_208_988_800;
		const ntpFraction = Math.floor(((nowMs % 1000) / 1000) * 2 ** 32);
		// The replay's RTP clock: first captured timestamp plus 90 kHz ticks since start (identical on every layer).
		const rtpTs = (ts0 + Math.round((performance.now() - t0) * 90)) >>> 0;
		for (const ssrc of ssrcs) {
			const sr = Buffer.alloc(28);
			sr.writeUInt8(0x80, 0);
			sr.writeUInt8(200, 1);
			sr.writeUInt16BE(6, 2);
			sr.writeUInt32BE(ssrc, 4);
			sr.writeUInt32BE(ntpSeconds >>> 0, 8);
			sr.writeUInt32BE(ntpFraction >>> 0, 12);
			sr.writeUInt32BE(rtpTs, 16);
			sr.writeUInt32BE(sent, 20);
			sr.writeUInt32BE(sent * 1000, 24);
			rtcp.send(sr, rtcpPort, '127.0.0.1');
		}
		sent++;
	};
	sendReports();
	const timer = setInterval(sendReports, 500);
	return {
		transport,
		producer,
		stop(): void {
			clearInterval(timer);
			rtcp.close();
			sender.stop();
		},
	};
}
