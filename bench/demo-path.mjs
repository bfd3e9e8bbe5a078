#!/usr/bin/env node
/**
 * README's "see reallocation" path, measured: `FORESIGHT_WORKER_CAPACITY_PCT=10 npm run demo`
 * (here `tsx demo/server.ts` on a free port, the setup step assumed done), the bursty-joins
 * scenario started with the dashboard's own call (POST /api/scenario), then /metrics read
 * after `--wait-s` (70) seconds. Prints foresight_actions_total by type and outcome, and the
 * most producers and consumers each worker carried during the run (sampled every 2 s); the
 * last line is one JSON object.
 *
 *   npm run bench -- demo-path [--wait-s 70] [--root <checkout>] [--scenario bursty-joins]
 *
 * `--root` runs another checkout's demo (e.g. a worktree of an older commit), so the same
 * measurement can be taken before and after a change. The demo's log goes to a file
 * (`--log`, default /tmp/demo-path-<pid>.log).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
	const i = args.indexOf(`--${name}`);
	return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const root = resolve(opt('root', resolve(dirname(fileURLToPath(import.meta.url)), '..')));
const waitS = Number(opt('wait-s', '70'));
const scenario = opt('scenario', 'bursty-joins');
const logPath = opt('log', `/tmp/demo-path-${process.pid}.log`);
if (!(waitS > 0)) throw new Error(`--wait-s must be > 0, got ${opt('wait-s')}`);

const env = { ...process.env, FORESIGHT_WORKER_CAPACITY_PCT: '10', DEMO_PORT: '0' };
const child = spawn(join(root, 'node_modules/.bin/tsx'), ['demo/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
const log = createWriteStream(logPath);
child.stderr.pipe(log);
let stopped = false;
const stop = () => {
	if (stopped) return;
	stopped = true;
	child.kill('SIGTERM');
};
process.once('SIGINT', () => {
	stop();
	process.exit(130);
});

const url = await new Promise((resolveUrl, reject) => {
	let buffered = '';
	const timer = setTimeout(() => reject(new Error(`demo not ready within 60 s (log: ${logPath})`)), 60_000);
	child.once('exit', (code) => reject(new Error(`demo exited with ${code} before it was ready (log: ${logPath})`)));
	child.stdout.on('data', (chunk) => {
		log.write(chunk);
		buffered += chunk.toString();
		const m = /demo ready: room (http:\/\/[^/\s]+)\//.exec(buffered);
		if (m) {
			clearTimeout(timer);
			resolveUrl(m[1]);
		}
	});
});

try {
	const started = await fetch(`${url}/api/scenario`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: scenario }) });
	const startedBody = await started.json();
	if (started.status !== 200) throw new Error(`starting ${scenario}: HTTP ${started.status} ${JSON.stringify(startedBody)}`);
	const t0 = Date.now();
	// Streams per worker, sampled through the run: the scenario may have ended by the time the counters are read.
	const peak = {};
	const labelsOf = (raw) => Object.fromEntries([...raw.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
	const sampleEntities = (text) => {
		for (const m of text.matchAll(/^foresight_worker_entities\{([^}]*)\} (\d+(?:\.\d+)?)$/gm)) {
			const labels = labelsOf(m[1]);
			if (labels.kind !== 'producers' && labels.kind !== 'consumers') continue;
			const w = (peak[labels.worker] ??= { producers: 0, consumers: 0 });
			w[labels.kind] = Math.max(w[labels.kind], Number(m[2]));
		}
	};
	let text = '';
	while (Date.now() - t0 < waitS * 1000) {
		await new Promise((r) => setTimeout(r, Math.min(2000, waitS * 1000 - (Date.now() - t0))));
		text = await (await fetch(`${url}/metrics`)).text();
		sampleEntities(text);
	}
	const actions = {};
	for (const m of text.matchAll(/^foresight_actions_total\{([^}]*)\} (\d+(?:\.\d+)?)$/gm)) {
		const labels = labelsOf(m[1]);
		actions[`${labels.type}/${labels.outcome}`] = Number(m[2]);
	}
	const workers = peak;
	for (const [k, n] of Object.entries(actions).sort()) process.stdout.write(`${k.padEnd(32)} ${n}\n`);
	for (const [w, c] of Object.entries(workers)) process.stdout.write(`worker ${w} peak: ${JSON.stringify(c)}\n`);
	const crossWorker = ['spreadFanout', 'moveConsumers', 'migrateProducer'].reduce((s, t) => s + (actions[`${t}/applied`] ?? 0), 0);
	process.stdout.write(
		`${JSON.stringify({ bench: 'demo-path', root, scenario, waitS: Math.round((Date.now() - t0) / 1000), workerCapacityPct: 10, actions, crossWorkerApplied: crossWorker, peakStreamsByWorker: workers, log: logPath })}\n`,
	);
} finally {
	stop();
}
