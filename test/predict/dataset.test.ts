import { buildExamples, deriveEvents, splitBySession } from '../../plugin/predict/dataset';
import { HORIZONS_S, networkOfStreams } from '../../plugin/predict/types';
import { audioRoom, syntheticTimelines, videoRoom } from './synthetic';

describe('buildExamples', () => {
	const [timeline] = syntheticTimelines(21, { workers: 1, steps: 50 });

	test('one example per stride once history and every horizon are covered', () => {
		const examples = buildExamples(timeline!, { strideS: 2 });
		expect(examples).toHaveLength(10);
		const t0 = Math.min(...timeline!.samples.map((s) => s.ts));
		expect(examples[0]!.snapshot.now).toBe(t0 + 30_000);
		for (const e of examples) {
			expect(e.sessionId).toBe('session-21');
			expect(e.snapshot.samples.length).toBeLessThanOrEqual(30);
			expect(e.snapshot.samples.every((s) => s.ts <= e.snapshot.now)).toBe(true);
			for (const h of HORIZONS_S) {
				const future = timeline!.samples.find((s) => s.ts === e.snapshot.now + h * 1000)!;
				expect(e.targets[h].cpuPct).toBe(future.cpuPct);
				const streamsThen = timeline!.profiles.filter((p) => p.ts === e.snapshot.now + h * 1000);
				expect(e.targets[h].egressBps).toBe(networkOfStreams(streamsThen).egressBps);
			}
			expect(e.snapshot.streams.map((s) => s.streamId).sort()).toEqual(
				timeline!.profiles.filter((p) => p.ts === e.snapshot.now).map((p) => p.streamId).sort(),
			);
		}
	});

	test('skips instants whose target sample is missing', () => {
		const full = buildExamples(timeline!);
		const t0 = Math.min(...timeline!.samples.map((s) => s.ts));
		const gap = t0 + 40_000;
		const holed = buildExamples({ ...timeline!, samples: timeline!.samples.filter((s) => Math.abs(s.ts - gap) > 1500) });
		// Samples within 1.5 s of the gap are gone: an instant whose now + h lands on the gap has no
		// target within the 1 s tolerance and is skipped.
		expect(holed.length).toBeLessThan(full.length);
		for (const e of holed) for (const h of HORIZONS_S) expect(Math.abs(e.snapshot.now + h * 1000 - gap)).toBeGreaterThan(500);
	});

	test('a stream is absent once its profiles go stale or a leave is recorded', () => {
		const t = 1_000_000;
		const stay = videoRoom('v', 1).map((p) => ({ ...p, ts: t }));
		const leave = audioRoom('a', 0).map((p) => ({ ...p, ts: t }));
		const samples = Array.from({ length: 75 }, (_, i) => ({
			ts: t - 35_000 + i * 1000,
			workerId: 'w',
			pid: 1,
			cpuPct: 1,
			rssBytes: 1,
			routers: 1,
			transports: 1,
			producers: 1,
			consumers: 1,
			dataProducers: 0,
			dataConsumers: 0,
		}));
		const profiles = [...stay, ...leave, ...stay.map((p) => ({ ...p, ts: t + 2000 })), ...leave.map((p) => ({ ...p, ts: t + 2000 }))];
		const events = [...deriveEvents(profiles, 3000).filter((e) => e.type === 'join'), { ts: t + 2500, type: 'leave' as const, streamId: 'a', entity: 'producer' as const }];
		const examples = buildExamples({ workerId: 'w', sessionId: 's', samples, profiles, events }, { staleProfileMs: 3000 });
		const at = (now: number) => examples.find((e) => e.snapshot.now === now)!.snapshot.streams.map((s) => s.streamId).sort();
		expect(at(t + 2000)).toEqual(['a', 'v', 'v-c0']);
		expect(at(t + 3000)).toEqual(['v', 'v-c0']);
		expect(at(t + 6000)).toEqual([]);
	});

	test('a stream refreshed less often than the staleness period is gone after missing two of its own refreshes', () => {
		const p = videoRoom('v', 0)[0]!;
		// The profiler's slow tier: every 5 s.
		const events = deriveEvents([{ ...p, ts: 0 }, { ...p, ts: 5000 }, { ...p, ts: 10_000 }], 3000);
		expect(events.find((e) => e.type === 'leave')!.ts).toBe(20_000);
		// Every second: the staleness period rules.
		expect(deriveEvents([{ ...p, ts: 0 }, { ...p, ts: 1000 }], 3000).find((e) => e.type === 'leave')!.ts).toBe(4000);
	});

	test('derived events join at the first profile and leave one staleness period after the last', () => {
		const p = videoRoom('v', 0)[0]!;
		const events = deriveEvents([{ ...p, ts: 5000 }, { ...p, ts: 1000 }, { ...p, ts: 3000 }], 2000);
		expect(events).toEqual([
			{ ts: 1000, type: 'join', streamId: 'v', entity: 'producer' },
			{ ts: 7000, type: 'leave', streamId: 'v', entity: 'producer' },
		]);
	});
});

test('splitBySession keeps whole sessions together', () => {
	const examples = [1, 2, 3].flatMap((seed) => syntheticTimelines(seed, { workers: 1, steps: 35 }).flatMap((t) => buildExamples(t)));
	const { train, heldOut } = splitBySession(examples, new Set(['session-3']));
	expect(new Set(train.map((e) => e.sessionId))).toEqual(new Set(['session-1', 'session-2']));
	expect(new Set(heldOut.map((e) => e.sessionId))).toEqual(new Set(['session-3']));
	expect(train.length + heldOut.length).toBe(examples.length);

});
