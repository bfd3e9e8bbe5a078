/**
 * The load generator's packets in a process of their own. A Replayer given a
 * SenderProcess creates the mediasoup side (transports, producers, consumer bots)
 * in its own process and leaves sending the copies' packets and receiving the
 * bots' to this child, so the parent's CPU is what an SFU process spends — the
 * clients are elsewhere, as in production. bench/overhead measures Foresight's
 * cost in that parent; with the replayer in the same process its CPU (a third of
 * a core, varying with timer batching under load) drowned a 2 % difference.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { encodeRecording, type Recording } from '../record/format';
import type { PacketSender, RemoteCopy, ReplayerStats } from './replayer';

export type SenderRequest =
	| { type: 'recording'; name: string; encoded: Uint8Array }
	| { type: 'publish'; name: string; copy: RemoteCopy }
	| { type: 'start'; id: number }
	| { type: 'unpublish'; id: number }
	| { type: 'sinkPort' }
	| { type: 'stats' };

export type SenderReply = { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };

export class SenderProcess implements PacketSender {
	private readonly child: ChildProcess;
	private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private readonly sentRecordings = new Set<string>();
	private seq = 0;
	private exited: Error | undefined;

	private constructor(child: ChildProcess) {
		this.child = child;
		child.on('message', (reply: SenderReply) => {
			const waiter = this.pending.get(reply.seq);
			this.pending.delete(reply.seq);
			if (reply.ok) waiter?.resolve(reply.value);
			else waiter?.reject(new Error(`sender process: ${reply.error}`));
		});
		child.on('exit', (code, signal) => this.fail(new Error(`sender process exited (${signal ?? code})`)));
		// Sending to a child that died (EPIPE, ERR_IPC_CHANNEL_CLOSED) lands here: its requests fail, this process lives on.
		child.on('error', (error) => this.fail(new Error(`sender process: ${error.message}`)));
	}

	private fail(error: Error): void {
		this.exited ??= error;
		for (const w of this.pending.values()) w.reject(this.exited);
		this.pending.clear();
	}

	/** Forks the child from source: with this process's tsx loader flags, or tsx's own (under jest). */
	static async spawn(options: { seed?: number; tickMs?: number } = {}): Promise<SenderProcess> {
		const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
		const child = fork(join(__dirname, 'sender.child.ts'), [JSON.stringify(options)], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
		await new Promise<void>((resolve, reject) => {
			child.once('spawn', resolve);
			child.once('error', reject);
		});
		return new SenderProcess(child);
	}

	async publish(recording: Recording, copy: RemoteCopy): Promise<number> {
		const name = recording.header.name;
		if (!this.sentRecordings.has(name)) {
			this.sentRecordings.add(name);
			await this.request({ type: 'recording', name, encoded: encodeRecording(recording) });
		}
		return (await this.request({ type: 'publish', name, copy })) as number;
	}

	start(id: number): void {
		void this.request({ type: 'start', id }).catch(() => undefined);
	}

	unpublish(id: number): void {
		void this.request({ type: 'unpublish', id }).catch(() => undefined);
	}

	async sinkPort(): Promise<number> {
		return (await this.request({ type: 'sinkPort' })) as number;
	}

	/** Sent and received counts; maxTickLagMs is the child's. */
	async stats(): Promise<ReplayerStats> {
		return (await this.request({ type: 'stats' })) as ReplayerStats;
	}

	/** The child's CPU is not the SFU's, but a bench may report it. */
	get pid(): number | undefined {
		return this.child.pid;
	}

	async close(): Promise<void> {
		// Not `exited`: a channel error fails the requests, but the child may still run and must be stopped.
		if (this.child.exitCode !== null || this.child.signalCode !== null) return;
		const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
		this.child.kill('SIGTERM');
		await gone;
	}

	private request(message: SenderRequest): Promise<unknown> {
		if (this.exited) return Promise.reject(this.exited);
		const seq = ++this.seq;
		return new Promise((resolve, reject) => {
			this.pending.set(seq, { resolve, reject });
			this.child.send({ seq, message }, (error) => {
				if (!error) return;
				this.pending.delete(seq);
				reject(new Error(`sender process: ${error.message}`));
			});
		});
	}
}
