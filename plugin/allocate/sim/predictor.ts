import { TYPICAL_LAYER_RATES, temporalShare } from '../estimate';
import type { ConsumerView, CostModel, LoadForecast, ProducerView } from '../snapshot';
import { packetCostPct } from '../snapshot';

/**
 * The specification's predictor, as the simulator runs it in place of the trained model:
 * it sees what a live deployment sees (observed, lagged per-stream rates and layers,
 * producer ages, topology, measured worker CPU) and forecasts each worker's CPU at a few
 * horizons. It expects young video producers to finish their ramp-up, tracks screen-share
 * burstiness, and calibrates each worker's scale and residual against measured CPU.
 */
export interface SpecPredictorOptions {
	horizonsS: number[];
	/** Typical video ramp-up the profiles show. */
	typicalRampS: number;
	/** EWMA weight of a new calibration sample. */
	calibrationAlpha: number;
	/** Screen-share mean/variance EWMA weight. */
	burstAlpha: number;
	/** Measured samples at or above this are clipped by saturation and not used to calibrate. */
	saturatedPct: number;
}

export const SPEC_PREDICTOR_DEFAULTS: Readonly<SpecPredictorOptions> = Object.freeze({
	horizonsS: [5, 15, 30],
	typicalRampS: 7.5,
	calibrationAlpha: 0.1,
	burstAlpha: 0.15,
	saturatedPct: 95,
});

const Z95 = 1.645;

interface Calibration {
	scale: number;
	residualVar: number;
}

function rampShare(ageS: number, rampS: number): number {
	return Math.min(1, 0.3 + 0.7 * Math.max(0, ageS) / rampS);
}

export class SpecPredictor {
	private readonly options: SpecPredictorOptions;
	private readonly calibration = new Map<string, Calibration>();
	private readonly burst = new Map<string, { mean: number; variance: number }>();

	constructor(
		private readonly model: CostModel,
		overrides: Partial<SpecPredictorOptions> = {},
	) {
		this.options = { ...SPEC_PREDICTOR_DEFAULTS, ...overrides };
	}

	/**
	 * Calibrates against `measuredPct` (which was measured on this same topology), fills
	 * in each producer's expected layer rates, and returns the forecast per worker.
	 */
	update(workerIds: readonly string[], measuredPct: ReadonlyMap<string, number>, producers: ProducerView[], consumers: readonly ConsumerView[]): Map<string, LoadForecast[]> {
		const { horizonsS } = this.options;
		const H = horizonsS.length;
		const estimate = new Map<string, Float64Array>();
		const burstVar = new Map<string, number>();
		for (const id of workerIds) estimate.set(id, new Float64Array(H + 1).fill(this.model.workerBasePct));
		const byId = new Map<string, { producer: ProducerView; layerAt: Float64Array[]; sd: number }>();
		const live = new Set<string>();

		for (const p of producers) {
			live.add(p.id);
			const layerAt = this.expectLayers(p);
			const total = layerAt.map((layers) => layers.reduce((a, b) => a + b, 0));
			p.expectedPacketRate = total[H]!;
			p.layers.forEach((layer, i) => {
				if (!layer.active) layer.packetRate = layerAt[H]![i]!;
			});
			const sd = p.mediaClass === 'screen' ? Math.sqrt(this.burst.get(p.id)?.variance ?? 0) : 0;
			byId.set(p.id, { producer: p, layerAt, sd });
			const est = estimate.get(p.workerId);
			if (est) for (let h = 0; h <= H; h++) est[h]! += packetCostPct(total[h]!, this.model.ingressUsPerPacket);
		}
		for (const id of this.burst.keys()) if (!live.has(id)) this.burst.delete(id);

		const pipes = new Map<string, Set<string>>();
		const transports = new Map<string, Set<string>>();
		const screenConsumers = new Map<string, number>();
		for (const c of consumers) {
			const entry = byId.get(c.producerId);
			const est = estimate.get(c.workerId);
			if (!entry || !est) continue;
			const { producer, layerAt } = entry;
			let peers = transports.get(c.workerId);
			if (!peers) transports.set(c.workerId, (peers = new Set()));
			peers.add(c.peerId);
			if (producer.workerId !== c.workerId) {
				let targets = pipes.get(producer.id);
				if (!targets) pipes.set(producer.id, (targets = new Set()));
				if (!targets.has(c.workerId)) {
					targets.add(c.workerId);
					const source = estimate.get(producer.workerId);
					for (let h = 0; h <= H; h++) {
						const rate = layerAt[h]!.reduce((a, b) => a + b, 0);
						est[h]! += packetCostPct(rate, this.model.pipeIngressUsPerPacket);
						if (source) source[h]! += packetCostPct(rate, this.model.pipeEgressUsPerPacket);
					}
				}
			}
			if (c.paused) continue;
			for (let h = 0; h <= H; h++) est[h]! += packetCostPct(this.consumerRate(producer, layerAt[h]!, c), this.model.egressUsPerPacket);
			if (entry.sd > 0) {
				const key = `${producer.id}\u0000${c.workerId}`;
				screenConsumers.set(key, (screenConsumers.get(key) ?? 0) + temporalShare(c.current.temporal));
			}
		}
		for (const [workerId, peers] of transports) {
			const est = estimate.get(workerId)!;
			for (let h = 0; h <= H; h++) est[h]! += peers.size * this.model.transportPct;
		}
		// Consumers of one share burst together: their variance adds up as one term per producer and worker.
		for (const [key, n] of screenConsumers) {
			const [producerId, workerId] = key.split('\u0000') as [string, string];
			const sdPct = packetCostPct(byId.get(producerId)!.sd * n, this.model.egressUsPerPacket);
			burstVar.set(workerId, (burstVar.get(workerId) ?? 0) + sdPct * sdPct);
		}

		const forecasts = new Map<string, LoadForecast[]>();
		for (const id of workerIds) {
			const est = estimate.get(id)!;
			const cal = this.calibrate(id, est[0]!, measuredPct.get(id));
			const sd = Math.sqrt(cal.residualVar + (burstVar.get(id) ?? 0));
			forecasts.set(
				id,
				horizonsS.map((horizonS, h) => {
					const meanPct = cal.scale * est[h + 1]!;
					return { horizonS, meanPct, p95Pct: meanPct + Z95 * sd };
				}),
			);
		}
		for (const p of producers) if (p.mediaClass === 'screen') this.trackBurst(p);
		return forecasts;
	}

	/** Expected per-layer rates now (index 0) and at each horizon. */
	private expectLayers(p: ProducerView): Float64Array[] {
		const { horizonsS, typicalRampS } = this.options;
		const ages = [p.ageS, ...horizonsS.map((h) => p.ageS + h)];
		if (p.mediaClass === 'screen') {
			const stats = this.burst.get(p.id);
			const mean = stats ? stats.mean : TYPICAL_LAYER_RATES.screen[0]!;
			return ages.map((_, h) => Float64Array.of(h === 0 ? p.packetRate : mean));
		}
		if (p.mediaClass === 'audio') return ages.map(() => Float64Array.of(p.packetRate));
		const typical = TYPICAL_LAYER_RATES.video;
		const nowShare = rampShare(p.ageS, typicalRampS);
		const full = p.layers.map((layer, i) => (layer.active ? layer.packetRate / nowShare : (typical[i] ?? 0)));
		return ages.map((age) => {
			const share = rampShare(age, typicalRampS);
			const progress = Math.min(1, Math.max(0, age) / typicalRampS);
			return Float64Array.from(full, (rate, i) => (progress >= i * 0.3 || p.layers[i]!.active ? rate * share : 0));
		});
	}

	private consumerRate(producer: ProducerView, layers: Float64Array, c: ConsumerView): number {
		if (producer.mediaClass === 'audio') return layers[0]!;
		let spatial = Math.min(c.current.spatial, layers.length - 1);
		while (spatial > 0 && layers[spatial] === 0) spatial--;
		return layers[spatial]! * temporalShare(c.current.temporal);
	}

	private calibrate(workerId: string, estimatePct: number, measured: number | undefined): Calibration {
		let cal = this.calibration.get(workerId);
		if (!cal) this.calibration.set(workerId, (cal = { scale: 1, residualVar: 4 }));
		if (measured === undefined || measured >= this.options.saturatedPct || estimatePct < 5) return cal;
		const a = this.options.calibrationAlpha;
		const residual = measured - cal.scale * estimatePct;
		cal.residualVar = (1 - a) * cal.residualVar + a * residual * residual;
		cal.scale = (1 - a) * cal.scale + a * (measured / estimatePct);
		return cal;
	}

	private trackBurst(p: ProducerView): void {
		const a = this.options.burstAlpha;
		const stats = this.burst.get(p.id);
		if (!stats) {
			this.burst.set(p.id, { mean: p.packetRate, variance: (TYPICAL_LAYER_RATES.screen[0]! / 2) ** 2 });
			return;
		}
		const diff = p.packetRate - stats.mean;
		stats.mean += a * diff;
		stats.variance = (1 - a) * (stats.variance + a * diff * diff);
	}
}
