/** Foresight policy's public contract: its options (one line of doc each) and the state it carries between decisions. */
import type { WorthRules } from '../worth';
import type { DegradeRules } from './degrade';
import type { JoinTrace } from './growth';

export interface ForesightPolicyOptions extends DegradeRules, WorthRules {
	/** Load at which a worker counts as overloaded (and starts dropping packets near 100). */
	limitPct: number;
	/**
	 * Relief moves (whole rooms, fan-out spreading, producer migration) judged as admission
	 * keeps a joiner with its room: a worker is relieved only while its expected load (mean
	 * forecast after this decision's actions, no tail, no growth extrapolation) is over
	 * `limitPct`, down to `relieveToPct` of it, and a move goes ahead only when the exposure
	 * it is expected to avoid on that load, net of what it adds on its target and (through
	 * its pipes) on the producers' workers, pays its disruption (worth.ts). A move is a
	 * certain cost (its receivers' gap; a split room's pipes carry every simulcast layer on
	 * both workers), the forecast's tail only a risk. Likewise a room that outgrew its worker
	 * (`relocateOutgrownRooms`) moves whole only when the joiner cannot stay with it under
	 * `keepWithRoomBelowPct`, the alternative being a split, and only when that pays on the
	 * expected load. Off: relief acts on the trajectory above `actAbovePct` and is judged with
	 * the tail, and rooms move whole as soon as their worker's trajectory is over the fill
	 * target (moves earlier, splits more rooms).
	 */
	reliefOnExpected: boolean;
	/**
	 * What a consumer takes off its worker when it is moved, lowered, paused or dropped is
	 * priced by the predictor's attribution of the worker's CPU to it (when the snapshot has
	 * one), else by the cost model. The cost model is a per-packet constant; the attribution is
	 * fitted to this worker's measured CPU, so a saving is not promised that the worker will
	 * not show. Pipes, transports and producers' ingress are still priced by the cost model.
	 */
	priceFromAttribution: boolean;
	/**
	 * With `reliefOnExpected` off: rebalance when a worker's predicted trajectory (p95 plus room growth) exceeds this …
	 * Above the limit on purpose: the trajectory is a 95th percentile, so past the limit a
	 * worker filled to `fillBelowPct` runs a real risk of overload, while the p95's own noise
	 * (a point or two from second to second) no longer crosses the trigger on its own.
	 */
	actAbovePct: number;
	/**
	 * … moving load off it until the trajectory is back at this. Above `fillBelowPct`: a
	 * relieved worker is not refilled by the next joins (which relieved it again, in a loop
	 * of moved receivers), it takes joins again once its load has receded under the fill target.
	 */
	relieveToPct: number;
	/** Quality is touched only while a worker stays predicted above this after rebalancing. */
	degradeAbovePct: number;
	/**
	 * Joins and moved load fill a worker up to this predicted trajectory before another
	 * worker is opened: workers run full, idle ones stay idle (no stream, no slack).
	 */
	fillBelowPct: number;
	/**
	 * Headroom a worker must keep to take a new room's first peer: meetings grow, and a room
	 * split over many workers pays a pipe per producer and worker.
	 */
	newRoomReservePct: number;
	/** Whether a new room goes to the fullest worker that keeps the reserve (dense: fewer half-idle workers) or the emptiest (rooms grow apart). */
	newRoomOnFullest: boolean;
	/**
	 * A joiner its room's only worker cannot take moves the whole room (with the joiner) to
	 * a worker that holds it, rather than splitting it over two workers and their pipes.
	 */
	relocateOutgrownRooms: boolean;
	/** Relocate only rooms with a join trend: a churn joiner replacing a leaver is no reason to move a settled room. */
	relocateGrowingOnly: boolean;
	/** A relocated room's new worker keeps this multiple of the room's load free for its growth (at least a new room's reserve). */
	relocateHeadroom: number;
	/**
	 * With `newRoomOnFullest`: only workers none of whose rooms is growing take a new room
	 * (else the emptiest with the reserve does). Rooms that grow side by side split, and on a
	 * fleet near capacity the pipes of split rooms are what tips it over.
	 */
	newRoomAvoidsGrowth: boolean;
	/**
	 * For `newRoomAvoidsGrowth`, a young room (every sender it has joined within `growthWindowS`,
	 * one just created included) counts as growing before two joins make a trend: a room that
	 * is being created is a meeting starting, not a churn joiner replacing a leaver.
	 */
	youngRoomsGrow: boolean;
	/**
	 * Over the fill target, a joiner still goes to its room's worker while that worker's
	 * expected load (mean forecast, no tail, no growth extrapolation) stays at or below this
	 * with it: splitting the room is a certain cost (a pipe per producer and worker, each
	 * carrying every simulcast layer), the forecast's tail only a risk.
	 */
	keepWithRoomBelowPct: number;
	/**
	 * A joiner whose room's worker is expected over the limit with it goes to another worker
	 * only when that split takes the room's worker under the limit: sent away, the peer still
	 * leaves there the pipe ingress of what it sends, that stream's egress to the room's
	 * receivers on it, and a pipe egress (every simulcast layer) per room producer. At the
	 * cost model's prices that is about what keeping it costs, so a split that cannot take
	 * the worker under the line relieves nothing and adds pipes on both workers; the joiner
	 * then stays with its room (unless the room moves whole) and relief judges the worker.
	 * Off: the joiner goes to the least loaded worker expected under the limit.
	 */
	splitOnlyToRelieve: boolean;
	/**
	 * With `reliefOnExpected`, when every worker's trajectory is over the fill target at the
	 * start of a decision, a room moved whole (by relief, or relocated at admission when it
	 * outgrew its worker) goes to a worker whose expected load (mean forecast, no tail, no
	 * growth) stays under the fill target with it: the load the move's trigger and its price
	 * read. A budget small against the forecast's tail (a worker at 15 % of a core whose p95
	 * sits points above its mean) has every trajectory over the fill target, and judged on it
	 * no room ever finds a new worker. While some worker is under the fill target on its
	 * trajectory, targets are judged on the trajectory: filled on its mean, a target's own
	 * tail is what overloads it next. Only whole rooms: a fan-out spread or a producer
	 * migration opens a pipe per producer and worker, which on workers this small costs more
	 * than it relieves; those keep their targets on the trajectory. Off: always the trajectory.
	 */
	roomTargetsOnExpected: boolean;
	/**
	 * A worker's trajectory is its mean forecast plus the larger of the forecast's tail (p95 −
	 * mean) and its rooms' growth, not their sum: both stand for load not yet seen. The anchored
	 * predictor's band is learned from its matured errors (before it has them, half the level
	 * plus a point: a worker in its first minute is still filling), and while its rooms fill
	 * those errors are the very joins the growth term extrapolates. Growth that this decision
	 * moves or places onto a worker is not in its band and adds on top. Off (the default):
	 * p95 plus growth, which exposed less on the tuning seeds (figures in 46f8bb4's message).
	 */
	growthWithinTail: boolean;
	/** Joins of the last this many seconds give a room's growth rate … */
	growthWindowS: number;
	/** … which is expected to go on for this long (the trajectory's horizon). */
	growthHorizonS: number;
	/** A worker predicted at or below this, with no growing room, is emptied onto fuller ones … */
	consolidateBelowPct: number;
	/** … each of which must stay at or below this (under the fill target: a hysteresis band against moving back). */
	consolidateFillPct: number;
	/** Lightest workers tried for consolidation per decision. */
	consolidateCandidates: number;
	/** Restore degraded consumers only on workers predicted below this … */
	restoreBelowPct: number;
	/** … and only while the projection stays below this. */
	restoreCeilingPct: number;
	/** Consumers at or above this priority are never degraded. */
	protectPriority: number;
	/** A room with fewer receivers on a worker is not worth a spread. */
	minFanout: number;
	/**
	 * Relieve a hot worker by moving whole rooms that live on it alone (every receiver and
	 * producer together, no pipe left behind) before splitting a room with fan-out spreading.
	 */
	moveWholeRooms: boolean;
	maxRestoresPerWorker: number;
	/** A consumer moved or degraded is left alone this long (matches the safety cooldown). */
	memoryS: number;
	/** When set, joins that fit nowhere are redirected there instead of refused. */
	redirectTarget?: string;
}

export interface ForesightState {
	/** consumerId → time Foresight last proposed to move or degrade it */
	recent: Record<string, number>;
	/** Sending joins of the last `growthWindowS`, per room: the rooms' growth trend. */
	joins: JoinTrace;
	/** workerId → times of its degrades in the last DEGRADE_WINDOW_S (the per-minute bound). */
	degradedAt?: Record<string, number[]>;
	/** workerId → last time it was found beyond relief: reported once, until it has been relievable for `memoryS`. */
	unrelieved?: Record<string, number>;
}
