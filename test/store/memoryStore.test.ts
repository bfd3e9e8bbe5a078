import { MemoryStore } from '../../plugin/store/memoryStore';
import { loadMemorySnapshot, saveMemorySnapshot } from '../../plugin/store/snapshot';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileStoreContract } from './contract';
import { allocationAction, connectionProfile, streamProfile, workerLoad } from './fixtures';

profileStoreContract('MemoryStore', async () => new MemoryStore());

describe('MemoryStore bounds and snapshots', () => {
	test('each series keeps its newest maxPointsPerSeries points; the stalest series goes first beyond maxSeries', async () => {
		const store = new MemoryStore({ maxPointsPerSeries: 5, maxSeries: 3 });
		for (let t = 0; t < 8; t++) await store.writeStreamProfiles([0, 1, 2].map((i) => streamProfile(i, 1000 * t + i)));
		const history = await store.streamHistory(0, 1e6);
		expect(history).toHaveLength(15);
		expect(Math.min(...history.map((p) => p.ts))).toBe(3000);
		// stream-0 was touched least recently when stream-3 arrives.
		await store.writeStreamProfiles([streamProfile(3, 9000)]);
		expect((await store.latestStreamProfiles()).map((p) => p.streamId).sort()).toEqual(['stream-1', 'stream-2', 'stream-3']);
		expect(store.stats()).toEqual({ bufferedPoints: 0, bufferedBytes: 0, droppedPoints: 0, rejectedPoints: 0, writtenPoints: 25 });
	});

	test('points older than retentionMs before the newest are forgotten, and so is a series with none newer', async () => {
		const store = new MemoryStore({ retentionMs: 10_000 });
		// stream-0 and stream-1 every second for 30 s; stream-2 only in the first 5 s (closed).
		for (let t = 0; t < 30; t++) await store.writeStreamProfiles([0, 1, ...(t < 5 ? [2] : [])].map((i) => streamProfile(i, 1000 * t)));
		const history = await store.streamHistory(0, 1e6);
		expect(new Set(history.map((p) => p.streamId))).toEqual(new Set(['stream-0', 'stream-1']));
		expect(Math.min(...history.map((p) => p.ts))).toBe(19_000);
		expect(history).toHaveLength(2 * 11);
		expect((await store.latestStreamProfiles()).map((p) => p.streamId).sort()).toEqual(['stream-0', 'stream-1']);
		// Record types keep their own spans: load samples are not dropped by newer profiles.
		await store.writeWorkerLoad([workerLoad(0, 0)]);
		expect(await store.workerLoadHistory(0, 1e6)).toHaveLength(1);
		expect(() => new MemoryStore({ retentionMs: 0 })).toThrow(RangeError);
	});

	test('a snapshot file restores the same query answers and rejects a corrupt file', async () => {
		const dir = mkdtempSync(join(tmpdir(), 'foresight-snapshot-'));
		try {
			const store = new MemoryStore();
			await store.writeStreamProfiles([0, 1, 2, 3].map((i) => streamProfile(i, 5000 + i)));
			await store.writeWorkerLoad([workerLoad(0, 5000), workerLoad(1, 5001)]);
			await store.writeConnectionProfiles([connectionProfile(0, 5002)]);
			await store.writeAction(allocationAction(0, 5003));
			const file = join(dir, 'snap.json');
			await saveMemorySnapshot(store, file);
			const restored = await loadMemorySnapshot(file);
			expect(restored.snapshot()).toEqual(store.snapshot());
			expect(await restored.latestStreamProfiles()).toEqual(await store.latestStreamProfiles());
			expect(await restored.similarityCandidates({ kind: 'video', limit: 5 })).toEqual(await store.similarityCandidates({ kind: 'video', limit: 5 }));

			writeFileSync(file, JSON.stringify({ ...store.snapshot(), version: 2 }));
			await expect(loadMemorySnapshot(file)).rejects.toThrow();
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
