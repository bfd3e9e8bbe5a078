import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { FROZEN_GAP_MS, plannedConsumerSeconds, ReceiverWatch } from '../../bench/allocation-real/receivers';
import type { TimelineEvent } from '../../training/loadgen/scenario';

/** A consumer as the watch reads it: id, kind, SSRC, pause state and its events. */
class FakeConsumer extends EventEmitter {
	readonly observer = new EventEmitter();
	paused = false;
	producerPaused = false;
	closed = false;
	readonly rtpParameters: { encodings: Array<{ ssrc: number }> };
	constructor(
		readonly id: string,
		readonly kind: 'audio' | 'video',
		ssrc: number,
	) {
		super();
		this.rtpParameters = { encodings: [{ ssrc }] };
	}
	pause(): void {
		this.paused = true;
		this.observer.emit('pause');
	}
	resume(): void {
		this.paused = false;
		this.observer.emit('resume');
	}
	close(): void {
		this.closed = true;
		this.observer.emit('close');
	}
}

function rtp(ssrc: number, pt = 101): Buffer {
	const b = Buffer.alloc(20);
	b[0] = 0x80;
	b[1] = pt;
	b.writeUInt32BE(ssrc, 8);
	return b;
}

function setup(): { watch: ReceiverWatch; at: (ms: number) => void; add: (c: FakeConsumer) => void } {
	let clock = 0;
	const watch = new ReceiverWatch(() => clock);
	return { watch, at: (ms) => void (clock = ms), add: (c) => watch.add(c as unknown as types.Consumer) };
}

describe('allocation-real receivers: frozen video and move gaps', () => {
	test('a video gap of ≥ 500 ms counts whole, a shorter one not, audio never', () => {
		const { watch, at, add } = setup();
		add(new FakeConsumer('v', 'video', 1));
		add(new FakeConsumer('a', 'audio', 2));
		for (const t of [100, 200, 200 + FROZEN_GAP_MS - 1, 2000, 2100]) {
			at(t);
			watch.packet(rtp(1));
			watch.packet(rtp(2));
		}
		at(2200);
		// 699 → 2000 is 1,301 ms; 200 → 699 is under the line; the 100 ms start-up is too.
		expect(watch.settle().frozenS).toBeCloseTo(1.301, 6);
	});

	test('RTCP on the same port and unknown SSRCs are ignored; a never-delivering video consumer is frozen for its life', () => {
		const { watch, at, add } = setup();
		const c = new FakeConsumer('v', 'video', 7);
		add(c);
		at(300);
		watch.packet(rtp(7, 200)); // a sender report (PT 200), not media
		watch.packet(rtp(99));
		at(1500);
		c.close();
		at(5000);
		expect(watch.settle().frozenS).toBeCloseTo(1.5, 6);
	});

	test('paused time is not frozen; the wait after a resume is', () => {
		const { watch, at, add } = setup();
		const c = new FakeConsumer('v', 'video', 3);
		add(c);
		at(100);
		watch.packet(rtp(3));
		at(200);
		c.pause();
		at(5000);
		c.resume();
		at(5400);
		watch.packet(rtp(3)); // 400 ms after the resume: fine
		at(5500);
		c.producerPaused = true;
		c.emit('producerpause');
		at(9000);
		c.producerPaused = false;
		c.emit('producerresume');
		at(9800); // 800 ms after the producer resumed: frozen
		watch.packet(rtp(3));
		expect(watch.settle().frozenS).toBeCloseTo(0.8, 6);
	});

	test('a move is charged max(price, measured gap) and its gap is not also frozen time', () => {
		const { watch, at, add } = setup();
		const old1 = new FakeConsumer('o1', 'video', 11);
		const old2 = new FakeConsumer('o2', 'video', 12);
		add(old1);
		add(old2);
		at(50);
		watch.packet(rtp(11));
		watch.packet(rtp(12));
		// o1 moves quickly (make-before-break): 100 ms gap, charged its 1 s price.
		at(100);
		const new1 = new FakeConsumer('n1', 'video', 21);
		add(new1);
		at(150);
		watch.packet(rtp(21));
		old1.close();
		watch.moved({ oldId: 'o1', newId: 'n1', priceS: 1 });
		// o2's receiver waits 3 s for its migrated producer's keyframe: charged the 3 s measured, not 2.
		at(200);
		const new2 = new FakeConsumer('n2', 'video', 22);
		add(new2);
		at(1000);
		old2.close(); // trailing silence 50 → 1000 belongs to the move
		at(3050);
		watch.packet(rtp(22)); // start-up silence 200 → 3050 belongs to the move
		watch.moved({ oldId: 'o2', newId: 'n2', priceS: 2 });
		at(3100);
		watch.packet(rtp(21));
		const figures = watch.settle();
		expect(figures.measuredMoveGapS.map((g) => Number(g.toFixed(3)))).toEqual([0.1, 3]);
		expect(figures.disruptionS).toBeCloseTo(1 + 3, 6);
		// n1 went silent 150 → 3100 (2.95 s): a freeze of its own, counted once.
		expect(figures.frozenS).toBeCloseTo(2.95, 6);
	});
});

describe('allocation-real: a refused join is priced as its whole stay', () => {
	const track = (mediaClass: 'audio' | 'video'): { mediaClass: 'audio' | 'video'; layers: number } => ({ mediaClass, layers: 1 });
	const publish = (peer: string, pub: number, n: number, atMs = 0): TimelineEvent => ({
		atMs,
		type: 'publish',
		peer,
		group: 'g',
		room: 'r',
		pub,
		recording: 'talking-head',
		data: false,
		tracks: Array.from({ length: n }, (_, i) => track(i === 0 ? 'audio' : 'video')) as never,
	});
	const sub = (atMs: number, peer: string, publisher: string, pub: number): TimelineEvent => ({ atMs, type: 'subscribe', peer, publisher, pub, paused: false });

	test('consumer-seconds of its subscriptions, ended by unsubscribe, unpublish, either leave or the scenario end', () => {
		const timeline: TimelineEvent[] = [
			publish('A', 0, 2),
			publish('B', 0, 1),
			publish('B', 1, 1),
			sub(1000, 'C', 'A', 0), // 2 tracks, until C unsubscribes at 6 s: 10
			sub(1000, 'C', 'B', 0), // 1 track, until B leaves at 11 s: 10
			sub(1000, 'C', 'B', 1), // 1 track, until B unpublishes it at 3 s: 2
			sub(2000, 'D', 'A', 0), // 2 tracks, until the end (20 s): 36
			{ atMs: 3000, type: 'unpublish', peer: 'B', pub: 1 },
			{ atMs: 6000, type: 'unsubscribe', peer: 'C', publisher: 'A', pub: 0 },
			{ atMs: 11_000, type: 'leave', peer: 'B' },
		];
		const cost = plannedConsumerSeconds(timeline, 20);
		expect(cost.get('C')).toBeCloseTo(22, 6);
		expect(cost.get('D')).toBeCloseTo(36, 6);
		expect(cost.get('A')).toBeUndefined();
	});
});
