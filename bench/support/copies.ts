import type { types } from 'mediasoup';
import type { Publisher, Replayer, Subscriber } from '../../training/loadgen/replayer';
import type { Recording } from '../../training/record/format';

/** A replayed peer of the overhead and soak benches: its copy and the bots consuming it. */
export interface BotCopy {
	pub: Publisher;
	subs: Subscriber[];
}

/**
 * Publishes one looping copy on `router`, subscribes `bots` bots to its top layer, then
 * starts it. Copies start one by one, as peers join: started together, their first
 * keyframes would leave in one burst that the replayer cannot send on time.
 */
export async function joinCopy(replayer: Replayer, router: types.Router, recording: Recording, bots: number): Promise<BotCopy> {
	const pub = await replayer.publish(router, recording, { loop: true, autoStart: false });
	const producers = [...pub.producers.values()];
	const subs: Subscriber[] = [];
	for (let b = 0; b < bots; b++) subs.push(await replayer.subscribe(router, producers, { preferredSpatialLayer: 2 }));
	replayer.start(pub);
	return { pub, subs };
}
