/**
 * Reference packers that know the simulator's truth, future included: how little slack a
 * placement could leave while keeping every worker at or under the exposure threshold.
 * They are bounds to judge a policy against, never policies (no policy may see truth).
 * Both pack rooms (a room's streams on one worker need no pipes); a room larger than a
 * worker is cut into full workers plus a remainder (its receivers are what is cut, and
 * any receiver can go anywhere), and the pipes that costs are left out, as are the
 * per-worker cost factors and jitter: the figures are optimistic, i.e. lower bounds.
 */
import { meanSlack } from './metrics';

export interface OracleOptions {
	/** No worker's load may exceed this, % of a core. */
	capPct: number;
	/** A hosting worker's idle cost, % of a core. */
	basePct: number;
	/** 100% of a core: slack is 1 − load / core. */
	corePct: number;
}

/** Shares of a room of demand `pct`, as fractions of it: full workers (cap less idle cost), then the remainder. */
function shares(pct: number, options: OracleOptions): number[] {
	const full = options.capPct - options.basePct;
	if (pct <= full) return [1];
	const out: number[] = [];
	let left = pct;
	for (; left > full; left -= full) out.push(full / pct);
	if (left > 0) out.push(left / pct);
	return out;
}


/**
 * One second repacked from scratch (migrations free): best-fit decreasing of the rooms'
 * demands into workers capped at `capPct`. Returns the slack over the workers used.
 */
export function repackSecond(roomDemands: Iterable<number>, options: OracleOptions): { slack: number; workers: number } {
	const items: number[] = [];
	for (const pct of roomDemands) {
		if (pct <= 0) continue;
		for (const share of shares(pct, options)) items.push(pct * share);
	}
	items.sort((a, b) => b - a);
	const bins: number[] = [];
	for (const item of items) {
		let best = -1;
		for (let i = 0; i < bins.length; i++) if (bins[i]! + item <= options.capPct && (best < 0 || bins[i]! > bins[best]!)) best = i;
		if (best >= 0) bins[best]! += item;
		else bins.push(options.basePct + item);
	}
	return { slack: meanSlack(bins, options.corePct), workers: bins.length };
}

/** The fluid bound of one second: the total on as few workers as the cap allows, perfectly divisible. */
export function fluidSecond(roomDemands: Iterable<number>, options: OracleOptions): number {
	let total = 0;
	for (const pct of roomDemands) total += Math.max(0, pct);
	if (total <= 0) return 0;
	const n = Math.ceil(total / (options.capPct - options.basePct));
	return 1 - (total + n * options.basePct) / (n * options.corePct);
}

/**
 * Placement fixed at a room's first second (no migrations ever), with its whole future
 * known (a room larger than a worker is cut by its lifetime peak, each share a fixed
 * fraction of it): rooms in order of arrival go to the worker that stays under the cap over the
 * room's whole life and has the least headroom left (best fit on the lifetime peak),
 * else to a new worker. `series` is each room's demand per second (0 when empty).
 * Returns the time-mean of the per-second slack over hosting workers and the most workers used.
 */
export function fixedPlacementSlack(series: ReadonlyMap<string, Float64Array>, durationS: number, options: OracleOptions): { slack: number; workers: number } {
	const rooms = [...series.entries()]
		.map(([id, d]) => {
			let start = -1;
			let end = -1;
			let peak = 0;
			for (let t = 0; t < durationS; t++) {
				if (d[t]! <= 0) continue;
				if (start < 0) start = t;
				end = t;
				peak = Math.max(peak, d[t]!);
			}
			return { id, d, start, end, peak };
		})
		.filter((r) => r.start >= 0)
		.sort((a, b) => a.start - b.start || b.peak - a.peak || (a.id < b.id ? -1 : 1));
	/** Per worker: its rooms' demand per second (base excluded). */
	const workers: Float64Array[] = [];
	for (const room of rooms) {
		for (const share of shares(room.peak, options)) {
			let best = -1;
			let bestHeadroom = Infinity;
			for (let w = 0; w < workers.length; w++) {
				const load = workers[w]!;
				let headroom = Infinity;
				for (let t = room.start; t <= room.end && headroom >= 0; t++) headroom = Math.min(headroom, options.capPct - options.basePct - load[t]! - room.d[t]! * share);
				if (headroom >= 0 && headroom < bestHeadroom) {
					best = w;
					bestHeadroom = headroom;
				}
			}
			if (best < 0) {
				workers.push(new Float64Array(durationS));
				best = workers.length - 1;
			}
			const load = workers[best]!;
			for (let t = room.start; t <= room.end; t++) load[t]! += room.d[t]! * share;
		}
	}
	let sum = 0;
	let ticks = 0;
	let peakWorkers = 0;
	for (let t = 0; t < durationS; t++) {
		const loads: number[] = [];
		for (const w of workers) if (w[t]! > 0) loads.push(w[t]! + options.basePct);
		if (loads.length === 0) continue;
		peakWorkers = Math.max(peakWorkers, loads.length);
		sum += meanSlack(loads, options.corePct);
		ticks++;
	}
	return { slack: ticks > 0 ? sum / ticks : 0, workers: peakWorkers };
}
