import type { MediaClass } from '../snapshot';
import type { Rng } from '../../util/rng';

/**
 * The simulator's hidden truth about what streams send and cost. Figures come from
 * measurements of mediasoup 3.19.3 on this machine: ingress ≈ 2.5 µs/packet, egress
 * ≈ 6.5 µs/packet plain RTP and ≈ 13 µs/packet SRTP, ~0.1% of a core per receive
 * transport, 0.5% idle per worker, saturation near 80k SRTP egress pkt/s (≈ 100% of a
 * core) after which ~20% of ingress is silently dropped. Repeated measurements differed
 * by ±20–30%: that spread is modelled as a fixed per-worker factor (σ 0.1), a fixed
 * per-stream factor (σ 0.15) and per-second jitter, none of which a policy can see.
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
	workerFactorSigma: 0.1,
	streamFactorSigma: 0.15,
	/** Per-second multiplicative jitter of a worker's total CPU. */
	workerJitterSigma: 0.03,
	/** Per-second jitter of a stream's packet rate. */
	rateJitterSigma: 0.07,
	/** Nominal simulcast layer rates of 720p VP8 (≈ 2.5 Mbit/s, ≈ 250 pkt/s in all). */
	videoLayers: [30, 60, 150] as readonly number[],
	audioRate: 50,
	screenIdleRate: 8,
	screenBurstRate: [300, 600] as readonly number[],
	screenBurstS: [2, 5] as readonly number[],
	screenBurstsPerS: 1 / 15,
	rampS: [5, 10] as readonly number[],
});

/** µs per second of packets → percent of one core. */
export function pct(packetRate: number, us: number): number {
	return packetRate * us * 1e-4;
}

/** Hidden per-producer parameters drawn at creation. */
export interface ProducerTruth {
	mediaClass: MediaClass;
	startT: number;
	rampS: number;
	/** Content motion: scales the top layer most (static slides vs. a waving speaker). */
	motion: number;
	costFactor: number;
	burstUntil: number;
	burstRate: number;
}

export function drawProducerTruth(mediaClass: MediaClass, startT: number, rng: Rng): ProducerTruth {
	return {
		mediaClass,
		startT,
		rampS: rng.uniform(TRUTH.rampS[0]!, TRUTH.rampS[1]!),
		motion: Math.min(1.8, Math.max(0.5, rng.lognormal(0.25))),
		costFactor: rng.lognormal(TRUTH.streamFactorSigma),
		// A share starts with a burst: the first full frame of the screen.
		burstUntil: mediaClass === 'screen' ? startT + rng.uniform(TRUTH.screenBurstS[0]!, TRUTH.screenBurstS[1]!) : 0,
		burstRate: rng.uniform(TRUTH.screenBurstRate[0]!, TRUTH.screenBurstRate[1]!),
	};
}

/**
 * True packet rate per spatial layer at `t` (0 = not active yet). Video ramps up over
 * 5–10 s, switching layers on progressively; screen shares idle and burst.
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
			const progress = Math.min(1, (t - p.startT) / p.rampS);
			const bitrate = 0.3 + 0.7 * progress;
			TRUTH.videoLayers.forEach((rate, layer) => {
				const on = progress >= layer * 0.3;
				const motion = layer === TRUTH.videoLayers.length - 1 ? p.motion : Math.sqrt(p.motion);
				out.push(on ? rate * motion * bitrate * jitter : 0);
			});
			break;
		}
	}
	return out;
}
