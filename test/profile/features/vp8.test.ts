import { parseVp8Descriptor, parseVp8Payload } from '../../../plugin/profile/features/vp8';
import { loadRtp } from './helpers';

describe('VP8 on packets captured from ffmpeg (libvpx, 176x144)', () => {
	const packets = loadRtp('vp8-176x144');

	it('reads the keyframe header of the first packet: 176x144, no scaling', () => {
		const first = parseVp8Payload(packets[0]!.payload)!;
		expect(first.descriptor).toMatchObject({ startOfPartition: true, partitionIndex: 0, pictureIdBits: 15, headerLength: 4 });
		expect(first.keyframe).toBe(true);
		expect(first.resolution).toEqual({ width: 176, height: 144, horizontalScale: 0, verticalScale: 0 });
	});

	it('knows keyframe-ness only at frame starts, and later frames are delta frames', () => {
		const parsed = packets.map((p) => parseVp8Payload(p.payload)!);
		const starts = parsed.filter((v) => v.descriptor.startOfPartition && v.descriptor.partitionIndex === 0);
		expect(starts.length).toBeGreaterThan(3);
		expect(starts.slice(1).every((v) => v.keyframe === false && v.resolution === undefined)).toBe(true);
		expect(parsed.filter((v) => !v.descriptor.startOfPartition).every((v) => v.keyframe === undefined)).toBe(true);
	});

	it('sees the 15-bit picture id advance by one per frame', () => {
		const ids = [...new Map(packets.map((p) => [p.timestamp, parseVp8Descriptor(p.payload)!.pictureId!])).values()];
		for (let i = 1; i < ids.length; i++) expect((ids[i]! - ids[i - 1]! + 0x8000) % 0x8000).toBe(1);
	});
});

describe('VP8 descriptor variants (RFC 7741 §4.2)', () => {
	it('reads the short form', () => {
		expect(parseVp8Descriptor(Uint8Array.from([0x30, 0x00]))).toEqual({ nonReference: true, startOfPartition: true, partitionIndex: 0, headerLength: 1 });
	});

	it('reads a 7-bit picture id, TL0PICIDX, TID/Y and KEYIDX', () => {
		// X; I L T K; M=0 PictureID=0x55; TL0PICIDX=9; TID=2 Y=1 KEYIDX=5
		const d = parseVp8Descriptor(Uint8Array.from([0x90, 0xf0, 0x55, 0x09, (2 << 6) | 0x20 | 5, 0xaa]))!;
		expect(d).toMatchObject({ pictureId: 0x55, pictureIdBits: 7, tl0PicIdx: 9, temporalId: 2, layerSync: true, keyIdx: 5, headerLength: 5 });
	});

	it('reads the keyframe scaling bits', () => {
		const frame = [0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05 | 0x40, 0xd0, 0x02 | 0xc0];
		const v = parseVp8Payload(Uint8Array.from([0x10, ...frame]))!;
		expect(v.resolution).toEqual({ width: 1280, height: 720, horizontalScale: 1, verticalScale: 3 });
	});

	it.each([
		['empty', []],
		['X set without the extension byte', [0x80]],
		['I set without the picture id', [0x80, 0x80]],
		['M set without the second picture id byte', [0x80, 0x80, 0x80]],
		['L set without TL0PICIDX', [0x80, 0x40]],
		['T set without the TID byte', [0x80, 0x20]],
	])('rejects a descriptor: %s', (_name, bytes) => {
		expect(parseVp8Descriptor(Uint8Array.from(bytes))).toBeUndefined();
	});

	it('rejects a keyframe without the start code', () => {
		expect(parseVp8Payload(Uint8Array.from([0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2b, 0, 5, 0xd0, 2]))).toBeUndefined();
	});
});
