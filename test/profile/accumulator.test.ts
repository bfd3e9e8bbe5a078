import { StreamAccumulator, type RtpStatsSample, type StreamMeta } from '../../plugin/profile/accumulator';
import { streamProfileSchema } from '../../plugin/profile/schema';
import { rtpStats } from './rtpStats';

const videoMeta: StreamMeta = {
	streamId: 'p1',
	entity: 'producer',
	kind: 'video',
	workerId: 'w',
	routerId: 'r',
	transportId: 't',
	mimeType: 'video/VP8',
	clockRate: 90000,
	encodings: [{ ssrc: 1, rid: 'r0' }, { ssrc: 2, rid: 'r1' }, { ssrc: 3, rid: 'r2' }],
};

function stats(atMs: number, bytes: number[], extra: Partial<RtpStatsSample> = {}): RtpStatsSample {
	return rtpStats(atMs, bytes.map((b, i) => ({ ssrc: i + 1, byteCount: b, packetCount: Math.floor(b / 1000) })), extra);
}

describe('StreamAccumulator (pure)', () => {
	test('packets of rid-only simulcast (a browser tags only its first packets with the RID) map to their layer by a learned SSRC', () => {
		const acc = new StreamAccumulator({ ...videoMeta, encodings: [{ rid: 'r0' }, { rid: 'r1' }, { rid: 'r2' }] });
		expect(acc.layerOfPacket(30)).toBe(-1);
		// A tagged packet teaches its SSRC; stats, which report SSRC and RID, teach the others.
		expect(acc.layerOfPacket(30, 'r2')).toBe(2);
		acc.addRtpStats({ ...stats(0, [0, 0]), layers: [{ ssrc: 10, rid: 'r0', byteCount: 0, packetCount: 0 }, { ssrc: 20, rid: 'r1', byteCount: 0, packetCount: 0 }] });
		expect([acc.layerOfPacket(10), acc.layerOfPacket(20), acc.layerOfPacket(30), acc.layerOfPacket(40)]).toEqual([0, 1, 2, -1]);
		// One encoding: every packet is layer 0.
		expect(new StreamAccumulator({ ...videoMeta, encodings: [{ ssrc: 5 }] }).layerOfPacket(99)).toBe(0);
	});

	test('bitrate and per-layer rates come from counter deltas; inactive layers are reported inactive', () => {
		const acc = new StreamAccumulator(videoMeta);
		acc.addRtpStats(stats(0, [0, 0, 0]));
		acc.addRtpStats(stats(1000, [12_500, 50_000, 0], { fractionLost: 64, jitter: 900 }));
		const p = acc.profile(1000);
		expect(streamProfileSchema.safeParse(p).error).toBeUndefined();
		expect(p.flow.bitrateBps).toBeCloseTo(8 * 62_500);
		expect(p.flow.lossFraction).toBeCloseTo(0.25);
		expect(p.flow.jitterMs).toBeCloseTo(10);
		expect(p.layers.map((l) => [l.rid, l.bitrateBps, l.active])).toEqual([
			['r0', 100_000, true],
			['r1', 400_000, true],
			['r2', 0, false],
		]);
		expect(p.video?.activeLayers).toBe(2);
	});

	test('app-given resolution wins over the tap; the top active layer sets the video size', () => {
		const acc = new StreamAccumulator({ ...videoMeta, appDataResolution: [{ width: 320, height: 180 }] });
		acc.setResolution(0, 999, 999);
		acc.setResolution(1, 640, 360);
		acc.addRtpStats(stats(0, [0, 0, 0]));
		acc.addRtpStats(stats(1000, [10_000, 40_000, 0]));
		const p = acc.profile(1000);
		expect(p.layers[0]).toMatchObject({ width: 320, height: 180 });
		expect(p.video).toMatchObject({ width: 640, height: 360 });
	});

	test('entropy is ~0 for a constant bitrate and high for an i.i.d. random one', () => {
		const steady = new StreamAccumulator(videoMeta);
		const noisy = new StreamAccumulator(videoMeta);
		let a = 0;
		let b = 0;
		let seed = 7;
		const rand = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
		for (let t = 0; t <= 120; t++) {
			a += 125_000;
			b += Math.floor(250_000 * rand());
			steady.addRtpStats(stats(t * 1000, [a]));
			noisy.addRtpStats(stats(t * 1000, [b]));
		}
		expect(steady.profile(120_000).entropy).toBeLessThan(0.1);
		expect(noisy.profile(120_000).entropy).toBeGreaterThan(0.6);
		expect(noisy.profile(120_000).variance.windows[0]!.cv).toBeGreaterThan(steady.profile(120_000).variance.windows[0]!.cv);
	});

	test('data: rates from stats, sizes and keywords from the tap, content never kept', () => {
		const acc = new StreamAccumulator({ ...videoMeta, kind: 'data', entity: 'dataProducer', encodings: [], keywords: ['Hello'] });
		acc.addDataStats({ atMs: 0, messageCount: 0, byteCount: 0 });
		acc.addDataMessage(500, 11, 'hello HELLO');
		acc.addDataMessage(900, 4, undefined);
		acc.addDataStats({ atMs: 2000, messageCount: 2, byteCount: 15 });
		const p = acc.profile(2000);
		expect(p.dataType).toBe('text');
		expect(p.data).toMatchObject({ messagesPerS: 1, bytesPerS: 7.5, meanBytes: 7.5, stringShare: 0.5, keywordCounts: { Hello: 2 } });
		acc.addDataMessage(1000, 16, 'Hellothere hello');
		// Whole words only.
		expect(acc.profile(2000).data?.keywordCounts).toEqual({ Hello: 3 });
		expect(JSON.stringify(p)).not.toMatch(/hello HELLO/);
	});

	test('a simulcast layer switching off and on again is no scene change; a jump of one flowing layer is', () => {
		const run = (jumpAtS?: number) => {
			const acc = new StreamAccumulator(videoMeta);
			const totals = [0, 0, 0];
			for (let t = 1; t <= 40; t++) {
				// The top layer stops for 5 s (bandwidth, say) and comes back at its old rate.
				const paused = t > 15 && t <= 20;
				const rates = [16_000, 60_000, paused ? 0 : 250_000];
				if (jumpAtS !== undefined && t >= jumpAtS) rates[0] = 64_000;
				rates.forEach((r, i) => (totals[i]! += r * (1 + 0.02 * Math.sin(t * 1.3 + i))));
				acc.addRtpStats(stats(t * 1000, totals));
			}
			return acc.sceneChangesBetween(0, 41_000).map((c) => Math.round(c.timeMs / 1000));
		};
		expect(run()).toEqual([]);
		const withCut = run(30);
		expect(withCut).toHaveLength(1);
		expect(Math.abs(withCut[0]! - 30)).toBeLessThanOrEqual(1);
	});

	test('a consumer takes its producer\'s window statistics with its own flow, layers and share of the levels', () => {
		const producer = new StreamAccumulator(videoMeta);
		const consumer = new StreamAccumulator({ ...videoMeta, streamId: 'c1', entity: 'consumer', producerId: 'p1', encodings: videoMeta.encodings, inheritsWindows: true });
		producer.setResolution(0, 320, 180);
		producer.setResolution(1, 640, 360);
		producer.setResolution(2, 1280, 720);
		// The producer varies; the consumer gets the middle layer: 40 % of the producer's bytes.
		let pb = [0, 0, 0];
		let cb = 0;
		for (let t = 0; t <= 30_000; t += 1000) {
			const burst = t % 5000 === 0 ? 2 : 1;
			pb = [pb[0]! + 10_000 * burst, pb[1]! + 40_000 * burst, pb[2]! + 50_000 * burst];
			cb += 40_000 * burst;
			producer.addRtpStats(stats(t, pb));
			consumer.addRtpStats(rtpStats(t, [{ ssrc: 9, byteCount: cb, packetCount: cb / 1000 }], { currentLayers: { spatialLayer: 1 } }));
		}
		const p = producer.profile(30_000);
		const c = consumer.profileFrom(p, 30_000);
		expect(streamProfileSchema.safeParse(c).error).toBeUndefined();
		expect(c).toMatchObject({ entity: 'consumer', streamId: 'c1', producerId: 'p1', dataType: p.dataType, entropy: p.entropy });
		expect(c.flow.bitrateBps).toBeCloseTo(0.4 * p.flow.bitrateBps);
		expect(c.variance.burstiness).toBe(p.variance.burstiness);
		c.variance.windows.forEach((w, i) => {
			expect(w.cv).toBe(p.variance.windows[i]!.cv);
			expect(w.meanBps).toBeCloseTo(0.4 * p.variance.windows[i]!.meanBps);
		});
		expect(c.video!.sceneChanges).toBe(p.video!.sceneChanges);
		// It receives layers 0 and 1: its size is the middle layer's, from the producer.
		expect(c.video).toMatchObject({ width: 640, height: 360, activeLayers: 2 });
		expect(c.layers.map((l) => l.width)).toEqual([320, 640, 1280]);
	});

	test('one layer read from a keyframe sizes the others by their encodings\' scale factors; a layer\'s own read wins', () => {
		const acc = new StreamAccumulator({
			...videoMeta,
			encodings: [
				{ ssrc: 1, scaleResolutionDownBy: 4 },
				{ ssrc: 2, scaleResolutionDownBy: 2 },
				{ ssrc: 3, scaleResolutionDownBy: 1 },
			],
		});
		acc.setResolution(2, 960, 540);
		expect([0, 1, 2].map((l) => acc.resolutionDerived(l))).toEqual([true, true, false]);
		const sizes = (): Array<[number | undefined, number | undefined]> => acc.profile(0).layers.map((l) => [l.width, l.height]);
		// The encoder truncates: 540 / 4 = 135.
		expect(sizes()).toEqual([[240, 135], [480, 270], [960, 540]]);
		// The sender scaled its capture down (CPU): a new read of the middle layer re-derives the others it did not read.
		acc.setResolution(1, 320, 180);
		expect(sizes()).toEqual([[160, 90], [320, 180], [960, 540]]);
		expect(acc.resolutionDerived(2)).toBe(false);
		// Without scale factors nothing is derived.
		const plain = new StreamAccumulator(videoMeta);
		plain.setResolution(2, 1280, 720);
		expect(plain.profile(0).layers.map((l) => l.width)).toEqual([undefined, undefined, 1280]);
		expect(plain.profile(0).video!.keyframesRequested).toBeUndefined();
		plain.keyframeRequested();
		expect(plain.profile(0).video!.keyframesRequested).toBe(1);
	});
});
