import { parseAudioLevel, VoiceActivity } from '../../../plugin/profile/features/audioLevel';
import { findSps, isH264Keyframe, nalUnits, parseSps, unescapeRbsp } from '../../../plugin/profile/features/h264';
import { OpusSummary, parseOpusToc } from '../../../plugin/profile/features/opus';
import { parseRtp } from '../../../plugin/profile/features/rtp';
import { parseVp8Payload } from '../../../plugin/profile/features/vp8';
import { parseVp9FrameHeader, parseVp9Payload } from '../../../plugin/profile/features/vp9';
import { loadPackets, rng } from './helpers';

const RANDOM_INPUTS = 10_000;
const FIXTURES = ['vp8-176x144', 'vp9-320x180', 'h264-high-320x180', 'h264-baseline-176x144', 'h264-high444-cqm-202x114', 'opus-fb-stereo', 'opus-voip-mono'];

/**
 * Random byte strings (mostly short, some MTU-sized), each also tried with a
 * prefix that steers it past the first checks (an RTP version, a STAP-A or SPS
 * NAL header, a VP8/VP9 descriptor with every optional field announced).
 */
function randomInputs(seed: number, prefixes: number[][]): Uint8Array[] {
	const random = rng(seed);
	const inputs: Uint8Array[] = [];
	for (let i = 0; i < RANDOM_INPUTS; i++) {
		const length = random() < 0.9 ? Math.floor(random() * 48) : Math.floor(random() * 1500);
		const prefix = prefixes[i % (prefixes.length + 1)] ?? [];
		const bytes = new Uint8Array(prefix.length + length);
		bytes.set(prefix);
		for (let k = prefix.length; k < bytes.length; k++) bytes[k] = Math.floor(random() * 256);
		inputs.push(bytes);
	}
	return inputs;
}

/** Every prefix of every captured packet and of its payload, plus single-bit flips. */
function mutatedFixtures(seed: number): Uint8Array[] {
	const random = rng(seed);
	const out: Uint8Array[] = [];
	for (const name of FIXTURES) {
		for (const packet of loadPackets(name)) {
			const limit = Math.min(packet.length, 160); // every header and SPS sits well within this
			for (let n = 0; n <= limit; n++) {
				out.push(packet.subarray(0, n));
				out.push(packet.subarray(12, 12 + n));
			}
			for (let k = 0; k < 100; k++) {
				const flipped = packet.slice(0, limit);
				const bit = Math.floor(random() * limit * 8);
				flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
				out.push(flipped, flipped.subarray(12));
			}
		}
	}
	return out;
}

/** Each runs one parser and returns a broken invariant, if any (plain checks: jest's expect is too slow for 10⁵ calls). */
const parsers: Array<[string, number[][], (input: Uint8Array) => string | undefined]> = [
	[
		'parseRtp',
		[[0x80], [0x90, 0x60], [0x9f], [0xb0, 0xe0]],
		(input) => {
			const p = parseRtp(input);
			if (!p) return undefined;
			if (p.payloadOffset + p.payload.length + p.paddingLength !== input.length) return 'header + payload + padding ≠ packet';
			for (const ext of p.extensions.values()) if (ext.byteOffset + ext.length > input.byteOffset + input.length) return 'extension beyond packet';
			return undefined;
		},
	],
	[
		'parseVp8Payload',
		[[0x90, 0xf0], [0x10], [0x90, 0x80, 0x80]],
		(input) => {
			const v = parseVp8Payload(input);
			if (v && v.descriptor.headerLength > input.length) return 'descriptor longer than payload';
			if (v?.resolution && !(v.resolution.width > 0 && v.resolution.height > 0)) return 'empty resolution';
			return undefined;
		},
	],
	[
		'parseVp9Payload',
		[[0xaa], [0xbe], [0x0a], [0xfe, 0x80]],
		(input) => {
			const v = parseVp9Payload(input);
			return v && v.descriptor.headerLength > input.length ? 'descriptor longer than payload' : undefined;
		},
	],
	[
		'parseVp9FrameHeader',
		[[0x82, 0x49, 0x83, 0x42], [0xa2, 0x49, 0x83, 0x42], [0xb2, 0x49, 0x83, 0x42]],
		(input) => {
			const h = parseVp9FrameHeader(input);
			return h?.width !== undefined && !(h.width >= 1 && h.width <= 65536) ? 'width out of range' : undefined;
		},
	],
	[
		'H.264 NAL walking and SPS',
		[[0x18], [0x67, 0x64], [0x67, 0xf4], [0x67, 0x42], [0x7c, 0x87], [0x18, 0x00, 0x10, 0x67, 0x64]],
		(input) => {
			if (nalUnits(input).some((unit) => unit.length === 0)) return 'empty NAL unit';
			const sps = parseSps(findSps(input) ?? input);
			if (sps && !(sps.width > 0 && sps.height > 0 && sps.width <= 16384 && sps.height <= 16384)) return 'size out of range';
			isH264Keyframe(input);
			return unescapeRbsp(input).length > input.length ? 'unescaping grew the NAL' : undefined;
		},
	],
	[
		'parseOpusToc and OpusSummary',
		[[0xfb], [0x4b], [0x03]],
		(input) => {
			const toc = parseOpusToc(input);
			summary.add(input);
			return toc && !(toc.frameCount >= 1 && toc.packetMs <= 120) ? 'impossible frame count' : undefined;
		},
	],
	[
		'parseAudioLevel and VoiceActivity',
		[],
		(input) => {
			const level = parseAudioLevel(input);
			activity.addExtension(clock++, input);
			return level && !(level.levelDbov <= 0 && level.levelDbov >= -127) ? 'level out of range' : undefined;
		},
	],
];

const summary = new OpusSummary();
const activity = new VoiceActivity();
let clock = 0;

describe('parsers never throw on random, truncated or corrupted input', () => {
	const mutated = mutatedFixtures(99);

	it.each(parsers)('%s', (_name, prefixes, run) => {
		const inputs = [...randomInputs(_name.length * 7919, prefixes), ...mutated];
		expect(inputs.length).toBeGreaterThanOrEqual(RANDOM_INPUTS);
		const violations: string[] = [];
		for (const input of inputs) {
			let broken: string | undefined;
			try {
				broken = run(input);
			} catch (error) {
				broken = `threw ${String(error)}`;
			}
			if (broken && violations.length < 5) violations.push(`${broken} on ${Buffer.from(input).toString('hex')}`);
		}
		expect(violations).toEqual([]);
	});

	it('the fuzzing reaches deep: some steered random SPS and VP9 SS inputs parse', () => {
		const spsParsed = randomInputs(1, [[0x67, 0x42, 0x00, 0x1e]]).filter((x) => parseSps(x) !== undefined).length;
		const ssParsed = randomInputs(2, [[0x0a]]).filter((x) => parseVp9Payload(x)?.descriptor.ss !== undefined).length;
		expect(spsParsed).toBeGreaterThan(100);
		expect(ssParsed).toBeGreaterThan(100);
	});
});
