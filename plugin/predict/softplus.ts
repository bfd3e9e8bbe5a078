/**
 * softplus(v) = log(1 + eᵛ) without Math.exp and Math.log1p: the stream net needs 24 of
 * them per stream (24,000 for a 1,000-stream prediction), and V8's fdlibm calls cost
 * ~10 ns each, more than the whole matrix work. Polynomials after range reduction give
 * ~1e-14 relative error, far below the float32 rounding every caller applies to the result.
 *
 *   softplus(v) = max(v, 0) + log1p(u),  u = e^(−|v|) ∈ (0, 1]
 *   e^(−a) = 2^(−n) · e^(−r),  n = round(a / ln 2), |r| ≤ ln2/2   (Taylor, degree 11)
 *   log1p(u) = 2·atanh(s), s = u / (2 + u)              for u ≤ √2 − 1
 *            = ln 2 + 2·atanh(s), s = (u − 1) / (u + 3)   otherwise   (|s| ≤ 0.172, 8 odd terms)
 */

/** Above this softplus(v) is v in float32 (the historical cut-off of the model code). */
const LINEAR_ABOVE = 20;
/** Below this log1p(eᵛ) is eᵛ to double precision; Math.exp handles that rare tail. */
const EXP_BELOW = -36;
const LN2 = Math.LN2;
const LOG2E = Math.LOG2E;
const SQRT2_MINUS_1 = Math.SQRT2 - 1;
/** 2^(−n) for the n that |v| ≤ 36 can reach. */
const POW2_NEG = Float64Array.from({ length: 54 }, (_, n) => 2 ** -n);

/** e^(−r) for |r| ≤ ln2/2, Horner form of the Taylor series to degree 11. */
function expNegSmall(r: number): number {
	const x = -r;
	return (
		1 +
		x *
			(1 +
				x *
					(1 / 2 +
						x *
							(1 / 6 +
								x *
									(1 / 24 +
										x * (1 / 120 + x * (1 / 720 + x * (1 / 5040 + x * (1 / 40320 + x * (1 / 362880 + x * (1 / 3628800 + x / 39916800))))))))))
	);
}

/** 2·atanh(s) = 2(s + s³/3 + … + s¹⁵/15) for |s| ≤ 0.172. */
function twoAtanh(s: number): number {
	const q = s * s;
	return 2 * s * (1 + q * (1 / 3 + q * (1 / 5 + q * (1 / 7 + q * (1 / 9 + q * (1 / 11 + q * (1 / 13 + q / 15)))))));
}

export function softplus(v: number): number {
	if (v > LINEAR_ABOVE) return v;
	// NaN fails both comparisons and goes to Math.exp, which keeps it NaN.
	if (!(v >= EXP_BELOW)) return Math.log1p(Math.exp(v));
	const a = v < 0 ? -v : v;
	const n = Math.round(a * LOG2E);
	const u = POW2_NEG[n]! * expNegSmall(a - n * LN2);
	const log1pU = u <= SQRT2_MINUS_1 ? twoAtanh(u / (2 + u)) : LN2 + twoAtanh((u - 1) / (u + 3));
	return (v > 0 ? v : 0) + log1pU;
}

export function softplusInPlace(values: Float32Array): void {
	for (let i = 0; i < values.length; i++) values[i] = softplus(values[i]!);
}
