import type { MediaClass } from '../snapshot';
import type { Rng } from '../../util/rng';

/**
 * The simulator's hidden truth about what streams send and cost. The per-packet means come
 * from measurements of mediasoup 3.19.3 on this machine (ingress ≈ 2.5 µs/packet, SRTP
 * egress ≈ 13 µs/packet, plain RTP ≈ 6.5, ~0.1% of a core per receive transport, 0.5%
 * idle per worker, saturation near 100% of a core after which ~20% of ingress is
 * silently dropped). Repeated measurements differed by ±20–30%, and the worker this runs
 * on is not the one measured: each scenario draws its own machine around those means
 * (drawMachine, σ 0.2 per coefficient), each worker a fixed factor (σ 0.1), each stream
 * one (σ 0.15), plus per-second jitter. No policy and no predictor sees any of it: the
 * policies' cost model holds the measured means only, and the live predictor learns the
 * rest from load samples, as it does in production.
 */
export const TRUTH = Object.freeze({
	ingressUs: 2.5,
	srtpEgressUs: 13,
	pipeEgressUs: 6.5,
	pipeIngressUs: 2.5,
	transportPct: 0.1,
	workerBasePct: 0.5,
	saturationPct: 100,
	/** Share of ingress a saturated worker drops. */
	saturatedIngressLoss: 0.2,
	/** Per-scenario spread of each per-packet coefficient around its measured mean. */
	machineSigma: 0.2,
	workerFactorSigma: 0.1,
	streamFactorSigma: 0.15,
	/** Per-second multiplicative jitter of a worker's total CPU. */
	workerJitterSigma: 0.03,
	/** Per-second jitter of a stream's packet rate. */
	rateJitterSigma: 0.07,
	/** Simulcast layer rates of a camera by recording (pkt/s at full bitrate); unknown recordings use `camera`. */
	videoLayers: {
		camera: [30, 60, 150],
		'talking-head': [26, 52, 125],
		'scene-cuts': [34, 78, 205],
	} as Readonly<Record<string, readonly number[]>>,
	audioRate: 50,
	screenIdleRate: 8,
	screenBurstRate: [300, 600] as readonly number[],
	screenBurstS: [2, 5] as readonly number[],
	screenBurstsPerS: 1 / 15,
	/** Time constant of a camera's bitrate ramp (bandwidth estimation), s. */
	rampTauS: [2, 6] as readonly number[],
	/** When simulcast layers 1 and 2 switch on after the producer starts, s (drawn per producer). */
	layerOnS: [
		[0.5, 4],
		[3, 12],
	] as ReadonlyArray<readonly [number, number]>,
	/** Packets of one keyframe per spatial layer (a 720p VP8 keyframe is ~40 packets); a move sends one to every moved receiver. */
	keyframePackets: [6, 15, 40] as readonly number[],
	/** Media a receiver misses when its consumer moves to another worker (new transport, ICE/DTLS, keyframe), s. */
	consumerMoveDisruptionS: 1,
	/** Media every receiver of a producer misses when the producer migrates (the sender re-publishes), s. */
	producerMoveDisruptionS: 2,
});

/** The machine a scenario runs on: per-packet coefficients drawn around the measured means. */
export interface Machine {
	ingressUs: number;
	srtpEgressUs: number;
	pipeEgressUs: number;
	pipeIngressUs: number;
	transportPct: number;
}

export function drawMachine(rng: Rng): Machine {
	const f = (): number => rng.lognormal(TRUTH.machineSigma);
	return { ingressUs: TRUTH.ingressUs * f(), srtpEgressUs: TRUTH.srtpEgressUs * f(), pipeEgressUs: TRUTH.pipeEgressUs * f(), pipeIngressUs: TRUTH.pipeIngressUs * f(), transportPct: TRUTH.transportPct * f() };
}

/** µs per second of packets → percent of one core. */
export function pct(packetRate: number, us: number): number {
	return packetRate * us * 1e-4;
}

/** Hidden per-producer parameters drawn at creation. */
export interface ProducerTruth {
	mediaClass: MediaClass;
	startT: number;
	/** Full-bitrate layer rates (video), before motion. */
	layerRates: readonly number[];
	rampTauS: number;
	/** When each spatial layer switches on, s after start (layer 0 at once). */
	layerOnS: number[];
	/** Content motion: scales the top layer most (static slides vs. a waving speaker). */
	motion: number;
	costFactor: number;
	burstUntil: number;
	burstRate: number;
}

/** `layers`: simulcast layers the sender offers (video; 1–3). `recording`: what it sends (selects its layer rates). */
export function drawProducerTruth(mediaClass: MediaClass, startT: number, rng: Rng, recording?: string, layers = 3): ProducerTruth {
	const rates = TRUTH.videoLayers[recording ?? 'camera'] ?? TRUTH.videoLayers.camera!;
	return {
		mediaClass,
		startT,
		layerRates: rates.slice(0, Math.max(1, Math.min(rates.length, layers))),
		rampTauS: rng.uniform(TRUTH.rampTauS[0]!, TRUTH.rampTauS[1]!),
		layerOnS: [0, ...TRUTH.layerOnS.map(([a, b]) => rng.uniform(a, b))],
		motion: Math.min(1.8, Math.max(0.5, rng.lognormal(0.25))),
		costFactor: rng.lognormal(TRUTH.streamFactorSigma),
		// A share starts with a burst: the first full frame of the screen.
		burstUntil: mediaClass === 'screen' ? startT + rng.uniform(TRUTH.screenBurstS[0]!, TRUTH.screenBurstS[1]!) : 0,
		burstRate: rng.uniform(TRUTH.screenBurstRate[0]!, TRUTH.screenBurstRate[1]!),
	};
}

/**
 * True packet rate per spatial layer at `t` (0 = not active yet). A camera's bitrate
 * approaches its full rate exponentially while its layers switch on one after the other;
 * screen shares idle and burst.
 */
export function trueLayerRates(p: ProducerTruth, t: number, rng: Rng, out: number[]): number[] {
	const jitter = Math.max(0.5, 1 + rng.normal(0, TRUTH.rateJitterSigma));
	out.length = 0;
	switch (p.mediaClass) {
		case 'audio':
			out.push(TRUTH.audioRate * jitter);
			break;
		case 'screen': {
			if (t >= p.burstUntil && rng.chance(TRUTH.screenBurstsPerS)) {
				p.burstUntil = t + rng.uniform(TRUTH.screenBurstS[0]!, TRUTH.screenBurstS[1]!);
				p.burstRate = rng.uniform(TRUTH.screenBurstRate[0]!, TRUTH.screenBurstRate[1]!);
			}
			out.push((t < p.burstUntil ? p.burstRate : TRUTH.screenIdleRate) * jitter);
			break;
		}
		case 'video': {
			const age = t - p.startT;
			const bitrate = 1 - 0.75 * Math.exp(-Math.max(0, age) / p.rampTauS);
			const top = p.layerRates.length - 1;
			p.layerRates.forEach((rate, layer) => {
				const on = age >= (p.layerOnS[layer] ?? 0);
				const motion = layer === top ? p.motion : Math.sqrt(p.motion);
				out.push(on ? rate * motion * bitrate * jitter : 0);
			});
			break;
		}
	}
	return out;
}
