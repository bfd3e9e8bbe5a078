/**
 * `npm run evaluate -- --ceiling` (or `npm run ceiling`): how predictable the 15 s CPU
 * forecast is on the committed sessions, and where the error of last value comes from.
 *
 *   npx tsx training/ceiling.ts [--sessions models/default/sessions] [--seeds evaluation|tuning|all]
 *       [--first-eval-seed 10002] [--announce-lead 2] [--report FILE]
 *
 * For each family, in the same leave-one-family-out folds as `npm run evaluate` (everything
 * learned offline comes from the other families' seeds < 10000), on the same examples:
 *
 * - **last value** and the **served** predictor (the engine as deployed: anchored, kNN
 *   fallback, guard), exactly as training/loso.ts scores them;
 * - **known-changes oracle** (analysis only, not deployable): what a plugin could know at t.
 *   The worker's level at t (its unexplained part smoothed as the anchored predictor does),
 *   plus, priced with the host calibration as it stood at t: streams that joined less than
 *   RAMP_WINDOW_S before t at the rate they actually have at t + 15 s (a ramp's outcome is
 *   decided by what is already on the worker), and streams whose first profile comes at most
 *   `--announce-lead` seconds after t at their rate at t + 15 s (a join already in progress at
 *   t: a peer that called place(), transports being connected, consumers being created and not
 *   yet profiled). Everything else stays at its rate at t: later joins, leaves, publishes and
 *   layer changes of settled streams are events after t. It reads the session's event log (the
 *   stream profiles) up to t + lead for those streams and never any CPU after t.
 * - **future-events oracle** (upper bound of what traffic knowledge buys): the same level
 *   plus every stream on the worker at t + 15 s at its actual rate then (every join, leave,
 *   publish and layer change up to t + 15 s is known), transports as counted at t + 15 s.
 *   No CPU after t.
 * - **future-events oracle with hindsight costs**: the same, with cost coefficients fitted on
 *   the scored session's own samples (this reads CPU truth for the coefficients only): whether
 *   a better cost model could get further.
 * - **noise floor**: the MAE that even a forecaster of the exact noise-free level would score,
 *   estimated from the measured CPU's white noise on quiet samples (no join or leave within
 *   QUIET_MS): mean |y_i − (y_{i−1} + y_{i+1})/2| / √1.5, exact for Gaussian noise on a locally
 *   linear level. Slow host contention is not white and is counted as signal, so the floor is an
 *   underestimate and 1 − floor/MAE(last) an optimistic ceiling for any predictor.
 *
 * Writes a markdown report when `--report` is given; prints one JSON line last.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LastValuePredictor } from '../plugin/predict/baselines';
import { dotVector, fitCostCoefficients, HostCalibration, workerTerms, type CostCoefficients } from '../plugin/predict/calibration';
import { buildExamples, deriveEvents, streamsAt } from '../plugin/predict/dataset';
import { evaluateOnline, evaluatePredictor } from '../plugin/predict/evaluate';
import type { StreamProfile, WorkerLoadSample } from '../plugin/profile/schema';
import type { StreamEvent, TrainingExample } from '../plugin/predict/types';
import { isEvaluationSeed } from './loadgen/generator';
import { calibrationRows, FIRST_FRESH_SEED, foldEngine, isBrowserFamily, LOSO_EXAMPLES } from './loso';
import { DEFAULT_MODEL_DIR, readSessions, type SessionData } from './train';

const H = 15;
/** A stream younger than this at t is ramping (the anchored predictor's default ramp window). */
const RAMP_WINDOW_S = 10;
/** Same staleness as the example builder's default: what "on the worker" means in both. */
const STALE_PROFILE_MS = 3000;
/** A sample is quiet when no stream joins or leaves within this of it. */
const QUIET_MS = 2000;
/** The anchored predictor's default level half-life (s): the oracles' level is the served one's. */
const LEVEL_HALF_LIFE_S = 1.5;

export interface CeilingOptions {
	sessionsDir: string;
	seeds: 'evaluation' | 'tuning' | 'all';
	firstEvalSeed: number;
	announceLeadS: number;
}

export interface CeilingFigures {
	family: string;
	sessions: string[];
	examples: number;
	mae_15s: { last: number; served: number; known_oracle: number; future_oracle: number; future_oracle_hindsight_costs: number; future_oracle_last_value_level: number; noise_floor: number };
	gain_vs_last_15s: { served: number; known_oracle: number; future_oracle: number; future_oracle_hindsight_costs: number; noise_ceiling: number };
	/** Quiet samples the noise floor was estimated on. */
	quiet_samples: number;
	/** Share of examples with a join or leave in (t, t + 15 s]: how eventful the traffic is. */
	eventful_share: number;
}

interface SessionOracle {
	examples: TrainingExample[];
	/** Per example: the terms an oracle sees at t + 15 s. */
	known: Float64Array[];
	future: Float64Array[];
	eventful: boolean[];
}

function sessionOracle(session: SessionData, announceLeadMs: number): SessionOracle {
	const timeline = session.timelines[0];
	if (!timeline) return { examples: [], known: [], future: [], eventful: [] };
	const examples = buildExamples(timeline, LOSO_EXAMPLES);
	const events: StreamEvent[] = deriveEvents(timeline.profiles, STALE_PROFILE_MS);
	const leaves = new Map<string, number[]>();
	const joinedAt = new Map<string, number>();
	for (const e of events) {
		if (e.type === 'leave') leaves.set(e.streamId, [...(leaves.get(e.streamId) ?? []), e.ts]);
		else if (!joinedAt.has(e.streamId)) joinedAt.set(e.streamId, e.ts);
	}
	const samples = [...timeline.samples].sort((a, b) => a.ts - b.ts);
	const nearest = (t: number): WorkerLoadSample | undefined => {
		let best: WorkerLoadSample | undefined;
		for (const s of samples) if (!best || Math.abs(s.ts - t) < Math.abs(best.ts - t)) best = s;
		return best;
	};
	const later = streamsAt(
		timeline.profiles,
		examples.map((e) => e.snapshot.now + H * 1000),
		STALE_PROFILE_MS,
		leaves,
	);
	const known: Float64Array[] = [];
	const future: Float64Array[] = [];
	const eventful: boolean[] = [];
	examples.forEach((e, i) => {
		const now = e.snapshot.now;
		const atH = new Map(later[i]!.map((p) => [p.streamId, p]));
		const transportsNow = e.snapshot.samples[e.snapshot.samples.length - 1]?.transports ?? 0;
		const present = new Set(e.snapshot.streams.map((s) => s.streamId));
		const knownStreams: StreamProfile[] = e.snapshot.streams.map((s) => {
			const young = now - (joinedAt.get(s.streamId) ?? Number.NEGATIVE_INFINITY) < RAMP_WINDOW_S * 1000;
			const then = atH.get(s.streamId);
			return young && then ? then : s;
		});
		for (const p of later[i]!) {
			const j = joinedAt.get(p.streamId);
			if (!present.has(p.streamId) && j !== undefined && j > now && j <= now + announceLeadMs) knownStreams.push(p);
		}
		known.push(workerTerms(knownStreams, transportsNow));
		future.push(workerTerms(later[i]!, nearest(now + H * 1000)?.transports ?? transportsNow));
		eventful.push(events.some((ev) => ev.ts > now && ev.ts <= now + H * 1000));
	});
	return { examples, known, future, eventful };
}

/** Mean |y_i − (y_{i−1} + y_{i+1})/2| / √1.5 over quiet samples ~1 s from both neighbours, and their count. */
function noiseFloor(session: SessionData): { sum: number; n: number } {
	const timeline = session.timelines[0];
	if (!timeline) return { sum: 0, n: 0 };
	const samples = [...timeline.samples].sort((a, b) => a.ts - b.ts);
	const eventTs = deriveEvents(timeline.profiles, STALE_PROFILE_MS).map((e) => e.ts);
	let sum = 0;
	let n = 0;
	for (let i = 1; i + 1 < samples.length; i++) {
		const [a, b, c] = [samples[i - 1]!, samples[i]!, samples[i + 1]!];
		if (b.ts - a.ts > 1500 || c.ts - b.ts > 1500 || b.producers + b.consumers === 0) continue;
		if (eventTs.some((t) => Math.abs(t - b.ts) <= QUIET_MS)) continue;
		sum += Math.abs(b.cpuPct - (a.cpuPct + c.cpuPct) / 2) / Math.sqrt(1.5);
		n++;
	}
	return { sum, n };
}

function selected(options: CeilingOptions, seed: number): boolean {
	if (options.seeds === 'all') return true;
	if (options.seeds === 'tuning') return !isEvaluationSeed(seed);
	return seed >= options.firstEvalSeed;
}

export async function measureCeiling(options: CeilingOptions, onFamily?: (family: string) => void): Promise<CeilingFigures[]> {
	const sessions = await readSessions(options.sessionsDir);
	const families = [...new Set(sessions.map((s) => s.entry.scenario))].sort();
	const out: CeilingFigures[] = [];
	for (const family of families) {
		const scored = sessions.filter((s) => s.entry.scenario === family && selected(options, s.entry.seed));
		if (scored.length === 0) continue;
		onFamily?.(family);
		const trainSessions = sessions.filter((s) => s.entry.scenario !== family && !isEvaluationSeed(s.entry.seed));
		const train = trainSessions.flatMap((s) => s.timelines.flatMap((t) => buildExamples(t, LOSO_EXAMPLES)));
		const { engine, prior } = foldEngine(train, trainSessions, { levelHalfLifeS: LEVEL_HALF_LIFE_S, trendWeight: 0, bandCombine: 'max', bandPrior: true, biasAlpha: 0, guard: true });

		const oracles = scored.map((s) => sessionOracle(s, options.announceLeadS * 1000));
		const heldOut = oracles.flatMap((o) => o.examples);
		if (heldOut.length === 0) continue;
		const served = evaluateOnline(engine, heldOut).mae[H].cpuPct;
		const last = evaluatePredictor(new LastValuePredictor(), heldOut).mae[H].cpuPct;

		// One host calibration for the family's sessions, fed in time order as the engine's is.
		const calibration = new HostCalibration({ prior });
		const rows = oracles.flatMap((o, si) =>
			o.examples.map((e, i) => ({ e, known: o.known[i]!, future: o.future[i]!, eventful: o.eventful[i]!, hindsight: hindsightCosts(o.examples, prior), si })),
		);
		rows.sort((a, b) => a.e.snapshot.now - b.e.snapshot.now);
		const level = new Map<string, { ts: number; residual: number }>();
		let errKnown = 0;
		let errFuture = 0;
		let errHindsight = 0;
		let errFutureLast = 0;
		let eventfulCount = 0;
		for (const r of rows) {
			const snap = r.e.snapshot;
			const sample = snap.samples[snap.samples.length - 1];
			const actual = r.e.targets[H].cpuPct;
			const X = workerTerms(snap.streams, sample?.transports ?? 0);
			const coef = calibration.vector();
			const explained = coef[0]! + dotVector(coef, X);
			const key = `${r.si}:${snap.workerId}`;
			let st = level.get(key);
			if (sample && (!st || sample.ts > st.ts)) {
				const resid = sample.cpuPct - explained;
				if (!st) level.set(key, (st = { ts: sample.ts, residual: resid }));
				else {
					st.residual += (1 - Math.pow(0.5, (sample.ts - st.ts) / 1000 / LEVEL_HALF_LIFE_S)) * (resid - st.residual);
					st.ts = sample.ts;
				}
				calibration.add(sample.ts, X, sample.cpuPct);
			}
			const lvl = st ? st.residual + explained : explained;
			const delta = (to: Float64Array, v: ArrayLike<number>): number => dotVector(v, to) - dotVector(v, X);
			errKnown += Math.abs(lvl + delta(r.known, coef) - actual);
			errFuture += Math.abs(lvl + delta(r.future, coef) - actual);
			// Hindsight costs: the same level anchored at t, changes priced by the session's own fit.
			const hv = r.hindsight;
			errHindsight += Math.abs(lvl + delta(r.future, hv) - actual);
			errFutureLast += Math.abs((sample?.cpuPct ?? lvl) + delta(r.future, coef) - actual);
			if (r.eventful) eventfulCount++;
		}
		const n = rows.length;
		const noise = scored.map(noiseFloor).reduce((a, b) => ({ sum: a.sum + b.sum, n: a.n + b.n }), { sum: 0, n: 0 });
		const floor = noise.n > 0 ? noise.sum / noise.n : Number.NaN;
		const mae = { last, served, known_oracle: errKnown / n, future_oracle: errFuture / n, future_oracle_hindsight_costs: errHindsight / n, future_oracle_last_value_level: errFutureLast / n, noise_floor: floor };
		const g = (v: number): number => 1 - v / last;
		out.push({
			family,
			sessions: scored.map((s) => s.entry.id),
			examples: n,
			mae_15s: mae,
			gain_vs_last_15s: { served: g(served), known_oracle: g(mae.known_oracle), future_oracle: g(mae.future_oracle), future_oracle_hindsight_costs: g(mae.future_oracle_hindsight_costs), noise_ceiling: g(floor) },
			quiet_samples: noise.n,
			eventful_share: eventfulCount / n,
		});
	}
	return out;
}

const hindsightCache = new WeakMap<readonly TrainingExample[], Float64Array>();

/** Cost coefficients fitted on a session's own samples (CPU truth: for the hindsight bound only), [idle, θ…]. */
function hindsightCosts(examples: readonly TrainingExample[], prior: CostCoefficients): Float64Array {
	let v = hindsightCache.get(examples);
	if (!v) {
		// A weak pull to the fold's prior only keeps terms the session never exercises defined.
		const fit = fitCostCoefficients(calibrationRows(examples), { prior, priorWeight: 1 });
		const cal = new HostCalibration({ prior: fit });
		v = Float64Array.from(cal.vector());
		hindsightCache.set(examples, v);
	}
	return v;
}

/**
 * Min and mean over the replayed families, as the evaluation's loso_* keys are; the browser
 * family's gains are keys of their own (null when no browser session was scored).
 */
export function ceilingKeys(all: readonly CeilingFigures[]): Record<string, number | string[] | null> {
	const families = all.filter((f) => !isBrowserFamily(f.family));
	const browser = all.find((f) => isBrowserFamily(f.family));
	const col = (f: (x: CeilingFigures) => number): number[] => families.map(f);
	// Over the families where the figure exists (a family without quiet samples has no noise floor).
	const mean = (xs: number[]): number => {
		const ok = xs.filter(Number.isFinite);
		return ok.reduce((a, b) => a + b, 0) / Math.max(1, ok.length);
	};
	const min = (xs: number[]): number => Math.min(...xs);
	return {
		families: families.length,
		min_gain_served: min(col((f) => f.gain_vs_last_15s.served)),
		mean_gain_served: mean(col((f) => f.gain_vs_last_15s.served)),
		min_gain_known_oracle: min(col((f) => f.gain_vs_last_15s.known_oracle)),
		mean_gain_known_oracle: mean(col((f) => f.gain_vs_last_15s.known_oracle)),
		min_gain_future_oracle: min(col((f) => f.gain_vs_last_15s.future_oracle)),
		mean_gain_future_oracle: mean(col((f) => f.gain_vs_last_15s.future_oracle)),
		min_gain_future_oracle_hindsight_costs: min(col((f) => f.gain_vs_last_15s.future_oracle_hindsight_costs)),
		mean_gain_future_oracle_hindsight_costs: mean(col((f) => f.gain_vs_last_15s.future_oracle_hindsight_costs)),
		mean_noise_ceiling: mean(col((f) => f.gain_vs_last_15s.noise_ceiling)),
		// Families where not even complete knowledge of future traffic reaches issue 18's per-family goal (0.15).
		families_future_oracle_below_0_15: families.filter((f) => Math.max(f.gain_vs_last_15s.future_oracle, f.gain_vs_last_15s.future_oracle_hindsight_costs) < 0.15).map((f) => f.family),
		families_noise_ceiling_below_0_15: families.filter((f) => f.gain_vs_last_15s.noise_ceiling < 0.15).map((f) => f.family),
		browser_gain_served: browser ? browser.gain_vs_last_15s.served : null,
		browser_gain_known_oracle: browser ? browser.gain_vs_last_15s.known_oracle : null,
		browser_gain_future_oracle: browser ? browser.gain_vs_last_15s.future_oracle : null,
	};
}

const r2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : 'n/a');

export function ceilingTable(families: readonly CeilingFigures[]): string {
	const rows = families.map(
		(f) =>
			`| ${f.family} | ${f.examples} | ${pct(f.eventful_share)} | ${r2(f.mae_15s.last)} | ${r2(f.mae_15s.served)} (${pct(f.gain_vs_last_15s.served)}) | ${r2(f.mae_15s.known_oracle)} (${pct(f.gain_vs_last_15s.known_oracle)}) | ${r2(f.mae_15s.future_oracle)} (${pct(f.gain_vs_last_15s.future_oracle)}) | ${r2(f.mae_15s.future_oracle_hindsight_costs)} (${pct(f.gain_vs_last_15s.future_oracle_hindsight_costs)}) | ${r2(f.mae_15s.noise_floor)} (${pct(f.gain_vs_last_15s.noise_ceiling)}, ${f.quiet_samples}) |`,
	);
	return [
		'| family | examples | with an event in (t, t+15] | MAE last | served (gain) | known-changes oracle | future-events oracle | future-events, hindsight costs | noise floor (ceiling, quiet samples) |',
		'|---|---|---|---|---|---|---|---|---|',
		...rows,
	].join('\n');
}

export async function main(argv: string[]): Promise<void> {
	const { values } = parseArgs({
		args: argv,
		options: {
			ceiling: { type: 'boolean', default: true },
			sessions: { type: 'string', default: join(DEFAULT_MODEL_DIR, 'sessions') },
			seeds: { type: 'string', default: 'evaluation' },
			'first-eval-seed': { type: 'string', default: String(FIRST_FRESH_SEED) },
			'announce-lead': { type: 'string', default: '2' },
			report: { type: 'string' },
		},
	});
	if (values.seeds !== 'evaluation' && values.seeds !== 'tuning' && values.seeds !== 'all') throw new Error(`--seeds must be evaluation, tuning or all, got ${values.seeds}`);
	const options: CeilingOptions = {
		sessionsDir: resolve(values.sessions!),
		seeds: values.seeds,
		firstEvalSeed: Number(values['first-eval-seed']),
		announceLeadS: Number(values['announce-lead']),
	};
	if (!(options.firstEvalSeed >= 10_000)) throw new Error(`--first-eval-seed must be ≥ 10000, got ${values['first-eval-seed']}`);
	if (!(options.announceLeadS >= 0)) throw new Error(`--announce-lead must be ≥ 0, got ${values['announce-lead']}`);
	const started = Date.now();
	const families = await measureCeiling(options, (f) => process.stderr.write(`ceiling: ${f}\n`));
	const keys = ceilingKeys(families);
	const table = ceilingTable(families);
	process.stderr.write(`${table}\n`);
	if (values.report) {
		const command = `npm run evaluate -- --ceiling${options.seeds === 'evaluation' ? '' : ` --seeds ${options.seeds}`}${options.announceLeadS !== 2 ? ` --announce-lead ${options.announceLeadS}` : ''}`;
		const scored = options.seeds === 'evaluation' ? `seeds ≥ ${options.firstEvalSeed}` : options.seeds === 'tuning' ? 'seeds < 10000 (tuning)' : 'every seed';
		await writeFile(values.report, `## ${scored}\n\nGenerated by \`${command}\` (training/ceiling.ts). MAE of the 15 s CPU forecast in pp of one core; gains are 1 − MAE/MAE(last value).\n\n${table}\n`);
	}
	const perFamily = Object.fromEntries(families.map((f) => [f.family, { examples: f.examples, eventful_share: f.eventful_share, mae_15s: f.mae_15s, gain_vs_last_15s: f.gain_vs_last_15s, quiet_samples: f.quiet_samples }]));
	process.stdout.write(`${JSON.stringify({ analysis: 'ceiling', seeds: options.seeds, announce_lead_s: options.announceLeadS, ...keys, wall_s: (Date.now() - started) / 1000, families: perFamily })}\n`);
}

if (require.main === module) {
	main(process.argv.slice(2)).catch((err: unknown) => {
		process.stderr.write(`ceiling failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
		process.exit(1);
	});
}
