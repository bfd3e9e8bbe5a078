import { join } from 'node:path';
import { LayerFrameRates, type LayerFrameEvent } from '../../../plugin/profile/features/layerFrames';
import { parseRtp } from '../../../plugin/profile/features/rtp';
import { readRecording } from '../../../training/record/format';
import { rng } from './helpers';

/** Packets of layers at the given rates (layer i: i + 1 packets per frame), arrivals jittered by up to 3 ms. */
function stream(fpsByLayer: number[], fromMs: number, toMs: number, seed = 1): LayerFrameEvent[] {
	const random = rng(seed);
	const events: LayerFrameEvent[] = [];
	fpsByLayer.forEach((fps, layer) => {
		const interval = 1000 / fps;
		for (let k = Math.ceil(fromMs / interval); k * interval < toMs; k++) {
			const t = k * interval;
			for (let p = 0; p <= layer; p++) events.push({ arrivalMs: t + p + random() * 3, layer, rtpTimestamp: Math.round(t * 90), marker: p === layer });
		}
	});
	return events.sort((a, b) => a.arrivalMs - b.arrivalMs);
}

/** One trace window [fromMs, toMs) of the given stream. */
function traceWindow(rates: LayerFrameRates, fpsByLayer: number[], fromMs: number, toMs: number, seed = 1): void {
	rates.openWindow(fromMs);
	for (const e of stream(fpsByLayer, fromMs, toMs, seed)) if (e.arrivalMs < toMs) rates.add(e);
	rates.closeWindow(toMs);
}

describe('LayerFrameRates', () => {
	it('measures each layer over the same windows, a sparse layer included', () => {
		const rates = new LayerFrameRates();
		// Windows of 1 s every 3 s; the top layer at 2 fps, as an encoder dropping frames after a cut.
		for (let w = 0; w < 10; w++) traceWindow(rates, [30, 15, 2], w * 3000, w * 3000 + 1000, w + 1);
		const fps = rates.rates(30_000);
		expect(fps.get(0)!).toBeCloseTo(30, 0);
		expect(fps.get(1)!).toBeCloseTo(15, 0);
		// Its own first-to-last span would say 2 frames in 0.5 s: 4 fps.
		expect(fps.get(2)!).toBeCloseTo(2, 1);
	});

	it('counts a frame once, at its marker packet, ignores packets outside windows and forgets windows past the horizon', () => {
		const rates = new LayerFrameRates({ horizonMs: 10_000 });
		traceWindow(rates, [10], 0, 2000);
		for (const e of stream([30], 2000, 20_000)) rates.add(e);
		rates.openWindow(20_000);
		for (const e of stream([30], 20_000, 22_000)) {
			rates.add(e);
			rates.add(e);
		}
		expect(rates.rates(22_000).get(0)!).toBeCloseTo(30, 0);
	});

	it('counts a frame traced before the switch-off but delivered just after it in its window', () => {
		const rates = new LayerFrameRates();
		rates.openWindow(0);
		// The worker traced 10 frames in the second the trace was on; each reaches Node 80 ms later.
		const late = stream([10], 0, 1000).map((e) => ({ ...e, arrivalMs: e.arrivalMs + 80 }));
		for (const e of late.filter((e) => e.arrivalMs <= 1000)) rates.add(e);
		rates.closeWindow(1000);
		for (const e of late.filter((e) => e.arrivalMs > 1000)) rates.add(e);
		expect(rates.rates(2000).get(0)!).toBeCloseTo(10, 6);
		// Packets long after the switch-off belong to someone else's trace.
		rates.add({ arrivalMs: 1500, layer: 0, rtpTimestamp: 99_000, marker: true });
		expect(rates.rates(2000).get(0)!).toBeCloseTo(10, 6);
	});

	it('does not dilute a layer with windows in which it sent nothing', () => {
		const rates = new LayerFrameRates();
		traceWindow(rates, [30], 0, 2000);
		traceWindow(rates, [30, 30], 5000, 7000);
		expect(rates.rates(7000).get(1)!).toBeCloseTo(30, 0);
	});

	it.each([0, 500, 1000, 1500])(
		"matches each layer's frame count on the scene-cuts recording, where Chromium dropped its upper layers to 1–3 fps (windows from %i ms)",
		(phase) => {
			const rec = readRecording(join(__dirname, '../../fixtures/recordings/scene-cuts.rec.gz'));
			const video = rec.header.streams.find((s) => s.kind === 'video')!;
			const ssrcs = video.layers.map((l) => l.ssrc);
			// Back-to-back 2 s windows, as a trace that never switches off.
			const rates = new LayerFrameRates();
			const timestamps = ssrcs.map(() => new Set<number>());
			let window = -1;
			for (const p of rec.packets) {
				const arrivalMs = p.arrivalUs / 1000;
				if (p.stream !== video.index || arrivalMs < phase) continue;
				const w = Math.floor((arrivalMs - phase) / 2000);
				if (w !== window) rates.openWindow(phase + w * 2000);
				window = w;
				const rtp = parseRtp(p.data)!;
				const layer = ssrcs.indexOf(rtp.ssrc);
				timestamps[layer]!.add(rtp.timestamp);
				rates.add({ arrivalMs, layer, rtpTimestamp: rtp.timestamp, marker: rtp.marker });
			}
			rates.closeWindow(rec.header.durationMs);
			const fps = rates.rates(rec.header.durationMs);
			const seconds = (rec.header.durationMs - phase) / 1000;
			// Distinct timestamps, not markers: every frame ended in the recording.
			timestamps.forEach((ts, layer) => expect(Math.abs(fps.get(layer)! / (ts.size / seconds) - 1)).toBeLessThan(0.01));
			// The layers really differ: a copy of the base layer's rate would be off by half.
			expect(fps.get(2)! / fps.get(0)!).toBeLessThan(0.7);
		},
	);
	describe('newestWindowAgrees (the trace backoff)', () => {
		it('agrees when every layer kept its rate, with nothing to compare it with it does not', () => {
			const rates = new LayerFrameRates();
			traceWindow(rates, [30, 30, 15], 0, 1000);
			expect(rates.newestWindowAgrees(0.1)).toBe(false);
			traceWindow(rates, [30, 30, 15], 30_000, 31_000, 2);
			expect(rates.newestWindowAgrees(0.1)).toBe(true);
		});

		it('disagrees when a layer dropped frames or switched off', () => {
			const halved = new LayerFrameRates();
			traceWindow(halved, [30, 30, 30], 0, 1000);
			traceWindow(halved, [30, 30, 15], 30_000, 31_000);
			expect(halved.newestWindowAgrees(0.1)).toBe(false);
			const off = new LayerFrameRates();
			traceWindow(off, [30, 30, 30], 0, 1000);
			traceWindow(off, [30, 30], 30_000, 31_000);
			expect(off.newestWindowAgrees(0.1)).toBe(false);
		});

		it('is judged only once the newest window is closed, against windows within the horizon', () => {
			const rates = new LayerFrameRates({ horizonMs: 60_000 });
			traceWindow(rates, [30], 0, 1000);
			rates.openWindow(120_000);
			expect(rates.newestWindowAgrees(0.1)).toBe(false);
			for (const e of stream([30], 120_000, 121_000)) rates.add(e);
			rates.closeWindow(121_000);
			// The earlier window ended two minutes before: past the horizon, nothing to agree with.
			expect(rates.newestWindowAgrees(0.1)).toBe(false);
			rates.setHorizon(240_000);
			expect(rates.newestWindowAgrees(0.1)).toBe(true);
			expect(rates.rates(121_000).get(0)!).toBeCloseTo(30, 0);
		});
	});
});

