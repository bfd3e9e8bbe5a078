import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { joinAnswerSchema, botStatsSchema, healthSchema, type BotStats, type Health, type JoinAnswer } from '../../demo/cluster/protocol';
import { readRecording } from '../../training/record/format';
import { prepare, type PreparedRecording } from '../../training/loadgen/prepared';
import { Replayer, type Publisher } from '../../training/loadgen/replayer';

const RECORDINGS = join(__dirname, '../fixtures/recordings');

export interface JoinResult {
	peerId: string;
	hostId: string;
	workerId: string;
	/** Every redirect on the way: the host asked and what it answered. */
	redirects: Array<{ from: string; to: string; reason: string; stale: boolean }>;
	/** The placing host's view was stale. */
	stale: boolean;
}

/**
 * Replay-bot clients in the root namespace: each bot asks a host to join, follows one
 * redirect, sends its recording over real UDP to the transport the placing host names,
 * and receives what it consumes on one counting sink (per source address).
 */
export class ReplayClients {
	private readonly replayer: Replayer;
	private readonly prepared: PreparedRecording;
	private sink: Socket | undefined;
	private readonly bySource = new Map<string, number>();
	private readonly bots = new Map<string, { hostId: string; url: string; publishers: Publisher[]; source: string }>();

	constructor(
		private readonly clientIp: string,
		/** hostId → the host's API URL (the first contact; redirects carry their own endpoint). */
		private readonly hosts: Map<string, string>,
		recording = 'talking-head',
	) {
		this.replayer = new Replayer({ listenIp: clientIp, seed: 11 });
		this.prepared = prepare(readRecording(join(RECORDINGS, `${recording}.rec.gz`)));
	}

	private async sinkAddress(): Promise<{ ip: string; port: number }> {
		if (!this.sink) {
			const socket = createSocket('udp4');
			socket.on('error', () => undefined);
			socket.on('message', (_m, rinfo) => {
				const key = `${rinfo.address}:${rinfo.port}`;
				this.bySource.set(key, (this.bySource.get(key) ?? 0) + 1);
			});
			await new Promise<void>((r) => socket.bind(0, this.clientIp, r));
			socket.setRecvBufferSize(8 * 1024 * 1024);
			this.sink = socket;
		}
		return { ip: this.clientIp, port: this.sink.address().port };
	}

	private static async post(url: string, path: string, body: unknown): Promise<unknown> {
		const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
		const value: unknown = await res.json();
		if (!res.ok) throw new Error(`${url}${path}: HTTP ${res.status} ${JSON.stringify(value)}`);
		return value;
	}

	async health(hostId: string): Promise<Health> {
		const res = await fetch(`${this.url(hostId)}/health`, { signal: AbortSignal.timeout(5000) });
		return healthSchema.parse(await res.json());
	}

	async flush(hostId: string): Promise<unknown> {
		return ReplayClients.post(this.url(hostId), '/flush', {});
	}

	url(hostId: string): string {
		const url = this.hosts.get(hostId);
		if (!url) throw new Error(`unknown host ${hostId}`);
		return url;
	}

	/** Joins `peerId` to `roomId` through host `via`, following at most one redirect (a redirected join is never sent on). */
	async join(peerId: string, roomId: string, via: string): Promise<JoinResult> {
		const sink = await this.sinkAddress();
		const redirects: JoinResult['redirects'] = [];
		let hostId = via;
		let url = this.url(via);
		for (let hop = 0; hop < 2; hop++) {
			const answer: JoinAnswer = joinAnswerSchema.parse(await ReplayClients.post(url, '/join', { peerId, roomId, redirected: hop > 0, sink }));
			if (answer.decision === 'refuse') throw new Error(`${peerId} refused by ${hostId}: ${answer.reason}`);
			if (answer.decision === 'redirect') {
				if (hop > 0) throw new Error(`${peerId}: a redirected join was redirected again by ${hostId}`);
				redirects.push({ from: hostId, to: answer.target, reason: answer.reason, stale: answer.stale });
				hostId = answer.target;
				url = answer.endpoint ?? this.url(answer.target);
				continue;
			}
			const publishers: Publisher[] = [];
			for (const copy of answer.copies) {
				const publisher = await this.replayer.adopt(this.prepared, { ...copy, rewrites: copy.rewrites.map((r) => r ?? undefined) });
				this.replayer.start(publisher);
				publishers.push(publisher);
			}
			const hostIp = new URL(url).hostname;
			this.bots.set(peerId, { hostId: answer.hostId, url, publishers, source: `${hostIp}:${answer.subscriberPort}` });
			return { peerId, hostId: answer.hostId, workerId: answer.workerId, redirects, stale: answer.stale };
		}
		throw new Error('unreachable');
	}

	/** Stops sending for `peerId` (its host is told when it is still there). */
	async leave(peerId: string, tellHost = true): Promise<void> {
		const bot = this.bots.get(peerId);
		if (!bot) return;
		this.bots.delete(peerId);
		for (const p of bot.publishers) this.replayer.unpublish(p);
		if (tellHost) await ReplayClients.post(bot.url, '/leave', { peerId }).catch(() => undefined);
	}

	hostOf(peerId: string): string | undefined {
		return this.bots.get(peerId)?.hostId;
	}

	peersOn(hostId: string): string[] {
		return [...this.bots].filter(([, b]) => b.hostId === hostId).map(([id]) => id);
	}

	/** RTP (and RTCP) the bot's consumers delivered to this client. */
	received(peerId: string): number {
		const bot = this.bots.get(peerId);
		return bot ? (this.bySource.get(bot.source) ?? 0) : 0;
	}

	async stats(peerId: string): Promise<BotStats> {
		const bot = this.bots.get(peerId);
		if (!bot) throw new Error(`no bot ${peerId}`);
		return botStatsSchema.parse(await ReplayClients.post(bot.url, '/stats', { peerId }));
	}

	close(): void {
		this.replayer.close();
		this.sink?.close();
		this.sink = undefined;
	}
}
