import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * No policy and no part of the live prediction path may see the simulator's ground
 * truth: checked on the import graph (static and dynamic imports, re-exports, type-only
 * imports too, since a type can carry the truth's shape into a policy).
 */
const ROOT = resolve(__dirname, '../..');
const TRUTH = join(ROOT, 'plugin/allocate/sim/groundTruth.ts');
const IMPORT = /(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;

function resolveImport(from: string, spec: string): string | undefined {
	if (!spec.startsWith('.')) return undefined;
	const base = resolve(dirname(from), spec);
	for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) if (candidate.endsWith('.ts') && existsSync(candidate)) return candidate;
	return undefined;
}

/** Every project file reachable from `entries` through relative imports. */
function reachable(entries: readonly string[]): Set<string> {
	const seen = new Set<string>();
	const stack = [...entries];
	while (stack.length > 0) {
		const file = stack.pop()!;
		if (seen.has(file)) continue;
		seen.add(file);
		const source = readFileSync(file, 'utf8');
		for (const m of source.matchAll(IMPORT)) {
			const target = resolveImport(file, m[1] ?? m[2] ?? m[3]!);
			if (target) stack.push(target);
		}
	}
	return seen;
}

const policyFiles = readdirSync(join(ROOT, 'plugin/allocate/policies'))
	.filter((f) => f.endsWith('.ts'))
	.map((f) => join(ROOT, 'plugin/allocate/policies', f));

describe('import graph: the ground truth stays in the simulator', () => {
	test.each([
		['every policy module', policyFiles],
		['the live prediction engine', [join(ROOT, 'plugin/predict/engine.ts'), join(ROOT, 'plugin/predict/knn.ts'), join(ROOT, 'plugin/predict/model.ts')]],
		["the simulator's live view (what builds Foresight's snapshot)", [join(ROOT, 'plugin/allocate/sim/liveView.ts')]],
		['the live snapshot builder and safety guard', [join(ROOT, 'plugin/allocate/live.ts'), join(ROOT, 'plugin/allocate/safety.ts')]],
	])('%s does not import sim/groundTruth', (_name, entries) => {
		expect(entries.length).toBeGreaterThan(0);
		const files = reachable(entries);
		const path = [...files].map((f) => relative(ROOT, f));
		expect(path).not.toContain(relative(ROOT, TRUTH));
	});

	test('the walker finds the truth where it is imported (the simulator), so the checks above can fail', () => {
		const files = reachable([join(ROOT, 'plugin/allocate/sim/simulator.ts')]);
		expect(files.has(TRUTH)).toBe(true);
		// And the live view does reach the engine and the live builder through its imports.
		const live = reachable([join(ROOT, 'plugin/allocate/sim/liveView.ts')]);
		expect(live.has(join(ROOT, 'plugin/predict/engine.ts'))).toBe(true);
		expect(live.has(join(ROOT, 'plugin/allocate/live.ts'))).toBe(true);
	});
});
