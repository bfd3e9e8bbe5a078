/**
 * Which streams a prediction says matter now: on a worker predicted hot, the top
 * contributors to its predicted CPU. Their profiles are refreshed at the fast tier,
 * since a decision about that worker (a placement, a degrade, a migration) is near and
 * is made from them.
 */
import type { HorizonS, WorkerPrediction } from '../predict/types';

/** The horizon whose prediction decides: far enough to act before, near enough to be sharp. */
const HOT_HORIZON_S: HorizonS = 15;
/** A worker predicted (p95) at or above this share of its capacity is hot: the share where headroom is nearly gone. */
export const HOT_SHARE_OF_CAPACITY = 0.8;
/** The largest contributors that together make this share of the worker's attributed CPU. */
export const TOP_CONTRIBUTOR_SHARE = 0.5;

export function hotContributors(prediction: WorkerPrediction, workerCapacityPct: number): string[] {
	const h = prediction.horizons[HOT_HORIZON_S];
	if (!h || h.total.cpuPct.p95 < HOT_SHARE_OF_CAPACITY * workerCapacityPct) return [];
	const costs = prediction.streams.map((s) => ({ id: s.streamId, cpu: s.cost[HOT_HORIZON_S]?.cpuPct ?? 0 })).filter((s) => s.cpu > 0);
	costs.sort((a, b) => b.cpu - a.cpu);
	const total = costs.reduce((a, s) => a + s.cpu, 0);
	const out: string[] = [];
	let sum = 0;
	for (const s of costs) {
		if (sum >= TOP_CONTRIBUTOR_SHARE * total) break;
		out.push(s.id);
		sum += s.cpu;
	}
	return out;
}
