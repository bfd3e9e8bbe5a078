import type { StreamProfile } from '../../plugin/profile/schema';
import { resolutionBucket } from '../../plugin/store/semantics';
import type { ProfileStore } from '../../plugin/store/types';
import { allocationAction, connectionProfile, streamProfile, workerLoad } from './fixtures';

/**
 * The behaviour every ProfileStore must share, run against MemoryStore and
 * InfluxStore alike. `open` gives each test an empty store (InfluxStore: its own
 * database). Times are recent so they sit inside InfluxDB's 24 h raw retention.
 */
export function profileStoreContract(name: string, open: () => Promise<ProfileStore>): void {
	describe(`ProfileStore contract: ${name}`, () => {
		let store: ProfileStore;
		// Whole seconds, 10 minutes ago: leaves room for ticks after it without reaching the future.
		const t0 = Math.floor((Date.now() - 600_000) / 1000) * 1000;

		beforeEach(async () => {
			store = await open();
		});
		afterEach(async () => {
			await store.close();
		});

		async function written(): Promise<void> {
			expect(await store.flush(10_000)).toBe(true);
		}

		test('stream profiles are read back exactly, in time order, filtered by worker and inclusive range', async () => {
			const profiles = Array.from({ length: 30 }, (_, i) => streamProfile(i, t0 + (29 - i) * 1000));
			await store.writeStreamProfiles(profiles);
			await written();
			const byTime = [...profiles].sort((a, b) => a.ts - b.ts);
			expect(await store.streamHistory(t0, t0 + 29_000)).toEqual(byTime);
			expect(await store.streamHistory(t0 + 5000, t0 + 7000)).toEqual(byTime.slice(5, 8));
			expect(await store.streamHistory(t0, t0 + 29_000, 'w1')).toEqual(byTime.filter((p) => p.workerId === 'w1'));
			expect(await store.streamHistory(t0 + 30_000, t0 + 40_000)).toEqual([]);
			expect(store.stats().writtenPoints).toBe(30);
		});

		test('worker load, connection profiles and actions are read back exactly', async () => {
			const loads = [0, 1, 2].flatMap((w) => [0, 1, 2, 3].map((k) => workerLoad(w, t0 + k * 1000 + w)));
			const connections = [0, 1, 2, 3].map((i) => connectionProfile(i, t0 + i * 500));
			const actions = [0, 1, 2].map((i) => allocationAction(i, t0 + i * 1000 + 7));
			await store.writeWorkerLoad(loads);
			await store.writeConnectionProfiles(connections);
			for (const a of actions) await store.writeAction(a);
			await written();
			const sortTs = <T extends { ts: number }>(xs: T[]): T[] => [...xs].sort((a, b) => a.ts - b.ts);
			expect(await store.workerLoadHistory(t0, t0 + 10_000)).toEqual(sortTs(loads));
			expect(await store.workerLoadHistory(t0, t0 + 10_000, 'w2')).toEqual(sortTs(loads.filter((s) => s.workerId === 'w2')));
			expect(await store.connectionHistory(t0, t0 + 10_000)).toEqual(connections);
			expect(await store.connectionHistory(t0, t0 + 10_000, 'w1')).toEqual(connections.filter((c) => c.workerId === 'w1'));
			expect(await store.actionHistory(t0, t0 + 10_000)).toEqual(actions);
		});

		test('writing the same record key and time again replaces it (an action gets its measured outcome)', async () => {
			const action = allocationAction(4, t0 + 123);
			await store.writeAction(action);
			await written();
			const completed = { ...action, actualAfter: { cpuPct: 61.5, rssBytes: 5.5e7 } };
			await store.writeAction(completed);
			const profile = streamProfile(3, t0 + 2000);
			await store.writeStreamProfiles([profile, { ...profile, complexity: 9 }]);
			await written();
			expect(await store.actionHistory(t0, t0 + 1000)).toEqual([completed]);
			expect(await store.streamHistory(t0, t0 + 5000)).toEqual([{ ...profile, complexity: 9 }]);
		});

		test('latest profile per stream, by worker and since; a stream that moved is listed under its new worker only', async () => {
			const first = [0, 1, 2, 3, 4, 5].map((i) => streamProfile(i, t0 + i));
			const second = [0, 1, 2, 3].map((i) => streamProfile(i, t0 + 10_000 + i));
			const moved = { ...streamProfile(5, t0 + 20_000), workerId: 'w1' };
			await store.writeStreamProfiles(first);
			await store.writeStreamProfiles(second);
			await store.writeStreamProfiles([moved]);
			await written();
			const expected = [first[4]!, ...second, moved].sort((a, b) => a.ts - b.ts);
			expect(await store.latestStreamProfiles()).toEqual(expected);
			expect(await store.latestStreamProfiles({ workerId: 'w2' })).toEqual(expected.filter((p) => p.workerId === 'w2'));
			expect((await store.latestStreamProfiles({ workerId: 'w2' })).map((p) => p.streamId)).not.toContain('stream-5');
			expect(await store.latestStreamProfiles({ since: t0 + 10_000 })).toEqual([...second, moved]);
		});

		test('similarity candidates: same kind, codec and resolution bucket, newest first, with the nearest load sample', async () => {
			const profiles: StreamProfile[] = [];
			for (let tick = 0; tick < 4; tick++) for (let i = 0; i < 24; i++) profiles.push(streamProfile(i, t0 + tick * 2000 + i));
			// Load for w0 only, every 2 s, 5 ms after each tick; w1/w2 have none.
			const loads = [0, 1, 2, 3].map((tick) => workerLoad(0, t0 + tick * 2000 + 5));
			await store.writeStreamProfiles(profiles);
			await store.writeWorkerLoad(loads);
			await written();

			const target = streamProfile(0, t0);
			const bucket = resolutionBucket(target);
			const matching = profiles
				.filter((p) => p.kind === 'video' && p.mimeType === 'video/VP8' && resolutionBucket(p) === bucket)
				.sort((a, b) => b.ts - a.ts);
			expect(matching.length).toBeGreaterThan(3);
			const got = await store.similarityCandidates({ kind: 'video', mimeType: 'video/VP8', resolutionBucket: bucket, limit: 3 });
			expect(got.map((c) => c.profile)).toEqual(matching.slice(0, 3));
			for (const c of got) {
				const nearest = loads.filter((s) => s.workerId === c.profile.workerId).sort((a, b) => Math.abs(a.ts - c.profile.ts) - Math.abs(b.ts - c.profile.ts))[0];
				expect(c.load).toEqual(nearest);
			}

			const consumers = await store.similarityCandidates({ kind: 'audio', entity: 'consumer', limit: 100 });
			expect(consumers.length).toBeGreaterThan(0);
			expect(await store.similarityCandidates({ kind: 'audio', entity: 'producer', limit: 100 })).toEqual([]);
			const audio = await store.similarityCandidates({ kind: 'audio', limit: 100 });
			expect(audio).toEqual(consumers);
			expect(audio.map((c) => c.profile)).toEqual(profiles.filter((p) => p.kind === 'audio').sort((a, b) => b.ts - a.ts || (a.streamId < b.streamId ? 1 : -1)));
			expect(audio.filter((c) => c.profile.workerId !== 'w0').every((c) => c.load === undefined)).toBe(true);

			const recent = await store.similarityCandidates({ kind: 'data', since: t0 + 6000, limit: 100 });
			expect(recent.map((c) => c.profile)).toEqual(profiles.filter((p) => p.kind === 'data' && p.ts >= t0 + 6000).sort((a, b) => b.ts - a.ts));
			expect(await store.similarityCandidates({ kind: 'video', mimeType: 'video/AV1', limit: 5 })).toEqual([]);
			await expect(store.similarityCandidates({ kind: 'video', limit: 0 })).rejects.toThrow(RangeError);
		});

		test('ids with quotes, commas, spaces and equals signs round-trip and cannot widen a query', async () => {
			const odd = { ...streamProfile(0, t0 + 1), streamId: `s "1", a=b c\\d`, workerId: `w' OR '1'='1` };
			const plain = streamProfile(1, t0 + 2);
			await store.writeStreamProfiles([odd, plain]);
			await written();
			expect(await store.streamHistory(t0, t0 + 10, odd.workerId)).toEqual([odd]);
			expect(await store.streamHistory(t0, t0 + 10, `' OR worker =~ /.*/ OR worker = '`)).toEqual([]);
			expect(await store.latestStreamProfiles({ workerId: odd.workerId })).toEqual([odd]);
		});
	});
}
