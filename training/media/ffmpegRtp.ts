import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { ErrorEpisode, guardSocket, stderrLog } from '../../plugin/util/episode';

/**
 * Real encoded media without a browser: ffmpeg encodes a test pattern to VP8
 * and a tone to Opus and sends them as RTP to loopback, where we capture the
 * packets once per process. RtpSender then replays them (rewritten SSRC,
 * original RTP timing) into a PlainTransport. The recorded-media fixtures of
 * training/ cover browser-produced media; this needs only ffmpeg.
 */
export interface CapturedStream {
	payloadType: number;
	clockRate: number;
	ssrc: number;
	packets: Buffer[];
}

export const VP8_PT = 101;
export const OPUS_PT = 100;

let cached: Promise<{ vp8: CapturedStream; opus: CapturedStream }> | undefined;

export function captureRealRtp(seconds = 3): Promise<{ vp8: CapturedStream; opus: CapturedStream }> {
	cached ??= doCapture(seconds);
	return cached;
}

async function bindCapture(): Promise<{ socket: Socket; port: number; packets: Buffer[] }> {
	const socket = createSocket('udp4');
	guardSocket(socket, new ErrorEpisode(stderrLog('rtp-capture'), 'RTP capture socket'));
	const packets: Buffer[] = [];
	socket.on('message', (msg) => {
		// ffmpeg also sends RTCP sender reports here (second byte 192..223); keep RTP only.
		const second = msg[1] ?? 0;
		if (msg.length >= 12 && (second < 192 || second > 223)) packets.push(msg);
	});
	await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
	socket.setRecvBufferSize(8 * 1024 * 1024);
	return { socket, port: socket.address().port, packets };
}

async function doCapture(seconds: number) {
	const video = await bindCapture();
	const audio = await bindCapture();
	const args = [
		'-hide_banner', '-loglevel', 'error',
		// -t per input: an output-side -t would bind only to the first output.
		'-t', String(seconds), '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=30`,
		'-t', String(seconds), '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
		'-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-g', '60',
		'-ssrc', '1111', '-payload_type', String(VP8_PT), '-f', 'rtp', `rtp://127.0.0.1:${video.port}?pkt_size=1200`,
		'-map', '1:a', '-c:a', 'libopus', '-b:a', '48k',
		'-ssrc', '2222', '-payload_type', String(OPUS_PT), '-f', 'rtp', `rtp://127.0.0.1:${audio.port}`,
	];
	await new Promise<void>((resolve, reject) => {
		const p = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
		let err = '';
		p.stderr.on('data', (b: Buffer) => (err += b.toString()));
		p.on('error', reject);
		p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
	});
	await new Promise((r) => setTimeout(r, 100));
	video.socket.close();
	audio.socket.close();
	if (video.packets.length < 30 || audio.packets.length < 30) {
		throw new Error(`captured too few packets (vp8 ${video.packets.length}, opus ${audio.packets.length})`);
	}
	return {
		vp8: { payloadType: VP8_PT, clockRate: 90000, ssrc: 1111, packets: video.packets },
		opus: { payloadType: OPUS_PT, clockRate: 48000, ssrc: 2222, packets: audio.packets },
	};
}

/**
 * Loops captured streams into a PlainTransport (comedia) over real UDP, paced by
 * each packet's RTP timestamp; sequence numbers and timestamps keep increasing
 * across loops. Sends everything due on each 5 ms tick (no per-packet timers).
 */
export class RtpSender {
	private readonly socket = createSocket('udp4');
	private timer: NodeJS.Timeout | undefined;
	sent = 0;

	constructor(
		private readonly target: { ip: string; port: number },
		private readonly streams: Array<{ stream: CapturedStream; ssrc: number }>,
	) {
		guardSocket(this.socket, new ErrorEpisode(stderrLog('rtp-sender'), 'RTP sender socket', { port: target.port }));
	}

	start(): void {
		const t0 = performance.now();
		const state = this.streams.map(({ stream, ssrc }) => {
			const first = stream.packets[0]!;
			return {
				stream,
				ssrc,
				idx: 0,
				loop: 0,
				ts0: first.readUInt32BE(4),
				seq0: first.readUInt16BE(2),
				// Loop period in RTP ticks: span of the capture plus one frame/packet gap.
				span: ((stream.packets.at(-1)!.readUInt32BE(4) - first.readUInt32BE(4)) >>> 0) + stream.clockRate / 30,
			};
		});
		const tick = (): void => {
			const nowMs = performance.now() - t0;
			for (const s of state) {
				for (;;) {
					const pkt = s.stream.packets[s.idx]!;
					const relTicks = ((pkt.readUInt32BE(4) - s.ts0) >>> 0) + s.loop * s.span;
					if ((relTicks / s.stream.clockRate) * 1000 > nowMs) break;
					const out = Buffer.from(pkt);
					out.writeUInt16BE((s.seq0 + s.loop * s.stream.packets.length + s.idx) & 0xffff, 2);
					out.writeUInt32BE((s.ts0 + relTicks) >>> 0, 4);
					out.writeUInt32BE(s.ssrc, 8);
					this.socket.send(out, this.target.port, this.target.ip);
					this.sent++;
					if (++s.idx === s.stream.packets.length) {
						s.idx = 0;
						s.loop++;
					}
				}
			}
		};
		this.timer = setInterval(tick, 5);
	}

	stop(): void {
		clearInterval(this.timer);
		this.socket.close();
	}
}
