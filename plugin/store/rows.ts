/**
 * Records (profiles, load samples) kept as rows of numbers in typed arrays instead of
 * objects. An hour of 1 s profiles of a few hundred streams is over a million objects
 * with their nested layers and blocks; as rows it is one Float64Array per series, which
 * the garbage collector neither traces nor moves.
 *
 * A record's structure (its keys, nesting, array lengths and value kinds) is its shape,
 * interned once; a row is the shape's id plus the record's values in the shape's order:
 * numbers as they are, booleans as 0/1, null as 0, strings as indexes into the series'
 * own string table (stream, worker and transport ids repeat in every row of a series and
 * are freed with it). Keys whose value is undefined are left out, as JSON leaves them out.
 */

type Node =
	| { t: 'n' }
	| { t: 'b' }
	| { t: 's' }
	| { t: 'z' }
	| { t: 'o'; keys: string[]; children: Node[] }
	| { t: 'a'; children: Node[] };

interface Shape {
	id: number;
	root: Node;
	width: number;
}

const shapes: Shape[] = [];

/** Tokens of a record's structure other than object keys. */
const Tok = { Number: 0, Boolean: 1, String: 2, Null: 3, ArrayStart: 4, ArrayEnd: 5, ObjectStart: 6, ObjectEnd: 7 } as const;
type Tok = (typeof Tok)[keyof typeof Tok];

/**
 * One prefix of a record's structure, as a token sequence (kinds, brackets and object keys in
 * order): the steps form a trie whose ends hold the interned shapes, so writing a record of a
 * known structure walks the trie and allocates nothing.
 */
class ShapeStep {
	private readonly byTok: Array<ShapeStep | undefined> = [];
	private byKey: Map<string, ShapeStep> | undefined;
	/** The shape of records whose structure ends here. */
	shape: Shape | undefined;

	tok(t: Tok): ShapeStep {
		let next = this.byTok[t];
		if (!next) this.byTok[t] = next = new ShapeStep();
		return next;
	}

	key(k: string): ShapeStep {
		this.byKey ??= new Map();
		let next = this.byKey.get(k);
		if (!next) this.byKey.set(k, (next = new ShapeStep()));
		return next;
	}
}

const SHAPE_ROOT = new ShapeStep();

/** The shape of a record whose structure was first seen now. */
function newShape(value: unknown): Shape {
	let width = 0;
	const build = (v: unknown): Node => {
		if (v === null) return width++, { t: 'z' };
		switch (typeof v) {
			case 'number':
				return width++, { t: 'n' };
			case 'boolean':
				return width++, { t: 'b' };
			case 'string':
				return width++, { t: 's' };
			default:
				if (Array.isArray(v)) return { t: 'a', children: v.map(build) };
				{
					const o = v as Record<string, unknown>;
					const keys = Object.keys(o).filter((k) => o[k] !== undefined);
					return { t: 'o', keys, children: keys.map((k) => build(o[k])) };
				}
		}
	};
	const root = build(value);
	const shape: Shape = { id: shapes.length, root, width };
	shapes.push(shape);
	return shape;
}

/** A row's values as they are flattened; one buffer reused for every row written (writes are synchronous). */
class RowValues {
	buf = new Float64Array(64);
	n = 0;

	push(x: number): void {
		if (this.n === this.buf.length) {
			const grown = new Float64Array(2 * this.buf.length);
			grown.set(this.buf);
			this.buf = grown;
		}
		this.buf[this.n++] = x;
	}
}

const ROW_VALUES = new RowValues();

/** Walks a value's structure from `step`, its values going to `out` as numbers meanwhile; the step where it ends. */
function flatten(v: unknown, out: RowValues, strings: (s: string) => number, step: ShapeStep): ShapeStep {
	if (v === null) {
		out.push(0);
		return step.tok(Tok.Null);
	}
	switch (typeof v) {
		case 'number':
			out.push(v);
			return step.tok(Tok.Number);
		case 'boolean':
			out.push(v ? 1 : 0);
			return step.tok(Tok.Boolean);
		case 'string':
			out.push(strings(v));
			return step.tok(Tok.String);
		case 'object': {
			if (Array.isArray(v)) {
				let at = step.tok(Tok.ArrayStart);
				for (let i = 0; i < v.length; i++) at = flatten(v[i], out, strings, at);
				return at.tok(Tok.ArrayEnd);
			}
			let at = step.tok(Tok.ObjectStart);
			const o = v as Record<string, unknown>;
			for (const k in o) {
				const x = o[k];
				if (x === undefined) continue;
				at = flatten(x, out, strings, at.key(k));
			}
			return at.tok(Tok.ObjectEnd);
		}
		default:
			throw new TypeError(`a stored record holds only numbers, strings, booleans, null, arrays and plain objects (got ${typeof v})`);
	}
}

function rebuild(node: Node, row: Float64Array, at: { i: number }, strings: readonly string[]): unknown {
	switch (node.t) {
		case 'n':
			return row[at.i++];
		case 'b':
			return row[at.i++] === 1;
		case 's':
			return strings[row[at.i++]!];
		case 'z':
			return at.i++, null;
		case 'a':
			return node.children.map((c) => rebuild(c, row, at, strings));
		case 'o': {
			const o: Record<string, unknown> = {};
			for (let k = 0; k < node.keys.length; k++) o[node.keys[k]!] = rebuild(node.children[k]!, row, at, strings);
			return o;
		}
	}
}

/** Rows a series starts with room for; it doubles up to its capacity as it fills. */
const INITIAL_ROWS = 16;

/**
 * A fixed-capacity ring of records of one series as typed rows: pushing onto a full ring
 * overwrites the oldest. Each row's time is kept in a column of its own, so range queries
 * decode only the rows they return. The arrays hold `rows` rows (a power of two times
 * INITIAL_ROWS, at most the capacity): they double when the records fill them and halve when
 * dropping old records (dropBefore) leaves them a quarter full, so a series kept for a time
 * span holds about what that span wrote, not its capacity.
 */
export class RowRing<T extends { ts: number }> {
	private stride = 0;
	private rows = 0;
	private data = new Float64Array(0);
	private shapeIds = new Int32Array(0);
	private times = new Float64Array(0);
	private start = 0;
	private count = 0;
	private readonly strings: string[] = [];
	private readonly stringIndex = new Map<string, number>();
	private readonly intern = (s: string): number => {
		let i = this.stringIndex.get(s);
		if (i === undefined) {
			i = this.strings.length;
			this.strings.push(s);
			this.stringIndex.set(s, i);
		}
		return i;
	};

	constructor(readonly capacity: number) {
		if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
	}

	get size(): number {
		return this.count;
	}

	/** Bytes held by the rows' arrays (what the ring costs beyond its string table). */
	get bytes(): number {
		return this.data.byteLength + this.shapeIds.byteLength + this.times.byteLength;
	}

	push(record: T): void {
		if (this.count < this.capacity) {
			if (this.count === this.rows) this.grow(Math.min(this.capacity, Math.max(INITIAL_ROWS, 2 * this.rows)));
			this.write(this.slot(this.count), record);
			this.count++;
			return;
		}
		this.write(this.start, record);
		this.start = (this.start + 1) % this.rows;
	}

	/** i = 0 is the oldest. */
	set(i: number, record: T): void {
		if (i < 0 || i >= this.count) throw new RangeError('ring index out of range');
		this.write(this.slot(i), record);
	}

	/**
	 * Forgets the oldest records while their time is before `ts` (records are pushed in time
	 * order, so these are the rows older than `ts`); the number forgotten.
	 */
	dropBefore(ts: number): number {
		let dropped = 0;
		while (this.count > 0 && this.times[this.start]! < ts) {
			this.start = (this.start + 1) % this.rows;
			this.count--;
			dropped++;
		}
		if (dropped > 0 && this.rows > INITIAL_ROWS && this.count <= this.rows / 4) this.grow(Math.max(INITIAL_ROWS, Math.ceil(this.rows / 2)));
		return dropped;
	}

	/** The time of row i (0 = oldest) without decoding it. */
	tsAt(i: number): number {
		return this.times[this.slot(i)]!;
	}

	at(i: number): T | undefined {
		if (i < 0 || i >= this.count) return undefined;
		const slot = this.slot(i);
		const shape = shapes[this.shapeIds[slot]!]!;
		return rebuild(shape.root, this.data.subarray(slot * this.stride, slot * this.stride + shape.width), { i: 0 }, this.strings) as T;
	}

	last(): T | undefined {
		return this.at(this.count - 1);
	}

	*[Symbol.iterator](): IterableIterator<T> {
		for (let i = 0; i < this.count; i++) yield this.at(i)!;
	}

	/** Slot of logical index i (0 = oldest). */
	private slot(i: number): number {
		return (this.start + i) % this.rows;
	}

	private write(slot: number, record: T): void {
		const out = ROW_VALUES;
		out.n = 0;
		const end = flatten(record, out, this.intern, SHAPE_ROOT);
		const shape = (end.shape ??= newShape(record));
		if (shape.width > this.stride) this.widen(shape.width);
		const data = this.data;
		const at = slot * this.stride;
		for (let i = 0; i < out.n; i++) data[at + i] = out.buf[i]!;
		this.shapeIds[slot] = shape.id;
		this.times[slot] = record.ts;
	}

	/** Reallocates for rows of `stride` values; every row keeps its slot (a write in progress holds one). */
	private widen(stride: number): void {
		const data = new Float64Array(this.rows * stride);
		for (let r = 0; r < this.rows; r++) data.set(this.data.subarray(r * this.stride, (r + 1) * this.stride), r * stride);
		this.data = data;
		this.stride = stride;
	}

	/**
	 * Reallocates for `rows` rows (at least the records held), the records
	 * moved to slots 0… in their order: slots taken before it are void (push resizes before it takes one).
	 */
	private grow(rows: number): void {
		const stride = this.stride;
		const data = new Float64Array(rows * stride);
		const shapeIds = new Int32Array(rows);
		const times = new Float64Array(rows);
		for (let r = 0; r < this.count; r++) {
			const from = this.slot(r);
			data.set(this.data.subarray(from * this.stride, (from + 1) * this.stride), r * stride);
			shapeIds[r] = this.shapeIds[from]!;
			times[r] = this.times[from]!;
		}
		this.data = data;
		this.shapeIds = shapeIds;
		this.times = times;
		this.rows = rows;
		this.start = 0;
	}
}
