/**
 * MSB-first bit reader for codec headers. Reading past the end never throws: it
 * yields zeros and latches `overrun`, so a parser reads its whole syntax and then
 * rejects the result once, instead of guarding every field.
 */
export class BitReader {
	private bitPos = 0;
	private overrunFlag = false;

	constructor(private readonly bytes: Uint8Array) {}

	get overrun(): boolean {
		return this.overrunFlag;
	}

	get bitsLeft(): number {
		return Math.max(0, this.bytes.length * 8 - this.bitPos);
	}

	bit(): number {
		const byte = this.bytes[this.bitPos >> 3];
		if (byte === undefined) {
			this.overrunFlag = true;
			return 0;
		}
		const value = (byte >> (7 - (this.bitPos & 7))) & 1;
		this.bitPos++;
		return value;
	}

	/** Unsigned n-bit field, n ≤ 32. */
	bits(n: number): number {
		let value = 0;
		for (let i = 0; i < n; i++) value = value * 2 + this.bit();
		return value;
	}

	skip(n: number): void {
		for (let i = 0; i < n; i++) this.bit();
	}

	/** ue(v) of H.264 §9.1. More than 31 leading zeros cannot be a valid code: treated as overrun. */
	ue(): number {
		let leadingZeros = 0;
		while (this.bit() === 0) {
			if (this.overrunFlag || ++leadingZeros > 31) {
				this.overrunFlag = true;
				return 0;
			}
		}
		return 2 ** leadingZeros - 1 + this.bits(leadingZeros);
	}

	/** se(v) of H.264 §9.1.1. */
	se(): number {
		const k = this.ue();
		return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
	}
}
