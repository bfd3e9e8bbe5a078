import { parseRtp, seqDelta, timestampDelta, ONE_BYTE_EXTENSION_PROFILE, TWO_BYTE_EXTENSION_PROFILE } from '../../../plugin/profile/features/rtp';
import { buildRtp, loadPackets, loadRtp } from './helpers';

describe('parseRtp on packets captured from ffmpeg', () => {
	it('reads the VP8 stream: one SSRC, consecutive sequence numbers, marker closing each frame', () => {
		const packets = loadRtp('vp8-176x144');
		expect(packets.length).toBeGreaterThan(5);
		for (const [i, p] of packets.entries()) {
			expect(p.version).toBe(2);
			expect(p.payloadType).toBe(96);
			expect(p.ssrc).toBe(packets[0]?.ssrc);
			expect(p.csrcs).toEqual([]);
			expect(p.payloadOffset).toBe(12);
			if (i > 0) expect(seqDelta(packets[i - 1]!.sequenceNumber, p.sequenceNumber)).toBe(1);
			const next = packets[i + 1];
			// The marker bit is set exactly on the last packet of each timestamp.
			if (next) expect(p.marker).toBe(next.timestamp !== p.timestamp);
		}
	});

	it('exposes the payload as a view of the bytes after the header', () => {
		const [bytes] = loadPackets('opus-fb-stereo');
		const packet = parseRtp(bytes!)!;
		expect(packet.payloadType).toBe(97);
		expect(packet.payload.length).toBe(bytes!.length - 12);
		expect(packet.payload[0]).toBe(bytes![12]);
	});
});

describe('parseRtp on hand-built packets (RFC 3550, RFC 8285)', () => {
	it('reads CSRCs, marker, payload type, sequence number, timestamp and SSRC', () => {
		const bytes = buildRtp({ marker: true, payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, csrcs: [1, 0xffffffff], payload: [9, 8, 7] });
		const p = parseRtp(bytes)!;
		expect(p).toMatchObject({ marker: true, payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, csrcs: [1, 0xffffffff], payloadOffset: 20 });
		expect(Array.from(p.payload)).toEqual([9, 8, 7]);
	});

	it('reads one-byte extension elements by id, skipping padding and stopping at id 15', () => {
		// id 1 (audio level, 1 byte), a padding byte, id 3 (3 bytes), then the id-15 stop marker.
		const block = [0x10, 0x85, 0x00, 0x32, 0xaa, 0xbb, 0xcc, 0xf0, 0x99];
		const p = parseRtp(buildRtp({ extension: { profile: ONE_BYTE_EXTENSION_PROFILE, block }, payload: [1, 2] }))!;
		expect(p.extensionProfile).toBe(0xbede);
		expect(Array.from(p.extensions.get(1)!)).toEqual([0x85]);
		expect(Array.from(p.extensions.get(3)!)).toEqual([0xaa, 0xbb, 0xcc]);
		expect(p.extensions.size).toBe(2);
		expect(p.payloadOffset).toBe(12 + 4 + 12);
		expect(Array.from(p.payload)).toEqual([1, 2]);
	});

	it('reads two-byte extension elements, including empty and long ones', () => {
		const long = Array.from({ length: 20 }, (_, i) => i);
		const block = [5, 0, 0, 7, 20, ...long];
		const p = parseRtp(buildRtp({ extension: { profile: TWO_BYTE_EXTENSION_PROFILE | 0x3, block } }))!;
		expect(p.extensions.get(5)!.length).toBe(0);
		expect(Array.from(p.extensions.get(7)!)).toEqual(long);
	});

	it('keeps the packet but no elements for an unknown extension profile', () => {
		const p = parseRtp(buildRtp({ extension: { profile: 0x1234, block: [1, 2, 3, 4] }, payload: [5] }))!;
		expect(p.extensions.size).toBe(0);
		expect(Array.from(p.payload)).toEqual([5]);
	});

	it('strips padding', () => {
		const p = parseRtp(buildRtp({ payload: [1, 2, 3], padding: 4 }))!;
		expect(p.padding).toBe(true);
		expect(p.paddingLength).toBe(4);
		expect(Array.from(p.payload)).toEqual([1, 2, 3]);
	});

	it.each([
		['shorter than the fixed header', Uint8Array.from([0x80, 96, 0, 1])],
		['version 1', (() => { const b = buildRtp({ payload: [1] }); b[0] = 0x40; return b; })()],
		['CSRC count beyond the packet', (() => { const b = buildRtp({ payload: [] }); b[0] = 0x8f; return b; })()],
		['extension header cut off', buildRtp({ extension: { profile: 0xbede, block: [0x10, 1, 0, 0] } }).subarray(0, 14)],
		['extension length beyond the packet', buildRtp({ extension: { profile: 0xbede, block: [0x10, 1, 0, 0] } }).subarray(0, 19)],
		['one-byte element overrunning its block', buildRtp({ extension: { profile: 0xbede, block: [0x10, 1, 0x23, 1] } })],
		['one-byte element with the padding id and a length', buildRtp({ extension: { profile: 0xbede, block: [0x01, 1, 2, 0] } })],
		['two-byte element overrunning its block', buildRtp({ extension: { profile: 0x1000, block: [1, 9, 0, 0] } })],
		['padding count zero', (() => { const b = buildRtp({ payload: [1, 2], padding: 1 }); b[b.length - 1] = 0; return b; })()],
		['padding count beyond the payload', (() => { const b = buildRtp({ payload: [1, 2], padding: 1 }); b[b.length - 1] = 200; return b; })()],
	])('returns undefined for %s', (_name, bytes) => {
		expect(parseRtp(bytes)).toBeUndefined();
	});
});

describe('sequence and timestamp arithmetic', () => {
	it('handles wrap-around', () => {
		expect(seqDelta(65535, 0)).toBe(1);
		expect(seqDelta(0, 65535)).toBe(-1);
		expect(seqDelta(100, 90)).toBe(-10);
		expect(timestampDelta(0xffffff00, 0x100)).toBe(0x200);
		expect(timestampDelta(0x100, 0xffffff00)).toBe(-0x200);
	});
});
