/**
 * Per-host cost calibration: worker CPU (% of one core) as a non-negative linear function
 * of what the worker moves, fitted online from its own measured CPU.
 *
 *     cpu ≈ idle + Σ_k θ_k · X_k,   X = Σ over the worker's streams of x(stream) (+ transports)
 *
 * Terms follow the worker's physics: RTP packets received and sent per second by kind
 * (each is parsed, routed, and for every consumer cloned and re-sent), bytes through
 * SRTP/DTLS (encryption is per byte), data-channel messages, and transports (ICE/DTLS
 * housekeeping). Coefficients are non-negative (a stream never makes a worker cheaper)
 * and are solved by non-negative least squares on exponentially forgotten sufficient
 * statistics (recent minutes weigh most), pulled towards a prior by a ridge term worth
 * `priorWeight` samples, so a fresh host starts from the prior and converges to its own
 * costs. Attribution stays exact: a stream's cost is θ·x(stream), and the worker's total
 * is the base plus the sum of its streams' costs.
 *
 * Pure: time comes from the samples.
 */
import type { StreamProfile } from '../profile/schema';

export const COST_TERMS = ['audio_in_kpps', 'video_in_kpps', 'audio_out_kpps', 'video_out_kpps', 'data_kmsgps', 'srtp_mbps', 'transports_10'] as const;
export type CostTerm = (typeof COST_TERMS)[number];
export const COST_TERM_COUNT = COST_TERMS.length;
/** Index of the transport term: a worker term, never a stream's. */
export const TRANSPORT_TERM = COST_TERMS.indexOf('transports_10');

/** Coefficients: CPU pp per unit of each term, and the idle level. */
export interface CostCoefficients {
	idlePct: number;
	theta: Record<CostTerm, number>;
}

/**
 * Starting point before a host has shown its own costs: the order of magnitude of a
 * mediasoup worker on a current x86 core (a few µs per packet received, more per packet
 * sent once SRTP-protected, ~0.1 % of a core per Mbit/s encrypted). The online fit
 * replaces it within minutes of varied load; an offline fit (`fitCostCoefficients`) can
 * replace it up front.
 */
export const DEFAULT_COSTS: CostCoefficients = {
	idlePct: 0.2,
	theta: { audio_in_kpps: 0.4, video_in_kpps: 0.4, audio_out_kpps: 1.2, video_out_kpps: 1.2, data_kmsgps: 1, srtp_mbps: 0.1, transports_10: 0.1 },
};

/** Writes one stream's terms into out[offset..offset+COST_TERM_COUNT) (transports: 0). */
export function writeStreamTerms(s: StreamProfile, out: Float64Array | number[], offset = 0, packetRate = s.flow.packetRate, bitrateBps = s.flow.bitrateBps): void {
	for (let k = 0; k < COST_TERM_COUNT; k++) out[offset + k] = 0;
	const kpps = finite(packetRate) / 1000;
	const mbps = finite(bitrateBps) / 1e6;
	const incoming = s.entity === 'producer' || s.entity === 'dataProducer';
	if (s.kind === 'audio') out[offset + (incoming ? 0 : 2)] = kpps;
	else if (s.kind === 'video') out[offset + (incoming ? 1 : 3)] = kpps;
	else out[offset + 4] = finite(s.data?.messagesPerS ?? 0) / 1000;
	out[offset + 5] = mbps;
}

const finite = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0);

/** Σ of the streams' terms plus the transport term. */
export function workerTerms(streams: readonly StreamProfile[], transports: number): Float64Array {
	const X = new Float64Array(COST_TERM_COUNT);
	const x = new Float64Array(COST_TERM_COUNT);
	for (const s of streams) {
		writeStreamTerms(s, x);
		for (let k = 0; k < COST_TERM_COUNT; k++) X[k]! += x[k]!;
	}
	X[TRANSPORT_TERM] = transports / 10;
	return X;
}

/** θ·x with θ as [idle, θ…] (`HostCalibration.vector()`); the idle level is not included. */
export function dotVector(v: ArrayLike<number>, x: ArrayLike<number>, offset = 0): number {
	let s = 0;
	for (let k = 0; k < COST_TERM_COUNT; k++) s += v[k + 1]! * x[offset + k]!;
	return s;
}

export function dot(theta: Record<CostTerm, number>, x: ArrayLike<number>, offset = 0): number {
	let s = 0;
	for (let k = 0; k < COST_TERM_COUNT; k++) s += theta[COST_TERMS[k]!] * x[offset + k]!;
	return s;
}

export interface CalibrationOptions {
	/** Where the fit starts and what the ridge pulls towards. */
	prior?: CostCoefficients;
	/** Ridge strength in samples' worth of evidence for the prior. Default 30. */
	priorWeight?: number;
	/** Half-life of a sample's weight, seconds. Default 300 (the last few minutes decide). */
	halfLifeS?: number;
	/** The solution is refreshed after this many new samples. Default 5. */
	refitEvery?: number;
}

const P = COST_TERM_COUNT + 1;

/**
 * Solves min ‖Aθ − b‖ in normal-equation form (½θᵀGθ − cᵀθ, G positive definite) under
 * θ ≥ 0 by cyclic coordinate descent, which converges to the exact constrained optimum
 * of this convex problem; `start` warm-starts it.
 */
export function nnlsNormal(G: Float64Array, c: Float64Array, n: number, start?: Float64Array, sweeps = 200): Float64Array {
	const theta = start ? Float64Array.from(start) : new Float64Array(n);
	for (let sweep = 0; sweep < sweeps; sweep++) {
		let change = 0;
		for (let i = 0; i < n; i++) {
			const gii = G[i * n + i]!;
			if (!(gii > 0)) continue;
			let r = c[i]!;
			for (let j = 0; j < n; j++) if (j !== i) r -= G[i * n + j]! * theta[j]!;
			const next = Math.max(0, r / gii);
			change = Math.max(change, Math.abs(next - theta[i]!));
			theta[i] = next;
		}
		if (change < 1e-10) break;
	}
	return theta;
}

/**
 * Online NNLS of worker CPU on the cost terms for one host (all its workers share the
 * physics, so they share the fit). Feed one row per worker load sample.
 */
export class HostCalibration {
	private readonly prior: CostCoefficients;
	private readonly priorWeight: number;
	private readonly halfLifeS: number;
	private readonly refitEvery: number;
	/** Forgotten sufficient statistics over [1, X…]: G = Σ w·zzᵀ, c = Σ w·z·y. */
	private readonly G = new Float64Array(P * P);
	private readonly c = new Float64Array(P);
	private weight = 0;
	private lastTs = Number.NaN;
	private sinceFit = 0;
	private solution: Float64Array;
	/** Samples fed so far. */
	samples = 0;

	constructor(options: CalibrationOptions = {}) {
		this.prior = options.prior ?? DEFAULT_COSTS;
		this.priorWeight = options.priorWeight ?? 30;
		this.halfLifeS = options.halfLifeS ?? 300;
		this.refitEvery = options.refitEvery ?? 5;
		if (!(this.priorWeight > 0)) throw new RangeError(`priorWeight must be > 0, got ${this.priorWeight}`);
		if (!(this.halfLifeS > 0)) throw new RangeError(`halfLifeS must be > 0, got ${this.halfLifeS}`);
		this.solution = priorVector(this.prior);
	}

	/** One measured CPU value and the worker's terms at that moment. */
	add(ts: number, X: ArrayLike<number>, cpuPct: number): void {
		if (!Number.isFinite(cpuPct)) return;
		for (let k = 0; k < COST_TERM_COUNT; k++) if (!Number.isFinite(X[k]!)) return;
		if (Number.isFinite(this.lastTs) && ts > this.lastTs) {
			const decay = Math.pow(0.5, (ts - this.lastTs) / 1000 / this.halfLifeS);
			for (let i = 0; i < P * P; i++) this.G[i]! *= decay;
			for (let i = 0; i < P; i++) this.c[i]! *= decay;
			this.weight *= decay;
		}
		if (!(ts <= this.lastTs)) this.lastTs = ts;
		const z = new Float64Array(P);
		z[0] = 1;
		for (let k = 0; k < COST_TERM_COUNT; k++) z[k + 1] = X[k]!;
		for (let i = 0; i < P; i++) {
			this.c[i]! += z[i]! * cpuPct;
			for (let j = 0; j < P; j++) this.G[i * P + j]! += z[i]! * z[j]!;
		}
		this.weight++;
		this.samples++;
		if (++this.sinceFit >= this.refitEvery) this.refit();
	}

	/** The current coefficients (the prior until samples arrive). */
	coefficients(): CostCoefficients {
		return vectorToCoefficients(this.solution);
	}

	/** The same as [idle, θ in COST_TERMS order]; read-only, replaced (not mutated) on refit. */
	vector(): Readonly<Float64Array> {
		return this.solution;
	}

	refit(): void {
		this.sinceFit = 0;
		const prior = priorVector(this.prior);
		// The ridge scales each term by its typical magnitude in the data (its second moment),
		// so that the prior weighs alike on terms measured in different units.
		const G = Float64Array.from(this.G);
		const c = Float64Array.from(this.c);
		for (let i = 0; i < P; i++) {
			const scale = this.weight > 0 ? Math.max(this.G[i * P + i]! / this.weight, 1e-6) : 1;
			const r = this.priorWeight * scale;
			G[i * P + i]! += r;
			c[i]! += r * prior[i]!;
		}
		this.solution = nnlsNormal(G, c, P, this.solution);
	}
}

function priorVector(p: CostCoefficients): Float64Array {
	const v = new Float64Array(P);
	v[0] = p.idlePct;
	COST_TERMS.forEach((t, k) => (v[k + 1] = p.theta[t]));
	return v;
}

function vectorToCoefficients(v: Float64Array): CostCoefficients {
	const theta = {} as Record<CostTerm, number>;
	COST_TERMS.forEach((t, k) => (theta[t] = v[k + 1]!));
	return { idlePct: v[0]!, theta };
}

/** Offline fit of the same model on rows (e.g. the training sessions), for a prior. */
export function fitCostCoefficients(rows: ReadonlyArray<{ X: ArrayLike<number>; cpuPct: number }>, options: Omit<CalibrationOptions, 'halfLifeS' | 'refitEvery'> = {}): CostCoefficients {
	// A half-life far beyond any recording: every row weighs alike.
	const cal = new HostCalibration({ ...options, halfLifeS: 1e12, refitEvery: Number.POSITIVE_INFINITY });
	let ts = 0;
	for (const r of rows) cal.add(ts++, r.X, r.cpuPct);
	cal.refit();
	return cal.coefficients();
}
