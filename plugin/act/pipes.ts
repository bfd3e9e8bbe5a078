import type { types } from 'mediasoup';

export interface PipedProducer {
	/** Id to consume on the target router (the original id across workers). */
	producerId: string;
	/** False when the producer was already there (piped before, or by the app). */
	piped: boolean;
}

interface PipeEntry {
	promise: Promise<PipedProducer>;
	/** Set once piped; a closed handle means the pipe is gone and may be redone. */
	pipeProducer?: types.Producer;
}

/**
 * Pipes producers between routers at most once per (producer, target router).
 * mediasoup already keeps one PipeTransport pair per router pair and reuses it in
 * both directions; what it does not do is notice that a producer is already on
 * the target: piping it again with its own id is refused by the worker. So
 * concurrent requests share one attempt, and a producer piped earlier — by
 * Foresight or by the app — is found and reused.
 */
export class Pipes {
	private readonly entries = new Map<string, PipeEntry>();

	/**
	 * Makes `producerId`, which lives on `source`, consumable on `target`. Routers
	 * on the same worker cannot share a producer id, so there the pipe producer
	 * gets a new one (returned).
	 */
	ensure(source: types.Router, producerId: string, target: types.Router, sameWorker: boolean): Promise<PipedProducer> {
		if (source === target) return Promise.resolve({ producerId, piped: false });
		this.sweep();
		const key = `${producerId}>${target.id}`;
		const existing = this.entries.get(key);
		if (existing) return existing.promise.then((p) => ({ ...p, piped: false }));
		const entry: PipeEntry = {
			promise: this.pipe(source, producerId, target, sameWorker).then(
				(result) => {
					// A pipe found on the target is not ours to watch: look again next time.
					if (result.pipeProducer) entry.pipeProducer = result.pipeProducer;
					else this.entries.delete(key);
					return { producerId: result.producerId, piped: result.pipeProducer !== undefined };
				},
				(error: unknown) => {
					this.entries.delete(key);
					throw error;
				},
			),
		};
		this.entries.set(key, entry);
		return entry.promise;
	}

	/** Forgets every pipe (they stay open: they close with their producer). */
	clear(): void {
		this.entries.clear();
	}

	private async pipe(
		source: types.Router,
		producerId: string,
		target: types.Router,
		sameWorker: boolean,
	): Promise<{ producerId: string; pipeProducer?: types.Producer }> {
		if (!sameWorker && (await hasProducer(target, producerId))) return { producerId };
		const { pipeProducer } = await source.pipeToRouter({ producerId, router: target, keepId: !sameWorker });
		if (!pipeProducer) throw new Error(`pipeToRouter returned no pipe producer for ${producerId}`);
		return { producerId: pipeProducer.id, pipeProducer };
	}

	/** Drops entries whose pipe has closed, so they neither leak nor block a new pipe. */
	private sweep(): void {
		for (const [key, entry] of this.entries) if (entry.pipeProducer?.closed) this.entries.delete(key);
	}
}

/** Whether a producer with this id exists on the router (its dump lists every producer). */
async function hasProducer(router: types.Router, producerId: string): Promise<boolean> {
	const dump = await router.dump();
	return dump.mapProducerIdConsumerIds.some((entry) => entry.key === producerId);
}
