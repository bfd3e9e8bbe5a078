import { Rng } from '../../plugin/util/rng';
import type { Scenario, ScenarioGroup, ScenarioView, SubscriptionState, TimelineEvent, TimelineEventOf } from './scenario';

/**
 * What each consumer receives over time, the way apps limit it: audio and screen shares
 * always, cameras as the group's view allows (every camera, the last N speakers, a page
 * of tiles, the active speaker with a filmstrip), at the layer its tile needs. Speaking
 * turns (which drive last-N and the active speaker) and page turns are drawn here.
 */

type BaseEvent = TimelineEventOf<'join' | 'publish' | 'unpublish' | 'leave'>;

export function pubKey(peer: string, pub: number): string {
	return `${peer}#${pub}`;
}

const DEFAULT_VIEW: ScenarioView = { video: { mode: 'all' }, layers: 'preferred', offscreen: 'unsubscribe' };

/** Below this many seconds the speaker process of a room with no one to speak looks again. */
const IDLE_SPEAKER_RETRY_MS = 1000;

interface Pub {
	key: string;
	peer: string;
	pub: number;
	group: string;
	cls: 'audio' | 'camera' | 'screen';
	/** Carries an audio track (the speaker process picks among peers with one). */
	audio: boolean;
	/** Spatial layers of its video track; 0 without video. */
	layers: number;
}

interface Peer {
	name: string;
	group: ScenarioGroup;
	room: Room;
	consumes: ReadonlySet<string>;
	page: number;
	gone: boolean;
	subs: Map<string, SubscriptionState>;
}

interface Room {
	name: string;
	peers: Map<string, Peer>;
	/** Live publications in publish order (the grid's order). */
	pubs: Map<string, Pub>;
	speaker: string | undefined;
	/** Peers by how recently they took the floor, latest first. */
	recent: string[];
}

/** Timers in (time, insertion) order. */
class TimerQueue {
	private readonly heap: Array<{ atMs: number; seq: number; fire: (atMs: number) => void }> = [];
	private seq = 0;

	get nextAtMs(): number {
		return this.heap[0]?.atMs ?? Number.POSITIVE_INFINITY;
	}

	push(atMs: number, fire: (atMs: number) => void): void {
		const h = this.heap;
		h.push({ atMs, seq: this.seq++, fire });
		for (let i = h.length - 1; i > 0; ) {
			const parent = (i - 1) >> 1;
			if (!this.less(i, parent)) break;
			[h[i], h[parent]] = [h[parent]!, h[i]!];
			i = parent;
		}
	}

	pop(): (atMs: number) => void {
		const h = this.heap;
		const top = h[0]!;
		const last = h.pop()!;
		if (h.length > 0) {
			h[0] = last;
			for (let i = 0; ; ) {
				const l = 2 * i + 1;
				const r = l + 1;
				let m = i;
				if (l < h.length && this.less(l, m)) m = l;
				if (r < h.length && this.less(r, m)) m = r;
				if (m === i) break;
				[h[i], h[m]] = [h[m]!, h[i]!];
				i = m;
			}
		}
		return top.fire;
	}

	private less(a: number, b: number): boolean {
		const x = this.heap[a]!;
		const y = this.heap[b]!;
		return x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);
	}
}

/** Layer for a grid of `tiles` cameras: one fills the screen, up to four share it, more are thumbnails; a screen share on the stage shrinks them all. */
function gridLayer(tiles: number, screenOnStage: boolean): number {
	if (screenOnStage) return 0;
	return tiles <= 1 ? 2 : tiles <= 4 ? 1 : 0;
}

/**
 * Adds to the time-ordered join/publish/unpublish/leave events the speaking turns and the
 * subscriptions; returns the whole timeline, time-ordered. Subscriptions change only at
 * the end of an instant (after every event and turn at that millisecond).
 */
export function planSubscriptions(scenario: Scenario, base: readonly BaseEvent[], seed: number): TimelineEvent[] {
	// A stream of its own, so the join/leave plan of a seed does not depend on these draws.
	const rng = new Rng((seed ^ 0x5bd1e995) >>> 0);
	const endMs = scenario.durationS * 1000;
	const groups = new Map(scenario.groups.map((g) => [g.name, g]));
	const rooms = new Map<string, Room>();
	const peers = new Map<string, Peer>();
	const dirty = new Set<Peer>();
	const timers = new TimerQueue();
	const out: TimelineEvent[] = [];

	const schedule = (atMs: number, fire: (atMs: number) => void): void => {
		if (atMs < endMs) timers.push(atMs, fire);
	};
	const markConsumersOf = (room: Room, group: string, except: string): void => {
		for (const p of room.peers.values()) if (p.name !== except && p.consumes.has(group)) dirty.add(p);
	};
	const markSpeakerViews = (room: Room): void => {
		for (const p of room.peers.values()) {
			const mode = p.group.view?.video.mode;
			if (mode === 'last-n' || mode === 'active-speaker') dirty.add(p);
		}
	};

	const speakerTurn = (room: Room) => (atMs: number): void => {
		const weight = (peer: string): number => peers.get(peer)!.group.speakWeight ?? 1;
		const candidates = [...new Set([...room.pubs.values()].filter((p) => p.audio).map((p) => p.peer))].filter((p) => weight(p) > 0);
		if (candidates.length === 0) return schedule(atMs + IDLE_SPEAKER_RETRY_MS, speakerTurn(room));
		const pool = candidates.length > 1 ? candidates.filter((p) => p !== room.speaker) : candidates;
		const total = pool.reduce((a, p) => a + weight(p), 0);
		let x = rng.next() * total;
		let next = pool[pool.length - 1]!;
		for (const p of pool) if ((x -= weight(p)) < 0) {
			next = p;
			break;
		}
		if (next !== room.speaker) {
			room.speaker = next;
			room.recent = [next, ...room.recent.filter((p) => p !== next)];
			out.push({ atMs, type: 'speaker', room: room.name, peer: next });
			markSpeakerViews(room);
		}
		schedule(atMs + Math.max(1, Math.round(rng.uniform(scenario.speakerTurnS.min, scenario.speakerTurnS.max) * 1000)), speakerTurn(room));
	};

	const pageTurn = (peer: Peer, flipS: number, size: number) => (atMs: number): void => {
		if (peer.gone) return;
		const cameras = [...peer.room.pubs.values()].filter((p) => p.cls === 'camera' && p.peer !== peer.name && peer.consumes.has(p.group)).length;
		const pages = Math.ceil(cameras / size);
		if (pages > 1) {
			const current = Math.min(peer.page, pages - 1);
			const other = rng.int(0, pages - 2);
			peer.page = other >= current ? other + 1 : other;
			dirty.add(peer);
		}
		schedule(atMs + Math.max(1, Math.round(rng.exponential(flipS) * 1000)), pageTurn(peer, flipS, size));
	};

	const removePub = (room: Room, key: string): void => {
		const pub = room.pubs.get(key);
		if (!pub) return;
		room.pubs.delete(key);
		// Its subscriptions end with it, without events.
		for (const p of room.peers.values()) p.subs.delete(key);
		markConsumersOf(room, pub.group, pub.peer);
	};

	const applyBase = (e: BaseEvent): void => {
		switch (e.type) {
			case 'join': {
				let room = rooms.get(e.room);
				if (!room) {
					room = { name: e.room, peers: new Map(), pubs: new Map(), speaker: undefined, recent: [] };
					rooms.set(e.room, room);
					schedule(e.atMs + 1, speakerTurn(room));
				}
				const group = groups.get(e.group)!;
				const peer: Peer = { name: e.peer, group, room, consumes: new Set(group.consume), page: 0, gone: false, subs: new Map() };
				room.peers.set(e.peer, peer);
				peers.set(e.peer, peer);
				if (peer.consumes.size > 0) dirty.add(peer);
				const video = group.view?.video;
				if (video?.mode === 'page' && video.flipS !== undefined) schedule(e.atMs + Math.max(1, Math.round(rng.exponential(video.flipS) * 1000)), pageTurn(peer, video.flipS, video.size));
				return;
			}
			case 'publish': {
				const room = rooms.get(e.room)!;
				const video = e.tracks.find((t) => t.kind === 'video');
				const cls = e.tracks.some((t) => t.mediaClass === 'screen') ? 'screen' : video ? 'camera' : 'audio';
				const key = pubKey(e.peer, e.pub);
				room.pubs.set(key, { key, peer: e.peer, pub: e.pub, group: e.group, cls, audio: e.tracks.some((t) => t.kind === 'audio'), layers: video?.layers ?? 0 });
				markConsumersOf(room, e.group, e.peer);
				return;
			}
			case 'unpublish': {
				const peer = peers.get(e.peer);
				if (peer) removePub(peer.room, pubKey(e.peer, e.pub));
				return;
			}
			case 'leave': {
				const peer = peers.get(e.peer);
				if (!peer) return;
				const room = peer.room;
				for (const key of [...room.pubs.keys()]) if (room.pubs.get(key)!.peer === e.peer) removePub(room, key);
				peer.gone = true;
				room.peers.delete(e.peer);
				peers.delete(e.peer);
				dirty.delete(peer);
				if (room.recent.includes(e.peer)) {
					room.recent = room.recent.filter((p) => p !== e.peer);
					if (room.speaker === e.peer) room.speaker = undefined;
					markSpeakerViews(room);
				}
				return;
			}
		}
	};

	/** Per flush, per room: its publications and the speakers' recency ranks (shared by the room's consumers). */
	const roomViews = new Map<Room, { pubs: Pub[]; rank: Map<string, number> }>();
	const roomView = (room: Room): { pubs: Pub[]; rank: Map<string, number> } => {
		let v = roomViews.get(room);
		if (!v) roomViews.set(room, (v = { pubs: [...room.pubs.values()], rank: new Map(room.recent.map((p, i) => [p, i])) }));
		return v;
	};

	const wanted = (peer: Peer): Map<string, SubscriptionState> => {
		const view = peer.group.view ?? DEFAULT_VIEW;
		const preferred = peer.group.preferredSpatialLayer;
		const layer = (p: Pub, tile: number): number | undefined => {
			if (p.layers === 0) return undefined;
			if (view.layers === 'preferred') return preferred === undefined ? undefined : Math.min(preferred, p.layers - 1);
			const l = Math.min(tile, p.layers - 1);
			return preferred === undefined ? l : Math.min(l, preferred);
		};
		const state = (spatialLayer: number | undefined, paused: boolean): SubscriptionState => (spatialLayer === undefined ? { paused } : { spatialLayer, paused });
		const room = roomView(peer.room);
		const candidates = room.pubs.filter((p) => p.peer !== peer.name && peer.consumes.has(p.group));
		const want = new Map<string, SubscriptionState>();
		for (const p of candidates) if (p.cls === 'audio') want.set(p.key, state(undefined, false));
		const screens = candidates.filter((p) => p.cls === 'screen');
		for (const p of screens) want.set(p.key, state(layer(p, 2), false));
		const cameras = candidates.filter((p) => p.cls === 'camera');
		const stage = screens.length > 0;
		// Stable: equal ranks keep publish order.
		const byRecency = (): Pub[] => cameras.map((p, i) => ({ p, i, r: room.rank.get(p.peer) ?? Number.POSITIVE_INFINITY })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.p);
		const onscreen = new Map<string, number>();
		const v = view.video;
		switch (v.mode) {
			case 'all':
				for (const p of cameras) onscreen.set(p.key, gridLayer(cameras.length, stage));
				break;
			case 'last-n': {
				const shown = byRecency().slice(0, v.n);
				for (const p of shown) onscreen.set(p.key, gridLayer(shown.length, stage));
				break;
			}
			case 'page': {
				const pages = Math.max(1, Math.ceil(cameras.length / v.size));
				const page = Math.min(peer.page, pages - 1);
				const shown = cameras.slice(page * v.size, (page + 1) * v.size);
				for (const p of shown) onscreen.set(p.key, gridLayer(shown.length, stage));
				break;
			}
			case 'active-speaker': {
				const [main, ...rest] = byRecency();
				if (main) onscreen.set(main.key, stage ? 0 : 2);
				for (const p of rest.slice(0, v.thumbnails)) onscreen.set(p.key, 0);
				break;
			}
		}
		for (const p of cameras) {
			const tile = onscreen.get(p.key);
			if (tile !== undefined) want.set(p.key, state(layer(p, tile), false));
			else if (view.offscreen === 'pause') want.set(p.key, state(peer.subs.get(p.key)?.spatialLayer ?? layer(p, 0), true));
		}
		return want;
	};

	const flush = (atMs: number): void => {
		for (const peer of dirty) {
			const want = wanted(peer);
			const pubs = peer.room.pubs;
			for (const [key, st] of want) {
				const p = pubs.get(key)!;
				const cur = peer.subs.get(key);
				if (!cur) out.push({ atMs, type: 'subscribe', peer: peer.name, publisher: p.peer, pub: p.pub, ...st });
				else if (cur.spatialLayer !== st.spatialLayer || cur.paused !== st.paused) out.push({ atMs, type: 'subscription', peer: peer.name, publisher: p.peer, pub: p.pub, ...st });
				peer.subs.set(key, st);
			}
			for (const key of [...peer.subs.keys()]) {
				if (want.has(key)) continue;
				const p = pubs.get(key)!;
				out.push({ atMs, type: 'unsubscribe', peer: peer.name, publisher: p.peer, pub: p.pub });
				peer.subs.delete(key);
			}
		}
		dirty.clear();
		roomViews.clear();
	};

	let i = 0;
	for (;;) {
		const atMs = Math.min(base[i]?.atMs ?? Number.POSITIVE_INFINITY, timers.nextAtMs);
		if (atMs === Number.POSITIVE_INFINITY) break;
		for (; i < base.length && base[i]!.atMs === atMs; i++) {
			out.push(base[i]!);
			applyBase(base[i]!);
		}
		while (timers.nextAtMs === atMs) timers.pop()(atMs);
		flush(atMs);
	}
	return out;
}
