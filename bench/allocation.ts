/**
 * Allocation policies compared on the trace-driven simulator: every scenario at 32
 * workers, each policy seeing only noisy, lagged observations and the predictor.
 *
 *   npx tsx bench/allocation.ts [--seed N] [--duration S] [--workers W] [--scenarios a,b] [--policies a,b] [--set key=value …] [--safety key=value …] [--trace-every S] [--oracle]
 *
 * --scenarios and --policies run a subset while iterating (the goals are judged on the
 * full run only: every scenario, every policy). --set overrides a Foresight option
 * (FORESIGHT_DEFAULTS) for a sweep, --safety one of its guard (SAFETY_DEFAULTS): numbers and true/false.
 * --trace-every S prints Foresight's hosting workers and their slack every S simulated seconds.
 * --oracle adds reference slack per scenario (plugin/allocate/sim/oracle.ts): what packers
 * that know the true demand, future included, leave with every worker at or under 85% —
 * the fluid bound, best-fit decreasing repacked every second (migrations free), and rooms
 * placed once at arrival for good (no migrations). Bounds to judge against, not policies.
 * The repacker is also run at caps around 85% (ORACLE_CAPS): what slack perfect knowledge
 * reaches at the fill a live policy's noise margin allows, and how far past 85% it must go.
 *
 * Figures of the last line (Foresight against the baseline with the least exposure):
 * - exposure_gain_vs_best_baseline = (E_best + 1) / (E_foresight + 1), where E is the
 *   overload exposure summed over all scenarios: consumer-seconds of un-paused consumers
 *   on workers whose true CPU demand exceeded 85% of a core. The +1 consumer-second keeps
 *   the ratio finite when a policy reaches zero.
 * - quality_cost_ratio_vs_that_baseline = (Q_foresight + 1) / (Q_best + 1), Q summed over
 *   scenarios: 0.5 × layer-downgrade consumer-seconds + 1 × paused consumer-seconds
 *   + 60 × (dropped consumers + consumers refused peers would have had).
 * - mean_slack: Foresight's unused share of a core on workers hosting any stream,
 *   time-averaged per scenario, then averaged over scenarios.
 * - median_lead_time_s: median over Foresight's threshold crossings (counterfactual load
 *   of a worker passing 85% after being below 70%) of crossing time − first corrective
 *   action on that worker since it was last below 70%; crossings with no action within
 *   30 s after are counted separately as unanswered. Corrective = relieving that worker
 *   (a rebalance off it or a degrade on it): restores and consolidation moves, which
 *   answer no crossing, do not count.
 */
import { parseArgs } from 'node:util';
import { baselinePolicies, FORESIGHT_DEFAULTS, guardedForesight, type ForesightPolicyOptions } from '../plugin/allocate/policies';
import { SAFETY_DEFAULTS, type SafetyOptions } from '../plugin/allocate/safety';
import { buildScenario, SCENARIO_NAMES } from '../plugin/allocate/sim/scenarios';
import { simulate, SIM_DEFAULTS, type SimTick } from '../plugin/allocate/sim/simulator';
import { fixedPlacementSlack, fluidSecond, repackSecond, type OracleOptions } from '../plugin/allocate/sim/oracle';
import { TRUTH } from '../plugin/allocate/sim/groundTruth';
import { meanSlack, median, type ScenarioMetrics } from '../plugin/allocate/sim/metrics';

const { values } = parseArgs({
	options: {
		seed: { type: 'string', default: '1' },
		duration: { type: 'string', default: '600' },
		workers: { type: 'string', default: '32' },
		scenarios: { type: 'string', default: SCENARIO_NAMES.join(',') },
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
const scenarioNames = values.scenarios.split(',').map((name) => {
	const known = SCENARIO_NAMES.find((n) => n === name);
	if (!known) throw new Error(`unknown scenario ${name}; known: ${SCENARIO_NAMES.join(', ')}`);
	return known;
});
const scenarioOptions = { seed: Number(values.seed), durationS: Number(values.duration), workers: Number(values.workers) };
const FORESIGHT = 'foresight';
const allPolicies = [...baselinePolicies(), guardedForesight(foresightOverrides, safetyOverrides)];
const policies = values.policies === undefined ? allPolicies : allPolicies.filter((p) => values.policies!.split(',').includes(p.name));
if (!policies.some((p) => p.name === FORESIGHT)) throw new Error(`--policies must include ${FORESIGHT}; known: ${allPolicies.map((p) => p.name).join(', ')}`);

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

const results: ScenarioMetrics[] = [];
const oracles: OracleFigures[] = [];
const started = Date.now();
for (const name of scenarioNames) {
	const scenario = buildScenario(name, scenarioOptions);
	for (const policy of policies) {
		const isForesight = policy.name === FORESIGHT;
		const recorder = values.oracle && isForesight ? oracleRecorder(name, scenario.durationS) : undefined;
		const onTick = (tick: SimTick): void => {
			if (traceEveryS !== undefined) traceSlack(name, tick, traceEveryS);
			recorder?.onTick(tick);
		};
		const hooked = isForesight && (recorder !== undefined || traceEveryS !== undefined);
		results.push(simulate(scenario, policy, hooked ? { onTick, roomDemand: recorder !== undefined } : {}).metrics);
		if (recorder) oracles.push(recorder.finish());
		process.stderr.write(`\r${name} ${policy.name}                    `);
	}
}
process.stderr.write(`\rsimulated in ${((Date.now() - started) / 1000).toFixed(0)} s${' '.repeat(40)}\n`);

const fmt = (v: number | null, digits = 0): string => (v === null ? '—' : v.toFixed(digits));
const columns = ['policy', 'exposure c·s', 'loss c·s', 'downgrade c·s', 'paused c·s', 'dropped', 'refused', 'quality cost', 'migrations', 'moved', 'actions', 'slack', 'lead med s', 'crossings (unans.)', 'peak streams', 'decide ms'];
function row(m: ScenarioMetrics): string[] {
	return [
		m.policy,
		fmt(m.exposureConsumerS),
		fmt(m.overloadLossConsumerS),
		fmt(m.layerDowngradeS),
		fmt(m.pausedConsumerS),
		fmt(m.droppedConsumers),
		fmt(m.refusedPeers),
		fmt(m.qualityCost),
		fmt(m.migrations),
		fmt(m.movedConsumers),
		fmt(m.actions),
		fmt(m.meanSlack, 3),
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
for (const name of scenarioNames) printTable(`${name} (${scenarioOptions.workers} workers, ${scenarioOptions.durationS} s, seed ${scenarioOptions.seed})`, results.filter((m) => m.scenario === name).map(row));

interface Totals {
	policy: string;
	exposure: number;
	quality: number;
	slack: number;
	leadTimes: number[];
	crossings: number;
	unanswered: number;
}
const totals: Totals[] = policies.map((p) => {
	const mine = results.filter((m) => m.policy === p.name);
	return {
		policy: p.name,
		exposure: mine.reduce((s, m) => s + m.exposureConsumerS, 0),
		quality: mine.reduce((s, m) => s + m.qualityCost, 0),
		slack: mine.reduce((s, m) => s + m.meanSlack, 0) / mine.length,
		leadTimes: mine.flatMap((m) => m.leadTimesS),
		crossings: mine.reduce((s, m) => s + m.crossings, 0),
		unanswered: mine.reduce((s, m) => s + m.unansweredCrossings, 0),
	};
});
console.log('\nall scenarios');
for (const t of totals) {
	console.log(`${t.policy.padEnd(22)} exposure ${fmt(t.exposure).padStart(9)} c·s   quality cost ${fmt(t.quality).padStart(9)} c·s   mean slack ${t.slack.toFixed(3)}   lead median ${fmt(median(t.leadTimes), 1).padStart(5)} s   crossings ${t.crossings} (${t.unanswered} unanswered)`);
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
const best = baselines.length > 0 ? baselines.reduce((a, b) => (b.exposure < a.exposure ? b : a)) : undefined;
console.log(`best baseline by exposure: ${best?.policy ?? '— (none run)'}`);
console.log(
	JSON.stringify({
		exposure_gain_vs_best_baseline: best ? Number(((best.exposure + 1) / (foresight.exposure + 1)).toFixed(2)) : null,
		quality_cost_ratio_vs_that_baseline: best ? Number(((foresight.quality + 1) / (best.quality + 1)).toFixed(3)) : null,
		mean_slack: Number(foresight.slack.toFixed(3)),
		median_lead_time_s: median(foresight.leadTimes),
		best_baseline: best?.policy ?? null,
		foresight_exposure_consumer_s: Math.round(foresight.exposure),
		best_baseline_exposure_consumer_s: best ? Math.round(best.exposure) : null,
		foresight_quality_cost: Math.round(foresight.quality),
		best_baseline_quality_cost: best ? Math.round(best.quality) : null,
		lead_time_samples: foresight.leadTimes.length,
		unanswered_crossings: foresight.unanswered,
	}),
);
