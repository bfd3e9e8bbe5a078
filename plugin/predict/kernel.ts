/**
 * A stack of Dense layers (ReLU hidden, linear output) compiled to a WebAssembly SIMD
 * function, for inference on the pure-JS cpu backend. The nets are tiny (30→16→24 per
 * stream), so tfjs' per-op overhead dominates its matMul and a scalar JS loop is bound
 * by one multiply-add per instruction; two lanes per instruction, all of a layer's
 * outputs accumulated in registers while the inputs stream past, make it several times
 * cheaper.
 *
 * The module is emitted byte by byte here (no toolchain, no dependency): one function
 * `run(in, out, rows)` that reads `rows` input rows of `inDim` f32 at `in` and writes
 * `rows` rows of the padded output width (f32) at `out`. Weights live in linear memory
 * at fixed addresses, written once after instantiation; activations of hidden layers go
 * through a one-row scratch area so each input value is loaded as a splat. Loops stay
 * loops: the fully unrolled version was twice as slow, its machine code too large for
 * the CPU's decoded-instruction cache.
 *
 * Arithmetic is f64x2, not f32x4: float32 weights and inputs, float64 products and sums
 * in input order, activations rounded to float32 after each layer. That is exactly what
 * the plain-JS loop computes (JS numbers are doubles, its buffers Float32Arrays), so the
 * two paths agree bit for bit; float32 accumulation was twice as fast but moved worker
 * totals with cancelling terms by up to 4e-5 relative.
 */

/** One Dense layer, weights row-major [inDim][outDim] as tfjs stores a kernel. */
export interface DenseWeights {
	kernel: Float32Array;
	bias: Float32Array;
	inDim: number;
	outDim: number;
	relu: boolean;
}

const PAGE_BYTES = 65536;
/** f64 lanes per v128. */
const LANES = 2;
const padded = (n: number): number => Math.ceil(n / LANES) * LANES;
const align16 = (n: number): number => Math.ceil(n / 16) * 16;

// Opcodes (WebAssembly core 2.0 + fixed-width SIMD).
const OP = {
	block: 0x02,
	loop: 0x03,
	br_if: 0x0d,
	end: 0x0b,
	localGet: 0x20,
	localSet: 0x21,
	localTee: 0x22,
	i32Const: 0x41,
	i32Eqz: 0x45,
	i32Ne: 0x47,
	i32Add: 0x6a,
	i32Sub: 0x6b,
	simd: 0xfd,
} as const;
const SIMD = {
	v128Load: 0x00,
	v128Load32Splat: 0x09,
	v128Load64Splat: 0x0a,
	v128Store: 0x0b,
	v128Const: 0x0c,
	v128Store64Lane: 0x5b,
	f32x4DemoteF64x2Zero: 0x5e,
	f64x2PromoteLowF32x4: 0x5f,
	v128Bitselect: 0x52,
	f64x2Gt: 0x4a,
	f64x2Le: 0x4b,
	f64x2Nearest: 0x94,
	i64x2ExtendLowI32x4S: 0xc7,
	i64x2Shl: 0xcb,
	i64x2Sub: 0xd1,
	f64x2Abs: 0xec,
	f64x2Neg: 0xed,
	f64x2Add: 0xf0,
	f64x2Sub: 0xf1,
	f64x2Mul: 0xf2,
	f64x2Div: 0xf3,
	f64x2Pmin: 0xf6,
	/** pmax(a, b) = a < b ? b : a: with b = 0 exactly JS's `s < 0 ? 0 : s` (NaN and −0 pass through). */
	f64x2Pmax: 0xf7,
	i32x4TruncSatF64x2SZero: 0xfc,
} as const;
const V128 = 0x7b;
const EMPTY_BLOCK = 0x40;
const I32 = 0x7f;

function uleb(n: number): number[] {
	const out: number[] = [];
	do {
		let byte = n & 0x7f;
		n >>>= 7;
		if (n !== 0) byte |= 0x80;
		out.push(byte);
	} while (n !== 0);
	return out;
}

function sleb(n: number): number[] {
	const out: number[] = [];
	for (;;) {
		const byte = n & 0x7f;
		n >>= 7;
		if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
			out.push(byte);
			return out;
		}
		out.push(byte | 0x80);
	}
}

const EXPORT_FUNC = 0x00;
const EXPORT_MEMORY = 0x02;
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const simd = (op: number, ...immediates: number[]): number[] => [OP.simd, ...uleb(op), ...immediates];
/** memarg: alignment hint 0 (any alignment is valid; x64 uses unaligned moves anyway) and a static offset. */
const memarg = (offset: number): number[] => [0, ...uleb(offset)];
const localGet = (i: number): number[] => [OP.localGet, ...uleb(i)];
const localSet = (i: number): number[] => [OP.localSet, ...uleb(i)];
const localTee = (i: number): number[] => [OP.localTee, ...uleb(i)];
/** v128.const of two equal f64 lanes. */
function f64x2Const(value: number): number[] {
	const bytes = Buffer.alloc(16);
	bytes.writeDoubleLE(value, 0);
	bytes.writeDoubleLE(value, 8);
	return simd(SIMD.v128Const, ...bytes);
}
/** v128.const of two equal i64 lanes. */
function i64x2Const(value: bigint): number[] {
	const bytes = Buffer.alloc(16);
	bytes.writeBigInt64LE(value, 0);
	bytes.writeBigInt64LE(value, 8);
	return simd(SIMD.v128Const, ...bytes);
}

/** Locals one softplus evaluation needs besides its input. */
interface SoftplusLocals {
	a: number;
	n: number;
	x: number;
	u: number;
	mask: number;
	s: number;
	q: number;
	t: number;
}
const SOFTPLUS_LOCALS = 8;
/**
 * Softplus evaluations interleaved step by step: one evaluation is a chain of ~40
 * dependent operations (two Horner polynomials, a division), so emitting several side
 * by side lets the CPU overlap them instead of waiting on each chain in turn.
 */
const SOFTPLUS_INTERLEAVE = 4;

/**
 * Replaces the f64x2 in each local of `values` by its softplus: softplus.ts's formula,
 * branch-free (both log1p reductions are computed, one is selected). |v| is capped at
 * 700 so 2^(−n) stays a normal double; beyond ~104 the float32 result is 0 or v either way.
 */
function emitSoftplus(values: readonly number[], locals: readonly SoftplusLocals[]): number[] {
	const get = (i: number): number[] => [...localGet(i)];
	const set = (i: number): number[] => [...localSet(i)];
	const op = (o: number): number[] => simd(o);
	const code: number[] = [];
	const each = (step: (v: number, l: SoftplusLocals) => number[]): void => values.forEach((v, i) => code.push(...step(v, locals[i]!)));
	each((v, l) => [...get(v), ...op(SIMD.f64x2Abs), ...f64x2Const(700), ...op(SIMD.f64x2Pmin), ...set(l.a)]);
	each((_, l) => [...get(l.a), ...f64x2Const(Math.LOG2E), ...op(SIMD.f64x2Mul), ...op(SIMD.f64x2Nearest), ...set(l.n)]);
	// e^(−r), r = a − n·ln2: Horner on x = −r from 1/11! down to 1.
	each((_, l) => [...get(l.a), ...get(l.n), ...f64x2Const(Math.LN2), ...op(SIMD.f64x2Mul), ...op(SIMD.f64x2Sub), ...op(SIMD.f64x2Neg), ...set(l.x)]);
	let factorial = 39916800;
	each((_, l) => [...f64x2Const(1 / factorial), ...set(l.t)]);
	for (let k = 10; k >= 0; k--) {
		factorial /= k + 1;
		each((_, l) => [...get(l.t), ...get(l.x), ...op(SIMD.f64x2Mul), ...f64x2Const(1 / factorial), ...op(SIMD.f64x2Add), ...set(l.t)]);
	}
	// × 2^(−n), built from the exponent bits: (1023 − n) << 52.
	each((_, l) => [
		...get(l.t),
		...i64x2Const(1023n << 52n),
		...get(l.n),
		...op(SIMD.i32x4TruncSatF64x2SZero),
		...op(SIMD.i64x2ExtendLowI32x4S),
		OP.i32Const,
		52,
		...op(SIMD.i64x2Shl),
		...op(SIMD.i64x2Sub),
		...op(SIMD.f64x2Mul),
		...set(l.u),
	]);
	// log1p(u) = [ln 2 +] 2·atanh(s), s = u/(2+u) for u ≤ √2−1, else (u−1)/(u+3).
	each((_, l) => [...get(l.u), ...f64x2Const(Math.SQRT2 - 1), ...op(SIMD.f64x2Le), ...set(l.mask)]);
	each((_, l) => [
		...[...get(l.u), ...get(l.u), ...f64x2Const(1), ...op(SIMD.f64x2Sub), ...get(l.mask), ...op(SIMD.v128Bitselect)],
		...[...get(l.u), ...f64x2Const(2), ...op(SIMD.f64x2Add), ...get(l.u), ...f64x2Const(3), ...op(SIMD.f64x2Add), ...get(l.mask), ...op(SIMD.v128Bitselect)],
		...[...op(SIMD.f64x2Div), ...localTee(l.s), ...get(l.s), ...op(SIMD.f64x2Mul), ...set(l.q)],
	]);
	each((_, l) => [...f64x2Const(1 / 15), ...set(l.t)]);
	for (const d of [13, 11, 9, 7, 5, 3, 1]) each((_, l) => [...get(l.t), ...get(l.q), ...op(SIMD.f64x2Mul), ...f64x2Const(1 / d), ...op(SIMD.f64x2Add), ...set(l.t)]);
	each((_, l) => [
		...[...f64x2Const(2), ...get(l.s), ...op(SIMD.f64x2Mul), ...get(l.t), ...op(SIMD.f64x2Mul)],
		...[...f64x2Const(0), ...f64x2Const(Math.LN2), ...get(l.mask), ...op(SIMD.v128Bitselect), ...op(SIMD.f64x2Add), ...set(l.t)],
	]);
	// + max(v, 0) (pmax keeps NaN), and v itself above 20.
	each((v, l) => [...get(v), ...f64x2Const(0), ...op(SIMD.f64x2Pmax), ...get(l.t), ...op(SIMD.f64x2Add), ...set(l.t)]);
	each((v, l) => [...get(v), ...get(l.t), ...get(v), ...f64x2Const(20), ...op(SIMD.f64x2Gt), ...op(SIMD.v128Bitselect), ...set(v)]);
	return code;
}

/** Where everything sits in linear memory; all addresses are multiples of 16. */
interface Layout {
	weights: Array<{ kernel: number; bias: number; scratch: number; width: number }>;
	/** First free byte: rows start here. */
	end: number;
}

/** Weights, biases and hidden activations are f64 (8 bytes); rows in and out are f32. */
function layout(layers: readonly DenseWeights[]): Layout {
	let at = 0;
	const weights = layers.map((l) => {
		const width = padded(l.outDim);
		const kernel = at;
		at += align16(l.inDim * width * 8);
		const bias = at;
		at += align16(width * 8);
		const scratch = at;
		at += align16(width * 8);
		return { kernel, bias, scratch, width };
	});
	return { weights, end: at };
}

function emitRun(layers: readonly DenseWeights[], at: Layout, softplusOutput: boolean): number[] {
	const PARAM_IN = 0;
	const PARAM_OUT = 1;
	const PARAM_ROWS = 2;
	// i32 locals after the params: input and weight cursors, the input end, the output cursor.
	const X_PTR = 3;
	const W_PTR = 4;
	const X_END = 5;
	const OUT_PTR = 6;
	const I32_LOCALS = 4;
	const maxVectors = Math.max(...at.weights.map((w) => w.width / LANES));
	// v128 locals: accumulators, the splatted input, a zero vector, softplus temporaries.
	const ACC = 3 + I32_LOCALS;
	const X = ACC + maxVectors;
	const ZERO = X + 1;
	const softplusLocals = Array.from({ length: SOFTPLUS_INTERLEAVE }, (_, i): SoftplusLocals => {
		const first = ZERO + 1 + i * SOFTPLUS_LOCALS;
		return { a: first, n: first + 1, x: first + 2, u: first + 3, mask: first + 4, s: first + 5, q: first + 6, t: first + 7 };
	});
	const i32 = (n: number): number[] => [OP.i32Const, ...sleb(n)];
	/** local += n */
	const advance = (local: number, n: number): number[] => [...localGet(local), ...i32(n), OP.i32Add, ...localSet(local)];
	const inStride = layers[0]!.inDim * 4;
	const outStride = at.weights[at.weights.length - 1]!.width * 4;
	const code: number[] = [];
	code.push(OP.block, EMPTY_BLOCK, ...localGet(PARAM_ROWS), OP.i32Eqz, OP.br_if, 0);
	code.push(...simd(SIMD.v128Const, ...new Array<number>(16).fill(0)), ...localSet(ZERO));
	code.push(OP.loop, EMPTY_BLOCK);
	layers.forEach((l, li) => {
		const w = at.weights[li]!;
		const vectors = w.width / LANES;
		const last = li === layers.length - 1;
		for (let j = 0; j < vectors; j++) code.push(...i32(0), ...simd(SIMD.v128Load, ...memarg(w.bias + 16 * j)), ...localSet(ACC + j));
		// A loop over the inputs, not unrolled code: fully unrolled, a row's machine code
		// outgrew the CPU's decoded-instruction cache and the kernel ran at ~1 op per cycle.
		// Layer 0 reads the f32 row; later layers read the previous layer's f64 scratch.
		const xBytes = li === 0 ? 4 : 8;
		code.push(...(li === 0 ? localGet(PARAM_IN) : i32(at.weights[li - 1]!.scratch)), ...localTee(X_PTR), ...i32(l.inDim * xBytes), OP.i32Add, ...localSet(X_END));
		code.push(...i32(w.kernel), ...localSet(W_PTR));
		code.push(OP.loop, EMPTY_BLOCK, ...localGet(X_PTR));
		if (li === 0) code.push(...simd(SIMD.v128Load32Splat, ...memarg(0)), ...simd(SIMD.f64x2PromoteLowF32x4));
		else code.push(...simd(SIMD.v128Load64Splat, ...memarg(0)));
		code.push(...localSet(X));
		for (let j = 0; j < vectors; j++) {
			code.push(...localGet(ACC + j), ...localGet(X), ...localGet(W_PTR), ...simd(SIMD.v128Load, ...memarg(16 * j)));
			code.push(...simd(SIMD.f64x2Mul), ...simd(SIMD.f64x2Add), ...localSet(ACC + j));
		}
		code.push(...advance(W_PTR, w.width * 8), ...advance(X_PTR, xBytes));
		code.push(...localGet(X_PTR), ...localGet(X_END), OP.i32Ne, OP.br_if, 0, OP.end);
		if (last && softplusOutput) {
			// Through the (otherwise unused) scratch of the last layer, rounded to float32 as
			// when the layer's output is stored and read back; then softplus a group of
			// vectors per loop pass, for the same code-size reason.
			for (let j = 0; j < vectors; j++) {
				code.push(...i32(0), ...localGet(ACC + j), ...simd(SIMD.f32x4DemoteF64x2Zero), ...simd(SIMD.f64x2PromoteLowF32x4));
				code.push(...simd(SIMD.v128Store, ...memarg(w.scratch + 16 * j)));
			}
			const groups = Math.floor(vectors / SOFTPLUS_INTERLEAVE);
			const softplusGroup = (size: number): void => {
				const members = Array.from({ length: size }, (_, k) => ACC + k);
				members.forEach((v, k) => code.push(...localGet(X_PTR), ...simd(SIMD.v128Load, ...memarg(16 * k)), ...localSet(v)));
				code.push(...emitSoftplus(members, softplusLocals));
				members.forEach((v, k) => code.push(...localGet(OUT_PTR), ...localGet(v), ...simd(SIMD.f32x4DemoteF64x2Zero), ...simd(SIMD.v128Store64Lane, ...memarg(8 * k), 0)));
				code.push(...advance(X_PTR, 16 * size), ...advance(OUT_PTR, 8 * size));
			};
			code.push(...i32(w.scratch), ...localSet(X_PTR), ...localGet(PARAM_OUT), ...localSet(OUT_PTR));
			if (groups > 0) {
				code.push(...i32(w.scratch + groups * SOFTPLUS_INTERLEAVE * 16), ...localSet(X_END), OP.loop, EMPTY_BLOCK);
				softplusGroup(SOFTPLUS_INTERLEAVE);
				code.push(...localGet(X_PTR), ...localGet(X_END), OP.i32Ne, OP.br_if, 0, OP.end);
			}
			if (vectors % SOFTPLUS_INTERLEAVE > 0) softplusGroup(vectors % SOFTPLUS_INTERLEAVE);
			return;
		}
		for (let j = 0; j < vectors; j++) {
			code.push(...(last ? localGet(PARAM_OUT) : i32(0)), ...localGet(ACC + j));
			if (l.relu) code.push(...localGet(ZERO), ...simd(SIMD.f64x2Pmax));
			code.push(...simd(SIMD.f32x4DemoteF64x2Zero));
			// The output row gets the two float32 values; the scratch their float64 widening.
			if (last) code.push(...simd(SIMD.v128Store64Lane, ...memarg(8 * j), 0));
			else code.push(...simd(SIMD.f64x2PromoteLowF32x4), ...simd(SIMD.v128Store, ...memarg(w.scratch + 16 * j)));
		}
	});
	code.push(...advance(PARAM_IN, inStride), ...advance(PARAM_OUT, outStride));
	code.push(...localGet(PARAM_ROWS), ...i32(1), OP.i32Sub, ...localTee(PARAM_ROWS), OP.br_if, 0);
	code.push(OP.end, OP.end, OP.end);
	const locals = vec([
		[...uleb(I32_LOCALS), I32],
		[...uleb(maxVectors + 2 + SOFTPLUS_INTERLEAVE * SOFTPLUS_LOCALS), V128],
	]);
	const body = [...locals, ...code];
	return [...uleb(body.length), ...body];
}

function emitModule(layers: readonly DenseWeights[], at: Layout, softplusOutput: boolean): Uint8Array<ArrayBuffer> {
	const bytes = [
		...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
		...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([])]])),
		...section(3, vec([uleb(0)])),
		...section(5, vec([[0x00, ...uleb(Math.max(1, Math.ceil(at.end / PAGE_BYTES)))]])),
		...section(7, vec([[...name('memory'), EXPORT_MEMORY, 0], [...name('run'), EXPORT_FUNC, 0]])),
		...section(10, vec([emitRun(layers, at, softplusOutput)])),
	];
	return new Uint8Array(bytes);
}

let simdSupport: boolean | undefined;

/** Whether this runtime compiles WebAssembly SIMD (probed once with a one-layer module). */
export function wasmSimdSupported(): boolean {
	if (simdSupport === undefined) {
		try {
			const probe = [{ kernel: new Float32Array(4), bias: new Float32Array(4), inDim: 1, outDim: 4, relu: true }];
			simdSupport = typeof WebAssembly === 'object' && WebAssembly.validate(emitModule(probe, layout(probe), true));
		} catch {
			simdSupport = false;
		}
	}
	return simdSupport;
}

/**
 * A compiled stack. `run` returns a view of the kernel's memory holding `rows` rows of
 * `outputWidth` values; it stays valid until the next call.
 */
export class DenseKernel {
	readonly inDim: number;
	/** Output row width: the last layer's units rounded up to a multiple of 2 (padding lanes are 0). */
	readonly outputWidth: number;
	private readonly memory: WebAssembly.Memory;
	private readonly runRows: (inPtr: number, outPtr: number, rows: number) => void;
	private readonly rowsStart: number;
	private view: Float32Array;

	/** `softplusOutput`: apply softplus (softplus.ts) to the last layer's float32-rounded outputs. */
	constructor(layers: readonly DenseWeights[], options: { softplusOutput?: boolean } = {}) {
		if (layers.length === 0) throw new RangeError('a dense kernel needs at least one layer');
		layers.forEach((l, i) => {
			if (i > 0 && l.inDim !== layers[i - 1]!.outDim) throw new RangeError(`layer ${i} takes ${l.inDim} inputs, layer ${i - 1} gives ${layers[i - 1]!.outDim}`);
			if (l.kernel.length !== l.inDim * l.outDim || l.bias.length !== l.outDim) throw new RangeError(`layer ${i} weights do not match ${l.inDim}×${l.outDim}`);
		});
		const at = layout(layers);
		const instance = new WebAssembly.Instance(new WebAssembly.Module(emitModule(layers, at, options.softplusOutput ?? false)));
		this.memory = instance.exports.memory as WebAssembly.Memory;
		this.runRows = instance.exports.run as (inPtr: number, outPtr: number, rows: number) => void;
		this.view = new Float32Array(this.memory.buffer);
		const weights = new Float64Array(this.memory.buffer);
		layers.forEach((l, li) => {
			const w = at.weights[li]!;
			for (let i = 0; i < l.inDim; i++) weights.set(l.kernel.subarray(i * l.outDim, (i + 1) * l.outDim), (w.kernel >> 3) + i * w.width);
			weights.set(l.bias, w.bias >> 3);
		});
		this.inDim = layers[0]!.inDim;
		this.outputWidth = at.weights[at.weights.length - 1]!.width;
		this.rowsStart = at.end;
	}

	run(input: Float32Array, rows: number): Float32Array {
		const inBytes = align16(rows * this.inDim * 4);
		const outPtr = this.rowsStart + inBytes;
		const needed = outPtr + rows * this.outputWidth * 4;
		if (needed > this.memory.buffer.byteLength) {
			this.memory.grow(Math.ceil((needed - this.memory.buffer.byteLength) / PAGE_BYTES));
			this.view = new Float32Array(this.memory.buffer);
		}
		this.view.set(input.subarray(0, rows * this.inDim), this.rowsStart >> 2);
		this.runRows(this.rowsStart, outPtr, rows);
		return this.view.subarray(outPtr >> 2, (outPtr >> 2) + rows * this.outputWidth);
	}
}
