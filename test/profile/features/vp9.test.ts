import { parseVp9Descriptor, parseVp9FrameHeader, parseVp9Payload } from '../../../plugin/profile/features/vp9';
import { BitWriter, loadRtp } from './helpers';

describe('VP9 on packets captured from ffmpeg (libvpx-vp9, 320x180)', () => {
	const packets = loadRtp('vp9-320x180');

	it('takes the keyframe size from the uncompressed header when SS is absent', () => {
		const first = parseVp9Payload(packets[0]!.payload)!;
		expect(first.descriptor).toMatchObject({ beginningOfFrame: true, interPicturePredicted: false, headerLength: 1 });
		expect(first.descriptor.ss).toBeUndefined();
		expect(first.keyframe).toBe(true);
		expect(first.sizes).toEqual([{ width: 320, height: 180 }]);
		expect(parseVp9FrameHeader(packets[0]!.payload.subarray(1))).toEqual({ profile: 0, keyframe: true, showFrame: true, width: 320, height: 180, bitDepth: 8 });
	});

	it('marks only the first packet of each frame with B and the last with E', () => {
		for (const [i, p] of packets.entries()) {
			const d = parseVp9Descriptor(p.payload)!;
			const previous = packets[i - 1];
			const next = packets[i + 1];
			expect(d.beginningOfFrame).toBe(!previous || previous.timestamp !== p.timestamp);
			if (next) expect(d.endOfFrame).toBe(next.timestamp !== p.timestamp);
		}
		const laterStarts = packets.slice(1).map((p) => parseVp9Payload(p.payload)!).filter((v) => v.descriptor.beginningOfFrame);
		expect(laterStarts.length).toBeGreaterThan(2);
		expect(laterStarts.every((v) => v.keyframe === false)).toBe(true);
	});
});

/** RFC 9628 §4.2 descriptor, non-flexible mode, with a scalability structure. */
function svcKeyframeDescriptor(): Uint8Array {
	const w = new BitWriter();
	w.bits(1, 1).bits(0, 1).bits(1, 1).bits(0, 1).bits(1, 1).bits(0, 1).bits(1, 1).bits(0, 1); // I P L F B E V Z
	w.bits(1, 1).bits(0x1234, 15); // M + 15-bit picture id
	w.bits(0, 3).bits(0, 1).bits(0, 3).bits(0, 1); // TID U SID D
	w.bits(7, 8); // TL0PICIDX
	w.bits(2, 3).bits(1, 1).bits(1, 1).bits(0, 3); // N_S=2 (3 layers), Y, G
	for (const [width, height] of [[320, 180], [640, 360], [1280, 720]]) w.bits(width!, 16).bits(height!, 16);
	w.bits(4, 8); // N_G: the L1T3 pattern 0, 2, 1, 2
	for (const [tid, u, refs] of [[0, 0, [4]], [2, 1, [1]], [1, 1, [2]], [2, 1, [1]]] as const) {
		w.bits(tid, 3).bits(u, 1).bits(refs.length, 2).bits(0, 2);
		for (const r of refs) w.bits(r, 8);
	}
	return w.bytes(false);
}

describe('VP9 descriptor with scalability structure (RFC 9628)', () => {
	it('reads per-spatial-layer sizes, the picture group and layer indices', () => {
		const payload = Uint8Array.from([...svcKeyframeDescriptor(), 0x82, 0x49, 0x83, 0x42]);
		const v = parseVp9Payload(payload)!;
		expect(v.descriptor).toMatchObject({ pictureId: 0x1234, pictureIdBits: 15, temporalId: 0, spatialId: 0, tl0PicIdx: 7, flexible: false });
		expect(v.descriptor.headerLength).toBe(payload.length - 4);
		expect(v.keyframe).toBe(true);
		expect(v.sizes).toEqual([
			{ width: 320, height: 180 },
			{ width: 640, height: 360 },
			{ width: 1280, height: 720 },
		]);
		expect(v.descriptor.ss?.spatialLayers).toBe(3);
		expect(v.descriptor.ss?.temporalLayers).toBe(3);
		expect(v.descriptor.ss?.pictureGroup?.map((g) => g.temporalId)).toEqual([0, 2, 1, 2]);
	});

	it('reads flexible-mode reference deltas and does not call upper spatial layers keyframes', () => {
		// I P L F B; 7-bit pid 5; TID=1 U=0 SID=1 D=1; P_DIFF 1 (N=1), P_DIFF 3 (N=0)
		const d = parseVp9Payload(Uint8Array.from([0xf8, 0x05, (1 << 5) | (1 << 1) | 1, (1 << 1) | 1, 3 << 1]))!;
		expect(d.descriptor).toMatchObject({ flexible: true, pictureId: 5, temporalId: 1, spatialId: 1, interLayerDependent: true, refs: [1, 3], headerLength: 5 });
		expect(d.keyframe).toBeUndefined();
	});

	it.each([
		['empty', []],
		['picture id cut off', [0x80]],
		['layer indices cut off', [0xa0]],
		['more than 3 reference deltas', [0x58, 0x01, 0x03, 0x03, 0x03, 0x03]],
	])('rejects %s', (_name, bytes) => {
		expect(parseVp9Descriptor(Uint8Array.from(bytes))).toBeUndefined();
	});

	it('rejects every truncation of a scalability structure', () => {
		const full = svcKeyframeDescriptor();
		for (let n = 1; n < full.length; n++) expect(parseVp9Descriptor(full.subarray(0, n))).toBeUndefined();
	});
});
