import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { RejoinRequest } from '../plugin';
import type { Peer, Room } from './room';

/** How long a page has to re-connect after its worker died before the room gives up on it. */
export const REJOIN_TIMEOUT_MS = 15_000;
const MEDIA_POLL_MS = 100;

function liveTransportOn(peer: Peer, request: RejoinRequest, direction: 'send' | 'recv'): string | null {
	for (const t of peer.transports.values()) {
		if (!t.closed && t.appData.direction === direction && t.appData.routerId === request.router.id && !request.lostTransportIds.includes(t.id)) return t.id;
	}
	return null;
}

interface Pending {
	resolve(): void;
	reject(error: Error): void;
}

/**
 * The browser side of Foresight's rejoinPeers hook. The page keeps its session
 * and whatever still runs on live workers; it is told what died with its worker
 * and re-creates only that on the router Foresight chose (new transports, the same
 * tracks published again, the same producers consumed again), then says
 * `rejoined`. The hook's answer for the peer waits until its re-published
 * producers carry media on the new worker.
 */
export class Rejoins {
	private readonly pending = new Map<Peer, Pending>();

	constructor(
		private readonly room: Room,
		private readonly log: Logger,
	) {}

	async rejoin(peer: Peer, request: RejoinRequest): Promise<void> {
		this.cancel(peer, 'a newer rejoin replaced it');
		const t0 = Date.now();
		peer.router = request.router;
		peer.audioOnly = request.mode === 'audioOnly';
		const answered = new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => fail(new Error(`peer ${peer.id} did not re-join within ${REJOIN_TIMEOUT_MS} ms`)), REJOIN_TIMEOUT_MS);
			timer.unref();
			const settle = (): void => {
				clearTimeout(timer);
				if (this.pending.get(peer) === entry) this.pending.delete(peer);
			};
			const fail = (error: Error): void => {
				settle();
				reject(error);
			};
			const entry: Pending = {
				resolve: () => {
					settle();
					resolve();
				},
				reject: fail,
			};
			this.pending.set(peer, entry);
		});
		peer.notify('rejoin', {
			mode: request.mode,
			workerPid: request.router.appData.workerPid ?? null,
			lostTransportIds: request.lostTransportIds,
			lostProducerIds: request.lostProducerIds,
			lostConsumerIds: request.lostConsumerIds,
			lostDataProducerIds: request.lostDataProducerIds,
			lostDataConsumerIds: request.lostDataConsumerIds,
			// Live transports the page already has on the target router: it publishes and consumes there instead of opening more.
			sendTransportId: liveTransportOn(peer, request, 'send'),
			recvTransportId: liveTransportOn(peer, request, 'recv'),
			producers: this.room.producers(peer.id).filter((p) => !peer.audioOnly || p.kind === 'audio'),
			dataProducers: this.room.dataProducers(peer.id),
		});
		await answered;
		await this.untilFlowing(peer, request.router, t0 + REJOIN_TIMEOUT_MS);
		this.log.info({ peerId: peer.id, workerPid: request.router.appData.workerPid, mode: request.mode, ms: Date.now() - t0 }, 'peer re-joined after its worker died');
	}

	/** The page re-created what it lost (or could not: `error`). */
	answered(peer: Peer, error: string | undefined): void {
		const entry = this.pending.get(peer);
		if (!entry) return;
		if (error === undefined) entry.resolve();
		else entry.reject(new Error(`peer ${peer.id} could not re-join: ${error}`));
	}

	/** No worker could take the peer, not even audio only: its page says so (it keeps its session, without media). */
	refuse(peer: Peer, reason: string): void {
		this.cancel(peer, 'refused');
		peer.notify('rejoinRefused', { reason });
		this.log.warn({ peerId: peer.id, reason }, 'peer could not re-join after its worker died');
	}

	/** The peer left (or a newer rejoin replaces this one): its hook answer is 'not rejoined'. */
	cancel(peer: Peer, reason: string): void {
		this.pending.get(peer)?.reject(new Error(reason));
	}

	/** Resolves once every producer the peer has on `router` receives RTP. */
	private async untilFlowing(peer: Peer, router: types.Router, deadline: number): Promise<void> {
		const mine = (): types.Producer[] => [...peer.producers.values()].filter((p) => p.appData.routerId === router.id && !p.closed);
		for (;;) {
			const producers = mine();
			const flowing = await Promise.all(producers.map(async (p) => (await p.getStats().catch(() => [])).some((s) => s.packetCount > 0)));
			if (flowing.every(Boolean)) return;
			if (Date.now() > deadline) throw new Error(`peer ${peer.id} re-joined but its media did not flow within ${REJOIN_TIMEOUT_MS} ms`);
			await new Promise((r) => setTimeout(r, MEDIA_POLL_MS));
		}
	}
}
