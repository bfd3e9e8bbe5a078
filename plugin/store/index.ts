import type { ResolvedForesightOptions } from '../config';
import type { Logger } from '../log';
import { InfluxStore, type InfluxStoreOptions } from './influxStore';
import { MemoryStore, type MemoryStoreOptions } from './memoryStore';
import type { ProfileStore } from './types';

export * from './types';
export { InfluxStore, type InfluxStoreOptions } from './influxStore';
export { MemoryStore, type MemoryStoreOptions, type MemorySnapshot } from './memoryStore';
export { resolutionBucket } from './semantics';
export { loadMemorySnapshot, saveMemorySnapshot } from './snapshot';

/** InfluxStore when `options.influx` is set (schema created before this resolves), else the embedded MemoryStore. */
export async function createProfileStore(
	options: Pick<ResolvedForesightOptions, 'influx'>,
	logger: Logger,
	extra: { memory?: MemoryStoreOptions; influx?: Partial<Omit<InfluxStoreOptions, 'logger'>> } = {},
): Promise<ProfileStore> {
	if (!options.influx) return new MemoryStore(extra.memory);
	return InfluxStore.open({ ...options.influx, ...extra.influx, logger });
}
