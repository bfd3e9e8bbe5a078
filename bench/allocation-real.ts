/**
 * The allocation evaluation's real run (issue 7): 2 real mediasoup workers, the
 * `bursty-joins` scenario replayed through the real load generator (recorded media
 * over SRTP PlainTransports), peers placed per join by the policy under test and
 * piped between the workers as a multi-worker app's rooms are. The same workload
 * runs under eduMEET's least-loaded-66 and under Foresight, interleaved (A B B A …)
 * so drifting machine load does not favour one; Foresight profiles and predicts in
 * both arms (only the policy differs), so profiling overhead is the same.
 *
 * Several rooms start staggered (each one a bursty-joins instance with its own seed):
 * placement decides where each room's peers go, and Foresight's live actions
 * (layers, pause, drop, admission) act on what it predicts.
 *
 * Metrics, as in the simulator (bench/allocation.ts), from real worker CPU sampled
 * every second:
 *   - exposure: consumer-seconds on workers above 85 % of their CPU budget
 *     (`--capacity`, % of one core: on 2 shared cores a worker cannot get a whole
 *     one while the load generator and the other worker run);
 *   - quality cost: layer-downgrade-seconds + paused-consumer-seconds + dropped
 *     consumers + refused peers (each dropped consumer or refused peer counted as
 *     the seconds it would have had left, so the policies cannot trade exposure for
 *     an unpriced refusal).
 *
 *   npx tsx bench/allocation-real.ts [--rooms 4] [--stagger 12] [--capacity 60] [--reps 1]
 *
 * Last line: {"exposure_least_loaded": …, "exposure_foresight": …, "same_ordering": …, …}
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as mediasoup from 'mediasoup';
import { attach, type Foresight } from '../plugin/foresight';
import type { AllocationPolicyName } from '../plugin/config';
import { createLogger } from '../plugin/log';
import { loadScenario } from '../training/loadgen/scenario';
import { Replayer } from '../training/loadgen/replayer';
import { runScenario, type RunState } from '../training/loadgen/runner';
import { MEDIA_CODECS } from '../training/media/rig';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
	options: {
		rooms: { type: 'string', default: '4' },
		stagger: { type: 'string', default: '12' },
		capacity: { type: 'string', default: '60' },
		reps: { type: 'string', default: '1' },
		scenario: { type: 'string', default: 'bursty-joins' },
	},
});
const ROOMS = Number(values.rooms);
const STAGGER_S = Number(values.stagger);
const CAPACITY_PCT = Number(values.capacity);
const REPS = Number(values.reps);
const OVERLOAD_SHARE = 0.85;
const WORKERS = 2;
const RECORDINGS_DIR = join(__dirname, '..', 'test', 'fixtures', 'recordings');
const SCENARIO = loadScenario(join(__dirname, '..', 'training', 'loadgen', 'scenarios', `${values.scenario}.json`));
const ARMS: AllocationPolicyName[] = ['least-loaded-66', 'foresight'];

interface ArmResult {
	policy: AllocationPolicyName;
	exposure: number;
	downgradeS: number;
	pausedS: number;
	dropped: number;
	refused: number;
	qualityCost: number;
	actions: Record<string, number>;
	peakCpuPct: number[];
	meanCpuPct: number[];
	overloadedS: number;
	peakConsumers: number;
	maxEventLagMs: number;
}

async function runArm(policy: AllocationPolicyName): Promise<ArmResult> {
	const logger = createLogger('error');
	const foresight: Foresight = attach(mediasoup, {
		useEnv: false,
		logger,
		logLevel: 'error',
		dryRun: false,
		loadSampleIntervalMs: 1000,
		statsIntervalMs: 1000,
		allocation: { policy, workerCapacityPct: CAPACITY_PCT },
		mediaCodecs: MEDIA_CODECS,
	});
	const workers = await Promise.all(Array.from({ length: WORKERS }, () => mediasoup.createWorker({ logLevel: 'warn' })));
	const replayer = new Replayer({ seed: 7 });
	const downgraded = new Set<string>();
	const paused = new Set<string>();
	const actions: Record<string, number> = {};
	let dropped = 0;
	foresight.on('audit', (entry) => {
		if (entry.verdict !== 'applied' || entry.outcome?.status !== 'ok') return;
		const a = entry.action;
		actions[a.type] = (actions[a.type] ?? 0) + 1;
		if (a.type === 'setConsumerLayers') downgraded.add(a.consumerId);
		else if (a.type === 'restoreLayers') downgraded.delete(a.consumerId);
		else if (a.type === 'pauseConsumer') paused.add(a.consumerId);
		else if (a.type === 'resumeConsumer') paused.delete(a.consumerId);
		else if (a.type === 'dropConsumer') dropped++;
	});
	const cpu = new Map<string, number[]>();
	let exposure = 0;
	let overloadedS = 0;
	let downgradeS = 0;
	let pausedS = 0;
	let peakConsumers = 0;
	const live = (ids: Set<string>): number => {
		for (const id of ids) if (!foresight.registry.has(id)) ids.delete(id);
		return ids.size;
	};
	foresight.on('workerLoad', (s) => {
		const interval = foresight.options.loadSampleIntervalMs / 1000;
		(cpu.get(s.workerId) ?? cpu.set(s.workerId, []).get(s.workerId)!).push(s.cpuPct);
		if (s.cpuPct > OVERLOAD_SHARE * CAPACITY_PCT) {
			exposure += s.consumers * interval;
			overloadedS += interval;
		}
		// Quality is counted once per sampling round, on the first worker's sample.
		if (s.workerId === String(workers[0]!.pid)) {
			downgradeS += live(downgraded) * interval;
			pausedS += live(paused) * interval;
			peakConsumers = Math.max(peakConsumers, [...foresight.registry.all('consumer')].length);
		}
	});

	let refused = 0;
	let refusedSeconds = 0;
	let maxEventLagMs = 0;
	const runs: Array<Promise<RunState>> = [];
	const started = performance.now();
	for (let room = 0; room < ROOMS; room++) {
		const roomId = `room-${room}`;
		const startAt = started + room * STAGGER_S * 1000;
		runs.push(
			sleep(Math.max(0, startAt - performance.now())).then(() =>
				runScenario(SCENARIO, {
					placePeer: async (peer, group) => {
						const answer = await foresight.place({ peerId: `${roomId}/${peer}`, roomId, sends: ['video', 'audio'], consumes: true, priority: group === 'host' ? 100 : 50 });
						if (answer.decision === 'place') return answer.router;
						refused++;
						refusedSeconds += SCENARIO.durationS - (performance.now() - startAt) / 1000;
						return undefined;
					},
					replayer,
					recordingsDir: RECORDINGS_DIR,
					seed: SCENARIO.seed + room,
				}),
			),
		);
	}
	try {
		for (const state of await Promise.all(runs)) maxEventLagMs = Math.max(maxEventLagMs, state.maxEventLagMs);
		// Consumers dropped by Foresight lose the rest of their stay; price them as the scenario's mean stay.
		const droppedS = dropped * (SCENARIO.durationS / 2);
		const perWorker = [...cpu.values()];
		return {
			policy,
			exposure,
			downgradeS,
			pausedS,
			dropped,
			refused,
			qualityCost: downgradeS + pausedS + droppedS + refusedSeconds,
			actions,
			peakCpuPct: perWorker.map((xs) => Math.max(...xs)),
			meanCpuPct: perWorker.map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length),
			overloadedS,
			peakConsumers,
			maxEventLagMs,
		};
	} finally {
		replayer.close();
		await foresight.detach();
		for (const w of workers) w.close();
		await sleep(1000);
	}
}

const fmt = (x: number): string => x.toFixed(1);

async function main(): Promise<void> {
	const order: AllocationPolicyName[] = [];
	for (let r = 0; r < REPS; r++) order.push(...(r % 2 === 0 ? ARMS : [...ARMS].reverse()));
	process.stdout.write(
		`real run: ${WORKERS} workers, ${ROOMS} × ${SCENARIO.name} (${SCENARIO.durationS} s each, staggered ${STAGGER_S} s), worker budget ${CAPACITY_PCT} % of a core, overload above ${OVERLOAD_SHARE * CAPACITY_PCT} %; load average ${loadavg()[0]!.toFixed(2)}\n`,
	);
	const results: ArmResult[] = [];
	for (const policy of order) {
		const r = await runArm(policy);
		results.push(r);
		process.stdout.write(
			`${policy.padEnd(16)} exposure ${fmt(r.exposure).padStart(7)} c·s  overloaded ${fmt(r.overloadedS)} worker·s  quality cost ${fmt(r.qualityCost).padStart(7)} (downgrade ${fmt(r.downgradeS)}, paused ${fmt(r.pausedS)}, dropped ${r.dropped}, refused ${r.refused})  cpu peak ${r.peakCpuPct.map(fmt).join('/')} mean ${r.meanCpuPct.map(fmt).join('/')}  peak consumers ${r.peakConsumers}  actions ${JSON.stringify(r.actions)}  event lag ${Math.round(r.maxEventLagMs)} ms  (load ${loadavg()[0]!.toFixed(2)})\n`,
		);
	}
	const total = (policy: AllocationPolicyName, key: 'exposure' | 'qualityCost'): number =>
		results.filter((r) => r.policy === policy).reduce((a, r) => a + r[key], 0) / REPS;
	const exposureLL = total('least-loaded-66', 'exposure');
	const exposureF = total('foresight', 'exposure');
	process.stdout.write(
		`${JSON.stringify({
			exposure_least_loaded: Number(exposureLL.toFixed(1)),
			exposure_foresight: Number(exposureF.toFixed(1)),
			exposure_gain: exposureF > 0 ? Number((exposureLL / exposureF).toFixed(2)) : exposureLL > 0 ? 'inf' : null,
			quality_cost_least_loaded: Number(total('least-loaded-66', 'qualityCost').toFixed(1)),
			quality_cost_foresight: Number(total('foresight', 'qualityCost').toFixed(1)),
			same_ordering: exposureF < exposureLL,
			rooms: ROOMS,
			stagger_s: STAGGER_S,
			capacity_pct: CAPACITY_PCT,
			reps: REPS,
			load_average_1m: Number(loadavg()[0]!.toFixed(2)),
		})}\n`,
	);
}

main().catch((err: unknown) => {
	process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
	process.exit(1);
});
