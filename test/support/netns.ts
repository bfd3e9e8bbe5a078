import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/**
 * Hosts on this machine, each in a network namespace of its own with its own address,
 * joined by veth pairs to one bridge in the root namespace (where the test, its replay
 * clients and the shared influxd live). Real UDP and TCP cross the namespaces; nothing
 * leaves the machine (the bridge has no uplink and the namespaces no default route).
 * Needs root (CAP_NET_ADMIN). Everything is named with a per-run tag and removed by
 * destroy(), on process exit too, so a failing test leaves nothing behind.
 */
export interface NetnsHost {
	name: string;
	ns: string;
	ip: string;
}

function run(cmd: string, args: string[], allowFail = false): string {
	const res = spawnSync(cmd, args, { encoding: 'utf8' });
	if (res.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr || res.error?.message}`);
	return res.stdout ?? '';
}

export class NetnsCluster {
	readonly bridge: string;
	/** The bridge's address: the root namespace as the hosts see it. */
	readonly gatewayIp: string;
	readonly hosts: NetnsHost[] = [];
	private readonly processes = new Set<ChildProcess>();
	private destroyed = false;
	private readonly onExit = (): void => this.destroySync();

	private constructor(
		readonly tag: string,
		readonly subnet: string,
	) {
		this.bridge = `fsbr${tag}`;
		this.gatewayIp = `${subnet}.1`;
	}

	/** Whether this process may create namespaces (root with `ip netns`). */
	static available(): boolean {
		return process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
	}

	/** `count` namespaces named fs<tag>h<i>, at <subnet>.(10+i), bridged to <subnet>.1. */
	static create(count: number): NetnsCluster {
		// Short tag: interface names are limited to 15 characters.
		const tag = String(process.pid % 10000);
		const cluster = new NetnsCluster(tag, `10.213.${process.pid % 250}`);
		cluster.removeStale(count);
		process.once('exit', cluster.onExit);
		try {
			cluster.setUp(count);
		} catch (err) {
			cluster.destroySync();
			throw err;
		}
		return cluster;
	}

	private setUp(count: number): void {
		run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
		run('ip', ['addr', 'add', `${this.gatewayIp}/24`, 'dev', this.bridge]);
		run('ip', ['link', 'set', this.bridge, 'up']);
		for (let i = 1; i <= count; i++) {
			const ns = `fs${this.tag}h${i}`;
			const outside = `fsv${this.tag}h${i}`;
			const inside = `fsp${this.tag}h${i}`;
			const ip = `${this.subnet}.${10 + i}`;
			run('ip', ['netns', 'add', ns]);
			this.hosts.push({ name: `h${i}`, ns, ip });
			run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
			run('ip', ['link', 'set', outside, 'master', this.bridge]);
			run('ip', ['link', 'set', outside, 'up']);
			run('ip', ['link', 'set', inside, 'netns', ns]);
			run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', inside]);
			run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', inside, 'up']);
			run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
		}
	}

	/**
	 * A run killed outright (SIGKILL: no exit handler) leaves its namespaces behind; one with
	 * the same tag (a reused pid) is removed before this one starts, with what runs inside it.
	 */
	private removeStale(count: number): void {
		const existing = new Set(run('ip', ['netns', 'list'], true).split('\n').map((l) => l.split(' ')[0]!));
		for (let i = 1; i <= count + 8; i++) {
			const ns = `fs${this.tag}h${i}`;
			if (!existing.has(ns)) continue;
			for (const pid of run('ip', ['netns', 'pids', ns], true).split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0)) safeKill(pid);
			run('ip', ['link', 'del', `fsv${this.tag}h${i}`], true);
			run('ip', ['netns', 'del', ns], true);
		}
		run('ip', ['link', 'del', this.bridge], true);
	}

	/** Runs `command` inside host `name`'s namespace (`ip netns exec` execs it: the child's PID is the command's). */
	spawnIn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
		const host = this.host(name);
		const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
		this.processes.add(child);
		child.once('exit', () => this.processes.delete(child));
		return child;
	}

	host(name: string): NetnsHost {
		const host = this.hosts.find((h) => h.name === name);
		if (!host) throw new Error(`no host ${name}`);
		return host;
	}

	/** PIDs of every process inside a namespace (a host's mediasoup workers outlive a killed host process briefly). */
	pidsIn(name: string): number[] {
		return run('ip', ['netns', 'pids', this.host(name).ns], true)
			.split('\n')
			.map((l) => Number(l.trim()))
			.filter((n) => Number.isInteger(n) && n > 0);
	}

	/** Stops what runs in the namespaces (by PID: what we started and what it started there), then removes namespaces, veths and bridge. */
	async destroy(): Promise<void> {
		if (this.destroyed) return;
		for (const child of this.processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
		const deadline = Date.now() + 5000;
		while (this.processes.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
		this.destroySync();
	}

	private destroySync(): void {
		if (this.destroyed) return;
		this.destroyed = true;
		process.removeListener('exit', this.onExit);
		for (const child of this.processes) if (child.pid !== undefined) safeKill(child.pid);
		for (const h of this.hosts) {
			for (const pid of this.pidsIn(h.name)) safeKill(pid);
			// Deleting a namespace frees its veth end asynchronously; deleting our end removes the pair now.
			run('ip', ['link', 'del', `fsv${this.tag}${h.name}`], true);
			run('ip', ['netns', 'del', h.ns], true);
		}
		run('ip', ['link', 'del', this.bridge], true);
	}

	/** What is left of this run's namespaces and links (for the test's cleanup check). */
	leftovers(): string[] {
		const ns = run('ip', ['netns', 'list'], true)
			.split('\n')
			.map((l) => l.split(' ')[0]!)
			.filter((n) => n.startsWith(`fs${this.tag}h`));
		const links = run('ip', ['-o', 'link', 'show'], true)
			.split('\n')
			.filter((l) => l.includes(`fsv${this.tag}h`) || l.includes(this.bridge));
		return [...ns, ...links];
	}
}

function safeKill(pid: number): void {
	try {
		process.kill(pid, 'SIGKILL');
	} catch {
		/* already gone */
	}
}

export const CLUSTER_HOST_SCRIPT = join(__dirname, '../../demo/cluster/host.ts');

export interface HostProcessOptions {
	influxUrl: string;
	database: string;
	workers: number;
	/** FORESIGHT_WORKER_CAPACITY_PCT of this host. */
	capacityPct: number;
	reportIntervalMs: number;
	silentAfterMs: number;
	port?: number;
	/** Copy the host's stderr (its pino logs) to ours with a [name] prefix. */
	verbose?: boolean;
	/** CLUSTER_ADMISSION of the host (default cross-host). */
	admission?: 'cross-host' | 'local';
	/** FORESIGHT_ALLOCATION_POLICY of the host (default foresight). */
	policy?: string;
}

/** Starts demo/cluster/host.ts in host `name`'s namespace; resolves with the process once it listens. */
export function startHostProcess(net: NetnsCluster, name: string, options: HostProcessOptions): Promise<ChildProcess> {
	const host = net.host(name);
	const port = options.port ?? 3000;
	const env: NodeJS.ProcessEnv = {
		...process.env,
		CLUSTER_HOST_IP: host.ip,
		CLUSTER_PORT: String(port),
		CLUSTER_WORKERS: String(options.workers),
		CLUSTER_LOG_LEVEL: 'warn',
		FORESIGHT_LOG_LEVEL: 'warn',
		FORESIGHT_CLUSTER_HOST_ID: name,
		FORESIGHT_CLUSTER_ENDPOINT: `http://${host.ip}:${port}`,
		FORESIGHT_CLUSTER_REPORT_MS: String(options.reportIntervalMs),
		FORESIGHT_CLUSTER_SILENT_AFTER_MS: String(options.silentAfterMs),
		FORESIGHT_WORKER_CAPACITY_PCT: String(options.capacityPct),
		INFLUX_URL: options.influxUrl,
		INFLUX_DATABASE: options.database,
		CLUSTER_ADMISSION: options.admission ?? 'cross-host',
		...(options.policy ? { FORESIGHT_ALLOCATION_POLICY: options.policy } : {}),
	};
	const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : ['--import', 'tsx'];
	const child = net.spawnIn(name, process.execPath, [...execArgv, CLUSTER_HOST_SCRIPT], env);
	let stderr = '';
	child.stderr?.on('data', (b: Buffer) => {
		stderr = (stderr + b.toString()).slice(-4000);
		if (options.verbose) process.stderr.write(`[${name}] ${b.toString()}`);
	});
	return new Promise((resolve, reject) => {
		let out = '';
		child.stdout?.on('data', (b: Buffer) => {
			out += b.toString();
			if (out.includes('"ready"')) resolve(child);
		});
		child.once('exit', (code, signal) => reject(new Error(`host ${name} exited (${signal ?? code}) before ready: ${stderr}`)));
	});
}
