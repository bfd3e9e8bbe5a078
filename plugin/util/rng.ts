/** Seeded PRNG (mulberry32) with the few distributions simulations, tests and load generation need; same seed, same run. */
export class Rng {
	private s: number;

	constructor(seed: number) {
		this.s = seed >>> 0;
	}

	/** Uniform in [0, 1). */
	next(): number {
		this.s = (this.s + 0x6d2b79f5) >>> 0;
		let z = this.s;
		z = Math.imul(z ^ (z >>> 15), z | 1);
		z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
		return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
	}

	uniform(min: number, max: number): number {
		return min + (max - min) * this.next();
	}

	int(min: number, maxInclusive: number): number {
		return Math.floor(this.uniform(min, maxInclusive + 1));
	}

	normal(mean = 0, std = 1): number {
		const u = 1 - this.next();
		const v = this.next();
		return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
	}

	/** Multiplicative noise with median 1. */
	lognormal(sigma: number): number {
		return Math.exp(this.normal(0, sigma));
	}

	exponential(mean: number): number {
		return -Math.log(1 - this.next()) * mean;
	}

	chance(p: number): boolean {
		return this.next() < p;
	}

	pick<T>(items: readonly T[]): T {
		return items[Math.floor(this.next() * items.length)]!;
	}
}

/** The bare generator: uniform numbers in [0, 1) from a seed. */
export function mulberry32(seed: number): () => number {
	const rng = new Rng(seed);
	return () => rng.next();
}
