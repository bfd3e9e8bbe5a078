import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * The published package, as an app gets it: `npm pack` (which builds through prepack),
 * the tarball laid out offline in a scratch app beside mediasoup (this repo's copy,
 * linked, as are the package's declared dependencies), then attach() against a real worker from an ES module and from CommonJS, with
 * none of the optional peers (tfjs, influx, prom-client) installed.
 */
jest.setTimeout(240_000);

const ROOT = resolve(__dirname, '../..');
/** npm from PATH: scripts/setup.mjs puts the project's Node first, so npm runs on it. */
const npm = (args: string[], cwd: string): string => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let dir: string;
let tarball: string;
let app: string;
let dependencies: string[];

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'foresight-pack-'));
	npm(['pack', '--pack-destination', dir, '--silent'], ROOT);
	tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
	app = join(dir, 'app');
	mkdirSync(join(app, 'node_modules/mediasoup-foresight'), { recursive: true });
	writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-sfu', private: true, version: '1.0.0', dependencies: { 'mediasoup-foresight': `file:${tarball}` } }));
	// Installed as npm lays a tarball out, offline: its files under node_modules/mediasoup-foresight, and
	// each dependency it declares (and mediasoup, the app's own) linked from this repo's node_modules.
	// Nothing else is there: a require() of anything undeclared, an optional peer included, fails.
	execFileSync('tar', ['-xzf', tarball, '-C', join(app, 'node_modules/mediasoup-foresight'), '--strip-components=1']);
	const declared = JSON.parse(readFileSync(join(app, 'node_modules/mediasoup-foresight/package.json'), 'utf8')) as { dependencies: Record<string, string> };
	dependencies = Object.keys(declared.dependencies).sort();
	for (const name of [...dependencies, 'mediasoup']) {
		mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true });
		symlinkSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name), 'dir');
	}
});

afterAll(() => {
	if (dir) rmSync(dir, { recursive: true, force: true });
});

test('its runtime dependencies are pino and zod only (mediasoup and the optional ones are peers)', () => {
	expect(dependencies).toEqual(['pino', 'zod']);
});

test('the tarball holds the build, its types, the licence and the shipped model, and nothing an app does not need', () => {
	const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
	process.stderr.write(`pack: ${files.length} files\n`);
	for (const f of ['package.json', 'LICENSE', 'README.md', 'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/esm/index.mjs', 'dist/esm/index.d.mts', 'dist/plugin/predict/retrainer.worker.js', 'models/default/manifest.json', 'docs/grafana-dashboard.json']) {
		expect([f, files.includes(f)]).toEqual([f, true]);
	}
	const unexpected = files.filter((f) => !/^(package\.json|LICENSE|README\.md|dist\/plugin\/.+\.(js|d\.ts)|dist\/esm\/index\.(mjs|d\.mts)|models\/default\/[^/]+\.(json|bin|md)|docs\/grafana-dashboard\.json)$/.test(f));
	expect(unexpected).toEqual([]);
	expect(files.filter((f) => /^(scripts|test|training|bench|demo)\//.test(f) || f.endsWith('.map'))).toEqual([]);
});

const APP = (kind: 'esm' | 'cjs'): string => `
${kind === 'esm' ? `import * as mediasoup from 'mediasoup';
import { createRequire } from 'node:module';
import { attach, InfluxStore, MemoryStore, MissingPeerError, registerMetrics } from 'mediasoup-foresight';
const require = createRequire(import.meta.url);` : `const mediasoup = require('mediasoup');
const { attach, InfluxStore, MemoryStore, MissingPeerError, registerMetrics } = require('mediasoup-foresight');`}
async function main() {
	const absent = ['@tensorflow/tfjs', 'influx', 'prom-client'].filter((n) => { try { require.resolve(n); return false; } catch { return true; } });
	const foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 200, statsIntervalMs: 200 });
	const worker = await mediasoup.createWorker({ logLevel: 'warn' });
	const router = await worker.createRouter({ mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }] });
	const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' } });
	const sample = await new Promise((r) => foresight.once('workerLoad', r));
	await foresight.sampleLoad();
	const placed = await foresight.place({ peerId: 'p1', roomId: 'r1', sends: ['audio'], consumes: true, priority: 100 });
	const errorOf = async (f) => { try { await f(); return null; } catch (e) { return e instanceof MissingPeerError ? e.packageName : String(e); } };
	const silent = { warn() {}, info() {}, error() {}, debug() {}, child() { return silent; } };
	const result = {
		absent,
		store: foresight.store instanceof MemoryStore,
		slots: [...foresight.registry.all('worker')].map((w) => w.slot),
		transports: foresight.registry.countsOf(String(worker.pid)).transports,
		sampledPid: sample.pid === worker.pid,
		// The policy may refuse a fresh worker it has no forecast for yet: what matters here is that it answers.
		answered: ['place', 'refuse', 'redirect'].includes(placed.decision),
		metrics: await errorOf(() => registerMetrics(foresight, { registerMetric() {}, removeSingleMetric() {} })),
		influx: await errorOf(() => InfluxStore.open({ url: 'http://127.0.0.1:9', version: 1, database: 'x', tlsRejectUnauthorized: true, rawRetention: '24h', downsampledRetention: '30d', batchSize: 10, flushIntervalMs: 100, maxBufferedPoints: 100, maxBufferedBytes: 4096, logger: silent })),
	};
	transport.close();
	await foresight.detach();
	worker.close();
	process.stdout.write(JSON.stringify(result) + '\\n');
}
main().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

test.each(['esm', 'cjs'] as const)('as %s: attach() with the memory store on a real worker, optional peers absent and named when asked for', (kind) => {
	const file = join(app, kind === 'esm' ? 'app.mjs' : 'app.cjs');
	writeFileSync(file, APP(kind));
	const out = execFileSync(process.execPath, [file], { cwd: app, encoding: 'utf8', env: { ...process.env }, timeout: 60_000 });
	process.stderr.write(`pack ${kind}: ${out}`);
	expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
		absent: ['@tensorflow/tfjs', 'influx', 'prom-client'],
		store: true,
		slots: ['0'],
		transports: 1,
		sampledPid: true,
		answered: true,
		metrics: 'prom-client',
		influx: 'influx',
	});
});

test('the types resolve through the exports map, for import and for require', () => {
	writeFileSync(
		join(app, 'tsconfig.json'),
		JSON.stringify({ compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['check.mts', 'check.cts'] }),
	);
	const body = `const options: ForesightOptions = { dryRun: true, influx: { url: 'http://db:8086', version: 2, token: 't' } };
const f: (m: MediasoupModule, o?: ForesightOptions) => Foresight = attach;
export const used = [options, f, registerMetrics, METRICS.worker_cpu_percent.type];
// @ts-expect-error not an option
export const wrong: ForesightOptions = { dryrun: true };`;
	writeFileSync(join(app, 'check.mts'), `import { attach, registerMetrics, METRICS, type Foresight, type ForesightOptions, type MediasoupModule } from 'mediasoup-foresight';\n${body}\n`);
	writeFileSync(join(app, 'check.cts'), `import { attach, registerMetrics, METRICS, type Foresight, type ForesightOptions, type MediasoupModule } from 'mediasoup-foresight';\n${body}\n`);
	execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], { cwd: app, encoding: 'utf8' });
});
