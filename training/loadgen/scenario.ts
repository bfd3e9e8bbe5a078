import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Rng } from '../../plugin/util/rng';
import { planSubscriptions, pubKey } from './subscriptions';

export { pubKey };

/**
 * Scenarios: who joins when, what they publish, whom they consume. A scenario
 * file is validated here and expanded into a timeline by planScenario(), which
 * is pure and deterministic for a given seed; runScenario (runner.ts) carries
 * the timeline out against real routers.
 */

const publishSchema = z.object({
	/** Recording name (a file <name>.rec.gz in the recordings directory). */
	recording: z.string().min(1),
	labels: z.array(z.string()).optional(),
	maxLayers: z.int().min(1).max(3).optional(),
	/** Seconds after the peer joins (e.g. a screen share started mid-meeting). */
	startAfterS: z.number().min(0).default(0),
	/** Stops after this many seconds (default: until the peer leaves). */
	durationS: z.number().positive().optional(),
	/** Replay the recording's chat messages too. */
	data: z.boolean().default(false),
});

/** What a consumer's screen shows of the camera publications it consumes (audio and screen shares are always received). */
const videoViewSchema = z.discriminatedUnion('mode', [
	/** Every camera (a small meeting's grid). */
	z.object({ mode: z.literal('all') }),
	/** The n most recent speakers' cameras (Jitsi's last-N); those who never spoke follow in publish order. */
	z.object({ mode: z.literal('last-n'), n: z.int().min(1) }),
	/** A grid page of `size` tiles in publish order; the viewer turns to another page every `flipS` on average (exponential). */
	z.object({ mode: z.literal('page'), size: z.int().min(1), flipS: z.number().positive().optional() }),
	/** The current speaker large, plus `thumbnails` recent speakers small (a stage with a filmstrip). */
	z.object({ mode: z.literal('active-speaker'), thumbnails: z.int().min(0).default(0) }),
]);

const viewSchema = z.object({
	video: videoViewSchema.default({ mode: 'all' }),
	/**
	 * `preferred`: every video at the group's preferredSpatialLayer (unset = the highest).
	 * `tile`: the layer the tile's size needs (one tile 2, up to four 1, more or any
	 * screen share on the stage 0; a large active-speaker tile 2; screen shares 2),
	 * capped by preferredSpatialLayer when set.
	 */
	layers: z.enum(['preferred', 'tile']).default('preferred'),
	/** Cameras off screen: consumer closed (`unsubscribe`) or kept paused (`pause`, as last-N bridges do). */
	offscreen: z.enum(['unsubscribe', 'pause']).default('unsubscribe'),
});
export type ScenarioView = z.infer<typeof viewSchema>;

const groupSchema = z.object({
	name: z.string().min(1),
	/** The room its peers are in; a group consumes only groups of its own room. */
	room: z.string().min(1).default('main'),
	count: z.int().min(1).max(10_000),
	join: z.object({
		atS: z.number().min(0),
		/** Peers join spread uniformly over this window; 0 = all at once (a burst). */
		spreadS: z.number().min(0).default(0),
	}),
	/** How long each peer stays, drawn uniformly; absent = until the end. */
	stayS: z.object({ min: z.number().positive(), max: z.number().positive() }).refine((s) => s.max >= s.min, 'stayS.max < stayS.min').optional(),
	publish: z.array(publishSchema).default([]),
	/** Groups whose publications this group's peers consume. */
	consume: z.array(z.string()).default([]),
	/** Highest simulcast layer consumers in this group ask for. */
	preferredSpatialLayer: z.int().min(0).max(2).optional(),
	/** How consumers choose among cameras and their layers; absent = every camera at preferredSpatialLayer. */
	view: viewSchema.optional(),
	/**
	 * Who sends its peers' publications: `replay` (default) loops the recording over plain RTP;
	 * `browser` has a headless Chromium page publish the recording's sources with
	 * mediasoup-client over WebRTC (runner.ts RunOptions.browser). What its peers receive is
	 * consumed by SRTP bots either way.
	 */
	client: z.enum(['replay', 'browser']).optional(),
	/** Relative chance that one of its peers takes the next speaking turn (default 1 if the group publishes audio, else 0). */
	speakWeight: z.number().min(0).optional(),
});

export const scenarioSchema = z
	.object({
		name: z.string().min(1),
		description: z.string().default(''),
		seed: z.int().default(1),
		durationS: z.number().positive(),
		/** Length of a speaking turn in every room, drawn uniformly. */
		speakerTurnS: z
			.object({ min: z.number().positive(), max: z.number().positive() })
			.refine((s) => s.max >= s.min, 'speakerTurnS.max < speakerTurnS.min')
			.default({ min: 2, max: 12 }),
		groups: z.array(groupSchema).min(1),
	})
	.superRefine((s, ctx) => {
		const rooms = new Map(s.groups.map((g) => [g.name, g.room]));
		if (rooms.size !== s.groups.length) ctx.addIssue({ code: 'custom', message: 'group names must be unique', path: ['groups'] });
		s.groups.forEach((g, i) => {
			for (const c of g.consume) {
				if (!rooms.has(c)) ctx.addIssue({ code: 'custom', message: `unknown group ${c}`, path: ['groups', i, 'consume'] });
				else if (rooms.get(c) !== g.room) ctx.addIssue({ code: 'custom', message: `group ${c} is in room ${rooms.get(c)}, not ${g.room}`, path: ['groups', i, 'consume'] });
			}
		});
	});
export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ScenarioGroup = Scenario['groups'][number];
export type ScenarioPublish = ScenarioGroup['publish'][number];

export function parseScenario(input: unknown): Scenario {
	const r = scenarioSchema.safeParse(input);
	if (!r.success) throw new Error(`invalid scenario: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
	return r.data;
}

export function loadScenario(path: string): Scenario {
	return parseScenario(JSON.parse(readFileSync(path, 'utf8')));
}

/** One media track of a publication; `mediaClass` is the allocation simulator's class. */
export interface Track {
	label: string;
	kind: 'audio' | 'video';
	mediaClass: 'audio' | 'video' | 'screen';
	/** Simulcast spatial layers sent (1 for audio). */
	layers: number;
}

/**
 * The committed recordings (test/fixtures/recordings) and what they carry; a test keeps
 * this in step with the files' headers. `chat`: the recording has data-channel messages.
 */
export const RECORDING_CATALOG: Readonly<Record<string, { tracks: readonly Track[]; chat: boolean }>> = {
	'talking-head': {
		tracks: [
			{ label: 'camera', kind: 'video', mediaClass: 'video', layers: 3 },
			{ label: 'mic', kind: 'audio', mediaClass: 'audio', layers: 1 },
		],
		chat: true,
	},
	'scene-cuts': { tracks: [{ label: 'camera', kind: 'video', mediaClass: 'video', layers: 3 }], chat: false },
	'screen-share': { tracks: [{ label: 'screen', kind: 'video', mediaClass: 'screen', layers: 3 }], chat: false },
	'opus-mono-chat': { tracks: [{ label: 'mic', kind: 'audio', mediaClass: 'audio', layers: 1 }], chat: true },
	'opus-stereo': { tracks: [{ label: 'mic', kind: 'audio', mediaClass: 'audio', layers: 1 }], chat: false },
};

/**
 * The tracks a publish entry sends: the catalog's tracks of its recording, filtered by
 * `labels`, video capped at `maxLayers`. A recording outside the catalog is taken to carry
 * the labels it is published with (`mic` audio, `screen` a screen share, anything else a
 * camera), or one camera when no labels are given.
 */
export function publicationTracks(p: Pick<ScenarioPublish, 'recording' | 'labels' | 'maxLayers'>): Track[] {
	const known = RECORDING_CATALOG[p.recording]?.tracks;
	const guessed = (label: string): Track =>
		label === 'mic' ? { label, kind: 'audio', mediaClass: 'audio', layers: 1 } : { label, kind: 'video', mediaClass: label === 'screen' ? 'screen' : 'video', layers: 3 };
	const tracks = known ? known.filter((t) => !p.labels || p.labels.includes(t.label)) : (p.labels ?? ['camera']).map(guessed);
	return tracks.map((t) => (t.kind === 'video' && p.maxLayers !== undefined ? { ...t, layers: Math.min(t.layers, p.maxLayers) } : { ...t }));
}

/** A subscription's state: the spatial layer asked for (video only; unset = the highest) and whether it is paused. */
export interface SubscriptionState {
	spatialLayer?: number;
	paused: boolean;
}

/**
 * The timeline: what happens when, in time order. A publication is `(peer, pub)`.
 * A subscription is `(peer, publisher, pub)`: `peer` consumes every track of that
 * publication. It starts with `subscribe`, changes with `subscription`, and ends with
 * `unsubscribe`, or without an event when the publication is unpublished or either
 * peer leaves (as mediasoup closes consumers with their producer or transport).
 */
export type TimelineEvent =
	| { atMs: number; type: 'join'; peer: string; group: string; room: string }
	| { atMs: number; type: 'publish'; peer: string; group: string; room: string; pub: number; recording: string; labels?: string[]; maxLayers?: number; data: boolean; tracks: Track[] }
	| { atMs: number; type: 'unpublish'; peer: string; pub: number }
	| { atMs: number; type: 'leave'; peer: string }
	/** `peer` holds the floor in `room` from now on (the app's active-speaker signal). */
	| { atMs: number; type: 'speaker'; room: string; peer: string }
	| ({ atMs: number; type: 'subscribe'; peer: string; publisher: string; pub: number } & SubscriptionState)
	| ({ atMs: number; type: 'subscription'; peer: string; publisher: string; pub: number } & SubscriptionState)
	| { atMs: number; type: 'unsubscribe'; peer: string; publisher: string; pub: number };
export type TimelineEventOf<T extends TimelineEvent['type']> = Extract<TimelineEvent, { type: T }>;

const ORDER: Record<'join' | 'publish' | 'unpublish' | 'leave', number> = { join: 0, publish: 1, unpublish: 2, leave: 3 };

/**
 * Expands a scenario into time-ordered events; same scenario and seed, same timeline.
 * Joins, publications and leaves come first from the seed's stream (unchanged by the
 * subscription fields); speaking turns, page turns and subscriptions are then derived
 * by planSubscriptions() from a stream of their own.
 */
export function planScenario(scenario: Scenario, seed = scenario.seed): TimelineEvent[] {
	const rng = new Rng(seed);
	const endMs = scenario.durationS * 1000;
	const events: Array<TimelineEventOf<'join' | 'publish' | 'unpublish' | 'leave'>> = [];
	for (const g of scenario.groups) {
		for (let i = 0; i < g.count; i++) {
			const peer = `${g.name}-${i}`;
			const joinMs = Math.round((g.join.atS + rng.next() * g.join.spreadS) * 1000);
			if (joinMs >= endMs) continue;
			const leaveMs = g.stayS ? Math.min(endMs, joinMs + Math.round(rng.uniform(g.stayS.min, g.stayS.max) * 1000)) : endMs;
			events.push({ atMs: joinMs, type: 'join', peer, group: g.name, room: g.room });
			g.publish.forEach((p, pub) => {
				const startMs = joinMs + Math.round(p.startAfterS * 1000);
				if (startMs >= leaveMs) return;
				events.push({ atMs: startMs, type: 'publish', peer, group: g.name, room: g.room, pub, recording: p.recording, labels: p.labels, maxLayers: p.maxLayers, data: p.data, tracks: publicationTracks(p) });
				const stopMs = p.durationS === undefined ? leaveMs : Math.min(leaveMs, startMs + Math.round(p.durationS * 1000));
				if (stopMs < leaveMs) events.push({ atMs: stopMs, type: 'unpublish', peer, pub });
			});
			events.push({ atMs: leaveMs, type: 'leave', peer });
		}
	}
	// Stable: equal times keep join → publish → unpublish → leave, then plan order.
	const base = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.atMs - b.e.atMs || ORDER[a.e.type] - ORDER[b.e.type] || a.i - b.i).map(({ e }) => e);
	return planSubscriptions(scenario, base, seed);
}

/**
 * The state a timeline describes at the point reached: who is where, what is published,
 * who consumes what at which layer. apply() takes events in order and applies the
 * implicit ends; the allocation simulator, the cluster harness and tests read it.
 */
export class TimelineState {
	/** Peers present, with their group and room. */
	readonly peers = new Map<string, { group: string; room: string }>();
	/** Live publications by pubKey(). */
	readonly publications = new Map<string, TimelineEventOf<'publish'>>();
	/** Per consuming peer: its subscriptions by pubKey(). */
	readonly subscriptions = new Map<string, Map<string, SubscriptionState>>();
	/** The current speaker of each room that has one. */
	readonly speakers = new Map<string, string>();
	/** Per publication: the peers subscribed to it. */
	private readonly subscribers = new Map<string, Set<string>>();
	/** Per peer: its live publications' keys. */
	private readonly published = new Map<string, Set<string>>();
	private linkCount = 0;

	apply(e: TimelineEvent): void {
		switch (e.type) {
			case 'join':
				this.peers.set(e.peer, { group: e.group, room: e.room });
				return;
			case 'publish': {
				const key = pubKey(e.peer, e.pub);
				this.publications.set(key, e);
				let own = this.published.get(e.peer);
				if (!own) this.published.set(e.peer, (own = new Set()));
				own.add(key);
				return;
			}
			case 'unpublish':
				this.endPublication(pubKey(e.peer, e.pub));
				return;
			case 'leave': {
				for (const key of [...(this.published.get(e.peer) ?? [])]) this.endPublication(key);
				this.published.delete(e.peer);
				const subs = this.subscriptions.get(e.peer);
				for (const key of subs?.keys() ?? []) this.subscribers.get(key)?.delete(e.peer);
				this.linkCount -= subs?.size ?? 0;
				this.subscriptions.delete(e.peer);
				const room = this.peers.get(e.peer)?.room;
				if (room !== undefined && this.speakers.get(room) === e.peer) this.speakers.delete(room);
				this.peers.delete(e.peer);
				return;
			}
			case 'speaker':
				this.speakers.set(e.room, e.peer);
				return;
			case 'subscribe':
			case 'subscription': {
				const key = pubKey(e.publisher, e.pub);
				let subs = this.subscriptions.get(e.peer);
				if (!subs) this.subscriptions.set(e.peer, (subs = new Map()));
				if (!subs.has(key)) this.linkCount++;
				subs.set(key, e.spatialLayer === undefined ? { paused: e.paused } : { spatialLayer: e.spatialLayer, paused: e.paused });
				let who = this.subscribers.get(key);
				if (!who) this.subscribers.set(key, (who = new Set()));
				who.add(e.peer);
				return;
			}
			case 'unsubscribe': {
				const key = pubKey(e.publisher, e.pub);
				if (this.subscriptions.get(e.peer)?.delete(key)) this.linkCount--;
				this.subscribers.get(key)?.delete(e.peer);
				return;
			}
		}
	}

	/** Subscriptions in place (paused ones included). */
	links(): number {
		return this.linkCount;
	}

	private endPublication(key: string): void {
		const e = this.publications.get(key);
		if (!e) return;
		this.publications.delete(key);
		this.published.get(e.peer)?.delete(key);
		for (const peer of this.subscribers.get(key) ?? []) if (this.subscriptions.get(peer)?.delete(key)) this.linkCount--;
		this.subscribers.delete(key);
	}
}

/** Peak concurrent counts implied by a timeline (for sizing and for checks). */
export function timelinePeaks(events: readonly TimelineEvent[]): { peers: number; publications: number; consumerLinks: number } {
	const state = new TimelineState();
	const peak = { peers: 0, publications: 0, consumerLinks: 0 };
	for (const e of events) {
		state.apply(e);
		peak.peers = Math.max(peak.peers, state.peers.size);
		peak.publications = Math.max(peak.publications, state.publications.size);
		peak.consumerLinks = Math.max(peak.consumerLinks, state.links());
	}
	return peak;
}
