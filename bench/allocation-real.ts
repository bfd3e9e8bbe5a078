/**
 * The allocation evaluation's closed-loop A/B on real mediasoup workers (issue 19).
 *
 * Setup: `--workers` (4) real workers, each given a CPU budget (`--capacity`, % of one core)
 * small enough that the machine's 2 cores overload them; a generated scenario (family
 * `--family`, one held-out seed ≥ 10000 per repetition) replayed through the real load
 * generator: recorded media over real UDP, SRTP egress to receivers. Every peer is placed
 * by the policy under test as it joins and piped between workers as a multi-worker app's
 * room is; moves and producer migrations run through real migration hooks (the scenario's
 * peers re-consume and re-publish make-before-break, training/loadgen/peer.ts). Every
 * policy runs through the same manager (Foresight profiles and predicts in every arm, only
 * the policy differs), interleaved: repetition r plays its seed under each policy, in an
 * order rotated by r, so drifting machine load does not favour one.
 *
 * The defaults (grid-meetings at ~48 peers, 45 s, 15 % of a core per worker, four policies so
 * that three seeds fit in about 10 min) were chosen on tuning seeds 1–3 only: there the
 * baselines' summed CPU stayed within the total budget while single workers went over the line.
 *
 * Figures (definitions: docs/allocation-metrics.md, "Real workers"):
 *   - exposure: consumer-seconds on workers whose measured CPU is above 85 % of the budget;
 *   - quality cost, from the receivers (a UDP sink of this process reads the SSRC of every
 *     packet each consumer delivers) and the audit log:
 *       frozen video seconds (a subscribed, unpaused video consumer delivering nothing for
 *       ≥ 500 ms; the whole gap counts), 0.5 × seconds below the wanted layer (layers a policy
 *       lowered), paused seconds (paused by a policy), migration disruption priced as the
 *       simulator prices it and raised to what the receivers measured when that is longer
 *       (max(1 s, gap) per moved consumer, max(2 s, gap) per receiver of a migrated producer,
 *       gap = the old consumer's last packet to the new one's first), 60 per dropped
 *       consumer, and each refused join priced as the peer's whole stay (the consumer-seconds
 *       its planned subscriptions would have had, at least 60).
 *   - refused joins, and whether total capacity sufficed for that repetition: the least
 *     summed CPU peak (5 s mean) any baseline arm measured is within the workers' total budget.
 *
 *   npx tsx bench/allocation-real.ts [--seeds 10000-10002] [--family grid-meetings] [--peers 48]
 *       [--duration 45] [--workers 4] [--capacity 15] [--policies foresight,least-loaded-66,…]
 *       [--out runs.json] [--audit actions.jsonl] [--forecasts forecasts.jsonl] [--combine a.json,b.json]
 *
 * `foresight-admission-only` in --policies adds a diagnostic arm (Foresight in dry run: its
 * admission answers only), reported but never a baseline. --out writes every run as JSON;
 * --combine reports on such files together (runs made with the same settings flags, which
 * it takes from its own). --audit appends every applied action (policy, seed, second,
 * action with its reason and predicted loads) as JSON lines, and the same action again with
 * `measuredAfterPct` once the manager has measured its worker after it. --forecasts appends, as
 * JSON lines, every worker's forecast as the policy gets it (mean and p95 per horizon) and every
 * measured load sample (with the worker's consumer count), each with seed, policy and second: how far the forecast the policy
 * plans on sits from the load that follows.
 *
 * Seeds below 10000 are for choosing settings; figures are reported on seeds ≥ 10000 only
 * (the last line says which kind ran). Last line: one JSON object with
 * real_exposure_gain_vs_best_baseline = (E_best + 1) / (E_foresight + 1) and
 * real_quality_cost_ratio = (Q_foresight + 1) / (Q_best + 1), the best baseline being the one
 * with the least total exposure (then the least quality cost), every policy's absolute
 * totals, and every run.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, type Foresight } from '../plugin/foresight';
import type { MigrationHooks } from '../plugin/act/hooks';
import { ALLOCATION_POLICIES, type AllocationPolicyName } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { QUALITY_PRICE } from '../plugin/allocate/worth';
import { EVALUATION_SEED_MIN, FAMILIES, generateScenario, type Family } from '../training/loadgen/generator';
import { planScenario, publicationTracks, type Scenario } from '../training/loadgen/scenario';
import { plannedConsumerSeconds, ReceiverWatch } from './allocation-real/receivers';
import { Replayer, type PublishOptions, type Publisher, type Subscriber, type SubscribeOptions } from '../training/loadgen/replayer';
import { ScenarioRun } from '../training/loadgen/runner';
import type { Recording } from '../training/record/format';
import { MEDIA_CODECS } from '../training/media/rig';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSeeds } from './support/seeds';

const { values } = parseArgs({
	options: {
		seeds: { type: 'string', default: '10000-10002' },
		family: { type: 'string', default: 'grid-meetings' },
		peers: { type: 'string', default: '48' },
		duration: { type: 'string', default: '45' },
		workers: { type: 'string', default: '4' },
		capacity: { type: 'string', default: '15' },
		policies: { type: 'string', default: 'foresight,least-loaded-66,reactive-migration,round-robin' },
		out: { type: 'string' },
		audit: { type: 'string' },
		forecasts: { type: 'string' },
		combine: { type: 'string' },
	},
});

const SEEDS = parseSeeds(values.seeds);
const FAMILY = FAMILIES.find((f) => f === values.family);
if (!FAMILY) throw new Error(`--family ${values.family}: known ${FAMILIES.join(', ')}`);
const PEERS = Number(values.peers);
const DURATION_S = Number(values.duration);
const WORKERS = Number(values.workers);
const CAPACITY_PCT = Number(values.capacity);
/**
 * A diagnostic arm, never a baseline: Foresight in dry run, so only its admission answers
 * apply (no move, degrade or drop): what its placement alone does.
 */
const ADMISSION_ONLY = 'foresight-admission-only';
type Arm = AllocationPolicyName | typeof ADMISSION_ONLY;
const ARMS: readonly Arm[] = [...ALLOCATION_POLICIES, ADMISSION_ONLY];
const POLICIES = values.policies.split(',').map((name) => {
	const known = ARMS.find((p) => p === name);
	if (!known) throw new Error(`--policies: unknown ${name}; known ${ARMS.join(', ')}`);
	return known;
});
const FORESIGHT_POLICY: AllocationPolicyName = 'foresight';
const FORESIGHT: Arm = FORESIGHT_POLICY;
if (!POLICIES.includes(FORESIGHT) || !POLICIES.some((p) => p !== FORESIGHT && p !== ADMISSION_ONLY)) throw new Error('--policies must include foresight and at least one baseline');
const HELD_OUT = SEEDS.every((s) => s >= EVALUATION_SEED_MIN);
if (!HELD_OUT && SEEDS.some((s) => s >= EVALUATION_SEED_MIN)) throw new Error(`--seeds mixes choosing seeds (< ${EVALUATION_SEED_MIN}) and held-out ones: run them apart`);
/** The evaluation's overload line, as in the simulator: 85 % of a worker's budget. */
const OVERLOAD_SHARE = 0.85;
/** A refused join costs at least one lost consumer (the simulator's price), even for a peer that would have received nothing. */
const MIN_REFUSED_COST = QUALITY_PRICE.lostConsumer;
/** Summed worker CPU is smoothed over this many samples before its peak decides whether capacity sufficed (one-second spikes are not demand). */
const DEMAND_SMOOTHING_SAMPLES = 5;
const RECORDINGS_DIR = join(__dirname, '..', 'test', 'fixtures', 'recordings');

/**
 * The load generator with every receive transport delivering to the watch's sink, and every
 * replayed track answering key-frame requests as a browser's encoder does (a moved or new
 * consumer otherwise waits up to a recorded GOP, which no real client would).
 */
class WatchedReplayer extends Replayer {
	constructor(
		seed: number,
		private readonly watchPort: number,
	) {
		super({ seed });
	}

	override publish(router: types.Router, recording: Recording, options: PublishOptions = {}): Promise<Publisher> {
		return super.publish(router, recording, { ...options, keyframeOnRequest: true });
	}

	override subscribe(router: types.Router, producers: types.Producer[], options: SubscribeOptions = {}): Promise<Subscriber> {
		return super.subscribe(router, producers, { ...options, sink: { ip: '127.0.0.1', port: this.watchPort } });
	}
}

// ---------------------------------------------------------------------------
// One arm: one policy on one seed's scenario

interface ArmResult {
	seed: number;
	policy: Arm;
	exposure: number;
	overloadedWorkerS: number;
	frozenS: number;
	downgradeS: number;
	pausedS: number;
	disruptionS: number;
	movedConsumers: number;
	migratedProducerReceivers: number;
	meanMeasuredMoveGapS: number | null;
	dropped: number;
	refused: number;
	refusedCost: number;
	qualityCost: number;
	actions: Record<string, number>;
	peakCpuPct: number[];
	meanCpuPct: number[];
	/** Peak of the summed workers' CPU, DEMAND_SMOOTHING_SAMPLES-sample mean, % of a core. */
	peakTotalCpuPct: number;
	peakConsumers: number;
	/** Rooms of the scenario. */
	rooms: number;
	/** Most rooms at once with routers on more than one worker. */
	peakSplitRooms: number;
	/** Pipe consumers created (a producer made consumable on another worker). */
	pipeConsumers: number;
	maxEventLagMs: number;
	failedEvents: number;
	wallS: number;
}

async function runArm(seed: number, scenario: Scenario, policy: Arm): Promise<ArmResult> {
	const armStart = performance.now();
	const logger = createLogger('error');
	const watch = new ReceiverWatch();
	const replayer = new WatchedReplayer(seed, await watch.open());
	const timeline = planScenario(scenario);
	const stayCost = plannedConsumerSeconds(timeline, scenario.durationS);
	let run: ScenarioRun | undefined;
	/** Producers created by a migration: their consumers' moves are receivers of a migrated producer. */
	const migratedProducers = new Set<string>();
	let movedConsumers = 0;
	let migratedProducerReceivers = 0;
	const hooks: MigrationHooks = {
		migrateProducer: async ({ producerId, toRouter }) => {
			const id = await run?.migrateProducer(producerId, toRouter);
			if (!id) throw new Error(`producer ${producerId} is no scenario peer's`);
			migratedProducers.add(id);
			return { newProducerId: id };
		},
		moveConsumers: async ({ consumerIds, producerId, toRouter }) => {
			const out: Array<{ oldConsumerId: string; newConsumerId: string }> = [];
			const migrated = migratedProducers.has(producerId);
			// One at a time: a peer's consumers share its receive transports, which a move may open or close.
			for (const oldConsumerId of consumerIds) {
				const newConsumerId = await run?.moveConsumer(oldConsumerId, toRouter, producerId).catch(() => undefined);
				if (!newConsumerId) continue;
				out.push({ oldConsumerId, newConsumerId });
				watch.moved({ oldId: oldConsumerId, newId: newConsumerId, priceS: migrated ? QUALITY_PRICE.migratedReceiverS : QUALITY_PRICE.movedConsumerS });
				if (migrated) migratedProducerReceivers++;
				else movedConsumers++;
			}
			return out;
		},
		producerMigrated: () => undefined,
		consumerDropped: () => undefined,
	};
	const foresight: Foresight = attach(mediasoup, {
		useEnv: false,
		logger,
		logLevel: 'error',
		dryRun: policy === ADMISSION_ONLY,
		loadSampleIntervalMs: 1000,
		statsIntervalMs: 1000,
		allocation: { policy: policy === ADMISSION_ONLY ? FORESIGHT_POLICY : policy, workerCapacityPct: CAPACITY_PCT },
		mediaCodecs: MEDIA_CODECS,
		hooks,
	});
	// Every consumer on a scenario peer's receive transport is watched (pipe transports carry no peerId).
	// Pipes are counted, and each room's live routers, since a room split over workers pays a pipe per producer and worker.
	let pipeConsumers = 0;
	const routersOfRoom = new Map<string, Set<string>>();
	const onWorker = (worker: types.Worker): void => {
		worker.observer.on('newrouter', (router) => {
			const roomId = typeof router.appData.roomId === 'string' ? router.appData.roomId : undefined;
			if (roomId !== undefined) {
				const set = routersOfRoom.get(roomId) ?? routersOfRoom.set(roomId, new Set()).get(roomId)!;
				set.add(router.id);
				router.observer.once('close', () => set.delete(router.id));
			}
			router.observer.on('newtransport', (transport) => {
				if (transport.appData.peerId === undefined) {
					transport.observer.on('newconsumer', (consumer) => void (consumer.type === 'pipe' && pipeConsumers++));
					return;
				}
				transport.observer.on('newconsumer', (consumer) => watch.add(consumer));
			});
		});
	};
	mediasoup.observer.on('newworker', onWorker);
	const workers: types.Worker[] = [];
	for (let i = 0; i < WORKERS; i++) workers.push(await mediasoup.createWorker({ logLevel: 'warn' }));
	mediasoup.observer.off('newworker', onWorker);

	const downgraded = new Set<string>();
	const paused = new Set<string>();
	const actions: Record<string, number> = {};
	let dropped = 0;
	foresight.on('audit', (entry) => {
		if (entry.verdict !== 'applied' || entry.outcome?.status !== 'ok') return;
		const a = entry.action;
		if (values.audit) {
			const record = { seed, policy, atS: Math.round((performance.now() - armStart) / 100) / 10, ...(entry.measuredAfterPct !== undefined ? { measuredAfterPct: entry.measuredAfterPct } : {}), action: a };
			appendFileSync(values.audit, `${JSON.stringify(record)}\n`);
		}
		// The manager emits an entry again once it has measured the load after it: count each action once.
		if (entry.measuredAfterPct !== undefined) return;
		actions[a.type] = (actions[a.type] ?? 0) + 1;
		if (a.type === 'setConsumerLayers') downgraded.add(a.consumerId);
		else if (a.type === 'restoreLayers') downgraded.delete(a.consumerId);
		else if (a.type === 'pauseConsumer') paused.add(a.consumerId);
		else if (a.type === 'resumeConsumer') paused.delete(a.consumerId);
		else if (a.type === 'dropConsumer') dropped++;
	});
	const cpu = new Map<string, number[]>();
	const roundTotals: number[] = [];
	let roundTotal = 0;
	let roundSamples = 0;
	let exposure = 0;
	let overloadedWorkerS = 0;
	let downgradeS = 0;
	let pausedS = 0;
	let peakConsumers = 0;
	let peakSplitRooms = 0;
	const live = (ids: Set<string>): number => {
		for (const id of ids) if (!foresight.registry.has(id)) ids.delete(id);
		return ids.size;
	};
	const firstWorker = String(workers[0]!.pid);
	const forecastsFile = values.forecasts;
	if (forecastsFile !== undefined) {
		const atS = (): number => Math.round((performance.now() - armStart) / 100) / 10;
		foresight.on('predictions', (predictions) => {
			for (const p of predictions) {
				const horizons = Object.fromEntries(Object.entries(p.horizons).map(([h, f]) => [h, { meanPct: f.total.cpuPct.mean, p95Pct: f.total.cpuPct.p95 }]));
				appendFileSync(forecastsFile, `${JSON.stringify({ seed, policy, atS: atS(), workerId: p.workerId, horizons })}\n`);
			}
		});
		foresight.on('workerLoad', (s) => appendFileSync(forecastsFile, `${JSON.stringify({ seed, policy, atS: atS(), workerId: s.workerId, cpuPct: s.cpuPct, consumers: s.consumers })}\n`));
	}
	foresight.on('workerLoad', (s) => {
		const interval = foresight.options.loadSampleIntervalMs / 1000;
		(cpu.get(s.workerId) ?? cpu.set(s.workerId, []).get(s.workerId)!).push(s.cpuPct);
		if (s.cpuPct > OVERLOAD_SHARE * CAPACITY_PCT) {
			exposure += s.consumers * interval;
			overloadedWorkerS += interval;
		}
		roundTotal += s.cpuPct;
		roundSamples++;
		// Once per sampling round, on the first worker's sample.
		if (s.workerId === firstWorker) {
			if (roundSamples >= WORKERS) roundTotals.push(roundTotal);
			roundTotal = 0;
			roundSamples = 0;
			downgradeS += live(downgraded) * interval;
			pausedS += live(paused) * interval;
			peakConsumers = Math.max(peakConsumers, [...foresight.registry.all('consumer')].length);
			let split = 0;
			for (const routers of routersOfRoom.values()) if (routers.size > 1) split++;
			peakSplitRooms = Math.max(peakSplitRooms, split);
		}
	});

	const groups = new Map(scenario.groups.map((g) => [g.name, g]));
	const roomOf = (group: string): string => `${seed}/${groups.get(group)!.room}`;
	let refused = 0;
	let refusedCost = 0;
	run = new ScenarioRun(scenario, {
		placePeer: async (peer, group) => {
			const g = groups.get(group)!;
			const sends = [...new Set(g.publish.flatMap((p) => publicationTracks(p).map((t) => t.mediaClass)))];
			const roomId = roomOf(group);
			const answer = await foresight.place({ peerId: `${roomId}/${peer}`, roomId, sends, consumes: g.consume.length > 0, priority: 50 });
			if (answer.decision === 'place') return answer.router;
			refused++;
			refusedCost += Math.max(MIN_REFUSED_COST, stayCost.get(peer) ?? 0);
			return undefined;
		},
		replayer,
		recordingsDir: RECORDINGS_DIR,
		peerIdPrefix: `${seed}/`,
	});
	try {
		const state = await run.run();
		const settled = watch.settle();
		const perWorker = [...cpu.values()];
		const smoothed = roundTotals.map((_, i) => {
			const window = roundTotals.slice(Math.max(0, i - DEMAND_SMOOTHING_SAMPLES + 1), i + 1);
			return window.reduce((a, b) => a + b, 0) / window.length;
		});
		const priced = QUALITY_PRICE;
		return {
			seed,
			policy,
			exposure,
			overloadedWorkerS,
			frozenS: settled.frozenS,
			downgradeS,
			pausedS,
			disruptionS: settled.disruptionS,
			movedConsumers,
			migratedProducerReceivers,
			meanMeasuredMoveGapS: settled.measuredMoveGapS.length ? settled.measuredMoveGapS.reduce((a, b) => a + b, 0) / settled.measuredMoveGapS.length : null,
			dropped,
			refused,
			refusedCost,
			qualityCost: settled.frozenS + priced.downgradePerS * downgradeS + priced.pausedPerS * pausedS + settled.disruptionS + priced.lostConsumer * dropped + refusedCost,
			actions,
			peakCpuPct: perWorker.map((xs) => Math.max(...xs)),
			meanCpuPct: perWorker.map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length),
			peakTotalCpuPct: smoothed.length ? Math.max(...smoothed) : 0,
			peakConsumers,
			rooms: new Set(scenario.groups.map((g) => g.room)).size,
			peakSplitRooms,
			pipeConsumers,
			maxEventLagMs: state.maxEventLagMs,
			failedEvents: state.failedEvents,
			wallS: (performance.now() - armStart) / 1000,
		};
	} finally {
		replayer.close();
		await foresight.detach();
		for (const w of workers) w.close();
		watch.close();
		await sleep(1000);
	}
}

// ---------------------------------------------------------------------------

const fmt = (x: number): string => x.toFixed(1);
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

function describe(r: ArmResult): string {
	return (
		`#${r.seed} ${r.policy.padEnd(20)} exposure ${fmt(r.exposure).padStart(7)} c·s  overloaded ${fmt(r.overloadedWorkerS)} worker·s  ` +
		`quality cost ${fmt(r.qualityCost).padStart(7)} (frozen ${fmt(r.frozenS)}, below layer ${fmt(r.downgradeS)}, paused ${fmt(r.pausedS)}, ` +
		`disruption ${fmt(r.disruptionS)} [moved ${r.movedConsumers}, migrated-producer receivers ${r.migratedProducerReceivers}, measured gap ${r.meanMeasuredMoveGapS === null ? '-' : `${r.meanMeasuredMoveGapS.toFixed(2)} s`}], ` +
		`dropped ${r.dropped}, refused ${r.refused} = ${fmt(r.refusedCost)})  ` +
		`cpu peak ${r.peakCpuPct.map(fmt).join('/')} mean ${r.meanCpuPct.map(fmt).join('/')} total peak ${fmt(r.peakTotalCpuPct)}  peak consumers ${r.peakConsumers}  split rooms ${r.peakSplitRooms ?? '-'} of ${r.rooms ?? '-'}  pipe consumers ${r.pipeConsumers ?? '-'}  ` +
		`actions ${JSON.stringify(r.actions)}  event lag ${Math.round(r.maxEventLagMs)} ms  failed events ${r.failedEvents}  ${fmt(r.wallS)} s  (load ${loadavg()[0]!.toFixed(2)})`
	);
}

async function main(): Promise<void> {
	const started = performance.now();
	process.stdout.write(
		`real run: ${WORKERS} workers at ${CAPACITY_PCT} % of a core each (overload above ${OVERLOAD_SHARE * CAPACITY_PCT} %), ${FAMILY} at ~${PEERS} peers, ${DURATION_S} s, ` +
			`seeds ${SEEDS.join(',')} (${HELD_OUT ? 'held out' : 'for choosing settings, not figures'}), policies ${POLICIES.join(', ')}; load average ${loadavg()[0]!.toFixed(2)}\n`,
	);
	const results: ArmResult[] = [];
	if (values.combine !== undefined) {
		for (const file of values.combine.split(',')) results.push(...(JSON.parse(readFileSync(file, 'utf8')) as ArmResult[]));
		for (const r of results) process.stdout.write(`${describe(r)}\n`);
	}
	const seeds = values.combine !== undefined ? [...new Set(results.map((r) => r.seed))] : SEEDS;
	const policies = values.combine !== undefined ? POLICIES.filter((p) => results.some((r) => r.policy === p)) : POLICIES;
	const heldOut = seeds.every((s) => s >= EVALUATION_SEED_MIN);
	if (!heldOut && seeds.some((s) => s >= EVALUATION_SEED_MIN)) throw new Error('--combine mixes choosing seeds and held-out ones');
	for (const [r, seed] of (values.combine !== undefined ? [] : SEEDS).entries()) {
		const scenario = generateScenario(FAMILY as Family, seed, { durationS: DURATION_S, peers: PEERS });
		const order = POLICIES.map((_, i) => POLICIES[(i + r) % POLICIES.length]!);
		for (const policy of order) {
			const result = await runArm(seed, scenario, policy);
			results.push(result);
			process.stdout.write(`${describe(result)}\n`);
		}
	}
	if (values.out) writeFileSync(values.out, JSON.stringify(results, null, 1));

	const baselines = policies.filter((p) => p !== FORESIGHT && p !== ADMISSION_ONLY);
	const total = (policy: Arm, key: 'exposure' | 'qualityCost'): number => results.filter((r) => r.policy === policy).reduce((a, r) => a + r[key], 0);
	const best = [...baselines].sort((a, b) => total(a, 'exposure') - total(b, 'exposure') || total(a, 'qualityCost') - total(b, 'qualityCost'))[0]!;
	const eF = total(FORESIGHT, 'exposure');
	const qF = total(FORESIGHT, 'qualityCost');
	const eB = total(best, 'exposure');
	const qB = total(best, 'qualityCost');
	// Capacity sufficed for a seed when some baseline arm's smoothed summed CPU stayed within the total budget.
	const sufficed = seeds.filter((seed) => Math.min(...results.filter((r) => r.seed === seed && baselines.includes(r.policy)).map((r) => r.peakTotalCpuPct)) <= WORKERS * CAPACITY_PCT);
	const refusedWhenSufficed = results.filter((r) => r.policy === FORESIGHT && sufficed.includes(r.seed)).reduce((a, r) => a + r.refused, 0);
	const perPolicy = Object.fromEntries(policies.map((p) => [p, { exposure: round(total(p, 'exposure')), quality_cost: round(total(p, 'qualityCost')) }]));
	const gain = (eB + 1) / (eF + 1);
	const ratio = (qF + 1) / (qB + 1);
	process.stdout.write(
		`${JSON.stringify({
			real_exposure_gain_vs_best_baseline: round(gain, 2),
			real_quality_cost_ratio: round(ratio, 2),
			best_baseline: best,
			exposure_foresight: round(eF),
			exposure_best_baseline: round(eB),
			quality_cost_foresight: round(qF),
			quality_cost_best_baseline: round(qB),
			refused_joins_foresight: results.filter((r) => r.policy === FORESIGHT).reduce((a, r) => a + r.refused, 0),
			refused_joins_foresight_when_capacity_sufficed: refusedWhenSufficed,
			seeds_capacity_sufficed: sufficed,
			goals: { exposure_gain_ge_2: gain >= 2, quality_ratio_le_1: ratio <= 1, zero_refused_when_capacity_sufficed: refusedWhenSufficed === 0 },
			policies: perPolicy,
			runs: results.map((r) => ({
				seed: r.seed,
				policy: r.policy,
				exposure: round(r.exposure),
				quality_cost: round(r.qualityCost),
				frozen_s: round(r.frozenS),
				below_layer_s: round(r.downgradeS),
				paused_s: round(r.pausedS),
				disruption_s: round(r.disruptionS),
				moved: r.movedConsumers,
				migrated_receivers: r.migratedProducerReceivers,
				dropped: r.dropped,
				refused: r.refused,
				overloaded_worker_s: round(r.overloadedWorkerS),
				peak_total_cpu_pct: round(r.peakTotalCpuPct),
				peak_split_rooms: r.peakSplitRooms,
				pipe_consumers: r.pipeConsumers,
			})),
			held_out: heldOut,
			seeds,
			family: FAMILY,
			peers: PEERS,
			duration_s: DURATION_S,
			workers: WORKERS,
			capacity_pct: CAPACITY_PCT,
			runs_per_policy: seeds.length,
			wall_s: round((performance.now() - started) / 1000),
			load_average_1m: round(loadavg()[0]!, 2),
		})}\n`,
	);
}

main().catch((err: unknown) => {
	process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
	process.exit(1);
});
