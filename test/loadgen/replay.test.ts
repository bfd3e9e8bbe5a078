import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { readRecording, rtpSsrc, type Recording } from '../../training/record/format';
import { Tap } from '../../training/record/tap';
import { Replayer, type Publisher } from '../../training/loadgen/replayer';
import { rtpPayloadOffset } from '../../training/loadgen/prepared';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

const FIXTURES = join(__dirname, '../fixtures/recordings');

/** 15-bit VP8 picture id from the payload descriptor, if the packet has one. */
function vp8PictureId(p: Buffer): number | undefined {
	const off = rtpPayloadOffset(p);
	if (!(p[off]! & 0x80) || !(p[off + 1]! & 0x80) || !(p[off + 2]! & 0x80)) return undefined;
	return ((p[off + 2]! & 0x7f) << 8) | p[off + 3]!;
}

const fixtureNames = readdirSync(FIXTURES)
	.filter((f) => f.endsWith('.rec.gz'))
	.map((f) => f.replace(/\.rec\.gz$/, ''));

interface Run {
	name: string;
	recording: Recording;
	publisher: Publisher;
	tap: Tap;
	/** Tap SSRC → producer label and spatial layer. */
	layerBySsrc: Map<number, { label: string; layer: number }>;
	stats: Map<string, types.ProducerStat[]>;
}

/**
 * Every committed fixture is replayed once, all at the same time, through a real
 * worker over real UDP; the producers' own counters and a PipeTransport tap
 * behind them must see exactly what the recording holds, on the recorded clock.
 */
describe('replaying the committed recordings through a real worker', () => {
	let worker: types.Worker;
	let router: types.Router;
	let replayer: Replayer;
	const runs: Run[] = [];

	beforeAll(async () => {
		expect(fixtureNames.length).toBeGreaterThanOrEqual(5);
		worker = await mediasoup.createWorker({ logLevel: 'warn' });
		router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		replayer = new Replayer({ seed: 42 });
		const loaded = fixtureNames.map((name) => ({ name, recording: readRecording(join(FIXTURES, `${name}.rec.gz`)) }));
		for (const { name, recording } of loaded) {
			const tap = await Tap.open(router);
			const publisher = await replayer.publish(router, recording, { data: true, autoStart: false });
			const layerBySsrc = new Map<number, { label: string; layer: number }>();
			let i = 0;
			for (const [label, producer] of publisher.producers) {
				const consumer = await tap.consume(producer, i++);
				consumer.rtpParameters.encodings?.forEach((e, layer) => layerBySsrc.set(e.ssrc!, { label, layer }));
			}
			tap.start(performance.now());
			replayer.start(publisher);
			runs.push({ name, recording, publisher, tap, layerBySsrc, stats: new Map() });
		}
		await Promise.all(runs.map((r) => r.publisher.done));
		// Let the last datagrams cross the worker.
		await new Promise((r) => setTimeout(r, 300));
		for (const run of runs) {
			for (const [label, producer] of run.publisher.producers) run.stats.set(label, await producer.getStats());
		}
	}, 60_000);

	const report: string[] = [];
	afterAll(() => {
		if (report.length) process.stderr.write(`${report.join('\n')}\n`);
		replayer?.close();
		for (const r of runs) r.tap.close();
		worker?.close();
	});

	test.each(fixtureNames)('%s: per-layer byte rate from producer.getStats() matches the recording within 3%%', (name) => {
		const run = runs.find((r) => r.name === name)!;
		const durationS = run.recording.header.durationMs / 1000;
		const layers = run.publisher.layers;
		expect(layers.length).toBeGreaterThan(0);
		expect(run.publisher.packetsSent).toBe(layers.reduce((n, l) => n + l.packets, 0));
		expect(run.publisher.scheduledBy(performance.now())).toBe(run.publisher.packetsSent);
		let worst = 0;
		for (const layer of layers) {
			const stat = run.stats.get(layer.label)!.find((s) => s.ssrc === layer.ssrc)!;
			const recordedBps = (layer.bytes * 8) / durationS;
			const replayedBps = (stat.byteCount * 8) / durationS;
			const deviation = Math.abs(replayedBps - recordedBps) / recordedBps;
			expect(deviation).toBeLessThanOrEqual(0.03);
			worst = Math.max(worst, deviation);
			expect(stat.packetCount).toBe(layer.packets);
			expect(stat.packetsLost).toBe(0);
		}
		report.push(`${name}: ${layers.length} layers, largest byte-rate deviation ${(worst * 100).toFixed(3)} %`);
	});

	test.each(fixtureNames)('%s: no packet lost or reordered on loopback, and the recorded timing is kept', (name) => {
		const run = runs.find((r) => r.name === name)!;
		const bySsrc = new Map<number, number[]>();
		for (const p of run.tap.packets) {
			const ssrc = rtpSsrc(p.data);
			let seqs = bySsrc.get(ssrc);
			if (!seqs) bySsrc.set(ssrc, (seqs = []));
			seqs.push(p.data.readUInt16BE(2));
		}
		const layers = run.publisher.layers;
		expect(bySsrc.size).toBe(layers.length);
		for (const [ssrc, seqs] of bySsrc) {
			const where = run.layerBySsrc.get(ssrc)!;
			const layer = layers.filter((l) => l.label === where.label)[where.layer]!;
			expect(seqs.length).toBe(layer.packets);
			const steps = seqs.slice(1).map((s, i) => (s - seqs[i]!) & 0xffff);
			expect(steps.every((d) => d === 1)).toBe(true);
		}

		// With nothing lost or reordered, the k-th tapped packet is the k-th recorded one.
		const recorded = run.recording.packets;
		expect(run.tap.packets.length).toBe(recorded.length);
		// Errors are taken against the median delay so that one late first packet does
		// not offset all others. The median is what the replayer's scheduling controls;
		// the tail also holds stalls of this shared 2-core machine, so it is reported.
		const delaysUs = run.tap.packets.map((p, i) => p.arrivalUs - recorded[i]!.arrivalUs);
		const medianUs = [...delaysUs].sort((a, b) => a - b)[Math.floor(delaysUs.length / 2)]!;
		const errorsMs = delaysUs.map((d) => Math.abs(d - medianUs) / 1000).sort((a, b) => a - b);
		expect(errorsMs[Math.floor(errorsMs.length / 2)]!).toBeLessThan(2);
		const recordedSpanUs = recorded.at(-1)!.arrivalUs - recorded[0]!.arrivalUs;
		const replayedSpanUs = run.tap.packets.at(-1)!.arrivalUs - run.tap.packets[0]!.arrivalUs;
		expect(Math.abs(replayedSpanUs - recordedSpanUs) / recordedSpanUs).toBeLessThan(0.01);
		report.push(`${name}: timing error median ${errorsMs[Math.floor(errorsMs.length / 2)]!.toFixed(2)} ms, p95 ${errorsMs[Math.floor(errorsMs.length * 0.95)]!.toFixed(2)} ms, max ${errorsMs.at(-1)!.toFixed(1)} ms`);
	});

	test('copies get fresh SSRCs, and recorded chat messages are replayed through a DataProducer', async () => {
		const ssrcs = runs.flatMap((r) => [...r.publisher.producers.values()].flatMap((p) => p.rtpParameters.encodings!.map((e) => e.ssrc!)));
		const recordedSsrcs = runs.flatMap((r) => r.recording.header.streams.flatMap((s) => s.layers.map((l) => l.ssrc)));
		expect(new Set(ssrcs).size).toBe(ssrcs.length);
		for (const s of ssrcs) expect(recordedSsrcs).not.toContain(s);
		const chat = runs.filter((r) => (r.recording.header.dataChannel?.messages.length ?? 0) > 0);
		expect(chat.length).toBeGreaterThan(0);
		for (const run of chat) {
			const stats = await run.publisher.dataProducer!.getStats();
			expect(stats[0]!.messagesReceived).toBe(run.recording.header.dataChannel!.messages.length);
		}
	});

	test('a consumer bot receives over SRTP from a second, looping copy', async () => {
		const talking = runs.find((r) => r.name === 'talking-head')!;
		const publisher = await replayer.publish(router, talking.recording, { loop: true });
		const bot = await replayer.subscribe(router, [...publisher.producers.values()]);
		try {
			expect(bot.transport.srtpParameters?.cryptoSuite).toBe('AES_CM_128_HMAC_SHA1_80');
			expect(bot.consumers.map((c) => c.kind).sort()).toEqual(['audio', 'video']);
			// The video consumer starts at the recording's next keyframe (a replay cannot answer its
			// PLI), which a slow subscription on a busy machine can miss by up to a keyframe interval.
			const outbound = async (): Promise<types.ConsumerStat[]> => (await Promise.all(bot.consumers.map((c) => c.getStats()))).flat().filter((s) => s.type === 'outbound-rtp');
			const videoFlows = async (): Promise<boolean> => (await Promise.all(bot.consumers.filter((c) => c.kind === 'video').map((c) => c.getStats()))).flat().some((s) => s.type === 'outbound-rtp' && s.packetCount > 0);
			await waitFor(videoFlows, 20_000, 'the video consumer sends');
			await new Promise((r) => setTimeout(r, 2000));
			const sent = await outbound();
			// Read the sink after the worker's counters, once what they count has had time to land.
			await new Promise((r) => setTimeout(r, 200));
			const got = replayer.received(bot);
			const sentPackets = sent.reduce((n, s) => n + s.packetCount, 0);
			expect(sentPackets).toBeGreaterThan(100);
			// Every RTP packet the worker sent arrived, each grown by the 10-byte SRTP auth tag (plus a few RTCP packets).
			expect(got.packets).toBeGreaterThanOrEqual(sentPackets);
			expect(got.bytes).toBeGreaterThanOrEqual(sent.reduce((n, s) => n + s.byteCount, 0) + 10 * sentPackets);
			expect(publisher.layers.map((l) => l.ssrc)).not.toEqual(talking.publisher.layers.map((l) => l.ssrc));
		} finally {
			replayer.unsubscribe(bot);
			replayer.unpublish(publisher);
		}
	});

	test('looping keeps sequence numbers, timestamps and VP8 picture ids running forward across the loop point', async () => {
		const full = runs.find((r) => r.name === 'talking-head')!.recording;
		// A 1.5 s excerpt loops twice within the test.
		const cutUs = 1_500_000;
		const packets = full.packets.filter((p) => p.arrivalUs <= cutUs);
		const excerpt: Recording = { header: { ...full.header, name: 'excerpt', durationMs: cutUs / 1000, packetCount: packets.length, dataChannel: undefined }, packets };
		const tap = await Tap.open(router);
		const publisher = await replayer.publish(router, excerpt, { loop: true, autoStart: false });
		try {
			const ssrcOrder = new Map<number, number>();
			let i = 0;
			for (const producer of publisher.producers.values()) {
				const consumer = await tap.consume(producer, i++);
				for (const e of consumer.rtpParameters.encodings ?? []) ssrcOrder.set(e.ssrc!, ssrcOrder.size);
			}
			tap.start(performance.now());
			replayer.start(publisher);
			await new Promise((r) => setTimeout(r, 3800));
			const perSsrc = new Map<number, Buffer[]>();
			for (const p of tap.packets) {
				const list = perSsrc.get(rtpSsrc(p.data)) ?? [];
				list.push(p.data);
				perSsrc.set(rtpSsrc(p.data), list);
			}
			expect(perSsrc.size).toBe(ssrcOrder.size);
			const layers = publisher.layers;
			for (const [ssrc, list] of perSsrc) {
				const layer = layers[ssrcOrder.get(ssrc)!]!;
				// More than two passes over the excerpt, in order, with nothing missing.
				expect(list.length).toBeGreaterThan(2 * layer.packets);
				for (let k = 1; k < list.length; k++) {
					expect((list[k]!.readUInt16BE(2) - list[k - 1]!.readUInt16BE(2)) & 0xffff).toBe(1);
					const dTs = (list[k]!.readUInt32BE(4) - list[k - 1]!.readUInt32BE(4)) >>> 0;
					expect(dTs).toBeLessThan(0x80000000);
				}
				const pictureIds = list.map(vp8PictureId).filter((id): id is number => id !== undefined);
				if (layer.label === 'camera') expect(pictureIds.length).toBe(list.length);
				for (let k = 1; k < pictureIds.length; k++) expect((pictureIds[k]! - pictureIds[k - 1]!) & 0x7fff).toBeLessThan(0x4000);
			}
			for (const producer of publisher.producers.values()) {
				for (const s of await producer.getStats()) expect(s.packetsLost).toBe(0);
			}
		} finally {
			replayer.unpublish(publisher);
			tap.close();
		}
	});
});
