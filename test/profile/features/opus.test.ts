import { OpusSummary, parseOpusToc, OPUS_DTX_MAX_BYTES } from '../../../plugin/profile/features/opus';
import { loadRtp } from './helpers';

describe('Opus TOC on packets captured from ffmpeg (libopus)', () => {
	it('reads fullband stereo CELT 20 ms from the 128 kb/s music encode', () => {
		for (const p of loadRtp('opus-fb-stereo')) {
			expect(parseOpusToc(p.payload)).toMatchObject({ mode: 'CELT', bandwidth: 'FB', frameMs: 20, stereo: true, frameCount: 1, packetMs: 20, dtx: false });
		}
	});

	it('reads wideband mono SILK 20 ms from the 16 kHz voip encode', () => {
		for (const p of loadRtp('opus-voip-mono')) {
			expect(parseOpusToc(p.payload)).toMatchObject({ mode: 'SILK', bandwidth: 'WB', frameMs: 20, stereo: false, frameCount: 1, dtx: false });
		}
	});
});

describe('Opus TOC table (RFC 6716 §3.1, Table 2)', () => {
	const table: Array<[number, number, string, string, number]> = [
		[0, 3, 'SILK', 'NB', 10],
		[4, 7, 'SILK', 'MB', 10],
		[8, 11, 'SILK', 'WB', 10],
		[12, 13, 'HYBRID', 'SWB', 10],
		[14, 15, 'HYBRID', 'FB', 10],
		[16, 19, 'CELT', 'NB', 2.5],
		[20, 23, 'CELT', 'WB', 2.5],
		[24, 27, 'CELT', 'SWB', 2.5],
		[28, 31, 'CELT', 'FB', 2.5],
	];
	const silkDurations = [10, 20, 40, 60];
	const hybridDurations = [10, 20];
	const celtDurations = [2.5, 5, 10, 20];

	it.each(table)('configs %i–%i are %s %s', (first, last, mode, bandwidth) => {
		for (let config = first; config <= last; config++) {
			const toc = parseOpusToc(Uint8Array.from([config << 3, 0xaa, 0xbb]))!;
			const durations = mode === 'SILK' ? silkDurations : mode === 'HYBRID' ? hybridDurations : celtDurations;
			expect(toc).toMatchObject({ config, mode, bandwidth, frameMs: durations[config - first] });
		}
	});

	it('counts frames for codes 0–3 and rejects impossible code-3 counts', () => {
		const celt20 = 31 << 3;
		expect(parseOpusToc(Uint8Array.from([celt20 | 0, 1, 2]))!.frameCount).toBe(1);
		expect(parseOpusToc(Uint8Array.from([celt20 | 1, 1, 2]))!.frameCount).toBe(2);
		expect(parseOpusToc(Uint8Array.from([celt20 | 2, 1, 2]))!.frameCount).toBe(2);
		expect(parseOpusToc(Uint8Array.from([celt20 | 3, 6, 1, 2]))).toMatchObject({ frameCount: 6, packetMs: 120 });
		expect(parseOpusToc(Uint8Array.from([celt20 | 3, 7, 1, 2]))).toBeUndefined(); // 140 ms > 120 ms
		expect(parseOpusToc(Uint8Array.from([celt20 | 3, 0, 1, 2]))).toBeUndefined();
		expect(parseOpusToc(Uint8Array.from([celt20 | 3]))).toBeUndefined();
		expect(parseOpusToc(new Uint8Array(0))).toBeUndefined();
	});

	it('calls TOC-only and 2-byte packets DTX', () => {
		expect(OPUS_DTX_MAX_BYTES).toBe(2);
		expect(parseOpusToc(Uint8Array.from([9 << 3]))!.dtx).toBe(true);
		expect(parseOpusToc(Uint8Array.from([9 << 3, 0]))!.dtx).toBe(true);
		expect(parseOpusToc(Uint8Array.from([9 << 3, 0, 0]))!.dtx).toBe(false);
	});
});

describe('OpusSummary', () => {
	it('reports the dominant mode/bandwidth/duration of audio packets and whether DTX occurred', () => {
		const summary = new OpusSummary();
		const voip = loadRtp('opus-voip-mono').map((p) => p.payload);
		for (const payload of voip) summary.add(payload);
		summary.add(Uint8Array.from([(31 << 3) | 4, 1, 2, 3])); // one CELT FB stereo packet among SILK WB
		expect(summary.summary()).toEqual({ opusMode: 'SILK', opusBandwidth: 'WB', frameMs: 20, dtx: false });
		for (let i = 0; i < 3; i++) summary.add(Uint8Array.from([9 << 3]));
		expect(summary.summary().dtx).toBe(true);
		expect(summary.dtxShare).toBeCloseTo(3 / (voip.length + 4));
		expect(summary.stereoShare).toBeCloseTo(1 / (voip.length + 1));
		expect(summary.add(new Uint8Array(0))).toBeUndefined();
		expect(summary.invalid).toBe(1);
		summary.reset();
		expect(summary.summary()).toEqual({ opusMode: undefined, opusBandwidth: undefined, frameMs: undefined, dtx: undefined });
	});
});
