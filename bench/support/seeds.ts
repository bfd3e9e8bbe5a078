/** A `--seeds` argument: `N`, `N-M`, or a comma list of those. */
export function parseSeeds(spec: string): number[] {
	const out: number[] = [];
	for (const part of spec.split(',')) {
		const [a, b] = part.split('-').map(Number);
		if (!Number.isInteger(a) || (b !== undefined && !Number.isInteger(b))) throw new Error(`--seeds ${spec}: expected N, N-M or a comma list of those`);
		for (let x = a!; x <= (b ?? a!); x++) out.push(x);
	}
	return out;
}
