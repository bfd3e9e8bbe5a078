import { parseAudioLevel, VoiceActivity, VOICE_THRESHOLD_DBOV } from '../../../plugin/profile/features/audioLevel';
import { parseRtp } from '../../../plugin/profile/features/rtp';
import { buildRtp, rng } from './helpers';

describe('parseAudioLevel (RFC 6464)', () => {
	it('splits the V bit from the level and negates it to dBov', () => {
		expect(parseAudioLevel(Uint8Array.from([0x80 | 30]))).toEqual({ voice: true, levelDbov: -30 });
		expect(parseAudioLevel(Uint8Array.from([127]))).toEqual({ voice: false, levelDbov: -127 });
		expect(parseAudioLevel(new Uint8Array(0))).toBeUndefined();
	});

	it('reads the level from a one-byte RTP header extension', () => {
		const packet = parseRtp(buildRtp({ payloadType: 111, extension: { profile: 0xbede, block: [0x10, 0x80 | 25] }, payload: [0x78, 1, 2] }))!;
		expect(parseAudioLevel(packet.extensions.get(1)!)).toEqual({ voice: true, levelDbov: -25 });
	});
});

describe('VoiceActivity', () => {
	it('measures the voiced share of a window against the threshold', () => {
		const random = rng(7);
		const activity = new VoiceActivity({ windowMs: 10_000 });
		let voiced = 0;
		const packets = 500; // 10 s of 20 ms packets
		for (let i = 0; i < packets; i++) {
			// Talk spurts: 30 % of 1 s blocks are speech around −25 dBov, the rest noise around −70.
			const speech = Math.floor(i / 50) % 10 < 3;
			const level = speech ? -20 - random() * 15 : -62 - random() * 20;
			if (level >= VOICE_THRESHOLD_DBOV) voiced++;
			activity.add(i * 20, { voice: speech, levelDbov: Math.round(level) });
		}
		expect(activity.ratio((packets - 1) * 20)).toBeCloseTo(voiced / packets, 10);
		expect(activity.ratio((packets - 1) * 20)).toBeCloseTo(0.3, 1);
	});

	it('forgets samples older than the window and has no ratio without samples', () => {
		const activity = new VoiceActivity({ windowMs: 1000 });
		expect(activity.ratio(0)).toBeUndefined();
		for (let t = 0; t < 1000; t += 20) activity.add(t, { voice: true, levelDbov: -20 });
		for (let t = 1000; t < 2000; t += 20) activity.addExtension(t, Uint8Array.from([90]));
		expect(activity.ratio(999)).toBe(1);
		expect(activity.ratio(1999)).toBe(0);
		expect(activity.ratio(5000)).toBeUndefined();
	});

	it('can trust the sender V bit instead of the level', () => {
		const activity = new VoiceActivity({ useVoiceBit: true });
		activity.add(0, { voice: true, levelDbov: -90 });
		activity.add(20, { voice: false, levelDbov: -10 });
		activity.add(40, { voice: false, levelDbov: -10 });
		activity.add(60, { voice: false, levelDbov: -10 });
		expect(activity.ratio(60)).toBe(0.25);
	});
});
