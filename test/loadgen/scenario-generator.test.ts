import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import { readRecording } from '../../training/record/format';
import { EVALUATION_SEED_MIN, FAMILIES, generateScenario, isEvaluationSeed, parseFamilyRef } from '../../training/loadgen/generator';
import { Replayer } from '../../training/loadgen/replayer';
import { ScenarioRun } from '../../training/loadgen/runner';
import { parseScenario, planScenario, pubKey, RECORDING_CATALOG, TimelineState, type Scenario, type ScenarioInput, type TimelineEvent } from '../../training/loadgen/scenario';
import { MEDIA_CODECS } from '../../training/media/rig';

const RECORDINGS = join(__dirname, '../fixtures/recordings');

/** Checks what every consumer of the timeline relies on; returns the state at the end. */
function checkTimeline(scenario: Scenario, events: readonly TimelineEvent[]): TimelineState {
	const groups = new Map(scenario.groups.map((g) => [g.name, g]));
	const state = new TimelineState();
	let last = 0;
	for (const e of events) {
		expect(e.atMs).toBeGreaterThanOrEqual(last);
		expect(e.atMs).toBeLessThanOrEqual(scenario.durationS * 1000);
		last = e.atMs;
		switch (e.type) {
			case 'join':
				expect(state.peers.has(e.peer)).toBe(false);
				expect(groups.get(e.group)?.room).toBe(e.room);
				break;
			case 'publish':
				expect(state.peers.get(e.peer)?.room).toBe(e.room);
				expect(e.tracks.length).toBeGreaterThan(0);
				break;
			case 'unpublish':
				expect(state.publications.has(pubKey(e.peer, e.pub))).toBe(true);
				break;
			case 'leave':
			case 'speaker':
				expect(state.peers.has(e.peer)).toBe(true);
				if (e.type === 'speaker') {
					expect(state.peers.get(e.peer)!.room).toBe(e.room);
					expect([...state.publications.values()].some((p) => p.peer === e.peer && p.tracks.some((t) => t.kind === 'audio'))).toBe(true);
				}
				break;
			case 'subscribe':
			case 'subscription':
			case 'unsubscribe': {
				const consumer = state.peers.get(e.peer);
				const pub = state.publications.get(pubKey(e.publisher, e.pub));
				expect(consumer).toBeDefined();
				expect(pub).toBeDefined();
				expect(e.publisher).not.toBe(e.peer);
				expect(pub!.room).toBe(consumer!.room);
				expect(groups.get(consumer!.group)!.consume).toContain(pub!.group);
				const had = state.subscriptions.get(e.peer)?.has(pubKey(e.publisher, e.pub)) ?? false;
				expect(had).toBe(e.type !== 'subscribe');
				if (e.type !== 'unsubscribe') {
					const video = pub!.tracks.find((t) => t.kind === 'video');
					if (e.spatialLayer !== undefined) {
						expect(video).toBeDefined();
						expect(e.spatialLayer).toBeGreaterThanOrEqual(0);
						expect(e.spatialLayer).toBeLessThan(video!.layers);
					}
				}
				if (e.type === 'subscription') {
					const cur = state.subscriptions.get(e.peer)!.get(pubKey(e.publisher, e.pub))!;
					expect(cur.spatialLayer !== e.spatialLayer || cur.paused !== e.paused).toBe(true);
				}
				break;
			}
		}
		state.apply(e);
	}
	return state;
}

describe('the recording catalog', () => {
	test('matches every committed recording', () => {
		const files = readdirSync(RECORDINGS).filter((f) => f.endsWith('.rec.gz'));
		expect(files.map((f) => f.replace(/\.rec\.gz$/, '')).sort()).toEqual(Object.keys(RECORDING_CATALOG).sort());
		for (const f of files) {
			const rec = readRecording(join(RECORDINGS, f));
			const entry = RECORDING_CATALOG[f.replace(/\.rec\.gz$/, '')]!;
			expect(entry.tracks.map((t) => `${t.kind}/${t.label}/${t.layers}`).sort()).toEqual(rec.header.streams.map((s) => `${s.kind}/${s.label}/${s.layers.length}`).sort());
			expect(entry.chat).toBe((rec.header.dataChannel?.messages.length ?? 0) > 0);
		}
	});
});

describe('scenario generator', () => {
	test.each(FAMILIES)('%s: deterministic per seed, different across seeds, a consistent timeline', (family) => {
		const a = generateScenario(family, 3);
		expect(generateScenario(family, 3)).toEqual(a);
		expect(generateScenario(family, 4)).not.toEqual(a);
		expect(a.name).toBe(family);
		const plan = planScenario(a);
		expect(planScenario(a)).toEqual(plan);
		const state = checkTimeline(a, plan);
		expect(plan.some((e) => e.type === 'subscribe')).toBe(true);
		expect(plan.some((e) => e.type === 'speaker')).toBe(true);
		// Everyone has left at the end, so no subscription is left either.
		expect(state.peers.size).toBe(0);
		expect(state.links()).toBe(0);
		// Its JSON form is a valid scenario file that plans the same.
		expect(planScenario(parseScenario(JSON.parse(JSON.stringify(a))))).toEqual(plan);
	});

	test('every family uses several rooms or one room with changing membership, and together they use every recording, screen shares, chat and every view', () => {
		const used = { recordings: new Set<string>(), views: new Set<string>(), chat: false, screen: false, paused: false, layers: new Set<number>() };
		for (const family of FAMILIES) {
			for (const seed of [1, 2, 3]) {
				const s = generateScenario(family, seed);
				for (const g of s.groups) {
					used.views.add(g.view?.video.mode ?? 'all');
					for (const p of g.publish) {
						used.recordings.add(p.recording);
						used.chat ||= p.data;
						used.screen ||= p.recording === 'screen-share';
					}
				}
				for (const e of planScenario(s)) {
					if (e.type === 'subscribe' || e.type === 'subscription') {
						used.paused ||= e.paused;
						if (e.spatialLayer !== undefined) used.layers.add(e.spatialLayer);
					}
				}
			}
		}
		expect([...used.recordings].sort()).toEqual(Object.keys(RECORDING_CATALOG).sort());
		expect([...used.views].sort()).toEqual(['active-speaker', 'all', 'last-n', 'page']);
		expect(used.chat && used.screen && used.paused).toBe(true);
		expect([...used.layers].sort()).toEqual([0, 1, 2]);
	});

	test('scales by rooms: a meeting family at 160 peers keeps its rooms within the cap', () => {
		const s = generateScenario('last-n-meeting', 5, { peers: 160, durationS: 60 });
		const perRoom = new Map<string, number>();
		for (const g of s.groups) perRoom.set(g.room, (perRoom.get(g.room) ?? 0) + g.count);
		expect(perRoom.size).toBeGreaterThanOrEqual(4);
		expect(Math.max(...perRoom.values())).toBeLessThanOrEqual(41);
		checkTimeline(s, planScenario(s));
	});

	test('evaluation seeds and family references', () => {
		expect(isEvaluationSeed(EVALUATION_SEED_MIN)).toBe(true);
		expect(isEvaluationSeed(9999)).toBe(false);
		expect(parseFamilyRef('gen:audio-stage')).toBe('audio-stage');
		expect(parseFamilyRef('steady-meeting')).toBeUndefined();
		expect(() => parseFamilyRef('gen:nope')).toThrow(/unknown scenario family nope/);
		expect(() => generateScenario('grid-meetings', 1, { peers: 2 })).toThrow(/peers ≥ 4/);
	});
});

describe('views', () => {
	/** Six members with camera and mic in one room; the viewer's view under test. */
	function meeting(view: NonNullable<ScenarioInput['groups'][number]['view']>, extra: Partial<ScenarioInput> = {}): Scenario {
		return parseScenario({
			name: 'views',
			seed: 7,
			durationS: 60,
			speakerTurnS: { min: 1, max: 3 },
			groups: [
				{ name: 'member', count: 6, join: { atS: 0, spreadS: 2 }, publish: [{ recording: 'talking-head', labels: ['mic'] }, { recording: 'talking-head', labels: ['camera'] }], consume: ['member'] },
				{ name: 'sharer', count: 1, join: { atS: 0 }, publish: [{ recording: 'screen-share', startAfterS: 20, durationS: 10 }], consume: [] },
				{ name: 'viewer', count: 1, join: { atS: 5 }, consume: ['member', 'sharer'], view },
			],
			...extra,
		});
	}

	/** The viewer's subscriptions after every instant: [atMs, camera layers of unpaused cameras, paused cameras, screens, audio]. */
	function viewerTrace(s: Scenario): Array<{ atMs: number; cameras: number[]; paused: number; screens: number; audio: number }> {
		const state = new TimelineState();
		const trace: Array<{ atMs: number; cameras: number[]; paused: number; screens: number; audio: number }> = [];
		const plan = planScenario(s);
		plan.forEach((e, i) => {
			state.apply(e);
			if (plan[i + 1]?.atMs === e.atMs) return;
			const subs = state.subscriptions.get('viewer-0');
			if (!subs) return;
			const row = { atMs: e.atMs, cameras: [] as number[], paused: 0, screens: 0, audio: 0 };
			for (const [key, st] of subs) {
				const track = state.publications.get(key)!.tracks[0]!;
				if (track.kind === 'audio') row.audio++;
				else if (track.mediaClass === 'screen') row.screens++;
				else if (st.paused) row.paused++;
				else row.cameras.push(st.spatialLayer!);
			}
			trace.push(row);
		});
		return trace;
	}

	test('last-n: at most n cameras, the rest paused; all audio; a screen share shrinks the tiles', () => {
		const trace = viewerTrace(meeting({ video: { mode: 'last-n', n: 2 }, layers: 'tile', offscreen: 'pause' }));
		const mid = trace.filter((r) => r.atMs > 6000 && r.atMs < 20_000);
		expect(mid.length).toBeGreaterThan(0);
		for (const r of mid) {
			expect(r.cameras).toEqual([1, 1]);
			expect(r.paused).toBe(4);
			expect(r.audio).toBe(6);
		}
		const shared = trace.filter((r) => r.atMs > 20_000 && r.atMs < 30_000);
		for (const r of shared) {
			expect(r.screens).toBe(1);
			expect(r.cameras).toEqual([0, 0]);
		}
		// Speaking turns change who is shown: the pause state moves between cameras.
		const plan = planScenario(meeting({ video: { mode: 'last-n', n: 2 }, layers: 'tile', offscreen: 'pause' }));
		expect(plan.filter((e) => e.type === 'subscription' && e.peer === 'viewer-0' && e.atMs > 6000).length).toBeGreaterThan(4);
	});

	test('page: one page of tiles, the others closed; page turns change which', () => {
		const s = meeting({ video: { mode: 'page', size: 4, flipS: 5 }, layers: 'tile' });
		const trace = viewerTrace(s).filter((r) => r.atMs > 6000 && r.atMs < 20_000);
		for (const r of trace) {
			expect(r.paused).toBe(0);
			expect([2, 4]).toContain(r.cameras.length);
			expect(r.cameras.every((l) => l === 1)).toBe(true);
		}
		expect(new Set(trace.map((r) => r.cameras.length)).size).toBe(2);
	});

	test('active speaker: one large tile and the thumbnails; preferredSpatialLayer caps', () => {
		const trace = viewerTrace(meeting({ video: { mode: 'active-speaker', thumbnails: 2 }, layers: 'tile' })).filter((r) => r.atMs > 6000 && r.atMs < 20_000);
		for (const r of trace) expect(r.cameras.sort()).toEqual([0, 0, 2]);
		const capped = parseScenario({ ...meeting({ video: { mode: 'active-speaker', thumbnails: 2 }, layers: 'tile' }) });
		capped.groups[2]!.preferredSpatialLayer = 1;
		for (const r of viewerTrace(capped).filter((x) => x.atMs > 6000 && x.atMs < 20_000)) expect(r.cameras.sort()).toEqual([0, 0, 1]);
	});

	test('without a view: every camera at the preferred layer, as the five scenario files expect', () => {
		for (const r of viewerTrace(meeting({ video: { mode: 'all' }, layers: 'preferred' })).filter((x) => x.atMs > 6000)) {
			expect(r.paused).toBe(0);
			expect(r.cameras).toHaveLength(6);
		}
	});
});

describe('a generated scenario on a real worker', () => {
	test('the runner carries out subscriptions, layers and pauses as planned', async () => {
		// A short last-N meeting with paused off-screen cameras: every kind of subscription event.
		const generated = generateScenario('last-n-meeting', 11, { peers: 6, durationS: 30 });
		const scenario = parseScenario({ ...generated, durationS: 8, speakerTurnS: { min: 0.5, max: 1.5 }, groups: generated.groups.map((g) => ({ ...g, join: { atS: Math.min(g.join.atS, 2), spreadS: 1 }, stayS: undefined, view: { video: { mode: 'last-n', n: 2 }, layers: 'tile', offscreen: 'pause' } })) });
		const plan = planScenario(scenario);
		expect(plan.some((e) => e.type === 'subscription')).toBe(true);
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const replayer = new Replayer({ seed: 11 });
		const state = new TimelineState();
		const mismatches: string[] = [];
		let checked = 0;
		const consumers = new Set<mediasoup.types.Consumer>();
		router.observer.on('newtransport', (t) => t.observer.on('newconsumer', (c) => {
			consumers.add(c);
			c.observer.once('close', () => consumers.delete(c));
		}));
		try {
			const run = new ScenarioRun(scenario, {
				router,
				replayer,
				recordingsDir: RECORDINGS,
				onEvent: (e, live) => {
					state.apply(e);
					if (e.atMs < 3000 || e.atMs > 7000 || e.type === 'leave') return;
					// Every planned consumer exists, paused as planned, at the planned layer.
					let planned = 0;
					let pausedPlanned = 0;
					const layers: number[] = [];
					for (const subs of state.subscriptions.values()) {
						for (const [k, st] of subs) {
							const tracks = state.publications.get(k)!.tracks;
							planned += tracks.length;
							if (st.paused) pausedPlanned += tracks.length;
							if (st.spatialLayer !== undefined) layers.push(st.spatialLayer);
						}
					}
					const live_ = [...consumers];
					const paused = live_.filter((c) => c.paused).length;
					const liveLayers = live_.filter((c) => c.type === 'simulcast').map((c) => c.preferredLayers?.spatialLayer ?? -1);
					if (live.consumers !== planned || consumers.size !== planned || paused !== pausedPlanned || liveLayers.sort().join() !== layers.sort().join()) {
						mismatches.push(`${e.atMs}: ${consumers.size} consumers (${paused} paused, layers ${liveLayers.join()}), planned ${planned} (${pausedPlanned}, ${layers.join()})`);
					}
					checked++;
				},
			});
			await run.run();
		} finally {
			replayer.close();
			worker.close();
		}
		expect(checked).toBeGreaterThan(10);
		expect(mismatches).toEqual([]);
	}, 60_000);
});
