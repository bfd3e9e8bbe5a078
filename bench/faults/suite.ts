/**
 * Fault injection on real parts: the demo (real mediasoup workers, Foresight with
 * InfluxDB, replay bots sending recorded browser media over UDP) in a child process,
 * headless Chromium pages in the room, and faults injected in a seeded random order.
 * After each fault: is the demo process alive, did anything escape its handlers, how
 * long until every peer that lost media receives it again, were store points lost;
 * after the scenario: are entities, listeners, timers and handles back to baseline.
 *
 * Used by `npm run bench -- faults` (bench/faults.ts) and, shorter, by npm test
 * (test/demo/faults.test.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { UNRESPONSIVE_AFTER_MS } from '../../plugin/observe/liveness';
import { Rng } from '../../plugin/util/rng';
import type { ActionOutcome, HealingEvent } from '../../plugin';
import { launchChromium } from '../../test/demo/browser';
import { Influxd } from '../../test/support/influxd';
import type { ChildReply, ChildRequest, Flows, Health, LeakSnapshot, ReplyOf, VideoConsumerState } from './protocol';

export const FAULT_KINDS = ['workerKill', 'workerHang', 'influxOutage', 'hookHang', 'hookThrow', 'clientVanish', 'packetLoss'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSuiteOptions {
	seed: number;
	/** Each kind is injected this many times, in a seeded random order. */
	perKind: number;
	/** Only these kinds (default: all). */
	kinds?: readonly FaultKind[];
	/** Replay bots (the demo's `+ bot`: recorded talking-head media over UDP, consuming everything). */
	bots: number;
	/** Headless Chromium pages (camera + mic + chat, consuming everything). */
	pages: number;
	/** How long InfluxDB is stopped. */
	influxOutageS: number;
	/** How long a worker is stopped (SIGSTOP … SIGCONT). */
	hangS: number;
	/** Share of the bots' RTP dropped before it reaches the worker, and for how long. */
	lossRate: number;
	lossS: number;
	/** Foresight's hook timeout in the demo (a hung hook fails after it). */
	hookTimeoutMs: number;
	/** Longest wait, after a fault ends, for every affected peer's media. */
	recoveryTimeoutS: number;
	/** Progress lines (stderr in the bench). */
	log: (line: string) => void;
}

export interface FaultRecord {
	kind: FaultKind;
	/** Seconds since the suite's first fault. */
	atS: number;
	detail: string;
	/** Receiving peers whose media from some source stopped during the fault. */
	affectedPeers: number;
	recoveredPeers: number;
	/** Per affected peer: seconds from the injection until all its media flowed again (undefined: not within the timeout). */
	recoveryS: Array<number | undefined>;
	/** Unhandled rejections and uncaught exceptions in the demo during this fault. */
	unhandled: number;
	/** Store points dropped or rejected during this fault. */
	storePointsLost: number;
	/** The action's outcome, for the hook and vanish faults. */
	outcome?: string;
	healing?: string;
	/** Links (`receiver<source`) that stopped at some point during the fault. */
	stalledLinks?: string[];
	/** Links of receivers that had not recovered when the recovery timeout ran out, with whether each flowed in the last sample. */
	unrecoveredLinks?: Array<{ link: string; flowing: boolean }>;
	/** For each page among them: its video inbound-rtp stats as Chromium sees them, sampled twice a second apart. */
	unrecoveredBrowser?: Record<string, unknown[]>;
	/** For each of them: its video consumers as the server sees them, sampled twice a second apart. */
	unrecoveredVideo?: Record<string, VideoConsumerState[]>;
	/** Longest event-loop delay of the demo process during the fault (its signaling and Foresight wait on that loop). */
	loopDelayMaxMs?: number;
	/** Consumer stats that did not come back within a flow sample during the fault (those samples count the link as stalled). */
	statsTimeouts?: number;
	/** Page frame samples that did not answer during the fault (those samples count the page's video as stalled). */
	pageSampleFailures?: number;
	/** workerHang: a bot that joined while the worker was stopped (once it could be noticed): when it had joined (seconds since the stop) and where it went. */
	joinDuringHang?: { seconds: number; onStoppedWorker: boolean; workerId: string };
}

export interface FaultReport {
	faults_injected: number;
	per_kind: Record<FaultKind, number>;
	process_exits: number;
	unhandled_errors: number;
	affected_peers: number;
	peers_recovered_share: number;
	/** Over the affected peers of worker deaths (SIGKILL). */
	p95_recovery_s: number | null;
	max_recovery_s: number | null;
	/** Over the affected peers of every fault kind, per kind. */
	p95_recovery_s_by_kind: Partial<Record<FaultKind, number | null>>;
	store_points_lost: number;
	store_max_buffered_points: number;
	/** Transports, producers, consumers and data channels left over (mediasoup's dumps and Foresight's registry). */
	leaked_entities: number;
	leaked_listeners: number;
	leaked_timers: number;
	leaked_handles: number;
	/**
	 * Transports kept per router on purpose, left at the end: mediasoup's pipe pair per router pair and Foresight's
	 * tap transport per router (each counted as leaked beyond that bound).
	 */
	pipe_transports_left: number;
	tap_transports_left: number;
	workers_replaced: number;
	/** workerHang: bots that joined during a stop and were placed on the stopped worker anyway. */
	joins_on_hung_worker: number;
	seed: number;
	per_kind_n: number;
	duration_s: number;
	records: FaultRecord[];
}

/** The demo under test, in a child process. */
class DemoProcess {
	private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private seq = 0;
	exits = 0;
	exitReason: string | undefined;

	private constructor(private readonly child: ChildProcess) {
		child.on('message', (reply: ChildReply) => {
			const waiter = this.pending.get(reply.seq);
			this.pending.delete(reply.seq);
			if (reply.ok) waiter?.resolve(reply.value);
			else waiter?.reject(new Error(`demo: ${reply.error}`));
		});
		child.on('exit', (code, signal) => {
			this.exits++;
			this.exitReason = `demo process exited (${signal ?? code})`;
			for (const w of this.pending.values()) w.reject(new Error(this.exitReason));
			this.pending.clear();
		});
		child.on('error', (error) => (this.exitReason ??= `demo process: ${error.message}`));
	}

	static async start(env: NodeJS.ProcessEnv): Promise<{ demo: DemoProcess; url: string }> {
		const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
		const child = fork(join(__dirname, 'demo.child.ts'), [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
		const demo = new DemoProcess(child);
		const url = await new Promise<string>((resolve, reject) => {
			demo.pending.set(0, { resolve: (v) => resolve(v as string), reject });
		});
		return { demo, url };
	}

	get alive(): boolean {
		return this.child.exitCode === null && this.child.signalCode === null;
	}

	request<T extends ChildRequest['type']>(request: Extract<ChildRequest, { type: T }>): Promise<ReplyOf<T>> {
		if (!this.alive) return Promise.reject(new Error(this.exitReason ?? 'demo process is gone'));
		const seq = ++this.seq;
		return new Promise((resolve, reject) => {
			this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
			this.child.send({ seq, request }, (error) => {
				if (!error) return;
				this.pending.delete(seq);
				reject(error);
			});
		});
	}

	async close(): Promise<void> {
		if (!this.alive) return;
		const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
		await this.request({ type: 'close' }).catch(() => undefined);
		const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
		await gone;
		clearTimeout(timer);
	}
}

interface PageState {
	peerId: string;
	joined: boolean;
	errors: string[];
	rejoins: number;
	notice: string;
}

/** Headless Chromium pages in the demo room. */
class Pages {
	readonly open = new Map<string, { page: Page; peerId: string }>();
	/** Frame samples a page did not answer (it then counts as showing no new frame). */
	sampleFailures = 0;
	private next = 1;

	constructor(
		private readonly browser: Browser,
		private readonly url: string,
	) {}

	async add(): Promise<string> {
		const name = `page-${this.next++}`;
		const page = await this.browser.newPage();
		await page.goto(`${this.url}/?name=${name}`);
		await page.waitForFunction(() => (window as unknown as { demo: PageState }).demo.joined, undefined, { timeout: 30_000 });
		const { peerId } = await this.state(page);
		this.open.set(name, { page, peerId });
		return name;
	}

	async close(name: string): Promise<void> {
		const entry = this.open.get(name);
		this.open.delete(name);
		await entry?.page.close();
	}

	state(page: Page): Promise<PageState> {
		return page.evaluate(() => (window as unknown as { demo: PageState }).demo);
	}

	/** Frames each remote video element has shown, and whose tile it is in, by consumer id. */
	async frames(): Promise<Record<string, Record<string, { source: string; frames: number }>>> {
		const out: Record<string, Record<string, { source: string; frames: number }>> = {};
		await Promise.all(
			[...this.open.values()].map(async ({ page, peerId }) => {
				out[peerId] = await page
					.evaluate(() =>
						Object.fromEntries(
							Array.from(document.querySelectorAll<HTMLVideoElement>('#remotes video')).map((v) => [
								v.dataset.consumer ?? '',
								{ source: v.closest<HTMLElement>('[data-peer]')?.dataset.peer ?? '', frames: v.getVideoPlaybackQuality().totalVideoFrames },
							]),
						),
					)
					.catch(() => {
						this.sampleFailures++;
						return {};
					});
			}),
		);
		return out;
	}
}

const POLL_MS = 500;
/** The writer's normal backlog is one flush interval of points; after an outage it drains to that. */
const BACKLOG_WRITTEN_BELOW = 2000;

/**
 * Which (receiver, source) media links flow: a link flows in a sample when its
 * packet count (server side) grew since the previous sample. Pages add a link
 * `${page}<screen:${source}` per remote tile: its video element showed a new frame
 * (either of the two while a migration swaps them).
 */
class FlowWatch {
	private prevFlows: Flows = {};
	private prevFrames: Record<string, Record<string, { source: string; frames: number }>> = {};

	constructor(
		private readonly demo: DemoProcess,
		private readonly pages: Pages,
	) {}

	async sample(): Promise<Set<string>> {
		const [flows, frames] = await Promise.all([this.demo.request({ type: 'flows' }), this.pages.frames()]);
		const flowing = new Set<string>();
		for (const [key, n] of Object.entries(flows)) if (n > (this.prevFlows[key] ?? Infinity)) flowing.add(key);
		for (const [peerId, byConsumer] of Object.entries(frames)) {
			const before = this.prevFrames[peerId] ?? {};
			for (const [id, { source, frames: n }] of Object.entries(byConsumer)) if (n > (before[id]?.frames ?? Infinity)) flowing.add(`${peerId}<${SCREEN}${source}`);
		}
		this.prevFlows = flows;
		this.prevFrames = frames;
		return flowing;
	}

	/** Links that flow in two samples in a row (a link that just started may not yet). */
	async steady(): Promise<Set<string>> {
		await this.sample();
		await sleep(POLL_MS);
		const a = await this.sample();
		await sleep(POLL_MS);
		const b = await this.sample();
		return new Set([...a].filter((k) => b.has(k)));
	}
}

/** Marks a page's link to a source's tile on screen, beside the server-side link to that source. */
const SCREEN = 'screen:';
const receiverOf = (link: string): string => link.slice(0, link.indexOf('<'));
const sourceOf = (link: string): string => {
	const source = link.slice(link.indexOf('<') + 1);
	return source.startsWith(SCREEN) ? source.slice(SCREEN.length) : source;
};

function percentile(values: number[], p: number): number | null {
	if (values.length === 0) return null;
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function runFaultSuite(options: FaultSuiteOptions): Promise<FaultReport> {
	const log = options.log;
	const t0 = Date.now();
	const influxd = await Influxd.create();
	let browser: Browser | undefined;
	let demo: DemoProcess | undefined;
	try {
		const env: NodeJS.ProcessEnv = {
			...process.env,
			INFLUX_URL: influxd.url,
			INFLUX_DATABASE: 'faults',
			FORESIGHT_HOOK_TIMEOUT_MS: String(options.hookTimeoutMs),
			FORESIGHT_LOG_LEVEL: 'warn',
			DEMO_WORKERS: '2',
			DEMO_LOG_LEVEL: 'warn',
			FORESIGHT_DRY_RUN: 'false',
		};
		const started = await DemoProcess.start(env);
		demo = started.demo;
		const d = demo;
		log(`demo up at ${started.url}`);
		await sleep(2000);
		const baseline = await d.request({ type: 'leaks' });
		browser = await launchChromium();
		const pages = new Pages(browser, started.url);
		for (let i = 0; i < options.pages; i++) await pages.add();
		for (let i = 0; i < options.bots; i++) await d.request({ type: 'addBot' });
		const watch = new FlowWatch(d, pages);
		// Every page and bot receives everyone else: wait until those links flow.
		let expected = new Set<string>();
		for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
			expected = await watch.steady();
			const receivers = new Set([...expected].map(receiverOf));
			const tilesShown = (page: string): number => [...expected].filter((l) => l.startsWith(`${page}<${SCREEN}`)).length;
			if (receivers.size >= options.pages + options.bots && [...pages.open.values()].every((p) => tilesShown(p.peerId) >= options.pages + options.bots - 1)) break;
		}
		log(`warm: ${expected.size} media links flow`);

		const rng = new Rng(options.seed);
		const schedule = (options.kinds ?? FAULT_KINDS).flatMap((k) => Array.from({ length: options.perKind }, () => k));
		for (let i = schedule.length - 1; i > 0; i--) {
			const j = rng.int(0, i);
			[schedule[i], schedule[j]] = [schedule[j]!, schedule[i]!];
		}
		const records: FaultRecord[] = [];
		const suiteStart = Date.now();
		let healthBefore: Health = await d.request({ type: 'health' });
		let maxBuffered = 0;
		let workersReplaced = 0;

		for (const [n, kind] of schedule.entries()) {
			if (!d.alive) break;
			const links = await watch.steady();
			// A link that did not flow before the fault cannot be expected to flow after it.
			const before = new Set([...links]);
			let gone: string | undefined;
			/** What health requests during the fault reported; each one resets the demo's loop-delay maximum. */
			const seen = { healing: [] as HealingEvent[], loopDelayMaxMs: 0, statsTimeouts: 0 };
			const health = async (): Promise<Health> => {
				const h = await d.request({ type: 'health' });
				seen.healing.push(...h.healing);
				seen.loopDelayMaxMs = Math.max(seen.loopDelayMaxMs, h.loopDelayMaxMs);
				seen.statsTimeouts += h.statsTimeouts;
				maxBuffered = Math.max(maxBuffered, h.store.bufferedPoints);
				return h;
			};
			// Resets the demo's loop-delay maximum and timeout count: from here on they are this fault's.
			await health();
			seen.loopDelayMaxMs = 0;
			seen.statsTimeouts = 0;
			const pageFailuresBefore = pages.sampleFailures;
			const injectedAt = Date.now();
			const record: FaultRecord = { kind, atS: (injectedAt - suiteStart) / 1000, detail: '', affectedPeers: 0, recoveredPeers: 0, recoveryS: [], unhandled: 0, storePointsLost: 0 };
			// Samples taken while the fault acts, so short stalls are seen too.
			const during: Array<{ at: number; flowing: Set<string> }> = [];
			let sampling = true;
			const sampler = (async () => {
				// Each sample a full period after the one before: a link flows if its count grew in that period.
				while (sampling && d.alive) {
					await sleep(POLL_MS);
					during.push({ at: Date.now(), flowing: await watch.sample().catch(() => new Set<string>()) });
				}
			})();
			try {
				switch (kind) {
					case 'workerKill':
					case 'workerHang': {
						const { workers } = await d.request({ type: 'info' });
						const busy = workers.filter((w) => w.transports > 0);
						const victim = (busy.length > 0 ? busy : workers)[rng.int(0, (busy.length > 0 ? busy : workers).length - 1)]!;
						if (kind === 'workerKill') {
							process.kill(victim.pid, 'SIGKILL');
							record.detail = `SIGKILL worker ${victim.pid} (slot ${victim.slot}, ${victim.transports} transports)`;
						} else {
							process.kill(victim.pid, 'SIGSTOP');
							const stoppedAt = Date.now();
							// Does admission keep away from a hung worker? A bot joins once Foresight can have noticed.
							const joinAfterMs = Math.min(UNRESPONSIVE_AFTER_MS + 1000, options.hangS * 1000 - 500);
							await sleep(joinAfterMs);
							const joining = d.request({ type: 'addBot' }).then(
								async (id) => ({ id, s: (Date.now() - stoppedAt) / 1000, workerId: await d.request({ type: 'workerOf', peerId: id }).catch(() => '?') }),
								(e: Error) => ({ id: undefined, s: (Date.now() - stoppedAt) / 1000, workerId: `failed: ${e.message}` }),
							);
							await sleep(options.hangS * 1000 - joinAfterMs);
							process.kill(victim.pid, 'SIGCONT');
							const join = await joining;
							record.joinDuringHang = { seconds: join.s, onStoppedWorker: join.workerId === victim.workerId, workerId: join.workerId };
							if (join.id !== undefined) await d.request({ type: 'removeBot' });
							record.detail = `SIGSTOP worker ${victim.pid} for ${options.hangS} s (${victim.transports} transports); a bot joining ${(joinAfterMs / 1000).toFixed(1)} s in was placed on ${join.workerId === victim.workerId ? 'the STOPPED worker' : `worker ${join.workerId}`}, joined ${join.s.toFixed(1)} s after the stop`;
						}
						break;
					}
					case 'influxOutage':
						await influxd.stop();
						for (let s = 0; s < options.influxOutageS; s += 1) {
							await sleep(1000);
							await health().catch(() => undefined);
						}
						await influxd.start();
						record.detail = `InfluxDB stopped for ${options.influxOutageS} s`;
						break;
					case 'hookHang':
					case 'hookThrow': {
						const hook = rng.next() < 0.5 ? 'migrateProducer' : 'moveConsumers';
						const mode = kind === 'hookHang' ? 'hang' : 'throw';
						const page = [...pages.open.values()][rng.int(0, pages.open.size - 1)]!;
						await d.request({ type: 'armHook', fault: { hook, mode } });
						const outcome: ActionOutcome = await d.request(hook === 'migrateProducer' ? { type: 'migrate', peerId: page.peerId } : { type: 'spread', peerId: page.peerId });
						record.detail = `${hook} ${mode === 'hang' ? `hangs past the ${options.hookTimeoutMs} ms timeout` : 'throws'}`;
						record.outcome = outcome.status === 'error' ? `error/${outcome.code}` : outcome.status;
						break;
					}
					case 'clientVanish': {
						const [name, page] = [...pages.open.entries()][rng.int(0, pages.open.size - 1)]!;
						const migration = d.request({ type: 'migrate', peerId: page.peerId });
						for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) if (await d.request({ type: 'migrationPending', peerId: page.peerId })) break;
						await pages.close(name);
						gone = page.peerId;
						const outcome = await migration.catch((e: Error) => e);
						record.outcome = outcome instanceof Error ? `request failed: ${outcome.message}` : outcome.status === 'error' ? `error/${outcome.code}` : outcome.status;
						record.detail = `${name} closed while its camera producer migrated`;
						// The room keeps a Chromium peer for the faults to come.
						await pages.add();
						break;
					}
					case 'packetLoss':
						await d.request({ type: 'setLoss', rate: options.lossRate });
						await sleep(options.lossS * 1000);
						await d.request({ type: 'setLoss', rate: 0 });
						record.detail = `${Math.round(options.lossRate * 100)} % of the bots' RTP dropped for ${options.lossS} s`;
						break;
				}
			} catch (error) {
				record.detail += ` (injection failed: ${(error as Error).message})`;
			}
			const endedAt = Date.now();
			// The links to wait for: those that flowed before, between peers still here.
			const wanted = [...before].filter((l) => receiverOf(l) !== gone && sourceOf(l) !== gone);
			const recoveredAt = new Map<string, number>();
			for (const deadline = endedAt + options.recoveryTimeoutS * 1000; d.alive && Date.now() < deadline; ) {
				const last = during.at(-1);
				if (last && last.at >= endedAt) {
					const byReceiver = new Map<string, boolean>();
					for (const l of wanted) byReceiver.set(receiverOf(l), (byReceiver.get(receiverOf(l)) ?? true) && last.flowing.has(l));
					for (const [r, ok] of byReceiver) if (ok && !recoveredAt.has(r)) recoveredAt.set(r, last.at);
					if ([...byReceiver.values()].every(Boolean)) break;
				}
				await sleep(POLL_MS / 2);
			}
			// Judged on the samples the wait above saw: one the sampler adds while it stops would count a
			// receiver that had recovered as never recovered, if its video paused in that last half second.
			const judged = during.length;
			sampling = false;
			await sampler;
			during.length = judged;
			// Affected: a receiver with a wanted link that did not flow in some sample after the injection. It has
			// recovered at the first sample, after its last stall, in which all its links flow.
			const stalled = new Set<string>();
			const lastStall = new Map<string, number>();
			for (const [i, s] of during.entries()) {
				for (const l of wanted) {
					if (s.flowing.has(l)) continue;
					stalled.add(l);
					lastStall.set(receiverOf(l), i);
				}
			}
			record.stalledLinks = [...stalled];
			record.affectedPeers = lastStall.size;
			record.recoveryS = [...lastStall].map(([r, i]) => {
				const mine = wanted.filter((l) => receiverOf(l) === r);
				const back = during.slice(i + 1).find((s) => mine.every((l) => s.flowing.has(l)));
				return back && recoveredAt.has(r) ? (back.at - injectedAt) / 1000 : undefined;
			});
			record.recoveredPeers = record.recoveryS.filter((x) => x !== undefined).length;
			const unrecovered = [...lastStall.keys()].filter((_r, i) => record.recoveryS[i] === undefined);
			if (unrecovered.length > 0) {
				const last = during.at(-1)?.flowing ?? new Set<string>();
				record.unrecoveredLinks = wanted.filter((l) => unrecovered.includes(receiverOf(l))).map((link) => ({ link, flowing: last.has(link) }));
				// Twice, a second apart: whether the producers still receive and the consumers still send.
				for (const r of unrecovered) {
					const page = [...pages.open.values()].find((p) => p.peerId === r)?.page;
					if (page) {
						const browserSide = (): Promise<unknown> => page.evaluate(() => (window as unknown as { receivingStats: () => Promise<unknown> }).receivingStats()).catch((e: Error) => e.message);
						record.unrecoveredBrowser ??= {};
						const first = await browserSide();
						await sleep(1000);
						record.unrecoveredBrowser[r] = [first, await browserSide()];
					}
					record.unrecoveredVideo ??= {};
					const first = await d.request({ type: 'videoState', peerId: r }).catch(() => []);
					await sleep(1000);
					record.unrecoveredVideo[r] = [...first, ...(await d.request({ type: 'videoState', peerId: r }).catch(() => []))];
				}
			}
			if (d.alive) {
				if (kind === 'influxOutage') {
					// Until the backlog is written: points still buffered are not lost yet, and the next fault must not inherit them.
					for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(500)) {
						if ((await health()).store.bufferedPoints < BACKLOG_WRITTEN_BELOW) break;
					}
				}
				const after = await health();
				record.unhandled = after.faults.unhandledRejections + after.faults.uncaughtExceptions - (healthBefore.faults.unhandledRejections + healthBefore.faults.uncaughtExceptions);
				record.storePointsLost = after.store.droppedPoints + after.store.rejectedPoints - (healthBefore.store.droppedPoints + healthBefore.store.rejectedPoints);
				record.healing = summarizeHealing(seen.healing);
				record.loopDelayMaxMs = Math.round(seen.loopDelayMaxMs);
				record.statsTimeouts = seen.statsTimeouts;
				record.pageSampleFailures = pages.sampleFailures - pageFailuresBefore;
				workersReplaced += seen.healing.filter((e) => e.type === 'workerReplaced').length;
				healthBefore = after;
			}
			records.push(record);
			const times = record.recoveryS.map((x) => (x === undefined ? 'never' : x.toFixed(1))).join(',');
			log(`[${n + 1}/${schedule.length}] ${kind}: ${record.detail}${record.outcome ? ` → ${record.outcome}` : ''}; affected ${record.affectedPeers}, recovered ${record.recoveredPeers} (s: ${times || '-'}); loop delay ≤ ${record.loopDelayMaxMs ?? '?'} ms, ${record.statsTimeouts ?? 0} stats timeouts, ${record.pageSampleFailures ?? 0} page samples unanswered${record.healing ? `; ${record.healing}` : ''}${record.unhandled ? `; UNHANDLED ${record.unhandled}` : ''}${record.storePointsLost ? `; store lost ${record.storePointsLost}` : ''}${record.unrecoveredLinks ? `; not back: ${record.unrecoveredLinks.filter((l) => !l.flowing).map((l) => l.link).join(' ')}` : ''}${record.unrecoveredVideo ? `; their video: ${JSON.stringify(record.unrecoveredVideo)}` : ''}${record.unrecoveredBrowser ? `; in the browser: ${JSON.stringify(record.unrecoveredBrowser)}` : ''}`);
		}

		// The scenario ends: everyone leaves; entities, listeners, timers and handles must return to the baseline.
		for (const name of [...pages.open.keys()]) await pages.close(name);
		if (d.alive) await d.request({ type: 'removeBots' });
		let end: LeakSnapshot | undefined;
		let leaks = { entities: 0, listeners: 0, timers: 0, handles: 0 };
		// Timers that are for something (a 30 s grace, a 5 s measurement) run out: wait for them before judging.
		for (const deadline = Date.now() + 45_000; d.alive && Date.now() < deadline; await sleep(2000)) {
			end = await d.request({ type: 'leaks' });
			leaks = compareLeaks(baseline, end);
			if (leaks.entities + leaks.listeners + leaks.timers + leaks.handles === 0) break;
		}
		if (end) log(`leaks: ${JSON.stringify(leaks)} baseline ${JSON.stringify(baseline)} end ${JSON.stringify(end)}`);
		const processExits = demo.exits;
		const kills = records.filter((r) => r.kind === 'workerKill').flatMap((r) => r.recoveryS);
		const allRecoveries = records.flatMap((r) => r.recoveryS);
		const affectedPeers = records.reduce((s, r) => s + r.affectedPeers, 0);
		const byKind: Partial<Record<FaultKind, number | null>> = {};
		for (const k of FAULT_KINDS) {
			const xs = records.filter((r) => r.kind === k).flatMap((r) => r.recoveryS);
			byKind[k] = xs.some((x) => x === undefined) ? null : percentile(xs as number[], 95);
		}
		const perKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, records.filter((r) => r.kind === k).length])) as Record<FaultKind, number>;
		return {
			faults_injected: records.length,
			per_kind: perKind,
			process_exits: processExits,
			unhandled_errors: records.reduce((s, r) => s + r.unhandled, 0),
			affected_peers: affectedPeers,
			peers_recovered_share: affectedPeers === 0 ? 1 : allRecoveries.filter((x) => x !== undefined).length / affectedPeers,
			p95_recovery_s: kills.some((x) => x === undefined) ? null : percentile(kills as number[], 95),
			max_recovery_s: kills.some((x) => x === undefined) ? null : percentile(kills as number[], 100),
			p95_recovery_s_by_kind: byKind,
			store_points_lost: records.reduce((s, r) => s + r.storePointsLost, 0),
			store_max_buffered_points: maxBuffered,
			leaked_entities: end ? leaks.entities : -1,
			leaked_listeners: end ? leaks.listeners : -1,
			leaked_timers: end ? leaks.timers : -1,
			leaked_handles: end ? leaks.handles : -1,
			pipe_transports_left: end?.registry.pipeTransports ?? -1,
			tap_transports_left: end?.internalTransports ?? -1,
			workers_replaced: workersReplaced,
			joins_on_hung_worker: records.filter((r) => r.joinDuringHang?.onStoppedWorker).length,
			seed: options.seed,
			per_kind_n: options.perKind,
			duration_s: Math.round((Date.now() - t0) / 1000),
			records,
		};
	} finally {
		await demo?.close();
		await browser?.close();
		await influxd.destroy();
	}
}

/** What is left over at the end that was not there at the start. */
export function compareLeaks(baseline: LeakSnapshot, end: LeakSnapshot): { entities: number; listeners: number; timers: number; handles: number } {
	const over = (a: number, b: number): number => Math.max(0, b - a);
	let entities = 0;
	for (const k of ['transports', 'producers', 'consumers', 'dataProducers', 'dataConsumers'] as const) {
		entities += Math.max(over(baseline.mediasoup[k], end.mediasoup[k]), over(baseline.registry[k], end.registry[k]));
	}
	const max = (xs: number[]): number => (xs.length === 0 ? 0 : Math.max(...xs));
	const listeners =
		over(baseline.listeners.mediasoupObserver, end.listeners.mediasoupObserver) +
		over(baseline.listeners.process, end.listeners.process) +
		over(max(baseline.listeners.perWorker), max(end.listeners.perWorker)) +
		over(max(baseline.listeners.perRouter), max(end.listeners.perRouter));
	// Transports kept per router on purpose (a pipe pair per router pair, Foresight's tap transport per router) are
	// not counted while they stay within those bounds; beyond them they are leaks.
	const routers = end.registry.routers;
	entities += Math.max(0, end.registry.pipeTransports - routers * (routers - 1)) + Math.max(0, end.internalTransports - routers);
	// Connections come and go with clients and InfluxDB's keep-alive: handles that belong to the server's own parts are compared.
	const handles = ['UDPWrap', 'ProcessWrap', 'PipeWrap'].reduce((s, k) => s + over(baseline.resources[k] ?? 0, end.resources[k] ?? 0), 0);
	return { entities, listeners, timers: over(baseline.resources.timers ?? 0, end.resources.timers ?? 0), handles };
}

function summarizeHealing(events: HealingEvent[]): string | undefined {
	const healed = events.filter((e): e is Extract<HealingEvent, { type: 'healed' }> => e.type === 'healed');
	if (healed.length === 0) return undefined;
	return healed.map((h) => `healed in ${(h.durationMs / 1000).toFixed(1)} s: ${h.rejoined} re-joined, ${h.degraded} audio only, ${h.refused} refused, ${h.failed} failed`).join('; ');
}
