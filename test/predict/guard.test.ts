import { LAST_VALUE_NAME, PredictionEngine } from '../../plugin/predict/engine';
import { ForecastGuard, type GuardSwitch } from '../../plugin/predict/guard';
import { quantile } from '../../plugin/predict/stats';
import { KnnPredictor } from '../../plugin/predict/knn';
import type { WorkerLoadSample } from '../../plugin/profile/schema';
import { assembleWorkerPrediction, perHorizon } from '../../plugin/predict/assemble';
import { attributionResidual, HORIZONS_S, zeroResources, type Predictor, type ResourceNeeds, type ResourceVector, type WorkerPrediction, type WorkerSnapshot } from '../../plugin/predict/types';
import { rng, videoRoom } from './synthetic';

const T0 = 1_700_000_000_000;
const vec = (cpuPct: number): ResourceVector => ({ cpuPct, rssBytes: 0, ingressBps: 0, egressBps: 0 });

describe('ForecastGuard', () => {
	test('switches to last value only after the predictor has been worse for switchAfterMs, and back after recoverAfterMs', () => {
		const guard = new ForecastGuard({ horizonS: 15, windowMs: 10_000, switchAfterMs: 60_000, recoverAfterMs: 30_000, minMatured: 3 });
		const changes: Array<{ s: number; to: string }> = [];
		// Actual 10; the predictor is 5 off for the first 200 s, then exact; last value is 1 off throughout.
		for (let s = 0; s < 400; s++) {
			const predictor = s < 200 ? 15 : 10;
			const change = guard.observe('w', T0 + s * 1000, vec(10), { horizonS: 15, predictor: vec(predictor), lastValue: vec(11), ewma: vec(12) });
			if (change) changes.push({ s, to: change.to });
		}
		// Worse from the third matured forecast (s = 2): held 60 s at s = 62.
		// Recovery: the 10 s window (11 forecasts) holds at most two errors of 5 from s = 208 on
		// (mean ≤ last value's 1), which is held 30 s → s = 238.
		expect(changes).toEqual([
			{ s: 62, to: 'last-value' },
			{ s: 238, to: 'predictor' },
		]);
		const errors = guard.errors('w');
		expect(errors.predictor).toBeCloseTo(0, 12);
		expect(errors.lastValue).toBeCloseTo(1, 12);
		expect(errors.ewma).toBeCloseTo(2, 12);
	});

	test('a predictor that is worse only now and then is never switched out', () => {
		const guard = new ForecastGuard({ windowMs: 10_000, switchAfterMs: 60_000 });
		for (let s = 0; s < 600; s++) {
			// Worse than last value for 50 s out of every 100 s: never 60 s in a row.
			const bad = s % 100 < 40;
			expect(guard.observe('w', T0 + s * 1000, vec(10), { horizonS: 15, predictor: vec(bad ? 14 : 10), lastValue: vec(11), ewma: vec(11) })).toBeUndefined();
		}
		expect(guard.mode('w')).toBe('predictor');
	});

	test('other horizons and missing forecasters only feed the band', () => {
		const guard = new ForecastGuard({ switchAfterMs: 0, minMatured: 1 });
		expect(guard.observe('w', T0, vec(10), { horizonS: 5, predictor: vec(50), lastValue: vec(11), ewma: vec(11) })).toBeUndefined();
		expect(guard.observe('w', T0, vec(10), { horizonS: 15, predictor: vec(50), lastValue: vec(11) })).toBeUndefined();
		expect(guard.errors('w')).toEqual({ predictor: null, lastValue: null, ewma: null });
		expect(guard.observe('w', T0, vec(10), { horizonS: 15, predictor: vec(50), lastValue: vec(11), ewma: vec(11) })).toEqual({ from: 'predictor', to: 'last-value', heldMs: 0 });
	});

	test('the last-value band is the 95th percentile of its own residuals', () => {
		const guard = new ForecastGuard();
		const residuals: number[] = [];
		const random = rng(7);
		for (let i = 0; i < 100; i++) {
			const r = (random() - 0.5) * 8;
			residuals.push(r);
			guard.observe('w', T0 + i * 1000, vec(10 + r), { horizonS: 30, lastValue: vec(10) });
		}
		expect(guard.lastValueBand('w', 15)).toBeUndefined();
		expect(guard.lastValueBand('w', 30)!.cpuPct).toBeCloseTo(quantile(residuals, 0.95), 10);
	});

	test('rejects nonsense options', () => {
		expect(() => new ForecastGuard({ horizonS: 10 as 15 })).toThrow(RangeError);
		expect(() => new ForecastGuard({ switchAfterMs: -1 })).toThrow(RangeError);
		expect(() => new ForecastGuard({ minMatured: 0 })).toThrow(RangeError);
	});
});

/**
 * A predictor that forecasts the latest measured CPU plus `slope` pp per second of horizon
 * plus a fixed offset, attributing 1 pp to each stream.
 */
class OffsetPredictor implements Predictor {
	readonly name: string;
	constructor(
		private readonly offset: number,
		private readonly slope = 0,
	) {
		this.name = `offset${offset}`;
	}
	predict(snapshots: readonly WorkerSnapshot[]): WorkerPrediction[] {
		return snapshots.map((snap) => {
			const level = (snap.samples.at(-1)?.cpuPct ?? 0) + this.offset;
			const streams = snap.streams.map((s) => ({ streamId: s.streamId, transportId: s.transportId, cost: perHorizon(() => ({ ...zeroResources(), cpuPct: 1 })), spread: perHorizon(zeroResources) }));
			const base = perHorizon((h) => ({ ...zeroResources(), cpuPct: level + this.slope * h - streams.length }));
			return assembleWorkerPrediction(snap.workerId, this.name, base, perHorizon(() => ({ ...zeroResources(), cpuPct: 1 })), streams);
		});
	}
	predictResourceNeeds(): ResourceNeeds {
		const zero = { cpuPct: { mean: 0, p95: 0 }, rssBytes: { mean: 0, p95: 0 }, ingressBps: { mean: 0, p95: 0 }, egressBps: { mean: 0, p95: 0 } };
		return { 5: zero, 15: zero, 30: zero };
	}
}

describe('PredictionEngine guard', () => {
	const streams = videoRoom('v', 2);
	/** A noisy CPU level starting at 20 % and rising `slope` pp/s, sampled every second. */
	function run(engine: PredictionEngine, seconds: number, onPrediction?: (s: number, p: WorkerPrediction) => void, slope = 0): void {
		const random = rng(3);
		const samples: WorkerLoadSample[] = [];
		for (let s = 0; s < seconds; s++) {
			const ts = T0 + s * 1000;
			const cpuPct = 20 + slope * s + (random() - 0.5) * 2;
			samples.push({ ts, workerId: 'w1', pid: 1, cpuPct, rssBytes: 50e6, routers: 1, transports: 3, producers: 1, consumers: 2, dataProducers: 0, dataConsumers: 0 });
			engine.observe({ workerId: 'w1', ts, actual: { cpuPct, rssBytes: 50e6, ingressBps: 0, egressBps: 0 } });
			const [p] = engine.predict([{ workerId: 'w1', now: ts, samples: samples.slice(-60), streams, events: [] }]);
			onPrediction?.(s, p!);
		}
	}

	test('a predictor biased by +20 pp is switched out 60 s after its first matured forecast and the switch is reported', () => {
		const events: GuardSwitch[] = [];
		const engine = new PredictionEngine({ fallback: new OffsetPredictor(20), biasAlpha: 0, onGuardSwitch: (e) => events.push(e) });
		let firstLastValue = -1;
		let last: WorkerPrediction | undefined;
		run(engine, 120, (s, p) => {
			if (p.predictor === LAST_VALUE_NAME && firstLastValue < 0) firstLastValue = s;
			last = p;
		});
		// First 15 s forecast matures at s = 15; five are needed (s = 19); held 60 s → s = 79.
		expect(firstLastValue).toBe(79);
		expect(events).toHaveLength(1);
		expect(events[0]).toMatchObject({ workerId: 'w1', from: 'offset20', to: LAST_VALUE_NAME, mode: 'last-value', horizonS: 15, heldMs: 60_000 });
		expect(events[0]!.errors.predictor!).toBeGreaterThan(19);
		expect(events[0]!.errors.lastValue!).toBeLessThan(1);
		expect(last!.predictor).toBe(LAST_VALUE_NAME);
		expect(last!.guardedPredictor).toBe('offset20');
		// Served level is the latest sample; attribution still sums; the band is above the mean.
		for (const h of HORIZONS_S) {
			expect(last!.horizons[h].total.cpuPct.mean).toBeGreaterThan(18);
			expect(last!.horizons[h].total.cpuPct.mean).toBeLessThan(22);
			expect(last!.horizons[h].total.cpuPct.p95).toBeGreaterThanOrEqual(last!.horizons[h].total.cpuPct.mean);
		}
		expect(last!.streams).toHaveLength(streams.length);
		expect(attributionResidual(last!)).toBeLessThan(1e-12);
		const [status] = engine.guardStatus();
		expect(status).toMatchObject({ workerId: 'w1', horizonS: 15, mode: 'last-value', guarded: 'offset20', serving: LAST_VALUE_NAME });
	});

	test('with the online correction on, a predictor that sees the trend serves once its bias is learned away', () => {
		const engine = new PredictionEngine({ fallback: new OffsetPredictor(20, 0.2) });
		const served: string[] = [];
		run(engine, 300, (_s, p) => served.push(p.predictor), 0.2);
		// Learning the 20 pp offset keeps the rolling error above last value's for about a
		// minute (it may be switched out meanwhile); over the last two minutes it serves.
		expect(new Set(served.slice(-120))).toEqual(new Set(['offset20']));
		const errors = engine.guardErrors('w1');
		// Last value lags the 0.2 pp/s rise by 3 pp at 15 s.
		expect(errors.lastValue!).toBeGreaterThan(2.5);
		expect(errors.predictor!).toBeLessThan(1);
	});

	test('with the online correction on, a biased copy of last value (corrected: last value plus the correction’s noise) is switched out', () => {
		const engine = new PredictionEngine({ fallback: new OffsetPredictor(20) });
		const served: string[] = [];
		run(engine, 200, (_s, p) => served.push(p.predictor));
		expect(served.at(-1)).toBe(LAST_VALUE_NAME);
	});

	test('the guard can be turned off', () => {
		const engine = new PredictionEngine({ fallback: new OffsetPredictor(20), biasAlpha: 0, guard: false });
		const served = new Set<string>();
		run(engine, 120, (_s, p) => served.add(p.predictor));
		expect(served).toEqual(new Set(['offset20']));
		expect(engine.guardStatus()).toEqual([]);
	});

	test('without load samples there is nothing to compare and the kNN serves', () => {
		const engine = new PredictionEngine({ fallback: new KnnPredictor([]), biasAlpha: 0, guard: { switchAfterMs: 0, minMatured: 1 } });
		for (let s = 0; s < 40; s++) {
			const [p] = engine.predict([{ workerId: 'w1', now: T0 + s * 1000, samples: [], streams, events: [] }]);
			expect(p!.predictor).toBe('knn');
			engine.observe({ workerId: 'w1', ts: T0 + s * 1000, actual: { cpuPct: 99, rssBytes: 0, ingressBps: 0, egressBps: 0 } });
		}
	});
});
