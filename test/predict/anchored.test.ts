import { AnchoredPredictor } from '../../plugin/predict/anchored';
import { COST_TERMS, DEFAULT_COSTS, fitCostCoefficients, HostCalibration, nnlsNormal, workerTerms, type CostCoefficients } from '../../plugin/predict/calibration';
import type { StreamProfile, WorkerLoadSample } from '../../plugin/profile/schema';
import { attributionResidual, HORIZONS_S, type WorkerSnapshot } from '../../plugin/predict/types';
import { audioRoom, profile, rng, videoRoom } from './synthetic';

const T0 = 1_700_000_000_000;

/** A host whose worker CPU follows these coefficients exactly. */
const TRUE: CostCoefficients = {
	idlePct: 0.5,
	theta: { audio_in_kpps: 0.8, video_in_kpps: 0.3, audio_out_kpps: 2, video_out_kpps: 1.5, data_kmsgps: 0, srtp_mbps: 0.2, transports_10: 0.3 },
};

function lawCpu(coef: CostCoefficients, X: ArrayLike<number>): number {
	let cpu = coef.idlePct;
	COST_TERMS.forEach((t, k) => (cpu += coef.theta[t] * X[k]!));
	return cpu;
}

function sample(ts: number, cpuPct: number, transports: number, workerId = 'w'): WorkerLoadSample {
	return { ts, workerId, pid: 1, cpuPct, rssBytes: 40e6, routers: 1, transports, producers: 0, consumers: 0, dataProducers: 0, dataConsumers: 0 };
}

/** Rooms of varying size and mix, so every term varies independently enough to be identified. */
function randomStreams(random: () => number): StreamProfile[] {
	const v = Math.floor(random() * 4);
	const a = Math.floor(random() * 4);
	return [...Array.from({ length: v }, (_, i) => videoRoom(`v${i}`, Math.floor(random() * 12), 0.3 + random())), ...Array.from({ length: a }, (_, i) => audioRoom(`a${i}`, Math.floor(random() * 30), 0.5 + random()))].flat();
}

describe('cost calibration', () => {
	test('NNLS on normal equations clamps at zero and solves the rest exactly', () => {
		const G = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
		expect([...nnlsNormal(G, Float64Array.from([1, -2, 3]), 3)]).toEqual([1, 0, 3]);
		// Coupled: minimize (θ0 + θ1 − 1)² + (θ0 − θ1 − 3)², unconstrained θ = (2, −1) → constrained θ = (1.5... at θ1 = 0: θ0 = 2).
		const A = [
			[1, 1],
			[1, -1],
		];
		const b = [1, 3];
		const G2 = Float64Array.from([A[0]![0]! ** 2 + A[1]![0]! ** 2, A[0]![0]! * A[0]![1]! + A[1]![0]! * A[1]![1]!, 0, 0]);
		G2[2] = G2[1]!;
		G2[3] = A[0]![1]! ** 2 + A[1]![1]! ** 2;
		const c2 = Float64Array.from([A[0]![0]! * b[0]! + A[1]![0]! * b[1]!, A[0]![1]! * b[0]! + A[1]![1]! * b[1]!]);
		const theta = nnlsNormal(G2, c2, 2);
		expect(theta[0]).toBeCloseTo(2, 8);
		expect(theta[1]).toBeCloseTo(0, 12);
	});

	test('recovers a host’s coefficients from noisy measurements, starting from a wrong prior', () => {
		const random = rng(11);
		const cal = new HostCalibration({ prior: DEFAULT_COSTS, halfLifeS: 600 });
		for (let i = 0; i < 2000; i++) {
			const streams = randomStreams(random);
			const transports = new Set(streams.map((s) => s.transportId)).size;
			const X = workerTerms(streams, transports);
			cal.add(T0 + i * 1000, X, lawCpu(TRUE, X) + (random() - 0.5) * 0.4);
		}
		cal.refit();
		const got = cal.coefficients();
		for (const t of COST_TERMS) expect(got.theta[t]).toBeGreaterThanOrEqual(0);
		// Bitrate and packet rate move together in these rooms, so single coefficients are not
		// identified; what matters is the price of a workload: within 3 % on fresh mixes, and on
		// audio-only and video-only rooms of the sizes the host has shown.
		for (const streams of [randomStreams(rng(99)), audioRoom('x', 20), videoRoom('y', 8)]) {
			const X = workerTerms(streams, 10);
			expect(Math.abs(lawCpu(got, X) - lawCpu(TRUE, X)) / lawCpu(TRUE, X)).toBeLessThan(0.03);
		}
	});

	test('forgets: after the host gets twice as slow, the fit follows within a few half-lives', () => {
		const random = rng(5);
		const cal = new HostCalibration({ prior: TRUE, halfLifeS: 60 });
		const slow: CostCoefficients = { idlePct: TRUE.idlePct * 2, theta: Object.fromEntries(COST_TERMS.map((t) => [t, TRUE.theta[t] * 2])) as CostCoefficients['theta'] };
		for (let i = 0; i < 900; i++) {
			const streams = randomStreams(random);
			const X = workerTerms(streams, 5);
			cal.add(T0 + i * 1000, X, lawCpu(i < 300 ? TRUE : slow, X));
		}
		cal.refit();
		const X = workerTerms(randomStreams(rng(3)), 5);
		expect(Math.abs(lawCpu(cal.coefficients(), X) - lawCpu(slow, X)) / lawCpu(slow, X)).toBeLessThan(0.05);
	});

	test('offline fit of the same model', () => {
		const random = rng(8);
		const rows = Array.from({ length: 500 }, () => {
			const X = workerTerms(randomStreams(random), 4);
			return { X, cpuPct: lawCpu(TRUE, X) };
		});
		const fitted = fitCostCoefficients(rows);
		const X = workerTerms(randomStreams(rng(1)), 4);
		expect(Math.abs(lawCpu(fitted, X) - lawCpu(TRUE, X)) / lawCpu(TRUE, X)).toBeLessThan(0.02);
	});
});

describe('AnchoredPredictor', () => {
	const settled = (streams: StreamProfile[]): WorkerSnapshot['events'] => streams.map((s) => ({ ts: T0 - 600_000, type: 'join' as const, streamId: s.streamId, entity: s.entity }));

	test('with nothing known it is last value at every horizon, and attribution is exact', () => {
		const streams = videoRoom('v', 4);
		const predictor = new AnchoredPredictor({ levelHalfLifeS: 0, learn: false, calibration: new HostCalibration({ prior: TRUE }) });
		const samples = [sample(T0 - 1000, 7.5, 5), sample(T0, 12.25, 5)];
		const [p] = predictor.predict([{ workerId: 'w', now: T0, samples, streams, events: settled(streams) }]);
		for (const h of HORIZONS_S) expect(p!.horizons[h].total.cpuPct.mean).toBeCloseTo(12.25, 10);
		expect(p!.streams).toHaveLength(streams.length);
		expect(p!.streams[1]!.cost[15].cpuPct).toBeGreaterThan(0);
		expect(attributionResidual(p!)).toBeLessThan(1e-12);
		expect(p!.predictor).toBe('anchored');
	});

	test('smooths the unexplained level but follows a change the streams explain at once', () => {
		const predictor = new AnchoredPredictor({ levelHalfLifeS: 5, learn: false, calibration: new HostCalibration({ prior: TRUE }) });
		const small = videoRoom('v', 2);
		const big = videoRoom('v', 10);
		const explained = (streams: StreamProfile[]) => lawCpu(TRUE, workerTerms(streams, new Set(streams.map((s) => s.transportId)).size));
		const samples: WorkerLoadSample[] = [];
		let p;
		for (let s = 0; s < 30; s++) {
			// +1 pp unexplained, with ±0.5 pp noise alternating.
			samples.push(sample(T0 + s * 1000, explained(small) + 1 + (s % 2 ? 0.5 : -0.5), 3));
			[p] = predictor.predict([{ workerId: 'w', now: T0 + s * 1000, samples: samples.slice(), streams: small, events: settled(small) }]);
		}
		expect(Math.abs(p!.horizons[15].total.cpuPct.mean - (explained(small) + 1))).toBeLessThan(0.2);
		// Eight more consumers arrive and are measured: the level jumps by what they cost.
		samples.push(sample(T0 + 30_000, explained(big) + 1.5, 11));
		[p] = predictor.predict([{ workerId: 'w', now: T0 + 30_000, samples, streams: big, events: settled(big) }]);
		expect(Math.abs(p!.horizons[15].total.cpuPct.mean - (explained(big) + 1))).toBeLessThan(0.3);
	});

	test('consumers the worker no longer counts stop holding the level up while their profiles are still fresh', () => {
		const big = videoRoom('v', 10);
		const consumers = big.filter((s) => s.entity === 'consumer').length;
		const producers = big.length - consumers;
		// Transports stay open (11, as counted): only the consumers go.
		const explained = (streams: StreamProfile[]) => lawCpu(TRUE, workerTerms(streams, 11));
		const counted = (ts: number, cpuPct: number, c: number): WorkerLoadSample => ({ ...sample(ts, cpuPct, 11), producers, consumers: c });
		const forecast = (scaleByCounts: boolean): number => {
			const predictor = new AnchoredPredictor({ levelHalfLifeS: 5, learn: false, scaleByCounts, calibration: new HostCalibration({ prior: TRUE }) });
			const samples: WorkerLoadSample[] = [];
			for (let s = 0; s < 30; s++) {
				samples.push(counted(T0 + s * 1000, explained(big), consumers));
				predictor.predict([{ workerId: 'w', now: T0 + s * 1000, samples: samples.slice(), streams: big, events: settled(big) }]);
			}
			// Every consumer closes: the worker counts none and its CPU falls to what the producer costs,
			// while the consumers' last profiles are still fresh.
			const producerOnly = big.filter((s) => s.entity === 'producer');
			samples.push(counted(T0 + 30_000, explained(producerOnly), 0));
			const [p] = predictor.predict([{ workerId: 'w', now: T0 + 30_000, samples, streams: big, events: settled(big) }]);
			return p!.horizons[15].total.cpuPct.mean - explained(producerOnly);
		};
		expect(Math.abs(forecast(true))).toBeLessThan(0.05);
		// Without the counts the drop reads as unexplained and is smoothed away: the forecast stays high.
		expect(forecast(false)).toBeGreaterThan(0.5 * (explained(big) - explained(big.filter((s) => s.entity === 'producer'))));
	});

	test('a consumer still ramping is priced up to what its producer’s settled consumers receive; one that left stops costing', () => {
		const coef = TRUE;
		const predictor = new AnchoredPredictor({ levelHalfLifeS: 0, learn: false, rampTimeConstantS: 3, rampShare: 1, calibration: new HostCalibration({ prior: coef }) });
		const audio = audioRoom('a', 2);
		const ramping = profile({ streamId: 'a-new', entity: 'consumer', kind: 'audio', transportId: 't-new', producerId: 'a', bitrateBps: 4000, packetRate: 5, ts: T0 });
		const leaving = audio[2]!;
		const streams = [...audio, ramping];
		const events: WorkerSnapshot['events'] = [...settled(audio), { ts: T0 - 1000, type: 'join', streamId: 'a-new', entity: 'consumer' }, { ts: T0 + 1, type: 'leave', streamId: leaving.streamId, entity: 'consumer' }];
		const [p] = predictor.predict([{ workerId: 'w', now: T0 + 1, samples: [sample(T0, 10, 4)], streams, events }]);
		// Producer sends 50 packets/s and 40 kbps: the new consumer closes (1 − e^(−h/3)) of the gap.
		for (const h of HORIZONS_S) {
			const g = 1 - Math.exp(-h / 3);
			const rampGain = coef.theta.audio_out_kpps * ((g * 45) / 1000) + coef.theta.srtp_mbps * ((g * 36_000) / 1e6);
			const leaveLoss = coef.theta.audio_out_kpps * (50 / 1000) + coef.theta.srtp_mbps * (40_000 / 1e6);
			expect(p!.horizons[h].total.cpuPct.mean).toBeCloseTo(10 + rampGain - leaveLoss, 10);
		}
		expect(p!.streams.find((s) => s.streamId === leaving.streamId)!.cost[5].cpuPct).toBe(0);
		expect(attributionResidual(p!)).toBeLessThan(1e-12);
	});

	test('its p95 is the 95th percentile of its own matured errors once enough have matured', () => {
		const predictor = new AnchoredPredictor({ levelHalfLifeS: 0, learn: false, calibration: new HostCalibration({ prior: TRUE }) });
		const streams = audioRoom('a', 3);
		const random = rng(2);
		const samples: WorkerLoadSample[] = [];
		let p;
		for (let s = 0; s < 200; s++) {
			samples.push(sample(T0 + s * 1000, 10 + random() * 4, 4));
			[p] = predictor.predict([{ workerId: 'w', now: T0 + s * 1000, samples: samples.slice(-30), streams, events: settled(streams) }]);
		}
		// Uniform level on [10, 14]: error of last value is the difference of two uniforms; its 95th percentile ≈ 4·(1 − √0.1) ≈ 2.74.
		const band = p!.horizons[15].total.cpuPct.p95 - p!.horizons[15].total.cpuPct.mean;
		expect(band).toBeGreaterThan(2.2);
		expect(band).toBeLessThan(3.3);
	});
});
