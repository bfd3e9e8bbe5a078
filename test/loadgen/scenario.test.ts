import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { Replayer } from '../../training/loadgen/replayer';
import { runScenario, type RunState } from '../../training/loadgen/runner';
import { loadScenario, parseScenario, planScenario, timelinePeaks, type TimelineEvent } from '../../training/loadgen/scenario';

const SCENARIOS = join(__dirname, '../../training/loadgen/scenarios');
const RECORDINGS = join(__dirname, '../fixtures/recordings');
const REQUIRED = ['steady-meeting', 'bursty-joins', 'webinar-fanout', 'screen-share-storm', 'audio-only-town-hall'];

describe('scenario files and plans', () => {
	const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.json'));

	test('the five required scenarios exist and validate, and every recording they name is a fixture', () => {
		expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual(expect.arrayContaining(REQUIRED));
		const fixtures = new Set(readdirSync(RECORDINGS).map((f) => f.replace(/\.rec\.gz$/, '')));
		for (const f of files) {
			const s = loadScenario(join(SCENARIOS, f));
			for (const g of s.groups) for (const p of g.publish) expect(fixtures.has(p.recording)).toBe(true);
		}
	});

	test('invalid scenarios are rejected with the offending path', () => {
		expect(() => parseScenario({ name: 'x', durationS: 10, groups: [{ name: 'a', count: 1, join: { atS: 0 }, consume: ['nobody'] }] })).toThrow(/groups\.0\.consume: unknown group nobody/);
		expect(() => parseScenario({ name: 'x', durationS: 10, groups: [{ name: 'a', count: 0, join: { atS: 0 } }] })).toThrow(/groups\.0\.count/);
	});

	test.each(REQUIRED)('%s: same seed gives the same timeline, another seed another one; events are consistent', (name) => {
		const s = loadScenario(join(SCENARIOS, `${name}.json`));
		const a = planScenario(s);
		expect(planScenario(s)).toEqual(a);
		const spread = s.groups.some((g) => g.join.spreadS > 0 || g.stayS);
		if (spread) expect(planScenario(s, s.seed + 1)).not.toEqual(a);
		for (let i = 1; i < a.length; i++) expect(a[i]!.atMs).toBeGreaterThanOrEqual(a[i - 1]!.atMs);
		const joined = new Map<string, number>();
		for (const e of a) {
			if (e.type === 'join') joined.set(e.peer, e.atMs);
			else expect(joined.get(e.peer)).toBeLessThanOrEqual(e.atMs);
		}
		const expectedJoins = s.groups.reduce((n, g) => n + g.count, 0);
		expect(a.filter((e) => e.type === 'join')).toHaveLength(expectedJoins);
		expect(a.filter((e) => e.type === 'leave')).toHaveLength(expectedJoins);
		for (const g of s.groups) {
			for (const e of a) {
				if (e.type !== 'join' || e.group !== g.name) continue;
				expect(e.atMs).toBeGreaterThanOrEqual(g.join.atS * 1000);
				expect(e.atMs).toBeLessThanOrEqual((g.join.atS + g.join.spreadS) * 1000 + 1);
			}
		}
	});
});

describe('running a scenario on a real worker', () => {
	test('peers publish looping replays and SRTP consumer bots receive them as planned', async () => {
		const scenario = parseScenario({
			name: 'mini-meeting',
			seed: 9,
			durationS: 5,
			groups: [
				{ name: 'member', count: 3, join: { atS: 0, spreadS: 1 }, publish: [{ recording: 'talking-head' }], consume: ['member'], preferredSpatialLayer: 1 },
				{ name: 'viewer', count: 2, join: { atS: 1.5, spreadS: 0.5 }, consume: ['member'] },
			],
		});
		const plan = planScenario(scenario);
		const peaks = timelinePeaks(plan);
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({
			mediaCodecs: [
				{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
				{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
			] satisfies types.RouterRtpCodecCapability[],
		});
		const replayer = new Replayer({ seed: 9 });
		let peak: RunState | undefined;
		const applied: TimelineEvent[] = [];
		try {
			await runScenario(scenario, {
				router,
				replayer,
				recordingsDir: RECORDINGS,
				onEvent: (e, state) => {
					applied.push(e);
					if (!peak || state.consumers > peak.consumers) peak = state;
				},
			});
			const dump = (await router.dump()) as unknown as { transportIds: string[] };
			expect(dump.transportIds).toHaveLength(0);
			expect(replayer.stats().subscribers).toBe(0);
		} finally {
			const stats = replayer.stats();
			replayer.close();
			worker.close();
			expect(stats.sinkPackets).toBeGreaterThan(1000);
			expect(stats.packetsSent).toBeGreaterThan(3000);
		}
		expect(applied).toEqual(plan);
		// Each member publishes camera + mic (2 producers) and consumes the other two members; viewers consume all three.
		expect(peaks).toEqual({ peers: 5, publications: 3, consumerLinks: 3 * 2 + 2 * 3 });
		expect(peak!.publishers).toBe(3);
		expect(peak!.consumers).toBe((3 * 2 + 2 * 3) * 2);
	}, 30_000);
});
