import { createSocket, type Socket } from 'node:dgram';
import type { types } from 'mediasoup';
import { ErrorEpisode, guardSocket, stderrLog } from '../../plugin/util/episode';
import type { RecordedPacket } from './format';

/** The tap: a PipeTransport that sends every layer of every producer to one UDP socket. */
export class Tap {
	readonly packets: RecordedPacket[] = [];
	private readonly streamBySsrc = new Map<number, number>();
	private t0 = 0;

	private constructor(private readonly socket: Socket, readonly transport: types.PipeTransport) {
		socket.on('message', (msg) => {
			if (msg.length < 12 || (msg[0]! & 0xc0) !== 0x80) return;
			const pt = msg[1]! & 0x7f;
			// RTCP shares the port (rtcp-mux); its packet types 200–206 read as PT 72–78.
			if (pt >= 72 && pt <= 78) return;
			const stream = this.streamBySsrc.get(msg.readUInt32BE(8));
			if (stream === undefined) return;
			this.packets.push({ stream, arrivalUs: (performance.now() - this.t0) * 1000, data: Buffer.from(msg) });
		});
	}

	static async open(router: types.Router): Promise<Tap> {
		const socket = createSocket('udp4');
		guardSocket(socket, new ErrorEpisode(stderrLog('recorder'), 'tap socket'));
		await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
		socket.setRecvBufferSize(16 * 1024 * 1024);
		const transport = await router.createPipeTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' } });
		await transport.connect({ ip: '127.0.0.1', port: socket.address().port });
		return new Tap(socket, transport);
	}

	start(t0: number): void {
		this.t0 = t0;
	}

	async consume(producer: types.Producer, index: number): Promise<types.Consumer> {
		const consumer = await this.transport.consume({ producerId: producer.id });
		for (const e of consumer.rtpParameters.encodings ?? []) if (e.ssrc !== undefined) this.streamBySsrc.set(e.ssrc, index);
		return consumer;
	}

	close(): void {
		this.transport.close();
		this.socket.close();
	}
}
