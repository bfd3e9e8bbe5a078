/**
 * Bookkeeping for actions that run in the background of the decision rounds. A round
 * decides synchronously and answers its joins at once; its migrations, spreads and
 * degrades run on without holding up the next admission answer. Two things keep that
 * from racing: an action whose media is already being changed by one still in flight is
 * not started (the policy will decide again on what the first one left), and a timer
 * round that finds the previous one still running is skipped rather than queued, so
 * slow hooks cannot pile rounds up behind them.
 */

/**
 * Media keys an action changes (`holds`) and keys that must be free to start it
 * (`needsFree`, a superset of `holds`): a consumer action must not start while its
 * producer is being migrated, since the migration re-creates that consumer.
 */
export interface ActionKeys {
	holds: string[];
	needsFree: string[];
}

export class InFlightActions {
	private readonly running = new Map<string, Set<Promise<unknown>>>();
	private count = 0;

	/** Actions started and not yet settled. */
	get size(): number {
		return this.count;
	}

	/** Whether one of `keys` is held by an action still running. */
	busy(keys: readonly string[]): boolean {
		return keys.some((k) => (this.running.get(k)?.size ?? 0) > 0);
	}

	/** Settles once nothing running holds one of `keys` (at call time; later starts are not waited for). */
	async whenFree(keys: readonly string[]): Promise<void> {
		const waits: Array<Promise<unknown>> = [];
		for (const k of keys) for (const p of this.running.get(k) ?? []) waits.push(p);
		await Promise.allSettled(waits);
	}

	/** Settles once every action running now has settled. */
	async idle(): Promise<void> {
		const all = new Set<Promise<unknown>>();
		for (const set of this.running.values()) for (const p of set) all.add(p);
		await Promise.allSettled([...all]);
	}

	/** Records `running` as holding `keys` until it settles; returns it unchanged. */
	track<T>(keys: readonly string[], running: Promise<T>): Promise<T> {
		this.count++;
		for (const k of keys) {
			let set = this.running.get(k);
			if (!set) this.running.set(k, (set = new Set()));
			set.add(running);
		}
		const release = (): void => {
			this.count--;
			for (const k of keys) {
				const set = this.running.get(k);
				set?.delete(running);
				if (set?.size === 0) this.running.delete(k);
			}
		};
		running.then(release, release);
		return running;
	}
}

/**
 * One decision round's own order. A round may plan several actions on the same media
 * (a room moved whole: each producer's receivers are spread, then the producer is
 * migrated): those run one after the other in the round's order instead of the later
 * ones being skipped as busy. Media held by an earlier round still makes an action skip.
 */
export class RoundOrder {
	private readonly last = new Map<string, Promise<unknown>>();

	/** `keys` an earlier action of this round holds (the rest must be free of other rounds' actions). */
	ownKeys(keys: readonly string[]): Set<string> {
		return new Set(keys.filter((k) => this.last.has(k)));
	}

	/** Settles once this round's earlier actions on `keys` have settled, however they ended. */
	async after(keys: readonly string[]): Promise<void> {
		await Promise.allSettled(keys.flatMap((k) => this.last.get(k) ?? []));
	}

	/** `running` is now this round's latest action on `keys`. */
	hold(keys: readonly string[], running: Promise<unknown>): void {
		for (const k of keys) this.last.set(k, running);
	}
}

/**
 * At most one run at a time; a call while one runs is not queued but skipped and
 * counted. For periodic work whose next period makes a skipped run redundant.
 */
export class SkipWhileRunning {
	private current: Promise<unknown> | undefined;
	private skippedRuns = 0;

	get skipped(): number {
		return this.skippedRuns;
	}

	get running(): boolean {
		return this.current !== undefined;
	}

	/** Starts `run`, or returns undefined (and counts a skip) when the previous run has not settled. */
	run<T>(run: () => Promise<T>): Promise<T> | undefined {
		if (this.current) {
			this.skippedRuns++;
			return undefined;
		}
		const started = run();
		this.current = started;
		const clear = (): void => {
			if (this.current === started) this.current = undefined;
		};
		started.then(clear, clear);
		return started;
	}
}
