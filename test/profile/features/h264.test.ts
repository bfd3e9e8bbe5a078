import { findSps, isH264Keyframe, nalUnits, parseSps, unescapeRbsp, NAL_FU_A, NAL_STAP_A } from '../../../plugin/profile/features/h264';
import { BitWriter, loadRtp } from './helpers';

describe('H.264 on packets captured from ffmpeg (libx264)', () => {
	it.each([
		['h264-baseline-176x144', { profileIdc: 66, chromaFormatIdc: 1, frameMbsOnly: true, width: 176, height: 144 }],
		// 180 rows are coded as 192 and cropped by 6 chroma rows (12 luma rows).
		['h264-high-320x180', { profileIdc: 100, chromaFormatIdc: 1, frameMbsOnly: true, width: 320, height: 180, crop: { left: 0, right: 0, top: 0, bottom: 6 } }],
		// 4:4:4 crops in luma samples; interlaced crops in field rows: 128 coded rows − 2 × 7 = 114.
		['h264-high444-cqm-202x114', { profileIdc: 244, chromaFormatIdc: 3, frameMbsOnly: false, width: 202, height: 114 }],
	])('finds the SPS in the STAP-A of %s and reads its size', (name, expected) => {
		const [first] = loadRtp(name);
		expect((first!.payload[0]! & 0x1f)).toBe(NAL_STAP_A);
		const sps = findSps(first!.payload);
		expect(sps).toBeDefined();
		expect(parseSps(sps!)).toMatchObject(expected);
		expect(isH264Keyframe(first!.payload)).toBe(true);
	});

	it('rebuilds the NAL header of an FU-A start fragment and sees the IDR slice', () => {
		const packets = loadRtp('h264-high-320x180');
		const fuStart = packets.find((p) => (p.payload[0]! & 0x1f) === NAL_FU_A && (p.payload[1]! & 0x80) !== 0)!;
		const [unit] = nalUnits(fuStart.payload);
		expect(unit![0]! & 0x1f).toBe(5);
		expect(unit![0]! & 0x60).toBe(fuStart.payload[0]! & 0x60);
		expect(isH264Keyframe(fuStart.payload)).toBe(true);
		const delta = packets.filter((p) => p.timestamp !== packets[0]!.timestamp);
		expect(delta.length).toBeGreaterThan(0);
		expect(delta.every((p) => !isH264Keyframe(p.payload))).toBe(true);
	});

	it('finds no unit in FU-A continuation fragments', () => {
		const packets = loadRtp('h264-high-320x180');
		const continuation = packets.find((p) => (p.payload[0]! & 0x1f) === NAL_FU_A && (p.payload[1]! & 0x80) === 0)!;
		expect(nalUnits(continuation.payload)).toEqual([]);
	});
});

/** Inserts emulation-prevention bytes as an encoder must (H.264 §7.4.1). */
function escape(rbsp: Uint8Array): Uint8Array {
	const out: number[] = [];
	let zeros = 0;
	for (const byte of rbsp) {
		if (zeros >= 2 && byte <= 3) {
			out.push(3);
			zeros = 0;
		}
		out.push(byte);
		zeros = byte === 0 ? zeros + 1 : 0;
	}
	return Uint8Array.from(out);
}

/** A High 4:2:2 SPS with scaling lists, POC type 1 and 1920x1080 cropping, written field by field per §7.3.2.1.1. */
function high422Sps(): Uint8Array {
	const w = new BitWriter();
	w.bits(122, 8).bits(0, 8).bits(40, 8).ue(0); // profile, constraints, level, sps id
	w.ue(2).ue(2).ue(2).bits(0, 1); // chroma 4:2:2, 10-bit luma/chroma, qpprime flag
	w.bits(1, 1); // seq_scaling_matrix_present_flag
	for (let i = 0; i < 8; i++) {
		const present = i === 0 || i === 6;
		w.bits(present ? 1 : 0, 1);
		if (present) for (let j = 0; j < (i < 6 ? 16 : 64); j++) w.se(j === 0 ? 8 : j % 3 === 0 ? -1 : 1);
	}
	w.ue(0).ue(1); // log2_max_frame_num_minus4, pic_order_cnt_type 1
	w.bits(0, 1).se(-2).se(3).ue(3).se(1).se(-1).se(0); // delta flag, offsets, cycle of 3
	w.ue(4).bits(0, 1); // max_num_ref_frames, gaps flag
	w.ue(119).ue(67).bits(1, 1).bits(1, 1); // 120 x 68 MBs, frame_mbs_only, direct_8x8
	w.bits(1, 1).ue(0).ue(0).ue(0).ue(4); // frame_cropping_flag, left/right/top 0, bottom 4 units
	w.bits(0, 1); // no VUI
	return Uint8Array.from([0x67, ...escape(w.bytes())]);
}

describe('parseSps on hand-built SPS', () => {
	it('walks the High 4:2:2 fields and applies the chroma-dependent crop unit', () => {
		const sps = parseSps(high422Sps())!;
		// 4:2:2: SubWidthC = 2, SubHeightC = 1 → crop 4 units = 4 rows: 1088 − 4 = 1084.
		expect(sps).toMatchObject({ profileIdc: 122, chromaFormatIdc: 2, bitDepthLuma: 10, bitDepthChroma: 10, maxNumRefFrames: 4, width: 1920, height: 1084 });
	});

	it('removes emulation-prevention bytes', () => {
		expect(Array.from(unescapeRbsp(Uint8Array.from([0, 0, 3, 1, 0, 0, 3, 0, 0, 3])))).toEqual([0, 0, 1, 0, 0, 0, 0]);
	});

	it('rejects every truncation of an SPS and non-SPS units', () => {
		const sps = high422Sps();
		const cut = sps.length - 2; // the last bytes hold only cropping/VUI bits that may read as zeros
		for (let n = 0; n < cut; n++) expect(parseSps(sps.subarray(0, n))).toBeUndefined();
		expect(parseSps(Uint8Array.from([0x68, 0xce, 0x38, 0x80]))).toBeUndefined();
	});
});
