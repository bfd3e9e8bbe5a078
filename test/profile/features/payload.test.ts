import { inspectVideoPayload, videoCodecOf } from '../../../plugin/profile/features';
import { loadRtp } from './helpers';

describe('inspectVideoPayload', () => {
	it.each([
		['video/VP8', 'vp8-176x144', 176, 144],
		['video/VP9', 'vp9-320x180', 320, 180],
		['video/H264', 'h264-high-320x180', 320, 180],
	])('reads keyframe and size of the first %s packet and sees later frames as delta frames', (mimeType, fixture, width, height) => {
		const packets = loadRtp(fixture);
		expect(inspectVideoPayload(mimeType, packets[0]!.payload)).toMatchObject({ keyframe: true, sizes: [{ width, height }] });
		const later = packets.find((p) => p.timestamp !== packets[0]!.timestamp)!;
		expect(inspectVideoPayload(mimeType, later.payload)?.keyframe).toBe(false);
	});

	it('knows only the codecs it parses', () => {
		expect(videoCodecOf('video/AV1')).toBeUndefined();
		expect(inspectVideoPayload('video/AV1', Uint8Array.from([1]))).toBeUndefined();
		expect(inspectVideoPayload('video/VP8', new Uint8Array(0))).toBeUndefined();
		expect(inspectVideoPayload('video/H264', new Uint8Array(0))).toBeUndefined();
	});
});
