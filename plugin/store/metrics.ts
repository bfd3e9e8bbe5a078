import { Counter, Gauge, type Registry } from 'prom-client';
import type { ProfileStore } from './types';

/**
 * Exposes the store's buffer and loss counters to Prometheus. Values are read
 * from stats() at scrape time, so nothing runs between scrapes.
 */
export function registerStoreMetrics(store: Pick<ProfileStore, 'stats'>, registry: Registry, prefix = 'foresight_store_'): void {
	const registers = [registry];
	new Gauge({
		name: `${prefix}buffered_points`,
		help: 'Points accepted but not yet confirmed by the database',
		registers,
		collect() {
			this.set(store.stats().bufferedPoints);
		},
	});
	new Gauge({
		name: `${prefix}buffered_bytes`,
		help: 'Bytes of line protocol held for the database',
		registers,
		collect() {
			this.set(store.stats().bufferedBytes);
		},
	});
	const counters = [
		['dropped_points_total', 'Points dropped because the outage buffer bound was reached', 'droppedPoints'],
		['rejected_points_total', 'Points the database refused (not retried)', 'rejectedPoints'],
		['written_points_total', 'Points confirmed written', 'writtenPoints'],
	] as const;
	for (const [name, help, key] of counters) {
		let reported = 0;
		new Counter({
			name: `${prefix}${name}`,
			help,
			registers,
			collect() {
				// stats() is monotonic for these keys; a counter can only be increased, so add the difference.
				const current = store.stats()[key];
				if (current > reported) {
					this.inc(current - reported);
					reported = current;
				}
			},
		});
	}
}
