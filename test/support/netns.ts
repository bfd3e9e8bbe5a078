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
