/** What the fault suite (bench/faults/suite.ts) asks of the demo under test (bench/faults/demo.child.ts). */
import type { ProcessFaults } from '../../demo/guard';
import type { ActionOutcome, HealingEvent, StoreStats } from '../../plugin';

/** The migration hooks the suite can make misbehave, and how. */
export type HookFault = { hook: 'migrateProducer' | 'moveConsumers'; mode: 'hang' | 'throw' };

export type ChildRequest =
	| { type: 'info' }
	| { type: 'addBot' }
	/** Removes the bot added last. */
	| { type: 'removeBot' }
	| { type: 'removeBots' }
	/** The worker a peer (page or bot) was placed on. */
	| { type: 'workerOf'; peerId: string }
	/** Packets each receiving peer got so far from each source peer (server side: its consumers' egress). */
	| { type: 'flows' }
	/** The next call of `hook` hangs past the hook timeout or throws. */
	| { type: 'armHook'; fault: HookFault }
	/** Moves a page's camera producer to another worker through Foresight's actuator (resolves when it settles). */
	| { type: 'migrate'; peerId: string }
	/** Moves a page's consumers of one bot producer to another worker (spreadFanout → moveConsumers). */
	| { type: 'spread'; peerId: string }
	/** Whether the room waits for this page to re-publish a migrating producer. */
	| { type: 'migrationPending'; peerId: string }
	| { type: 'setLoss'; rate: number }
	| { type: 'health' }
	/** What the server sends a receiver's video consumers (page or bot), to tell why its media stopped. */
	| { type: 'videoState'; peerId: string }
	| { type: 'leaks' }
	| { type: 'close' };

export interface WorkerInfo {
	workerId: string;
	pid: number;
	slot: string;
	/** App transports on it (pages' and bots'). */
	transports: number;
}

export interface ChildInfo {
	url: string;
	workers: WorkerInfo[];
	/** Page peer ids by display name. */
	pages: Record<string, string>;
	bots: string[];
}

/** `${receiver}<${source}` → packets the receiver's consumers of the source's producers sent so far. */
export type Flows = Record<string, number>;

export interface Health {
	faults: ProcessFaults;
	store: StoreStats;
	healing: HealingEvent[];
	/** Hook calls the armed faults swallowed. */
	hookFaultsFired: number;
	/** Longest event-loop delay of the demo process since the previous health request. */
	loopDelayMaxMs: number;
	/** Consumer stats requests that did not come back within a flow sample since the previous health request. */
	statsTimeouts: number;
}

/** One video consumer of a receiver, as the server sees it. */
export interface VideoConsumerState {
	consumerId: string;
	/** Its transport: ICE state / DTLS state / selected tuple (WebRTC transports). */
	transport: string | undefined;
	source: string | undefined;
	paused: boolean;
	producerPaused: boolean;
	/** Spatial/temporal layers being forwarded (undefined: none). */
	currentLayers: { spatialLayer: number; temporalLayer?: number } | undefined;
	score: number;
	/** Send-side bandwidth estimate of its transport, bps (undefined: the stats did not answer). */
	availableOutgoingBitrate: number | undefined;
	/** RTP packets this consumer has sent, and its producer has received, so far (undefined: no answer). */
	sentPackets: number | undefined;
	producerReceivedPackets: number | undefined;
}

/** Entities, listeners and handles, to compare before and after a scenario. */
export interface LeakSnapshot {
	/** In Foresight's registry: app entities (pipe transports apart). */
	registry: Record<'transports' | 'pipeTransports' | 'producers' | 'consumers' | 'dataProducers' | 'dataConsumers' | 'routers' | 'workers', number>;
	/** In mediasoup's own router dumps, every router the registry knows. */
	mediasoup: Record<'transports' | 'producers' | 'consumers' | 'dataProducers' | 'dataConsumers', number>;
	/** Transports mediasoup has that the registry does not (type and appData), to say what leaked. */
	unknownTransports: string[];
	/** Foresight's own transports (its profiler keeps one DirectTransport per router for payload taps). */
	internalTransports: number;
	/** Listener totals: mediasoup's observer, the process, and per live worker / router (each entity's own emitter and observer). */
	listeners: { mediasoupObserver: number; process: number; perWorker: number[]; perRouter: number[] };
	/** `timers`: every live timer (unref'd too); the rest: process.getActiveResourcesInfo() by kind (UDPWrap, ProcessWrap, PipeWrap, …). */
	resources: Record<string, number>;
}

export type ChildReply = { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };

/** What the child reports for each request type. */
export type ReplyOf<T extends ChildRequest['type']> = T extends 'info'
	? ChildInfo
	: T extends 'addBot' | 'workerOf'
		? string
		: T extends 'removeBots'
			? number
			: T extends 'flows'
				? Flows
				: T extends 'migrate' | 'spread'
					? ActionOutcome
					: T extends 'migrationPending'
						? boolean
						: T extends 'health'
							? Health
							: T extends 'videoState'
								? VideoConsumerState[]
							: T extends 'leaks'
								? LeakSnapshot
								: undefined;
