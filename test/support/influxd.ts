import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INFLUXD_BIN = process.env.INFLUXD_BIN ?? '/usr/bin/influxd';

/** A free loopback TCP port (the OS picks it; the tiny race with reuse is retried by callers). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const addr = srv.address();
			const port = typeof addr === 'object' && addr ? addr.port : 0;
			srv.close(() => resolve(port));
		});
	});
}

/**
 * A throwaway influxd bound to loopback with everything under one temp dir.
 * stop()/start() keep the same port and data dir, so outage tests can take the
 * server away and bring it back with its data.
 */
export class Influxd {
	readonly dir: string;
	readonly configPath: string;
	private proc: ChildProcess | undefined;
	private stderrTail = '';

	private constructor(
		readonly httpPort: number,
		readonly rpcPort: number,
		/** Loopback by default; the netns cluster binds the bridge address so hosts in other namespaces reach it. */
		readonly bindIp = '127.0.0.1',
	) {
		this.dir = mkdtempSync(join(tmpdir(), 'foresight-influxd-'));
		this.configPath = join(this.dir, 'influxdb.conf');
		// Key names are influxd 1.x's own; unknown keys would be ignored silently,
		// which is why effectiveConfig() exists and a test checks it.
		writeFileSync(
			this.configPath,
			[
				'reporting-disabled = true',
				`bind-address = "${bindIp}:${rpcPort}"`,
				'[meta]',
				`  dir = "${join(this.dir, 'meta')}"`,
				'[data]',
				`  dir = "${join(this.dir, 'data')}"`,
				`  wal-dir = "${join(this.dir, 'wal')}"`,
				'  query-log-enabled = false',
				'[http]',
				`  bind-address = "${bindIp}:${httpPort}"`,
				'  log-enabled = false',
				'[continuous_queries]',
				'  log-enabled = false',
				'  run-interval = "1s"',
				'[monitor]',
				'  store-enabled = false',
				'',
			].join('\n'),
		);
	}

	static async create(bindIp?: string): Promise<Influxd> {
		const d = new Influxd(await freePort(), await freePort(), bindIp);
		await d.start();
		return d;
	}

	get url(): string {
		return `http://${this.bindIp}:${this.httpPort}`;
	}

	get pid(): number | undefined {
		return this.proc?.pid;
	}

	/** What influxd itself makes of the config file (proves our keys were understood). */
	effectiveConfig(): string {
		const res = spawnSync(INFLUXD_BIN, ['config', '-config', this.configPath], { encoding: 'utf8' });
		if (res.status !== 0) throw new Error(`influxd config failed: ${res.stderr}`);
		return res.stdout;
	}

	async start(timeoutMs = 20_000): Promise<void> {
		if (this.proc) return;
		const proc = spawn(INFLUXD_BIN, ['run', '-config', this.configPath], {
			stdio: ['ignore', 'ignore', 'pipe'],
			env: { ...process.env, INFLUXDB_REPORTING_DISABLED: 'true' },
		});
		this.proc = proc;
		proc.stderr?.on('data', (b: Buffer) => {
			this.stderrTail = (this.stderrTail + b.toString()).slice(-4000);
		});
		let exited: string | undefined;
		// A binary that cannot be started reports here, not through 'exit'.
		proc.once('error', (error) => {
			exited = `influxd could not be started (${INFLUXD_BIN}): ${error.message}`;
			if (this.proc === proc) this.proc = undefined;
		});
		proc.once('exit', (code, signal) => {
			exited = `influxd exited (code ${code}, signal ${signal}): ${this.stderrTail}`;
			if (this.proc === proc) this.proc = undefined;
		});
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			if (exited) throw new Error(exited);
			try {
				const res = await fetch(`${this.url}/ping`);
				if (res.status === 204) return;
			} catch {
				/* not listening yet */
			}
			await new Promise((r) => setTimeout(r, 20));
		}
		await this.stop();
		throw new Error(`influxd did not answer /ping within ${timeoutMs} ms: ${this.stderrTail}`);
	}

	/** Stops the server by PID (SIGTERM, then SIGKILL after 10 s); data stays. */
	async stop(): Promise<void> {
		const proc = this.proc;
		if (!proc || proc.exitCode !== null) {
			this.proc = undefined;
			return;
		}
		const gone = new Promise<void>((r) => proc.once('exit', () => r()));
		process.kill(proc.pid!, 'SIGTERM');
		const timer = setTimeout(() => proc.pid && process.kill(proc.pid, 'SIGKILL'), 10_000);
		await gone;
		clearTimeout(timer);
		this.proc = undefined;
	}

	async destroy(): Promise<void> {
		await this.stop();
		rmSync(this.dir, { recursive: true, force: true });
	}
}
