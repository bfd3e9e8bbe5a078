/**
 * The netns half of `npm run bench -- cluster`: 3 hosts × 2 workers in network namespaces
 * (test/support/netns.ts), one shared influxd, replay bots sending recorded browser media
 * over real UDP from the root namespace. The same seeded workload runs three times on a
 * fresh cluster: cross-host Foresight, per-host-only Foresight (every join placed on its
 * room's home host) and a LiveKit-style node selector (a new room goes to a host drawn
 * among those whose reported CPU is under 90 % of capacity; within a host eduMEET-style
 * least-loaded placement). Exposure and quality cost are priced per second from each host's
 * own measurements, with the simulator's weights (plugin/allocate/sim/metrics.ts).
 */
import { homeHost } from '../../plugin/allocate/sim/cluster';
import { QUALITY_WEIGHTS } from '../../plugin/allocate/sim/metrics';
import { Rng } from '../../plugin/util/rng';
import { ReplayClients } from '../../test/support/clusterClient';
import { Influxd } from '../../test/support/influxd';
import { NetnsCluster, startHostProcess } from '../../test/support/netns';

export type NetnsMode = 'foresight-cross-host' | 'foresight-per-host' | 'node-selector';
export const NETNS_MODES: readonly NetnsMode[] = ['foresight-cross-host', 'foresight-per-host', 'node-selector'];

export interface NetnsBenchOptions {
	seed: number;
	hosts: number;
	workersPerHost: number;
	/** Worker capacity, % of a core: small, so a few replayed peers reach the limits on a shared machine. */
	capacityPct: number;
	rooms: number;
	/** Peers per room, drawn uniformly in [min, max]. */
	roomSize: [number, number];
	/** Joins spread over this long … */
	joinSpreadS: number;
	/** … and everything is measured until this. */
	durationS: number;
	/** The share of capacity above which a worker's consumers count as exposed (the simulator's 85 %). */
	overloadShare: number;
	log?: (line: string) => void;
	/** Called every second with what was priced (per host: each worker's CPU, capacity, consumers) and every join's outcome: for diagnosis. */
	trace?: (line: string) => void;
}

export const NETNS_BENCH_DEFAULTS: Readonly<NetnsBenchOptions> = Object.freeze({
	seed: 1,
	hosts: 3,
	workersPerHost: 2,
	capacityPct: 5,
	rooms: 4,
	roomSize: [3, 5] as [number, number],
	joinSpreadS: 25,
	durationS: 40,
	overloadShare: 0.85,
});

export interface NetnsModeResult {
	exposure: number;
	quality: number;
	refusedPeers: number;
	refusedConsumers: number;
	droppedConsumers: number;
	pausedConsumerS: number;
	layerDowngradeS: number;
	redirects: number;
	joined: number;
	wallS: number;
}

interface Join {
	t: number;
	peerId: string;
	roomId: string;
}

function workload(o: NetnsBenchOptions): Join[] {
	const rng = new Rng(o.seed * 7717 + 3);
	const joins: Join[] = [];
	for (let r = 0; r < o.rooms; r++) {
		const size = rng.int(o.roomSize[0], o.roomSize[1]);
		for (let i = 0; i < size; i++) joins.push({ t: rng.uniform(0, o.joinSpreadS), peerId: `r${r}p${i}`, roomId: `room${r}` });
	}
	return joins.sort((a, b) => a.t - b.t);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runNetnsMode(mode: NetnsMode, o: NetnsBenchOptions): Promise<NetnsModeResult> {
	const started = Date.now();
	const net = NetnsCluster.create(o.hosts);
	let influxd: Influxd | undefined;
	let clients: ReplayClients | undefined;
	try {
		influxd = await Influxd.create(net.gatewayIp);
		await Promise.all(
			net.hosts.map((h) =>
				startHostProcess(net, h.name, {
					influxUrl: influxd!.url,
					database: 'bench',
					workers: o.workersPerHost,
					capacityPct: o.capacityPct,
					reportIntervalMs: 1000,
					silentAfterMs: 3000,
					admission: mode === 'foresight-cross-host' ? 'cross-host' : 'local',
					...(mode === 'node-selector' ? { policy: 'least-loaded-66' } : {}),
				}),
			),
		);
		const c = (clients = new ReplayClients(net.gatewayIp, new Map(net.hosts.map((h) => [h.name, `http://${h.ip}:3000`]))));
		const names = net.hosts.map((h) => h.name);
		// Every host sees the others before the first join, as in a running cluster.
		for (let i = 0; i < 100; i++) {
			const healths = await Promise.all(names.map((n) => c.health(n)));
			if (healths.every((x) => x.cluster.hosts.filter((h) => h.live).length === names.length - 1)) break;
			await sleep(200);
		}
		const joins = workload(o);
		const roomNode = new Map<string, string>();
		const producersInRoom = new Map<string, number>();
		const result: NetnsModeResult = { exposure: 0, quality: 0, refusedPeers: 0, refusedConsumers: 0, droppedConsumers: 0, pausedConsumerS: 0, layerDowngradeS: 0, redirects: 0, joined: 0, wallS: 0 };
		const t0 = Date.now();
		let next = 0;
		const pending: Array<Promise<void>> = [];
		for (let s = 0; s < o.durationS; s++) {
			const healths = await Promise.all(names.map((n) => c.health(n)));
			o.trace?.(JSON.stringify({ mode, s, hosts: healths.map((h) => ({ host: h.hostId, bots: h.bots.length, workers: h.workers.map((w) => [Math.round(w.cpuPct * 100) / 100, w.capacityPct, w.consumers, Math.round(w.headroomPct * 100) / 100]) })) }));
			for (const h of healths) {
				for (const w of h.workers) {
					if (w.cpuPct > o.overloadShare * w.capacityPct) result.exposure += w.consumers;
					result.pausedConsumerS += w.paused;
					result.layerDowngradeS += w.downgraded;
				}
			}
			while (next < joins.length && joins[next]!.t <= (Date.now() - t0) / 1000) {
				const join = joins[next++]!;
				let via = roomNode.get(join.roomId);
				if (via === undefined) {
					if (mode === 'node-selector') {
						const load = (h: (typeof healths)[number]): number => h.workers.reduce((a, w) => a + w.cpuPct / w.capacityPct, 0) / Math.max(1, h.workers.length);
						const under = healths.filter((h) => load(h) < 0.9);
						via = under.length > 0 ? under[homeHost(`${join.roomId}#`, under.length)]!.hostId : healths.reduce((a, b) => (load(b) < load(a) ? b : a)).hostId;
					} else via = names[homeHost(join.roomId, names.length)]!;
					roomNode.set(join.roomId, via);
				}
				pending.push(
					c.join(join.peerId, join.roomId, via).then(
						(joined) => {
							o.trace?.(JSON.stringify({ mode, join: join.peerId, room: join.roomId, via, host: joined.hostId, redirects: joined.redirects }));
							result.joined++;
							result.redirects += joined.redirects.length;
							producersInRoom.set(join.roomId, (producersInRoom.get(join.roomId) ?? 0) + 2);
						},
						(err: unknown) => {
							o.trace?.(JSON.stringify({ mode, join: join.peerId, room: join.roomId, via, refused: err instanceof Error ? err.message : String(err) }));
							result.refusedPeers++;
							result.refusedConsumers += producersInRoom.get(join.roomId) ?? 0;
						},
					),
				);
			}
			const wait = t0 + (s + 1) * 1000 - Date.now();
			if (wait > 0) await sleep(wait);
		}
		await Promise.all(pending);
		const healths = await Promise.all(names.map((n) => c.health(n)));
		result.droppedConsumers = healths.reduce((a, h) => a + h.dropped, 0);
		result.quality =
			QUALITY_WEIGHTS.downgradeS * result.layerDowngradeS +
			QUALITY_WEIGHTS.pausedS * result.pausedConsumerS +
			QUALITY_WEIGHTS.dropped * result.droppedConsumers +
			QUALITY_WEIGHTS.refusedConsumer * result.refusedConsumers;
		result.wallS = Math.round((Date.now() - started) / 100) / 10;
		o.log?.(`netns ${mode}: ${JSON.stringify(result)}`);
		return result;
	} finally {
		clients?.close();
		await net.destroy();
		await influxd?.destroy();
	}
}
