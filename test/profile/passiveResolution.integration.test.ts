import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { attach, type Foresight } from '../../plugin';
import { readRecording } from '../../training/record/format';
import { Replayer } from '../../training/loadgen/replayer';
import { MEDIA_CODECS, waitFor } from '../../training/media/rig';

/**
 * At the default settings the profiler asks no sender for a keyframe: a replayed browser
 * recording (3 simulcast layers at scaleResolutionDownBy 4/2/1) gets its layers' sizes
 * from the keyframe a consumer asked for when it joined (read on the tap, whose own request
 * is folded into the consumer's) and the scale factors, exactly as the browser reported them.
 */
function median(xs: number[]): number {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

describe('resolution without asking the sender', () => {
	let foresight: Foresight | undefined;
	afterEach(async () => foresight?.detach());

	test('sizes of every layer from a consumer-requested keyframe and the scale factors; no keyframe requested', async () => {
		foresight = attach(mediasoup, {
			useEnv: false,
			logLevel: 'silent',
			// The replay answers no keyframe request: the consumer's is answered by the recording's next
			// keyframe (4 s apart), so the folded read waits that long.
			profiling: { probeWaitMs: 5000 },
		});
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const replayer = new Replayer({ seed: 5 });
		try {
			const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
			const rec = readRecording(join(__dirname, '../fixtures/recordings/talking-head.rec.gz'));
			const pub = await replayer.publish(router, rec, { loop: true, autoStart: false });
			const camera = pub.producers.get('camera')!;
			replayer.start(pub);
			// No receiver yet: nothing asks the sender for a keyframe, and no size is known.
			await new Promise((r) => setTimeout(r, 4000));
			expect(foresight.profileOf(camera.id)!.layers.every((l) => l.width === undefined)).toBe(true);

			await replayer.subscribe(router, [camera], { preferredSpatialLayer: 2 });
			await waitFor(() => foresight!.profileOf(camera.id)!.layers.every((l) => l.width !== undefined), 15_000, 'every layer sized');
			await foresight.sampleProfiles();
			const profile = foresight.profileOf(camera.id)!;
			const stream = rec.header.streams.find((s) => s.label === 'camera')!;
			const truth = stream.layers.map((layer) => {
				const samples = rec.header.browserStats
					.filter((b) => b.label === 'camera' && b.tMs >= 0)
					.flatMap((b) => b.outbound.filter((o) => o.rid === layer.rid && o.frameWidth !== undefined));
				return { width: median(samples.map((o) => o.frameWidth!)), height: median(samples.map((o) => o.frameHeight!)) };
			});
			expect(profile.layers.map((l) => ({ width: l.width, height: l.height }))).toEqual(truth);
			expect(profile.video!.keyframesRequested).toBeUndefined();
		} finally {
			replayer.close();
			worker.close();
		}
	}, 60_000);
});
