import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { byteRates, decodeRecording, encodeRecording, readRecording, rtpSsrc } from '../../training/record/format';
import { prepare, rtpPayloadOffset } from '../../training/loadgen/prepared';

const FIXTURES = join(__dirname, '../fixtures/recordings');

describe('recording format', () => {
	const file = readFileSync(join(FIXTURES, 'talking-head.rec.gz'));

	test('a fixture decodes, re-encodes and decodes to the same content', () => {
		const rec = decodeRecording(file);
		const again = decodeRecording(encodeRecording(rec));
		expect(again.header).toEqual(rec.header);
		expect(again.packets.length).toBe(rec.packets.length);
		for (let i = 0; i < rec.packets.length; i++) {
			expect(again.packets[i]!.stream).toBe(rec.packets[i]!.stream);
			expect(again.packets[i]!.arrivalUs).toBe(Math.round(rec.packets[i]!.arrivalUs));
			expect(again.packets[i]!.data.equals(rec.packets[i]!.data)).toBe(true);
		}
	});

	test('corrupt files are rejected: bad magic, invalid header, truncated records', () => {
		const raw = gunzipSync(file);
		const badMagic = Buffer.from(raw);
		badMagic.write('XXXX', 0, 'latin1');
		expect(() => decodeRecording(gzipSync(badMagic))).toThrow(/bad magic/);

		const headerLength = raw.readUInt32BE(4);
		const header = JSON.parse(raw.toString('utf8', 8, 8 + headerLength)) as { streams: Array<{ kind: string }> };
		header.streams[0]!.kind = 'smell';
		const json = Buffer.from(JSON.stringify(header));
		const lengthField = Buffer.alloc(4);
		lengthField.writeUInt32BE(json.length);
		const badHeader = Buffer.concat([raw.subarray(0, 4), lengthField, json, raw.subarray(8 + headerLength)]);
		expect(() => decodeRecording(gzipSync(badHeader))).toThrow(/streams\.0\.kind/);

		expect(() => decodeRecording(gzipSync(raw.subarray(0, raw.length - 3)))).toThrow(/truncated|expected/);
	});

	test('every packet belongs to a declared layer and arrives in order within the recorded duration', () => {
		const rec = readRecording(join(FIXTURES, 'talking-head.rec.gz'));
		const ssrcs = new Set(rec.header.streams.flatMap((s) => s.layers.map((l) => l.ssrc)));
		let last = 0;
		for (const p of rec.packets) {
			expect(ssrcs.has(rtpSsrc(p.data))).toBe(true);
			expect(p.arrivalUs).toBeGreaterThanOrEqual(last);
			last = p.arrivalUs;
		}
		expect(last).toBeLessThanOrEqual(rec.header.durationMs * 1000);
		const rates = byteRates(rec);
		expect(rates.reduce((n, r) => n + r.packets, 0)).toBe(rec.packets.length);
	});

	test('the video fixtures carry three simulcast layers whose browser-reported resolutions grow', () => {
		for (const name of ['talking-head', 'scene-cuts', 'screen-share']) {
			const rec = readRecording(join(FIXTURES, `${name}.rec.gz`));
			const video = rec.header.streams.find((s) => s.kind === 'video')!;
			expect(video.layers.map((l) => l.rid)).toEqual(['r0', 'r1', 'r2']);
			const rates = byteRates(rec).filter((r) => r.stream === video.index);
			for (const r of rates) expect(r.packets).toBeGreaterThan(0);
			const last = rec.header.browserStats.filter((s) => s.label === video.label).at(-1)!;
			const widths = ['r0', 'r1', 'r2'].map((rid) => last.outbound.find((o) => o.rid === rid)!.frameWidth!);
			expect(widths[0]!).toBeLessThan(widths[1]!);
			expect(widths[1]!).toBeLessThan(widths[2]!);
			expect(widths[2]).toBe((rec.header.groundTruth.video as { width: number }).width);
		}
	});
});

describe('prepare()', () => {
	test('indexes layers with their sequence and timestamp spans and finds VP8 descriptors', () => {
		const rec = readRecording(join(FIXTURES, 'talking-head.rec.gz'));
		const prepared = prepare(rec);
		expect(prepare(rec)).toBe(prepared);
		expect(prepared.layers.reduce((n, l) => n + l.packets, 0)).toBe(rec.packets.length);
		for (const l of prepared.layers) {
			// The tap was on loopback: every layer's sequence numbers are gap-free.
			expect(l.seqSpan).toBe(l.packets);
			expect(l.tsSpan).toBeGreaterThan(l.clockRate * (rec.header.durationMs / 1000) * 0.9);
		}
		rec.packets.forEach((p, i) => {
			const isVideo = prepared.layers[prepared.layerOf[i]!]!.stream.kind === 'video';
			expect(prepared.vp8Offset[i]).toBe(isVideo ? rtpPayloadOffset(p.data) : -1);
		});
	});
});
