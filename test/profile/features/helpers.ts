import { mulberry32 } from '../../../plugin/util/rng';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRtp, type RtpPacket } from '../../../plugin/profile/features/rtp';

/** Packets captured by fixtures/capture.mjs, one hex line each. */
export function loadPackets(name: string): Uint8Array[] {
	return readFileSync(join(__dirname, 'fixtures', `${name}.hex`), 'utf8')
		.split('\n')
		.filter((line) => line.length > 0)
		.map((line) => Uint8Array.from(Buffer.from(line, 'hex')));
}

export function loadRtp(name: string): RtpPacket[] {
	return loadPackets(name).map((bytes) => {
		const packet = parseRtp(bytes);
		if (!packet) throw new Error(`fixture ${name} holds a packet that is not RTP`);
		return packet;
	});
}

export function loadJson<T>(name: string): T {
	return JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as T;
}

/** Deterministic PRNG (mulberry32) so property tests are reproducible. */
export const rng = mulberry32;

export function gaussian(random: () => number): () => number {
	return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** MSB-first bit writer for hand-built headers whose layout the RFCs give bit by bit. */
export class BitWriter {
	private readonly bitsOut: number[] = [];

	bits(value: number, n: number): this {
		for (let i = n - 1; i >= 0; i--) this.bitsOut.push(Math.floor(value / 2 ** i) % 2);
		return this;
	}

	ue(value: number): this {
		const code = value + 1;
		const length = Math.floor(Math.log2(code));
		return this.bits(0, length).bits(code, length + 1);
	}

	se(value: number): this {
		return this.ue(value > 0 ? 2 * value - 1 : -2 * value);
	}

	/** rbsp_trailing_bits, then bytes. */
	bytes(trailing = true): Uint8Array {
		if (trailing) {
			this.bitsOut.push(1);
		}
		while (this.bitsOut.length % 8 !== 0) this.bitsOut.push(0);
		const out = new Uint8Array(this.bitsOut.length / 8);
		for (let i = 0; i < out.length; i++) for (let b = 0; b < 8; b++) out[i] = ((out[i] as number) << 1) | (this.bitsOut[i * 8 + b] as number);
		return out;
	}
}

/** Builds an RTP packet (RFC 3550) with optional CSRCs, extension block and padding. */
export function buildRtp(options: {
	marker?: boolean;
	payloadType?: number;
	sequenceNumber?: number;
	timestamp?: number;
	ssrc?: number;
	csrcs?: number[];
	extension?: { profile: number; block: number[] };
	payload?: number[];
	padding?: number;
}): Uint8Array {
	const csrcs = options.csrcs ?? [];
	const out: number[] = [];
	const b0 = 0x80 | (options.padding ? 0x20 : 0) | (options.extension ? 0x10 : 0) | csrcs.length;
	out.push(b0, (options.marker ? 0x80 : 0) | (options.payloadType ?? 96));
	const u16 = (v: number): void => void out.push((v >> 8) & 0xff, v & 0xff);
	const u32 = (v: number): void => void out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
	u16(options.sequenceNumber ?? 1);
	u32(options.timestamp ?? 1000);
	u32(options.ssrc ?? 0x11223344);
	for (const c of csrcs) u32(c);
	if (options.extension) {
		const block = [...options.extension.block];
		while (block.length % 4 !== 0) block.push(0);
		u16(options.extension.profile);
		u16(block.length / 4);
		out.push(...block);
	}
	out.push(...(options.payload ?? []));
	if (options.padding) {
		for (let i = 1; i < options.padding; i++) out.push(0);
		out.push(options.padding);
	}
	return Uint8Array.from(out);
}

/**
 * Detections matched one-to-one to cuts within ±toleranceS, nearest pairs first (as
 * bench/profile-accuracy.ts scores): one detection never counts for two cuts 1.5 s apart,
 * nor two detections for one cut. Precision is 0 with no detections.
 */
export function precisionRecall(detectedS: readonly number[], cutsS: readonly number[], toleranceS = 1): { precision: number; recall: number; tp: number; detected: number; cuts: number } {
	const pairs: Array<{ gap: number; d: number; c: number }> = [];
	detectedS.forEach((dS, d) => cutsS.forEach((cS, c) => Math.abs(cS - dS) <= toleranceS && pairs.push({ gap: Math.abs(cS - dS), d, c })));
	pairs.sort((a, b) => a.gap - b.gap);
	const usedD = new Set<number>();
	const usedC = new Set<number>();
	for (const { d, c } of pairs) {
		if (usedD.has(d) || usedC.has(c)) continue;
		usedD.add(d);
		usedC.add(c);
	}
	const tp = usedD.size;
	return { precision: detectedS.length ? tp / detectedS.length : 0, recall: cutsS.length ? tp / cutsS.length : 0, tp, detected: detectedS.length, cuts: cutsS.length };
}
