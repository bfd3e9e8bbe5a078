/**
 * npm run bench -- trace-cost [rate/s] [seconds]
 *
 * Node CPU of one producer trace notification, by kind: a real worker, one VP8 producer on a
 * PlainTransport fed from a local UDP socket, and phases that send the same packets (RTCP
 * sender reports, or RTP) with the producer's `sr` / `rtp` trace off and on, alternately.
 * The difference of this process's CPU between an on phase and the off phase before it, per
 * event, is what a notification costs Node (channel read, flatbuffer parse, emit); the
 * worker's CPU (getResourceUsage) likewise. Last line: JSON with µs per event by kind.
 */
import { createSocket } from 'node:dgram';
import * as mediasoup from 'mediasoup';

const positional = process.argv.slice(2).filter((a) => a !== '--');
const RATE = Number(positional[0] ?? 2000);
const SECONDS = Number(positional[1] ?? 8);
if (!(RATE >= 100 && SECONDS > 0)) throw new Error(`usage: trace-cost [rate/s ≥ 100] [seconds]`);
const perEvent: Record<string, { node: number[]; worker: number[] }> = { sr: { node: [], worker: [] }, rtp: { node: [], worker: [] } };
let offCpu = { node: 0, worker: 0 };
function rtp(ssrc: number, seq: number, ts: number): Buffer {
	const b = Buffer.alloc(12 + 100);
	b[0] = 0x80; b[1] = 0x80 | 101; b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE(ts >>> 0, 4); b.writeUInt32BE(ssrc, 8);
	b[12] = 0x10; // VP8 descriptor S=1
	b[13] = 0x00; // keyframe-ish payload header
	return b;
}
function sr(ssrc: number, n: number): Buffer {
	const b = Buffer.alloc(28);
	b[0] = 0x80; b[1] = 200; b.writeUInt16BE(6, 2); b.writeUInt32BE(ssrc, 4);
	b.writeUInt32BE(3_900_000_000 + n, 8); b.writeUInt32BE(0, 12); b.writeUInt32BE(n * 3000, 16); b.writeUInt32BE(n, 20); b.writeUInt32BE(n * 1000, 24);
	return b;
}
async function main(): Promise<void> {
	const worker = await mediasoup.createWorker({ logLevel: 'error' });
	const router = await worker.createRouter({ mediaCodecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }] });
	const t = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
	const ssrc = 1234;
	const producer = await t.produce({ kind: 'video', rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc }] } });
	const sock = createSocket('udp4');
	const port = t.tuple.localPort;
	const send = (b: Buffer): Promise<void> => new Promise((r) => sock.send(b, port, '127.0.0.1', () => r()));
	let seq = 0;
	for (let i = 0; i < 5; i++) await send(rtp(ssrc, seq++, i * 3000));
	let events = 0;
	producer.on('trace', () => events++);
	async function phase(kind: 'sr' | 'rtp', on: boolean): Promise<void> {
		await producer.enableTraceEvent(on ? [kind] : []);
		await new Promise((r) => setTimeout(r, 300));
		events = 0;
		const c0 = process.cpuUsage();
		const w0 = await worker.getResourceUsage();
		const t0 = performance.now();
		let n = 0;
		while (performance.now() - t0 < SECONDS * 1000) {
			const batch = RATE / 100;
			for (let i = 0; i < batch; i++) { n++; if (kind === 'rtp') sock.send(rtp(ssrc, seq++, n * 3000), port, '127.0.0.1'); else sock.send(sr(ssrc, n), port, '127.0.0.1'); }
			await new Promise((r) => setTimeout(r, 10));
		}
		await new Promise((r) => setTimeout(r, 300));
		const c = process.cpuUsage(c0);
		const w1 = await worker.getResourceUsage();
		const cpuUs = c.user + c.system;
		const workerUs = (w1.ru_utime + w1.ru_stime - w0.ru_utime - w0.ru_stime) * 1000;
		console.log(JSON.stringify({ kind, on, sent: n, events, node_cpu_ms: Math.round(cpuUs / 1000), worker_cpu_ms: Math.round(workerUs / 1000), wall_s: SECONDS }));
		if (!on) offCpu = { node: cpuUs / n, worker: workerUs / n };
		else if (events > 0) {
			perEvent[kind]!.node.push(cpuUs / n - offCpu.node);
			perEvent[kind]!.worker.push(workerUs / n - offCpu.worker);
		}
	}
	// A first off phase warms the process up (JIT, socket buffers) and is not paired with anything.
	await phase('sr', false);
	for (const k of ['sr', 'rtp'] as const) for (const on of [false, true, false, true]) await phase(k, on);
	worker.close();
	sock.close();
	const mean = (xs: number[]): number => Math.round((10 * xs.reduce((a, b) => a + b, 0)) / xs.length) / 10;
	console.log(JSON.stringify({ node_us_per_sr_event: mean(perEvent.sr!.node), node_us_per_rtp_event: mean(perEvent.rtp!.node), worker_us_per_sr_event: mean(perEvent.sr!.worker), worker_us_per_rtp_event: mean(perEvent.rtp!.worker), samples: perEvent, rate_per_s: RATE, seconds: SECONDS }));
}
void main();
