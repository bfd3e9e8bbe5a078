/**
 * Time of one Foresight decision (policy + safety guard) on a snapshot of 1,000 streams
 * over 16 workers: 14 meetings of 6 peers sending audio + video, packed so three workers
 * are predicted hot (the spreading path runs), some consumers below their wanted layers
 * (the restore path runs), plus pending joins.
 *
 *   npx tsx bench/decision.ts [--runs N]
 *
 * Last line: {"median_ms": …} for Foresight; least-loaded on the same snapshot is timed as
 * the baseline.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { guardedForesight, leastLoadedPolicy } from '../plugin/allocate/policies';
import { consumerCostPct } from '../plugin/allocate/estimate';
import { median } from '../plugin/allocate/sim/metrics';
import { Rng } from '../plugin/util/rng';
import {
	MEASURED_COST_MODEL,
	packetCostPct,
	type AllocationSnapshot,
	type ConsumerView,
	type PendingJoin,
	type ProducerView,
	type WorkerView,
} from '../plugin/allocate/snapshot';
import type { AllocationPolicy } from '../plugin/allocate/actions';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '300' } } });
const runs = Number(values.runs);
const WORKERS = 16;
const ROOMS = 14;
const PEERS = 6;

function buildSnapshot(): AllocationSnapshot {
	const rng = new Rng(7);
	const producers: ProducerView[] = [];
	const consumers: ConsumerView[] = [];
	const load = new Array<number>(WORKERS).fill(MEASURED_COST_MODEL.workerBasePct);
	// Rooms 0–5 pile onto workers 0–2 (two each): those are the hot ones.
	const roomWorker = (r: number): number => (r < 6 ? r % 3 : 3 + ((r - 6) % (WORKERS - 3)));
	for (let r = 0; r < ROOMS; r++) {
		const w = roomWorker(r);
		for (let p = 0; p < PEERS; p++) {
			for (const mediaClass of ['audio', 'video'] as const) {
				const motion = rng.uniform(0.8, 1.3);
				const layers = mediaClass === 'video' ? [30, 60, 150 * motion] : [50];
				const producer: ProducerView = {
					id: `r${r}p${p}${mediaClass}`,
					peerId: `r${r}p${p}`,
					roomId: `r${r}`,
					workerId: `w${w}`,
					mediaClass,
					layers: layers.map((packetRate, spatial) => ({ spatial, packetRate, active: true })),
					packetRate: layers.reduce((a, b) => a + b, 0),
					expectedPacketRate: layers.reduce((a, b) => a + b, 0),
					activeSpeaker: p === 0,
					ageS: 120,
				};
				producers.push(producer);
				load[w]! += packetCostPct(producer.packetRate, MEASURED_COST_MODEL.ingressUsPerPacket);
				for (let q = 0; q < PEERS; q++) {
					if (q === p) continue;
					const consumer: ConsumerView = {
						id: `${producer.id}>r${r}p${q}`,
						peerId: `r${r}p${q}`,
						producerId: producer.id,
						workerId: `w${w}`,
						priority: rng.chance(0.3) ? 50 : 100,
						paused: false,
						wanted: { spatial: 2, temporal: 2 },
						current: r % 5 === 4 ? { spatial: 1, temporal: 2 } : { spatial: 2, temporal: 2 },
						packetRate: 0,
					};
					consumers.push(consumer);
					load[w]! += consumerCostPct(producer, consumer.current, MEASURED_COST_MODEL);
				}
			}
		}
	}
	// The three packed workers are predicted to grow past the action band (ramping producers); the rest are steady.
	const workers: WorkerView[] = load.map((pct, i) => {
		const mean = i < 3 ? 84 : pct;
		return {
			id: `w${i}`,
			capacityPct: 100,
			cpuPct: pct,
			forecast: [5, 15, 30].map((horizonS) => ({ horizonS, meanPct: mean, p95Pct: mean * 1.08 })),
			rssBytes: 60e6,
			routers: 1,
			transports: PEERS * 2,
			producers: 0,
			consumers: 0,
		};
	});
	const pendingJoins: PendingJoin[] = Array.from({ length: 5 }, (_, i) => ({ peerId: `new${i}`, roomId: `r${i + 6}`, sends: ['audio', 'video'], consumes: true, priority: 100 }));
	return { t: 1000, costModel: { ...MEASURED_COST_MODEL }, workers, producers, consumers, rooms: [], pendingJoins };
}

function time(policy: AllocationPolicy<unknown>, snapshot: AllocationSnapshot): { medianMs: number; actions: number } {
	let actions = 0;
	for (let i = 0; i < 20; i++) actions = policy.decide(snapshot, policy.initialState()).actions.length;
	const samples: number[] = [];
	for (let i = 0; i < runs; i++) {
		const state = policy.initialState();
		const started = performance.now();
		policy.decide(snapshot, state);
		samples.push(performance.now() - started);
	}
	return { medianMs: median(samples)!, actions };
}

const snapshot = buildSnapshot();
const streams = snapshot.producers.length + snapshot.consumers.length;
const foresight = time(guardedForesight(), snapshot);
const baseline = time(leastLoadedPolicy() as AllocationPolicy<unknown>, snapshot);
console.log(`snapshot: ${streams} streams, ${snapshot.workers.length} workers, ${snapshot.pendingJoins.length} pending joins, hot workers: ${snapshot.workers.filter((w) => w.forecast[2]!.p95Pct > 77).length}`);
console.log(`foresight (guarded): median ${foresight.medianMs.toFixed(3)} ms over ${runs} runs, ${foresight.actions} actions`);
console.log(`least-loaded-66:     median ${baseline.medianMs.toFixed(3)} ms, ${baseline.actions} actions; ratio ${(foresight.medianMs / baseline.medianMs).toFixed(1)}×`);
console.log(JSON.stringify({ median_ms: Number(foresight.medianMs.toFixed(3)) }));
