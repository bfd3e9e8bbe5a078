/**
 * Allocation policies compared on the trace-driven simulator (definitions of every figure:
 * docs/allocation-metrics.md). By default: held-out generated scenarios, seeds
 * 10000–10019 (family = FAMILIES[seed % 6] of training/loadgen/generator.ts, sized so the
 * peak is ≥ 5,000 streams), 32 workers, 240 s each. Foresight is driven through the live
 * prediction engine (sim/liveView.ts); baselines see measured CPU only; moving media is
 * priced as disruption and CPU (see plugin/allocate/sim/simulator.ts).
 *
 *   npx tsx bench/allocation.ts [--seeds 10000-10019] [--duration S] [--workers W] [--families a,b]
 *       [--policies a,b] [--set key=value …] [--safety key=value …] [--out runs.json] [--combine a.json,b.json]
 *       [--legacy --seed N --scenarios a,b] [--trace-every S] [--oracle]
 *
 * Seeds ≥ 10000 are for evaluation only: tune with --seeds below 10000. --out writes every
 * run (scenario × policy) as JSON, --combine reports on such files together (a long
 * evaluation can run in chunks). --legacy runs the five hand-written scenarios of
 * plugin/allocate/sim/scenarios.ts instead (at --seed).
 *
 * Last line (Foresight against the baseline with the least total exposure, which
 * includes reactive-migration):
 * - exposure_gain_vs_best_baseline = (E_best + 1) / (E_foresight + 1), E summed over scenarios;
 * - quality_cost_ratio_vs_that_baseline = (Q_foresight + 1) / (Q_best + 1), migration disruption included;
 * - scenarios_worse_than_best_baseline: scenarios where Foresight has both more exposure and
 *   more quality cost than that scenario's best baseline (least exposure, then least quality cost);
 * - mean_slack, s85 (means over scenarios), overload_worker_s, median_lead_time_s;
 * - absolute exposures and quality costs of both.
 */
import { parseArgs } from 'node:util';
import { baselinePolicies, FORESIGHT_DEFAULTS, guardedForesight, type ForesightPolicyOptions } from '../plugin/allocate/policies';
import { SAFETY_DEFAULTS, type SafetyOptions } from '../plugin/allocate/safety';
import { readFileSync, writeFileSync } from 'node:fs';
import { buildScenario, SCENARIO_NAMES, type Scenario } from '../plugin/allocate/sim/scenarios';
import { EVALUATION_SEED_MIN, FAMILIES, type Family } from '../training/loadgen/generator';
import { generatedSimScenario, peakSimStreams } from '../training/loadgen/simScenario';
import { simulate, SIM_DEFAULTS, type SimTick } from '../plugin/allocate/sim/simulator';
import { fixedPlacementSlack, fluidSecond, repackSecond, type OracleOptions } from '../plugin/allocate/sim/oracle';
import { TRUTH } from '../plugin/allocate/sim/groundTruth';
import { meanSlack, median, type ScenarioMetrics } from '../plugin/allocate/sim/metrics';
import { parseSeeds } from './support/seeds';

const { values } = parseArgs({
	options: {
		seeds: { type: 'string', default: '10000-10019' },
		families: { type: 'string', default: FAMILIES.join(',') },
		legacy: { type: 'boolean', default: false },
		seed: { type: 'string', default: '1' },
		duration: { type: 'string' },
		workers: { type: 'string', default: '32' },
		scenarios: { type: 'string', default: SCENARIO_NAMES.join(',') },
		out: { type: 'string' },
		combine: { type: 'string' },
		policies: { type: 'string' },
		set: { type: 'string', multiple: true, default: [] },
		safety: { type: 'string', multiple: true, default: [] },
		'trace-every': { type: 'string' },
		oracle: { type: 'boolean', default: false },
	},
});
/** Parses `key=value` overrides of a numeric/boolean options object, each checked against the defaults' type. */
function overrides<T extends object>(flag: string, assignments: string[], defaults: Readonly<T>): Partial<T> {
	const out: Record<string, number | boolean> = {};
	for (const assignment of assignments) {
		const [key = '', raw] = assignment.split('=');
		const current: unknown = defaults[key as keyof T];
		const value = typeof current === 'boolean' ? (raw === 'true' ? true : raw === 'false' ? false : undefined) : typeof current === 'number' && raw !== undefined && raw !== '' ? Number(raw) : undefined;
		if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) throw new Error(`${flag} ${assignment}: expected key=value with a numeric or boolean option of ${Object.keys(defaults).join(', ')} and a value of its type`);
		out[key] = value;
	}
	if (assignments.length > 0) process.stderr.write(`${flag} overrides: ${JSON.stringify(out)}\n`);
	return out as Partial<T>;
}
const foresightOverrides = overrides<ForesightPolicyOptions>('--set', values.set, FORESIGHT_DEFAULTS);
const safetyOverrides = overrides<SafetyOptions>('--safety', values.safety, SAFETY_DEFAULTS);
/**
 * Peers at the busiest moment per family, so every generated scenario peaks at ≥ 5,000
 * streams on 32 workers (sized on seed 1, a tuning seed; the evaluation reports each
 * scenario's own peak).
 */
const FAMILY_PEERS: Readonly<Record<Family, number>> = {
	'grid-meetings': 700,
	'last-n-meeting': 150,
	'stage-webinar': 1100,
	'classroom-bursts': 320,
	'audio-stage': 1700,
	'breakout-rooms': 120,
};
const workers = Number(values.workers);
const durationS = Number(values.duration ?? (values.legacy ? 600 : 240));
const familyFilter = new Set(values.families.split(','));
for (const f of familyFilter) if (!(FAMILIES as readonly string[]).includes(f)) throw new Error(`unknown family ${f}; known: ${FAMILIES.join(', ')}`);
/** The scenarios of this run, built lazily (a generated one takes a second or two). */
const scenarioList: Array<{ name: string; seed: number; build: () => Scenario }> = values.legacy
	? values.scenarios.split(',').map((name) => {
			const known = SCENARIO_NAMES.find((n) => n === name);
			if (!known) throw new Error(`unknown scenario ${name}; known: ${SCENARIO_NAMES.join(', ')}`);
			return { name, seed: Number(values.seed), build: () => buildScenario(known, { seed: Number(values.seed), durationS, workers }) };
		})
	: parseSeeds(values.seeds)
			.map((seed) => ({ seed, family: FAMILIES[seed % FAMILIES.length]! }))
			.filter(({ family }) => familyFilter.has(family))
			.map(({ seed, family }) => ({ name: `${family}#${seed}`, seed, build: () => generatedSimScenario(family, seed, { workers, durationS, peers: FAMILY_PEERS[family] }) }));
const seedsUsed = scenarioList.map((s) => s.seed);
const heldOut = !values.legacy && seedsUsed.every((s) => s >= EVALUATION_SEED_MIN);
const tuning = !values.legacy && seedsUsed.every((s) => s < EVALUATION_SEED_MIN);
if (!values.legacy && !heldOut && !tuning) throw new Error(`--seeds mixes tuning seeds (< ${EVALUATION_SEED_MIN}) and held-out ones: run them apart`);
const FORESIGHT = 'foresight';
const allPolicies = [...baselinePolicies(), guardedForesight(foresightOverrides, safetyOverrides)];
const policies = values.policies === undefined ? allPolicies : allPolicies.filter((p) => values.policies!.split(',').includes(p.name));
// A chunk of a long run (--out) may leave Foresight to another chunk; a report needs it.
if (values.combine === undefined && values.out === undefined && !policies.some((p) => p.name === FORESIGHT)) throw new Error(`--policies must include ${FORESIGHT}; known: ${allPolicies.map((p) => p.name).join(', ')}`);

const traceEveryS = values['trace-every'] === undefined ? undefined : Number(values['trace-every']);
if (traceEveryS !== undefined && !(traceEveryS > 0)) throw new Error('--trace-every expects a positive number of seconds');

/**
 * Where Foresight's slack comes from, every `everyS` simulated seconds: the true CPU of each
 * worker hosting a stream, and the slack an ideal packer would leave filling workers to
 * Foresight's own fill target (the same total demand on as few workers as it takes).
 */
function traceSlack(scenario: string, tick: { t: number; demand: ReadonlyMap<string, number>; hosting: ReadonlySet<string> }, everyS: number): void {
	if (tick.t % everyS !== 0 || tick.hosting.size === 0) return;
	const loads = [...tick.hosting].map((id) => tick.demand.get(id)!).sort((a, b) => b - a);
	const core = TRUTH.saturationPct;
	const fill = foresightOverrides.fillBelowPct ?? FORESIGHT_DEFAULTS.fillBelowPct;
	const slack = meanSlack(loads, core);
	const ideal = fluidSecond(loads, { capPct: fill, basePct: 0, corePct: core });
	process.stderr.write(`${scenario} t=${tick.t}s hosting=${loads.length} slack=${slack.toFixed(2)} ideal@${fill}%=${ideal.toFixed(2)} cpu%=${loads.map((l) => l.toFixed(0)).join(',')}\n`);
}

const ORACLE: OracleOptions = { capPct: SIM_DEFAULTS.overloadPct, basePct: TRUTH.workerBasePct, corePct: TRUTH.saturationPct };
/**
 * Caps the per-second repacker is also run at: below 85 is what a live policy's noise
 * margin leaves it (its p95 must stay under the limit), above 85 shows how far past the
 * overload line even perfect knowledge must fill workers to reach a given slack.
 */
const ORACLE_CAPS: readonly number[] = [80, 82, ORACLE.capPct, 86, 88, 90];
const ORACLE_CAP_INDEX = ORACLE_CAPS.indexOf(ORACLE.capPct);
interface OracleFigures {
	scenario: string;
	fluid: number;
	repack: number;
	repackWorkers: number;
	/** Per-second repack slack at each of ORACLE_CAPS. */
	repackAtCap: number[];
	fixed: number;
	fixedWorkers: number;
}
/** Collects the rooms' true demand during Foresight's run; `finish` packs it with the oracles. */
function oracleRecorder(scenario: string, durationS: number): { onTick: (tick: SimTick) => void; finish: () => OracleFigures } {
	const series = new Map<string, Float64Array>();
	let fluid = 0;
	let repackWorkers = 0;
	const repackAtCap = ORACLE_CAPS.map(() => 0);
	let ticks = 0;
	return {
		onTick(tick) {
			const rooms = tick.roomDemand!;
			for (const [roomId, pct] of rooms) {
				let s = series.get(roomId);
				if (!s) series.set(roomId, (s = new Float64Array(durationS)));
				s[tick.t] = pct;
			}
			if (rooms.size === 0) return;
			fluid += fluidSecond(rooms.values(), ORACLE);
			ORACLE_CAPS.forEach((capPct, i) => {
				const packed = repackSecond(rooms.values(), { ...ORACLE, capPct });
				repackAtCap[i]! += packed.slack;
				if (i === ORACLE_CAP_INDEX) repackWorkers = Math.max(repackWorkers, packed.workers);
			});
			ticks++;
		},
		finish() {
			const fixed = fixedPlacementSlack(series, durationS, ORACLE);
			return { scenario, fluid: fluid / Math.max(1, ticks), repack: repackAtCap[ORACLE_CAP_INDEX]! / Math.max(1, ticks), repackWorkers, repackAtCap: repackAtCap.map((v) => v / Math.max(1, ticks)), fixed: fixed.slack, fixedWorkers: fixed.workers };
		},
	};
}

interface RunRecord {
	scenario: string;
	seed: number;
	/** Peak streams of the scenario's timeline with every join admitted (app-paused consumers left out). */
	timelinePeakStreams: number;
	metrics: ScenarioMetrics;
	wallMs: number;
}
const records: RunRecord[] = [];
const oracles: OracleFigures[] = [];
const started = Date.now();
if (values.combine !== undefined) {
	for (const file of values.combine.split(',')) records.push(...(JSON.parse(readFileSync(file, 'utf8')) as RunRecord[]));
} else {
	for (const entry of scenarioList) {
		const scenario = entry.build();
		const timelinePeakStreams = values.legacy ? 0 : peakSimStreams(scenario);
		for (const policy of policies) {
			const isForesight = policy.name === FORESIGHT;
			const recorder = values.oracle && isForesight ? oracleRecorder(entry.name, scenario.durationS) : undefined;
			const onTick = (tick: SimTick): void => {
				if (traceEveryS !== undefined) traceSlack(entry.name, tick, traceEveryS);
				recorder?.onTick(tick);
			};
			const hooked = isForesight && (recorder !== undefined || traceEveryS !== undefined);
			const t0 = Date.now();
			// Only Foresight reads forecasts: the baselines see measured CPU, so the engine runs for it alone.
			const metrics = simulate(scenario, policy, { predict: isForesight, ...(hooked ? { onTick, roomDemand: recorder !== undefined } : {}) }).metrics;
			records.push({ scenario: entry.name, seed: entry.seed, timelinePeakStreams, metrics, wallMs: Date.now() - t0 });
			if (recorder) oracles.push(recorder.finish());
			process.stderr.write(`\r${entry.name} ${policy.name} ${((Date.now() - t0) / 1000).toFixed(0)} s                    `);
		}
	}
	process.stderr.write(`\rsimulated in ${((Date.now() - started) / 1000).toFixed(0)} s${' '.repeat(40)}\n`);
	if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(records));
}
if (!records.some((r) => r.metrics.policy === FORESIGHT)) {
	console.log(JSON.stringify({ written: values.out ?? null, runs: records.length }));
	process.exit(0);
}
const results: ScenarioMetrics[] = records.map((r) => r.metrics);
const scenarioNames = [...new Set(records.map((r) => r.scenario))];
const policyNames = [...new Set(records.map((r) => r.metrics.policy))];
const fmt = (v: number | null, digits = 0): string => (v === null ? '—' : v.toFixed(digits));
const columns = ['policy', 'exposure c·s', 'loss c·s', 'overload w·s', 'downgrade c·s', 'paused c·s', 'disrupted c·s', 'dropped', 'refused', 'quality cost', 'migrations', 'moved', 'actions', 'split rooms', 'pipes', 'slack', 'S85', 'lead med s', 'crossings (unans.)', 'peak streams', 'decide ms'];
function row(m: ScenarioMetrics): string[] {
	return [
		m.policy,
		fmt(m.exposureConsumerS),
		fmt(m.overloadLossConsumerS),
		fmt(m.overloadWorkerS),
		fmt(m.layerDowngradeS),
		fmt(m.pausedConsumerS),
		fmt(m.disruptionConsumerS),
		fmt(m.droppedConsumers),
		fmt(m.refusedPeers),
		fmt(m.qualityCost),
		fmt(m.migrations),
		fmt(m.movedConsumers),
		fmt(m.actions),
		fmt(m.peakSplitRooms ?? null),
		fmt(m.peakPipes ?? null),
		fmt(m.meanSlack, 3),
		fmt(m.s85, 3),
		fmt(median(m.leadTimesS), 1),
		`${m.crossings} (${m.unansweredCrossings})`,
		fmt(m.peakStreams),
		fmt(m.decisionMsMedian, 2),
	];
}
function printTable(title: string, rows: string[][]): void {
	const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
	console.log(`\n${title}`);
	console.log(columns.map((c, i) => c.padStart(widths[i]!)).join('  '));
	for (const r of rows) console.log(r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
}
for (const name of scenarioNames) {
	const peak = records.find((r) => r.scenario === name)?.timelinePeakStreams ?? 0;
	printTable(`${name} (${workers} workers, ${durationS} s${peak > 0 ? `, timeline peak ${peak} streams` : ''})`, results.filter((m) => m.scenario === name).map(row));
}
interface Totals {
	policy: string;
	exposure: number;
	quality: number;
	slack: number;
	s85: number;
	overloadWorkerS: number;
	leadTimes: number[];
	crossings: number;
	unanswered: number;
}
const totals: Totals[] = policyNames.map((name) => {
	const mine = results.filter((m) => m.policy === name);
	return {
		policy: name,
		exposure: mine.reduce((s, m) => s + m.exposureConsumerS, 0),
		quality: mine.reduce((s, m) => s + m.qualityCost, 0),
		slack: mine.reduce((s, m) => s + m.meanSlack, 0) / mine.length,
		s85: mine.reduce((s, m) => s + m.s85, 0) / mine.length,
		overloadWorkerS: mine.reduce((s, m) => s + m.overloadWorkerS, 0),
		leadTimes: mine.flatMap((m) => m.leadTimesS),
		crossings: mine.reduce((s, m) => s + m.crossings, 0),
		unanswered: mine.reduce((s, m) => s + m.unansweredCrossings, 0),
	};
});
console.log('\nall scenarios');
for (const t of totals) {
	console.log(`${t.policy.padEnd(22)} exposure ${fmt(t.exposure).padStart(9)} c·s   quality cost ${fmt(t.quality).padStart(9)} c·s   overload ${fmt(t.overloadWorkerS).padStart(5)} w·s   mean slack ${t.slack.toFixed(3)}   S85 ${t.s85.toFixed(3)}   lead median ${fmt(median(t.leadTimes), 1).padStart(5)} s   crossings ${t.crossings} (${t.unanswered} unanswered)`);
}
if (oracles.length > 0) {
	console.log(`\nreference slack: true demand known in advance, every worker ≤ ${ORACLE.capPct}% (rooms larger than a worker cut into full workers plus a remainder; pipes, worker factors and jitter left out)`);
	console.log(`${'scenario'.padEnd(22)}  ${'foresight'.padStart(9)}  ${'fluid'.padStart(6)}  ${'repack/s'.padStart(8)}  ${'workers'.padStart(7)}  ${'fixed@join'.padStart(10)}  ${'workers'.padStart(7)}`);
	for (const o of oracles) {
		const mine = results.find((m) => m.scenario === o.scenario && m.policy === FORESIGHT)!;
		console.log(`${o.scenario.padEnd(22)}  ${mine.meanSlack.toFixed(3).padStart(9)}  ${o.fluid.toFixed(3).padStart(6)}  ${o.repack.toFixed(3).padStart(8)}  ${String(o.repackWorkers).padStart(7)}  ${o.fixed.toFixed(3).padStart(10)}  ${String(o.fixedWorkers).padStart(7)}`);
	}
	const mean = (f: (o: OracleFigures) => number): string => (oracles.reduce((s, o) => s + f(o), 0) / oracles.length).toFixed(3);
	console.log(`${'mean'.padEnd(22)}  ${''.padStart(9)}  ${mean((o) => o.fluid).padStart(6)}  ${mean((o) => o.repack).padStart(8)}  ${''.padStart(7)}  ${mean((o) => o.fixed).padStart(10)}`);
	console.log('\nrepack/s with every worker at or under each cap (% of a core)');
	console.log(`${'scenario'.padEnd(22)}  ${ORACLE_CAPS.map((c) => `≤${c}%`.padStart(6)).join('  ')}`);
	for (const o of oracles) console.log(`${o.scenario.padEnd(22)}  ${o.repackAtCap.map((v) => v.toFixed(3).padStart(6)).join('  ')}`);
	console.log(`${'mean'.padEnd(22)}  ${ORACLE_CAPS.map((_, i) => mean((o) => o.repackAtCap[i]!).padStart(6)).join('  ')}`);
}
const foresight = totals.find((t) => t.policy === FORESIGHT)!;
const baselines = totals.filter((t) => t.policy !== FORESIGHT);
// A Foresight-only subset run has no baseline to compare with: its ratios are left null.
const best = baselines.length > 0 ? baselines.reduce((a, b) => (b.exposure < a.exposure || (b.exposure === a.exposure && b.quality < a.quality) ? b : a)) : undefined;
console.log(`best baseline by total exposure: ${best?.policy ?? '— (none run)'}`);

/** Per scenario: its own best baseline (least exposure, then least quality cost), and whether Foresight lost on both. */
const perScenario = scenarioNames.map((name) => {
	const rows = results.filter((m) => m.scenario === name);
	const f = rows.find((m) => m.policy === FORESIGHT)!;
	const bases = rows.filter((m) => m.policy !== FORESIGHT);
	const b = bases.length > 0 ? bases.reduce((x, y) => (y.exposureConsumerS < x.exposureConsumerS || (y.exposureConsumerS === x.exposureConsumerS && y.qualityCost < x.qualityCost) ? y : x)) : undefined;
	const worse = b !== undefined && f.exposureConsumerS > b.exposureConsumerS && f.qualityCost > b.qualityCost;
	return { scenario: name, best: b?.policy ?? null, foresightExposure: Math.round(f.exposureConsumerS), bestExposure: b ? Math.round(b.exposureConsumerS) : null, foresightQuality: Math.round(f.qualityCost), bestQuality: b ? Math.round(b.qualityCost) : null, worse };
});
console.log('\nper scenario: Foresight against that scenario\'s best baseline (exposure c·s / quality cost c·s)');
for (const p of perScenario) {
	console.log(`${p.scenario.padEnd(26)} foresight ${String(p.foresightExposure).padStart(8)} / ${String(p.foresightQuality).padStart(8)}   ${String(p.best).padEnd(22)} ${String(p.bestExposure).padStart(8)} / ${String(p.bestQuality).padStart(8)}${p.worse ? '   WORSE on both' : ''}`);
}
const seedsRun = [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b);
const peaks = [...new Set(records.map((r) => `${r.scenario}\u0000${r.timelinePeakStreams}`))].map((k) => Number(k.split('\u0000')[1]));
const simulatedPeaks = scenarioNames.map((name) => Math.max(...results.filter((m) => m.scenario === name).map((m) => m.peakStreams)));
console.log(
	JSON.stringify({
		exposure_gain_vs_best_baseline: best ? Number(((best.exposure + 1) / (foresight.exposure + 1)).toFixed(2)) : null,
		quality_cost_ratio_vs_that_baseline: best ? Number(((foresight.quality + 1) / (best.quality + 1)).toFixed(3)) : null,
		scenarios_worse_than_best_baseline: best ? perScenario.filter((p) => p.worse).length : null,
		mean_slack: Number(foresight.slack.toFixed(3)),
		s85: Number(foresight.s85.toFixed(3)),
		overload_worker_s: foresight.overloadWorkerS,
		median_lead_time_s: median(foresight.leadTimes),
		best_baseline: best?.policy ?? null,
		foresight_exposure_consumer_s: Math.round(foresight.exposure),
		best_baseline_exposure_consumer_s: best ? Math.round(best.exposure) : null,
		foresight_quality_cost: Math.round(foresight.quality),
		best_baseline_quality_cost: best ? Math.round(best.quality) : null,
		lead_time_samples: foresight.leadTimes.length,
		unanswered_crossings: foresight.unanswered,
		scenarios: scenarioNames.length,
		seeds: seedsRun.length > 0 ? `${seedsRun[0]}-${seedsRun[seedsRun.length - 1]}` : null,
		held_out: seedsRun.every((s) => s >= EVALUATION_SEED_MIN),
		workers,
		min_timeline_peak_streams: peaks.length > 0 ? Math.min(...peaks) : null,
		min_simulated_peak_streams: simulatedPeaks.length > 0 ? Math.min(...simulatedPeaks) : null,
	}),
);
