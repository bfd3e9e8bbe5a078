import { readFile, rename, writeFile } from 'node:fs/promises';
import { MemoryStore, type MemoryStoreOptions } from './memoryStore';

/** Writes the store's contents as JSON (atomically: temp file, then rename). */
export async function saveMemorySnapshot(store: MemoryStore, path: string): Promise<void> {
	const tmp = `${path}.${process.pid}.tmp`;
	await writeFile(tmp, JSON.stringify(store.snapshot()));
	await rename(tmp, path);
}

/** Reads a snapshot file back into a MemoryStore; throws when the file is not a valid snapshot. */
export async function loadMemorySnapshot(path: string, options?: MemoryStoreOptions): Promise<MemoryStore> {
	return MemoryStore.fromSnapshot(JSON.parse(await readFile(path, 'utf8')) as unknown, options);
}
