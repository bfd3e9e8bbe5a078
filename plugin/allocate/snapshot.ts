/**
 * What an allocation policy sees: only what a live deployment can observe (measured
 * worker load, profiled stream rates, the predictor's forecasts), never a simulator's
 * ground truth. Every field is plain data so policies stay pure and snapshots can be
 * recorded and replayed.
 */

/** Media class as the cost model distinguishes it (screen shares are bursty video). */
export type MediaClass = 'audio' | 'video' | 'screen';

/**
 * Per-packet CPU costs of a mediasoup worker, measured on this machine (mediasoup 3.19.3).
 * Policies use them to estimate what an action moves; the predictor calibrates the
 * per-worker scale against measured CPU.
 */
export interface CostModel {
	/** RTP received from a WebRTC producer, µs per packet (SRTP decrypt + routing). */
	ingressUsPerPacket: number;
	/** RTP sent to a WebRTC consumer, µs per packet (SRTP encrypt). */
	egressUsPerPacket: number;
	/** RTP sent over a pipe transport (plain RTP, no SRTP), µs per packet. */
	pipeEgressUsPerPacket: number;
	/** RTP received over a pipe transport, µs per packet. */
	pipeIngressUsPerPacket: number;
	/** Fixed cost of one receive transport, % of a core. */
	transportPct: number;
	/** Idle cost of a worker process, % of a core. */
	workerBasePct: number;
}

export const MEASURED_COST_MODEL: Readonly<CostModel> = Object.freeze({
	ingressUsPerPacket: 2.5,
	egressUsPerPacket: 13,
	pipeEgressUsPerPacket: 6.5,
	pipeIngressUsPerPacket: 2.5,
	transportPct: 0.1,
	workerBasePct: 0.5,
});

/** µs per second of packets → percent of one core. */
export function packetCostPct(packetRate: number, usPerPacket: number): number {
	return packetRate * usPerPacket * 1e-4;
}

export interface LoadForecast {
	horizonS: number;
	/** Expected CPU, % of one core. */
	meanPct: number;
	/** 95th percentile of the forecast distribution, % of one core. */
	p95Pct: number;
}

export interface WorkerView {
	id: string;
	/** CPU a worker can use, % of one core (100 for one mediasoup worker). */
	capacityPct: number;
	/** Last measured CPU (noisy, lagged by one sampling interval). */
	cpuPct: number;
	/** Predictor output, ascending horizons. */
	forecast: LoadForecast[];
	rssBytes: number;
	routers: number;
	transports: number;
	producers: number;
	consumers: number;
}

export interface LayerView {
	spatial: number;
	/** Observed packet rate when active, the profile's expectation when not yet active. */
	packetRate: number;
	active: boolean;
}

/**
 * `appData[MOVABLE_KEY] === false` on a producer, a consumer or their transport tells
 * Foresight the app cannot re-connect that client to another worker (a recorder, a
 * bot on a PlainTransport, a client without the migration signaling): it is never
 * migrated, its consumers never spread, and a worker hosting it is never emptied.
 * Layer, pause and drop actions still apply.
 */
export const MOVABLE_KEY = 'movable';

export interface ProducerView {
	id: string;
	peerId: string;
	roomId: string;
	workerId: string;
	mediaClass: MediaClass;
	/** Ascending spatial layers; audio has one. */
	layers: LayerView[];
	/** Observed ingress packet rate (all layers). */
	packetRate: number;
	/** Predictor's ingress packet rate at its longest horizon (ramp-up and p95 bursts included). */
	expectedPacketRate: number;
	/** From ActiveSpeakerObserver. */
	activeSpeaker: boolean;
	/** Seconds since the producer started: a young video producer is still ramping up. */
	ageS: number;
	/** False when the app cannot re-connect its client elsewhere (see MOVABLE_KEY): never migrated. Absent means movable. */
	movable?: boolean;
}

export interface LayerChoice {
	spatial: number;
	temporal: number;
}

export interface ConsumerView {
	id: string;
	peerId: string;
	producerId: string;
	workerId: string;
	/** App-given, 1 (lowest) … 255 (highest) as in mediasoup's setPriority. */
	priority: number;
	/** Paused by the allocation manager (not by the app or the remote peer). */
	paused: boolean;
	/** Layers the client asked for: the restore target. */
	wanted: LayerChoice;
	/** Preferred layers currently set on the consumer. */
	current: LayerChoice;
	/** Observed egress packet rate. */
	packetRate: number;
	/**
	 * The predictor's attribution of the worker's CPU to this consumer at its first horizon, % of
	 * a core, when the worker has a prediction that names it (the attribution sums to the
	 * worker's mean forecast with its base). Absent: only the cost model prices it.
	 */
	attributedPct?: number;
	/** False when the app cannot re-connect its client elsewhere (see MOVABLE_KEY): never moved to another worker. Absent means movable. */
	movable?: boolean;
}

export interface RoomView {
	id: string;
	/** Workers hosting one of the room's routers. */
	workerIds: string[];
	peers: number;
}

/** What a joining peer is expected to send and receive, from its profile or its kind of client. */
export interface PendingJoin {
	peerId: string;
	roomId: string;
	sends: MediaClass[];
	/** Whether it consumes the room's producers (false for pure senders). */
	consumes: boolean;
	priority: number;
}

export interface AllocationSnapshot {
	/** Seconds since an arbitrary origin. */
	t: number;
	costModel: CostModel;
	workers: WorkerView[];
	producers: ProducerView[];
	consumers: ConsumerView[];
	rooms: RoomView[];
	pendingJoins: PendingJoin[];
}
