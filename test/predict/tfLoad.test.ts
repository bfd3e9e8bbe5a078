import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTf, resetTfForTests } from '../../plugin/predict/tf';
import { MissingPeerError, OPTIONAL_PEERS, requirePeer } from '../../plugin/util/optionalPeer';

function notFound(id: string): Error {
	return Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- plugin/predict/tf.ts`), { code: 'MODULE_NOT_FOUND' });
}

/** Real tfjs whose matMul throws as tfjs-node 4.22 does on Node ≥ 23 (loading works, the first op fails). */
function brokenTfjsNode(): unknown {
	const tf = require('@tensorflow/tfjs') as Record<string, unknown>;
	return new Proxy(tf, {
		get: (target, key) =>
			key === 'matMul'
				? () => {
						throw new TypeError('(0 , util_1.isNullOrUndefined) is not a function');
					}
				: target[key as string],
	});
}

describe('loadTf', () => {
	afterEach(() => resetTfForTests());

	test('an installed tfjs-node that fails a real operation is passed over for pure tfjs, and the reason kept', () => {
		const loaded = loadTf((id) => (id === '@tensorflow/tfjs-node' ? brokenTfjsNode() : require(id)));
		expect(loaded.flavour).toBe('tfjs');
		expect(loaded.nodeRejected).toMatch(/isNullOrUndefined\) is not a function/);
		expect(Array.from(loaded.tf.tidy(() => loaded.tf.matMul(loaded.tf.ones([1, 2]), loaded.tf.ones([2, 1])).dataSync()))).toEqual([2]);
	});

	test('a working tfjs-node is preferred', () => {
		const fake = require('@tensorflow/tfjs') as unknown;
		const loaded = loadTf((id) => {
			if (id === '@tensorflow/tfjs-node') return fake;
			throw notFound(id);
		});
		expect(loaded.flavour).toBe('tfjs-node');
		expect(loaded.nodeRejected).toBeUndefined();
	});

	test('without tfjs-node, pure tfjs and no complaint', () => {
		const loaded = loadTf((id) => {
			if (id === '@tensorflow/tfjs-node') throw notFound(id);
			return require(id);
		});
		expect(loaded).toMatchObject({ flavour: 'tfjs' });
		expect(loaded.nodeRejected).toBeUndefined();
	});

	test('with neither installed: an error naming the optional peer to install', () => {
		expect(() =>
			loadTf((id) => {
				throw notFound(id);
			}),
		).toThrow(/needs the optional peer dependency @tensorflow\/tfjs, which is not installed: npm install @tensorflow\/tfjs@"\^4\.22\.0"/);
	});
});

describe('requirePeer', () => {
	test('a missing package is a MissingPeerError naming it and its range; a broken one is rethrown as is', () => {
		let caught: unknown;
		try {
			requirePeer('influx', 'InfluxStore', (id) => {
				throw notFound(id);
			});
		} catch (e) {
			caught = e;
		}
		expect(caught).toBeInstanceOf(MissingPeerError);
		expect((caught as MissingPeerError).packageName).toBe('influx');
		expect((caught as Error).message).toBe('InfluxStore needs the optional peer dependency influx, which is not installed: npm install influx@"^5.12.0"');
		// One of influx's own dependencies missing is not "influx is not installed".
		expect(() =>
			requirePeer('influx', 'InfluxStore', () => {
				throw notFound('some-dependency-of-influx');
			}),
		).toThrow(/Cannot find module 'some-dependency-of-influx'/);
	});

	test('the ranges it names are package.json’s peerDependencies, and every optional peer is marked optional there', () => {
		const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
			peerDependencies: Record<string, string>;
			peerDependenciesMeta: Record<string, { optional?: boolean }>;
		};
		for (const [name, range] of Object.entries(OPTIONAL_PEERS)) {
			expect([name, pkg.peerDependencies[name]]).toEqual([name, range]);
			expect([name, pkg.peerDependenciesMeta[name]?.optional]).toEqual([name, true]);
		}
	});
});
