import { Registry } from 'prom-client';
import { registerStoreMetrics } from '../../plugin/store/metrics';
import type { StoreStats } from '../../plugin/store/types';

test('store counters and gauges report stats() at scrape time', async () => {
	const stats: StoreStats = { bufferedPoints: 12, bufferedBytes: 3400, droppedPoints: 5, rejectedPoints: 0, writtenPoints: 100 };
	const registry = new Registry();
	registerStoreMetrics({ stats: () => stats }, registry);
	const value = async (name: string): Promise<number | undefined> =>
		(await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values[0]?.value;

	expect(await value('foresight_store_dropped_points_total')).toBe(5);
	expect(await value('foresight_store_buffered_points')).toBe(12);
	stats.droppedPoints = 9;
	stats.writtenPoints = 250;
	stats.bufferedPoints = 0;
	expect(await value('foresight_store_dropped_points_total')).toBe(9);
	expect(await value('foresight_store_written_points_total')).toBe(250);
	expect(await value('foresight_store_buffered_points')).toBe(0);
	expect(await registry.metrics()).toContain('# TYPE foresight_store_dropped_points_total counter');
});
