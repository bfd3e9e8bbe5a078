import { createSocket, type Socket } from 'node:dgram';
import type { types } from 'mediasoup';
import { pubKey, type TimelineEvent } from '../../training/loadgen/scenario';

/**
 * What the receivers of bench/allocation-real.ts saw: a UDP sink for every receive
 * transport of a run reads the (clear, even under SRTP) SSRC of each RTP packet and keeps,
 * per consumer, when media arrived, so frozen video and the real gap of every move are
 * measured where a client would notice them. Definitions: docs/allocation-metrics.md,
 * "Real workers".
 */

/** A video consumer that delivers nothing for this long is frozen (issue 19's definition); the whole gap counts. */
export const FROZEN_GAP_MS = 500;

interface ConsumerWatch {
	kind: 'audio' | 'video';
	/** Since when a packet is awaited while the consumer is active (its creation, a resume, or its last packet). */
	refMs: number;
	/** Neither paused nor its producer paused, and open: only then is silence a freeze. */
	active: boolean;
	firstMs: number | undefined;
	lastMs: number | undefined;
	/** Gaps ≥ FROZEN_GAP_MS once it had delivered, while active. */
	innerFrozenMs: number;
	/** Gap ≥ FROZEN_GAP_MS before its first packet (from its creation or a resume). */
	initialFrozenMs: number;
	/** Gap ≥ FROZEN_GAP_MS running when it closed, after it had delivered. */
	trailingFrozenMs: number;
	closedMs: number | undefined;
}

/** One consumer a policy moved: the client consumes the same source as `newId` instead of `oldId`. */
export interface Move {
	oldId: string;
	newId: string;
	/** Priced disruption, seconds (a moved consumer 1, a receiver of a migrated producer 2). */
	priceS: number;
}

export interface ReceiverFigures {
	/** Frozen video seconds outside moves. */
	frozenS: number;
	/** Σ over moves of max(price, measured gap), seconds. */
	disruptionS: number;
	/** Each move's measured gap (the old consumer's last packet to the new one's first), seconds. */
	measuredMoveGapS: number[];
}

export class ReceiverWatch {
	private readonly bySsrc = new Map<number, ConsumerWatch>();
	private readonly consumers = new Map<string, ConsumerWatch>();
	private readonly moves: Move[] = [];
	private socket: Socket | undefined;

	constructor(private readonly now: () => number = () => performance.now()) {}

	/** Opens the sink on 127.0.0.1; its port is where receive transports deliver. */
	async open(): Promise<number> {
		const socket = createSocket('udp4');
		await new Promise<void>((resolve, reject) => {
			socket.once('error', reject);
			socket.bind(0, '127.0.0.1', () => resolve());
		});
		// A late packet after close, or an ICMP error, must not take the run down.
		socket.on('error', () => undefined);
		socket.on('message', (buf) => this.packet(buf));
		this.socket = socket;
		return socket.address().port;
	}

	close(): void {
		this.socket?.close();
		this.socket = undefined;
	}

	/** Watches a consumer of a receive transport delivering to this sink. */
	add(consumer: types.Consumer): void {
		const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc;
		if (ssrc === undefined) return;
		const w: ConsumerWatch = {
			kind: consumer.kind,
			refMs: this.now(),
			active: !consumer.paused && !consumer.producerPaused,
			firstMs: undefined,
			lastMs: undefined,
			innerFrozenMs: 0,
			initialFrozenMs: 0,
			trailingFrozenMs: 0,
			closedMs: undefined,
		};
		this.bySsrc.set(ssrc, w);
		this.consumers.set(consumer.id, w);
		const update = (): void => this.setActive(w, !consumer.closed && !consumer.paused && !consumer.producerPaused);
		consumer.observer.on('pause', update);
		consumer.observer.on('resume', update);
		consumer.on('producerpause', update);
		consumer.on('producerresume', update);
		consumer.observer.once('close', () => {
			this.end(w, this.now());
			if (this.bySsrc.get(ssrc) === w) this.bySsrc.delete(ssrc);
		});
	}

	/** A policy moved `oldId`'s receiver to `newId`. */
	moved(move: Move): void {
		this.moves.push(move);
	}

	/** One datagram that reached the sink. */
	packet(buf: Buffer): void {
		if (buf.length < 12 || buf[0]! >> 6 !== 2) return;
		// RTCP (sender reports) shares the port: payload types 200–204 read 72–76 with the marker bit masked.
		const pt = buf[1]! & 0x7f;
		if (pt >= 72 && pt <= 76) return;
		const w = this.bySsrc.get(buf.readUInt32BE(8));
		if (!w || w.closedMs !== undefined) return;
		const now = this.now();
		this.closeGap(w, now, false);
		w.firstMs ??= now;
		w.lastMs = now;
		w.refMs = now;
	}

	private setActive(w: ConsumerWatch, active: boolean): void {
		if (w.active === active || w.closedMs !== undefined) return;
		const now = this.now();
		this.closeGap(w, now, false);
		w.active = active;
		w.refMs = now;
	}

	/** Books the silence since w.refMs, up to `now`, if it was a freeze. */
	private closeGap(w: ConsumerWatch, now: number, closing: boolean): void {
		if (!w.active) return;
		const gap = now - w.refMs;
		if (gap < FROZEN_GAP_MS) return;
		if (w.firstMs === undefined) w.initialFrozenMs += gap;
		else if (closing) w.trailingFrozenMs += gap;
		else w.innerFrozenMs += gap;
	}

	private end(w: ConsumerWatch, now: number): void {
		if (w.closedMs !== undefined) return;
		this.closeGap(w, now, true);
		w.active = false;
		w.closedMs = now;
	}

	/**
	 * The figures at the end of a run (consumers still open end now). A move's gap replaces
	 * the old consumer's trailing and the new one's start-up freeze, so nothing is counted
	 * twice, and is charged at least its price; audio consumers never freeze (video only).
	 */
	settle(): ReceiverFigures {
		const endMs = this.now();
		for (const w of this.consumers.values()) this.end(w, endMs);
		const movedOut = new Set(this.moves.map((m) => m.oldId));
		const movedIn = new Set(this.moves.map((m) => m.newId));
		let frozenMs = 0;
		for (const [id, w] of this.consumers) {
			if (w.kind !== 'video') continue;
			frozenMs += w.innerFrozenMs;
			if (!movedIn.has(id)) frozenMs += w.initialFrozenMs;
			if (!movedOut.has(id)) frozenMs += w.trailingFrozenMs;
		}
		let disruptionS = 0;
		const measuredMoveGapS: number[] = [];
		for (const m of this.moves) {
			const from = this.consumers.get(m.oldId);
			const to = this.consumers.get(m.newId);
			// Without packets on the old consumer the gap starts when the new one was asked for.
			const lastOld = from?.lastMs ?? to?.refMs ?? endMs;
			const firstNew = to?.firstMs ?? to?.closedMs ?? endMs;
			const gapS = Math.max(0, firstNew - lastOld) / 1000;
			measuredMoveGapS.push(gapS);
			disruptionS += Math.max(m.priceS, gapS);
		}
		return { frozenS: frozenMs / 1000, disruptionS, measuredMoveGapS };
	}
}

/**
 * What each peer's planned subscriptions would have received, consumer-seconds: the price
 * of refusing its join (its whole stay), from the scenario's timeline.
 */
export function plannedConsumerSeconds(timeline: readonly TimelineEvent[], durationS: number): Map<string, number> {
	const tracks = new Map<string, number>();
	/** `${peer} ${pubKey}` → its subscriber and publisher, when it started and how many tracks it carries. */
	const open = new Map<string, { peer: string; publisher: string; pub: number; atMs: number; n: number }>();
	const out = new Map<string, number>();
	const end = (key: string, atMs: number): void => {
		const o = open.get(key);
		if (!o) return;
		out.set(o.peer, (out.get(o.peer) ?? 0) + (o.n * Math.max(0, atMs - o.atMs)) / 1000);
		open.delete(key);
	};
	for (const e of timeline) {
		if (e.type === 'publish') tracks.set(pubKey(e.peer, e.pub), e.tracks.length);
		else if (e.type === 'subscribe') {
			const key = `${e.peer} ${pubKey(e.publisher, e.pub)}`;
			if (!open.has(key)) open.set(key, { peer: e.peer, publisher: e.publisher, pub: e.pub, atMs: e.atMs, n: tracks.get(pubKey(e.publisher, e.pub)) ?? 1 });
		} else if (e.type === 'unsubscribe') end(`${e.peer} ${pubKey(e.publisher, e.pub)}`, e.atMs);
		// A subscription also ends without an event when its publication ends or either peer leaves.
		else if (e.type === 'unpublish') {
			for (const [key, o] of [...open]) if (o.publisher === e.peer && o.pub === e.pub) end(key, e.atMs);
		} else if (e.type === 'leave') {
			for (const [key, o] of [...open]) if (o.peer === e.peer || o.publisher === e.peer) end(key, e.atMs);
		}
	}
	for (const key of [...open.keys()]) end(key, durationS * 1000);
	return out;
}
