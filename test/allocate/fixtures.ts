import {
	MEASURED_COST_MODEL,
	type AllocationSnapshot,
	type ConsumerView,
	type MediaClass,
	type PendingJoin,
	type ProducerView,
	type RoomView,
	type WorkerView,
} from '../../plugin/allocate/snapshot';

/** Small hand-built snapshots for policy tests; loads are given, not simulated. */
export class SnapshotBuilder {
	private t = 0;
	private readonly workers: WorkerView[] = [];
	private readonly producers: ProducerView[] = [];
	private readonly consumers: ConsumerView[] = [];
	private readonly pendingJoins: PendingJoin[] = [];
	private seq = 0;

	at(t: number): this {
		this.t = t;
		return this;
	}

	/** A worker whose measured CPU is `cpuPct` and whose forecast p95 is `p95Pct` (default: the same). */
	worker(id: string, cpuPct: number, p95Pct = cpuPct, counts: Partial<Pick<WorkerView, 'transports' | 'producers' | 'consumers'>> = {}): this {
		this.workers.push({
			id,
			capacityPct: 100,
			cpuPct,
			forecast: [
				{ horizonS: 5, meanPct: cpuPct, p95Pct: Math.min(p95Pct, cpuPct + (p95Pct - cpuPct) / 2) },
				{ horizonS: 30, meanPct: cpuPct, p95Pct },
			],
			rssBytes: 50e6,
			routers: 1,
			transports: counts.transports ?? 0,
			producers: counts.producers ?? 0,
			consumers: counts.consumers ?? 0,
		});
		return this;
	}

	producer(id: string, peerId: string, roomId: string, workerId: string, mediaClass: MediaClass = 'video', activeSpeaker = false): this {
		const layers = mediaClass === 'video' ? [30, 60, 150] : mediaClass === 'audio' ? [50] : [400];
		this.producers.push({
			id,
			peerId,
			roomId,
			workerId,
			mediaClass,
			layers: layers.map((packetRate, spatial) => ({ spatial, packetRate, active: true })),
			packetRate: layers.reduce((a, b) => a + b, 0),
			expectedPacketRate: layers.reduce((a, b) => a + b, 0),
			activeSpeaker,
			ageS: 60,
		});
		return this;
	}

	/** Marks producers the app cannot move (ProducerView.movable). */
	unmovable(...producerIds: string[]): this {
		for (const p of this.producers) if (producerIds.includes(p.id)) p.movable = false;
		return this;
	}

	/** `count` consumers of `producerId` on `workerId`, each from its own receiving peer. */
	consume(producerId: string, workerId: string, count: number, options: Partial<Pick<ConsumerView, 'priority' | 'paused' | 'current' | 'movable'>> & { peerPrefix?: string } = {}): this {
		for (let i = 0; i < count; i++) {
			this.consumers.push({
				id: `c${this.seq++}`,
				peerId: `${options.peerPrefix ?? 'rx'}${i}`,
				producerId,
				workerId,
				priority: options.priority ?? 100,
				paused: options.paused ?? false,
				wanted: { spatial: 2, temporal: 2 },
				current: options.current ?? { spatial: 2, temporal: 2 },
				packetRate: 150,
				...(options.movable === false ? { movable: false } : {}),
			});
		}
		return this;
	}

	join(peerId: string, roomId: string, sends: MediaClass[] = ['audio', 'video'], consumes = true): this {
		this.pendingJoins.push({ peerId, roomId, sends, consumes, priority: 100 });
		return this;
	}

	build(): AllocationSnapshot {
		const rooms = new Map<string, { workers: Set<string>; peers: Set<string> }>();
		for (const p of this.producers) {
			let room = rooms.get(p.roomId);
			if (!room) rooms.set(p.roomId, (room = { workers: new Set(), peers: new Set() }));
			room.workers.add(p.workerId);
			room.peers.add(p.peerId);
		}
		const roomViews: RoomView[] = [...rooms].map(([id, room]) => ({ id, workerIds: [...room.workers], peers: room.peers.size }));
		return {
			t: this.t,
			costModel: { ...MEASURED_COST_MODEL },
			workers: this.workers,
			producers: this.producers,
			consumers: this.consumers,
			rooms: roomViews,
			pendingJoins: this.pendingJoins,
		};
	}
}

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
	const out: Record<string, number> = {};
	for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
	return out;
}
