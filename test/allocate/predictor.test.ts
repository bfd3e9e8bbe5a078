import { SpecPredictor } from '../../plugin/allocate/sim/predictor';
import { MEASURED_COST_MODEL, type ConsumerView, type ProducerView } from '../../plugin/allocate/snapshot';

function video(ageS: number, layers: number[]): ProducerView {
	return {
		id: 'v',
		peerId: 'p',
		roomId: 'r',
		workerId: 'w0',
		mediaClass: 'video',
		layers: layers.map((packetRate, spatial) => ({ spatial, packetRate, active: packetRate > 0 })),
		packetRate: layers.reduce((a, b) => a + b, 0),
		expectedPacketRate: 0,
		activeSpeaker: false,
		ageS,
	};
}

function consumers(n: number): ConsumerView[] {
	return Array.from({ length: n }, (_, i) => ({
		id: `c${i}`,
		peerId: `rx${i}`,
		producerId: 'v',
		workerId: 'w0',
		priority: 100,
		paused: false,
		wanted: { spatial: 2, temporal: 2 },
		current: { spatial: 2, temporal: 2 },
		packetRate: 0,
	}));
}

describe('specification predictor', () => {
	it('expects a young video producer to finish its ramp-up', () => {
		const predictor = new SpecPredictor(MEASURED_COST_MODEL);
		const young = video(1, [20, 0, 0]);
		const forecast = predictor.update(['w0'], new Map(), [young], consumers(100)).get('w0')!;
		expect(forecast.map((f) => f.horizonS)).toEqual([5, 15, 30]);
		expect(forecast[2]!.meanPct).toBeGreaterThan(forecast[0]!.meanPct * 0.99);
		// Top layer not active yet, but 100 consumers of it are expected at ~150 pkt/s × 13 µs.
		expect(forecast[2]!.meanPct).toBeGreaterThan(100 * 150 * 13e-4 * 0.8);
		expect(young.expectedPacketRate).toBeGreaterThan(young.packetRate * 5);
		for (const f of forecast) expect(f.p95Pct).toBeGreaterThan(f.meanPct);
	});

	it('calibrates a worker to its measured CPU', () => {
		const predictor = new SpecPredictor(MEASURED_COST_MODEL);
		let forecast = predictor.update(['w0'], new Map(), [video(60, [30, 60, 150])], consumers(100)).get('w0')!;
		const uncalibrated = forecast[0]!.meanPct;
		for (let i = 0; i < 60; i++) forecast = predictor.update(['w0'], new Map([['w0', uncalibrated * 1.3]]), [video(60 + i, [30, 60, 150])], consumers(100)).get('w0')!;
		expect(forecast[0]!.meanPct / uncalibrated).toBeCloseTo(1.3, 1);
	});

	it('ignores saturated samples, which hide the real demand', () => {
		const predictor = new SpecPredictor(MEASURED_COST_MODEL);
		const base = predictor.update(['w0'], new Map(), [video(60, [30, 60, 150])], consumers(100)).get('w0')![0]!.meanPct;
		let forecast = base;
		for (let i = 0; i < 30; i++) forecast = predictor.update(['w0'], new Map([['w0', 99]]), [video(60, [30, 60, 150])], consumers(100)).get('w0')![0]!.meanPct;
		expect(forecast).toBeCloseTo(base, 5);
	});
});
