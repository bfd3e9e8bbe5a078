#!/usr/bin/env node
// Idempotent provisioning for a fresh, offline machine, then (optionally) runs a
// command with the environment it provisioned:
//
//   node scripts/setup.mjs [--for test|demo|bench] [-- command args...]
//
// What it provisions, each step skipped when already done:
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

const APT_FOR = {
	test: ['influxdb', 'chromium', 'ffmpeg'],
	demo: [],
	bench: ['influxdb'],
	all: ['influxdb', 'chromium', 'ffmpeg'],
};
// Needed to run (not build) the offline-built worker.
const WORKER_RUNTIME_APT = ['libssl3', 'libuv1', 'libsrtp2-1', 'libusrsctp2', 'libabsl20220623', 'liburing2'];
const WORKER_BUILD_APT = [
	'g++', 'pkg-config', 'meson', 'ninja-build', 'patch', 'libssl-dev', 'libuv1-dev', 'libsrtp2-dev',
	'libusrsctp-dev', 'libabsl-dev', 'libflatbuffers-dev', 'flatbuffers-compiler', 'liburing-dev',
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
	for (let i = 0; i < own.length; i++) {
		if (own[i] === '--for') purpose = own[++i];
		else fail(`unknown option ${own[i]} (allowed: --for test|demo|bench|all, then -- command)`);
	}
	if (!(purpose in APT_FOR)) fail(`--for must be one of ${Object.keys(APT_FOR).join(', ')}; got "${purpose}"`);
	return { purpose, command };
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
	const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
	return join(cacheRoot, 'mediasoup-foresight', 'worker', `${version}-${recipeHash}`, 'mediasoup-worker');
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
	log(`building mediasoup-worker ${version} offline in ${work} (~3.5 min on 2 cores)`);
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
	else delete env.MEDIASOUP_WORKER_BIN;
	log(`npm ci${workerBin ? ` (MEDIASOUP_WORKER_BIN=${workerBin})` : ' (mediasoup normal install)'}`);
	// --include=optional: tfjs-node is tried; its failing download is tolerated by npm.
	const res = run('npm', ['ci', '--no-audit', '--no-fund', '--include=optional'], {
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
const { purpose, command } = parseArgs(process.argv.slice(2));
ensureDebPackages(APT_FOR[purpose]);
const workerBin = ensureWorkerAndModules();
log(`setup done in ${((Date.now() - T0) / 1000).toFixed(1)} s`);

if (command.length > 0) {
	const env = { ...process.env, MEDIASOUP_WORKER_BIN: workerBin };
	// node_modules/.bin on PATH like an npm script, since commands may be bare tool names.
	env.PATH = `${join(ROOT, 'node_modules/.bin')}:${env.PATH ?? ''}`;
	const res = spawnSync(command[0], command.slice(1), { cwd: ROOT, env, stdio: 'inherit' });
	if (res.error) fail(`could not run ${command[0]}: ${res.error.message}`);
	process.exit(res.status ?? 1);
}
