/**
 * H.264 over RTP (RFC 6184): find the SPS or an IDR in a single NAL unit, STAP-A
 * or the first FU-A fragment, and parse the SPS (ITU-T H.264 §7.3.2.1.1) to the
 * displayed resolution.
 */
import { BitReader } from './bits';

export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_STAP_A = 24;
export const NAL_FU_A = 28;

/** Profiles whose SPS carries chroma format, bit depths and scaling matrices (§7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * The NAL units visible in one RTP payload. For FU-A only the start fragment
 * yields a unit (header rebuilt from the FU indicator and header), and it is
 * truncated to that fragment.
 */
export function nalUnits(payload: Uint8Array): Uint8Array[] {
	const header = payload[0];
	if (header === undefined) return [];
	const type = header & 0x1f;
	if (type >= 1 && type <= 23) return [payload];
	if (type === NAL_STAP_A) {
		const units: Uint8Array[] = [];
		let i = 1;
		while (i + 2 <= payload.length) {
			const size = ((payload[i] as number) << 8) | (payload[i + 1] as number);
			i += 2;
			if (size === 0 || i + size > payload.length) break;
			units.push(payload.subarray(i, i + size));
			i += size;
		}
		return units;
	}
	if (type === NAL_FU_A) {
		const fu = payload[1];
		if (fu === undefined || (fu & 0x80) === 0) return [];
		const unit = new Uint8Array(payload.length - 1);
		unit[0] = (header & 0xe0) | (fu & 0x1f);
		unit.set(payload.subarray(2), 1);
		return [unit];
	}
	return [];
}

export function findSps(payload: Uint8Array): Uint8Array | undefined {
	return nalUnits(payload).find((unit) => ((unit[0] as number) & 0x1f) === NAL_SPS);
}

/** True when the payload starts or contains an IDR slice (or an SPS, which precedes one). */
export function isH264Keyframe(payload: Uint8Array): boolean {
	return nalUnits(payload).some((unit) => {
		const type = (unit[0] as number) & 0x1f;
		return type === NAL_IDR || type === NAL_SPS;
	});
}

export interface H264Sps {
	profileIdc: number;
	constraintFlags: number;
	levelIdc: number;
	spsId: number;
	chromaFormatIdc: number;
	bitDepthLuma: number;
	bitDepthChroma: number;
	frameMbsOnly: boolean;
	maxNumRefFrames: number;
	crop: { left: number; right: number; top: number; bottom: number };
	/** Displayed size: coded macroblocks minus cropping. */
	width: number;
	height: number;
}

/** Removes emulation-prevention bytes (00 00 03 → 00 00) so the RBSP can be bit-read. */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
	const out = new Uint8Array(nal.length);
	let n = 0;
	let zeros = 0;
	for (let i = 0; i < nal.length; i++) {
		const byte = nal[i] as number;
		if (zeros >= 2 && byte === 3) {
			zeros = 0;
			continue;
		}
		zeros = byte === 0 ? zeros + 1 : 0;
		out[n++] = byte;
	}
	return out.subarray(0, n);
}

const MAX_DIMENSION = 16384;

/** Parses an SPS NAL unit (with its 1-byte NAL header). */
export function parseSps(nal: Uint8Array): H264Sps | undefined {
	if (nal.length < 4 || ((nal[0] as number) & 0x1f) !== NAL_SPS) return undefined;
	const r = new BitReader(unescapeRbsp(nal.subarray(1)));
	const profileIdc = r.bits(8);
	const constraintFlags = r.bits(8);
	const levelIdc = r.bits(8);
	const spsId = r.ue();
	if (spsId > 31) return undefined;

	let chromaFormatIdc = 1;
	let separateColourPlane = false;
	let bitDepthLuma = 8;
	let bitDepthChroma = 8;
	if (HIGH_PROFILES.has(profileIdc)) {
		chromaFormatIdc = r.ue();
		if (chromaFormatIdc > 3) return undefined;
		if (chromaFormatIdc === 3) separateColourPlane = r.bit() === 1;
		bitDepthLuma = r.ue() + 8;
		bitDepthChroma = r.ue() + 8;
		if (bitDepthLuma > 14 || bitDepthChroma > 14) return undefined;
		r.skip(1); // qpprime_y_zero_transform_bypass_flag
		if (r.bit()) {
			const lists = chromaFormatIdc === 3 ? 12 : 8;
			for (let i = 0; i < lists && !r.overrun; i++) {
				if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
			}
		}
	}
	r.ue(); // log2_max_frame_num_minus4
	const pocType = r.ue();
	if (pocType === 0) {
		r.ue(); // log2_max_pic_order_cnt_lsb_minus4
	} else if (pocType === 1) {
		r.skip(1); // delta_pic_order_always_zero_flag
		r.se(); // offset_for_non_ref_pic
		r.se(); // offset_for_top_to_bottom_field
		const cycle = r.ue();
		if (cycle > 255) return undefined;
		for (let i = 0; i < cycle && !r.overrun; i++) r.se();
	} else if (pocType !== 2) {
		return undefined;
	}
	const maxNumRefFrames = r.ue();
	r.skip(1); // gaps_in_frame_num_value_allowed_flag
	const widthMbs = r.ue() + 1;
	const heightMapUnits = r.ue() + 1;
	const frameMbsOnly = r.bit() === 1;
	if (!frameMbsOnly) r.skip(1); // mb_adaptive_frame_field_flag
	r.skip(1); // direct_8x8_inference_flag
	const crop = { left: 0, right: 0, top: 0, bottom: 0 };
	if (r.bit()) {
		crop.left = r.ue();
		crop.right = r.ue();
		crop.top = r.ue();
		crop.bottom = r.ue();
	}
	if (r.overrun) return undefined;

	// §7.4.2.1.1: crop offsets count chroma samples (or field rows) depending on the format.
	const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
	const fieldFactor = frameMbsOnly ? 1 : 2;
	const cropUnitX = chromaArrayType === 0 ? 1 : chromaFormatIdc === 3 ? 1 : 2;
	const cropUnitY = (chromaArrayType === 0 ? 1 : chromaFormatIdc === 1 ? 2 : 1) * fieldFactor;
	const width = widthMbs * 16 - cropUnitX * (crop.left + crop.right);
	const height = heightMapUnits * 16 * fieldFactor - cropUnitY * (crop.top + crop.bottom);
	if (!(width > 0 && height > 0 && width <= MAX_DIMENSION && height <= MAX_DIMENSION)) return undefined;

	return {
		profileIdc,
		constraintFlags,
		levelIdc,
		spsId,
		chromaFormatIdc,
		bitDepthLuma,
		bitDepthChroma,
		frameMbsOnly,
		maxNumRefFrames,
		crop,
		width,
		height,
	};
}

/** scaling_list() of §7.3.2.1.1.1: only its length matters here. */
function skipScalingList(r: BitReader, size: number): void {
	let last = 8;
	let next = 8;
	for (let j = 0; j < size && !r.overrun; j++) {
		if (next !== 0) {
			const delta = r.se();
			next = (last + delta + 256) % 256;
		}
		last = next === 0 ? last : next;
	}
}
