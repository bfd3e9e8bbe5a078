import type { AllocationAction, AllocationPolicy } from '../actions';
import { guardedForesight } from '../policies';
import { leastLoadedPolicy } from '../policies/leastLoaded';
import type { AllocationSnapshot, PendingJoin } from '../snapshot';
import { decideCrossHost, hostFreeShare, liveHosts } from '../../cluster/decide';
import { afterMoves, decideCrossHostRelief } from '../../cluster/relieve';
import { buildHostReport, localHeadroom } from '../../cluster/report';
import { guard, initialSafetyState, SAFETY_DEFAULTS, type SafetyState } from '../safety';
import type { HostReport, Reservation } from '../../cluster/types';
import { buildScenario, SCENARIO_NAMES, type Scenario, type SimEvent } from './scenarios';

/**
 * Several hosts on the trace-driven simulator. The simulator's workers are split into
 * hosts of `workersPerHost` (worker i belongs to host ⌊i / workersPerHost⌋); a policy here
 * sees one snapshot of every worker, as the simulator gives it, but acts as the hosts
 * would: each host decides only for its own workers from its own part of the snapshot,
 * and what it knows of the other hosts is their reports as of `reportDelayS` ago (report
 * interval plus read interval). Nothing here reads the simulator's ground truth.
 *
 * Joins arrive at their room's home host, as a load balancer hashing the room would send
 * them. Three ways of running the hosts:
 * - `foresight-per-host`: each host's Foresight places and rebalances within its workers
 *   and refuses what it cannot take (Foresight as it was before the cluster view);
 * - `foresight-cross-host`: the same, plus the cluster view's admission (decideCrossHost:
 *   redirect when the home host has no predicted headroom, rooms stay with their host,
 *   reservations that other hosts see one report delay later);
 * - `node-selector`: LiveKit's node selection (kind sysload, sort_by random, the defaults): a
 *   new room goes to a node drawn among those whose reported CPU is under the limit (0.9),
 *   or the least loaded when none is; the room stays there. Within a node, eduMEET-style
 *   least-loaded placement (`least-loaded-66`).
 *
 * A room split over hosts is served as the simulator serves a room split over workers
 * (its producers piped where consumed, at the pipe's cost): the cross-host pipe.
 */
export type ClusterMode = 'foresight-cross-host' | 'foresight-per-host' | 'node-selector';
export const CLUSTER_MODES: readonly ClusterMode[] = ['foresight-cross-host', 'foresight-per-host', 'node-selector'];

export interface ClusterSimOptions {
	hosts: number;
	workersPerHost: number;
	/** Age of the other hosts' reports when a host reads them (report + read interval). */
	reportDelayS: number;
	/** How long a redirect's reservation stands (cluster.reservationTtlMs). */
	reservationTtlS: number;
	/** cluster.newRoomFreeShare of every host (its default). */
	newRoomFreeShare: number;
	/** Experimental: decideCrossHost's spillBelowFreeShare (0: off). */
	spillBelowFreeShare: number;
	/** LiveKit's node selector skips nodes whose reported CPU (mean over the node's workers) is above this share (its sysload_limit). */
	nodeCpuLimit: number;
	/** Cross-host Foresight spreads fan-out and migrates producers to other hosts (decideCrossHostRelief); false: admission only, for comparison. */
	crossHostRelief: boolean;
}

export const CLUSTER_SIM_DEFAULTS: Readonly<ClusterSimOptions> = Object.freeze({ hosts: 20, workersPerHost: 16, reportDelayS: 2, reservationTtlS: 10, newRoomFreeShare: 0.2, spillBelowFreeShare: 0, nodeCpuLimit: 0.9, crossHostRelief: true });

export interface ClusterCounters {
	crossHostRedirects: number;
	/** Joins whose room already lived on another host and were sent there. */
	sentToRoomHost: number;
	/** Fan-out spreads and producer migrations to another host the guard let through. */
	crossHostSpreads?: number;
	crossHostMigrations?: number;
	/** Expected exposure those moves were predicted to save, and the disruption they were priced at (consumer-s). */
	crossHostPredictedSavedS?: number;
	crossHostPricedDisruptionS?: number;
}

interface ClusterState {
	t: number;
	hostStates: unknown[];
	/** Reports per second, newest last, kept for `reportDelayS`. */
	history: HostReport[][];
	reservations: Reservation[];
	/** Node selector: room → node. */
	roomNode: Record<string, number>;
	/** Each host's guard over its cross-host moves (cooldowns and rate, as for moves within a host). */
	reliefSafety: SafetyState[];
}

const hostOfWorker = (workerId: string, workersPerHost: number): number => Math.floor(Number(workerId.slice(1)) / workersPerHost);

/** FNV-1a: a stable home host per room, as a load balancer hashing the room id. */
export function homeHost(roomId: string, hosts: number): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < roomId.length; i++) {
		h ^= roomId.charCodeAt(i);
		h = Math.imul(h, 0x01000193) >>> 0;
	}
	return h % hosts;
}

/** One host's part of a snapshot: its workers, the streams on them, its rooms; joins as given. */
export function hostSnapshot(snapshot: AllocationSnapshot, host: number, workersPerHost: number, joins: PendingJoin[]): AllocationSnapshot {
	const mine = (workerId: string): boolean => hostOfWorker(workerId, workersPerHost) === host;
	const producers = snapshot.producers.filter((p) => mine(p.workerId));
	const local = new Set(producers.map((p) => p.id));
	return {
		t: snapshot.t,
		costModel: snapshot.costModel,
		workers: snapshot.workers.filter((w) => mine(w.id)),
		producers,
		// Consumers of another host's producers are paid here (their egress) but only that host could move their source.
		consumers: snapshot.consumers.filter((c) => mine(c.workerId) && local.has(c.producerId)),
		rooms: snapshot.rooms.map((r) => ({ ...r, workerIds: r.workerIds.filter(mine) })).filter((r) => r.workerIds.length > 0),
		pendingJoins: joins,
	};
}

export function clusterPolicy(mode: ClusterMode, options: ClusterSimOptions, counters: ClusterCounters): AllocationPolicy<ClusterState> {
	const { hosts, workersPerHost } = options;
	const perHost = Array.from({ length: hosts }, () => (mode === 'node-selector' ? (leastLoadedPolicy() as AllocationPolicy<unknown>) : guardedForesight()));
	return {
		name: mode,
		initialState: () => ({ t: 0, hostStates: perHost.map((p) => p.initialState()), history: [], reservations: [], roomNode: {}, reliefSafety: perHost.map(() => initialSafetyState(SAFETY_DEFAULTS)) }),
		decide(snapshot, state) {
			const subs = Array.from({ length: hosts }, (_, h) => hostSnapshot(snapshot, h, workersPerHost, []));
			const reports: HostReport[] = subs.map((s, h) => ({ hostId: `h${h}`, ts: snapshot.t * 1000, seq: snapshot.t, ...buildHostReport(s) }));
			const history = [...state.history, reports].slice(-(options.reportDelayS + 1));
			// What a host reads of the others: their reports `reportDelayS` old; none before the first such report exists.
			const seen = history.length > options.reportDelayS ? history[0]! : [];
			const nowMs = snapshot.t * 1000;
			let reservations = state.reservations.filter((r) => r.expiresAt > nowMs);
			const roomNode = { ...state.roomNode };
			const joinsOf: PendingJoin[][] = Array.from({ length: hosts }, () => []);
			for (const join of snapshot.pendingJoins) {
				if (mode === 'node-selector') {
					let node = roomNode[join.roomId];
					if (node === undefined) {
						const load = (r: HostReport): number => r.workers.reduce((s, w) => s + w.cpuPct / w.capacityPct, 0) / Math.max(1, r.workers.length);
						const under = seen.filter((r) => load(r) < options.nodeCpuLimit);
						// LiveKit's default sort is random among the nodes under the limit (a least-loaded sort on a
						// delayed view herds every room of a burst onto one node); all over the limit: the least loaded.
						if (under.length > 0) node = Number(under[homeHost(`${join.roomId}#`, under.length)]!.hostId.slice(1));
						else if (seen.length > 0) node = Number(seen.reduce((a, b) => (load(b) < load(a) ? b : a)).hostId.slice(1));
						// Before any report arrives the selector has nothing to go on: the room's hash decides.
						else node = homeHost(join.roomId, hosts);
						roomNode[join.roomId] = node;
					}
					joinsOf[node]!.push(join);
					continue;
				}
				const home = homeHost(join.roomId, hosts);
				if (mode === 'foresight-per-host') {
					joinsOf[home]!.push(join);
					continue;
				}
				// The home host decides on its own live snapshot and the others' delayed reports, with its pending joins of this second included.
				const local = localHeadroom({ ...subs[home]!, pendingJoins: [join] }, join);
				const selfId = `h${home}`;
				// Reservations: a host's own at once, the others' once their report delay has passed.
				const visible = reservations.filter((r) => r.fromHost === selfId || r.createdAt <= nowMs - options.reportDelayS * 1000);
				const decision = decideCrossHost({
					selfId,
					roomId: join.roomId,
					costPct: local.costPct,
					remoteCostPct: local.remoteCostPct,
					localHeadroomPct: local.headroomPct,
					localHoldsRoom: local.holdsRoom || joinsOf[home]!.some((j) => j.roomId === join.roomId),
					localFreeShare: hostFreeShare(reports[home]!),
					newRoomFreeShare: options.newRoomFreeShare,
					spillBelowFreeShare: options.spillBelowFreeShare,
					redirected: false,
					hosts: liveHosts(seen, selfId, nowMs - options.reportDelayS * 1000, 3000),
					reservations: visible,
					nowMs,
				});
				if (decision.kind === 'local') {
					joinsOf[home]!.push(join);
					continue;
				}
				const target = Number(decision.target.hostId.slice(1));
				counters.crossHostRedirects++;
				if (decision.reason.startsWith('its room lives')) counters.sentToRoomHost++;
				reservations = [
					...reservations,
					{ id: `${join.peerId}@${snapshot.t}`, fromHost: selfId, targetHost: decision.target.hostId, roomId: join.roomId, peerId: join.peerId, costPct: decision.costPct, createdAt: nowMs, expiresAt: nowMs + options.reservationTtlS * 1000 },
				];
				joinsOf[target]!.push(join);
			}
			const actions: AllocationAction[] = [];
			const hostStates = state.hostStates.slice();
			const reliefSafety = state.reliefSafety.slice();
			for (let h = 0; h < hosts; h++) {
				let own = subs[h]!;
				if (mode === 'foresight-cross-host' && options.crossHostRelief) {
					const selfId = `h${h}`;
					const moves = decideCrossHostRelief({
						selfId,
						snapshot: own,
						hosts: liveHosts(seen, selfId, nowMs - options.reportDelayS * 1000, 3000),
						reservations: reservations.filter((r) => r.fromHost === selfId || r.createdAt <= nowMs - options.reportDelayS * 1000),
						nowMs,
					});
					if (moves.length > 0) {
						const guarded = guard(moves.map((m) => m.action), snapshot.t, reliefSafety[h]!, SAFETY_DEFAULTS);
						reliefSafety[h] = guarded.state;
						const approved = moves.filter((m) => guarded.approved.includes(m.action));
						for (const m of approved) {
							actions.push(m.action);
							if (m.action.type === 'spreadFanout') counters.crossHostSpreads = (counters.crossHostSpreads ?? 0) + 1;
							else counters.crossHostMigrations = (counters.crossHostMigrations ?? 0) + 1;
							counters.crossHostPredictedSavedS = (counters.crossHostPredictedSavedS ?? 0) + m.exposureSavedS;
							counters.crossHostPricedDisruptionS = (counters.crossHostPricedDisruptionS ?? 0) + m.disruptionS;
							if (m.costPct > 0) {
								reservations = [
									...reservations,
									{ id: `${m.action.type}:${m.action.producerId}@${snapshot.t}`, fromHost: selfId, targetHost: m.targetHost, roomId: m.roomId, peerId: m.action.producerId, costPct: m.costPct, createdAt: nowMs, expiresAt: nowMs + options.reservationTtlS * 1000 },
								];
							}
						}
						own = afterMoves(own, approved);
					}
				}
				const sub = joinsOf[h]!.length > 0 ? { ...own, pendingJoins: joinsOf[h]! } : own;
				const decision = perHost[h]!.decide(sub, hostStates[h]);
				hostStates[h] = decision.state;
				actions.push(...decision.actions);
			}
			return { actions, state: { t: snapshot.t, hostStates, history, reservations, roomNode, reliefSafety } };
		},
	};
}

/**
 * A workload for `hosts` × `workersPerHost` workers: the single-process scenarios, each
 * sized for 32 workers, run side by side (every scenario family in turn, each copy its
 * own seed and room names) as many times as 32-worker shares fit, times `load`.
 */
export function clusterScenario(options: Pick<ClusterSimOptions, 'hosts' | 'workersPerHost'>, seed: number, durationS: number, load = 1): Scenario {
	const workers = options.hosts * options.workersPerHost;
	const copies = Math.max(1, Math.round((load * workers) / 32));
	const events: SimEvent[] = [];
	for (let k = 0; k < copies; k++) {
		const name = SCENARIO_NAMES[k % SCENARIO_NAMES.length]!;
		const s = buildScenario(name, { workers: 32, durationS, seed: seed * 1000 + k });
		const prefix = `c${k}.`;
		for (const e of s.events) {
			if ('roomId' in e) events.push({ ...e, ...(('peerId' in e) ? { peerId: prefix + e.peerId } : {}), roomId: prefix + e.roomId } as SimEvent);
			else events.push({ ...e, peerId: prefix + e.peerId });
		}
	}
	const order: Record<SimEvent['type'], number> = { leave: 0, unsubscribe: 1, stopProducer: 2, join: 3, startProducer: 4, subscribe: 5, speaker: 6 };
	events.sort((a, b) => a.t - b.t || order[a.type] - order[b.type]);
	return { name: 'cluster-mix', durationS, workers, seed, events };
}
