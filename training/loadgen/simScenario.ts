/**
 * Generated scenarios for the allocation simulator: the seeded generator's scenario
 * (generator.ts) expanded by planScenario() into the same timeline the real load
 * generator plays (joins, publications, speaking turns, and the subscriptions its views
 * imply: last-N, grid pages, active speaker, layer by tile size, off-screen pauses),
 * then rewritten as simulator events. Seeds ≥ EVALUATION_SEED_MIN are held out.
 */
import type { MediaClass } from '../../plugin/allocate/snapshot';
import type { Scenario as SimScenario, SimEvent, SimTrack } from '../../plugin/allocate/sim/scenarios';
import { generateScenario, type Family } from './generator';
import { planScenario, pubKey, type Track } from './scenario';

export interface SimScenarioOptions {
	workers: number;
	durationS: number;
	/** About how many peers are present at the busiest moment. */
	peers: number;
}

function simTrack(track: Track, recording: string): SimTrack {
	return track.mediaClass === 'video' ? { mediaClass: 'video', recording, layers: track.layers } : { mediaClass: track.mediaClass };
}

/** The simulator's scenario of `family` at `seed`: its name is `<family>#<seed>`. */
export function generatedSimScenario(family: Family, seed: number, options: SimScenarioOptions): SimScenario {
	const generated = generateScenario(family, seed, { durationS: options.durationS, peers: options.peers });
	const timeline = planScenario(generated);
	const tracksOfPub = new Map<string, Track[]>();
	const recordingOfPub = new Map<string, string>();
	const joinAt = new Map<string, number>();
	const consumes = new Set<string>();
	const initial = new Map<string, SimTrack[]>();
	// Publications at the join instant are what the join announces (the policy places them with the peer).
	for (const e of timeline) {
		if (e.type === 'join') joinAt.set(e.peer, e.atMs);
		else if (e.type === 'subscribe') consumes.add(e.peer);
		else if (e.type === 'publish' && joinAt.get(e.peer) === e.atMs) {
			const list = initial.get(e.peer) ?? [];
			for (const track of e.tracks) if (!list.some((t) => t.mediaClass === track.mediaClass)) list.push(simTrack(track, e.recording));
			initial.set(e.peer, list);
		}
	}
	const events: SimEvent[] = [];
	const tOf = (atMs: number): number => Math.floor(atMs / 1000);
	const classesOf = (peer: string, pub: number): MediaClass[] => [...new Set((tracksOfPub.get(pubKey(peer, pub)) ?? []).map((t) => t.mediaClass))];
	for (const e of timeline) {
		const t = tOf(e.atMs);
		switch (e.type) {
			case 'join': {
				const tracks = initial.get(e.peer) ?? [];
				events.push({ t, type: 'join', peerId: e.peer, roomId: e.room, sends: tracks.map((x) => x.mediaClass), consumes: consumes.has(e.peer), priority: 100, tracks });
				break;
			}
			case 'publish': {
				tracksOfPub.set(pubKey(e.peer, e.pub), e.tracks);
				recordingOfPub.set(pubKey(e.peer, e.pub), e.recording);
				if (joinAt.get(e.peer) === e.atMs) break;
				for (const track of e.tracks) {
					const s = simTrack(track, e.recording);
					events.push({ t, type: 'startProducer', peerId: e.peer, mediaClass: s.mediaClass, ...(s.recording ? { recording: s.recording } : {}), ...(s.layers ? { layers: s.layers } : {}) });
				}
				break;
			}
			case 'unpublish':
				for (const mediaClass of classesOf(e.peer, e.pub)) events.push({ t, type: 'stopProducer', peerId: e.peer, mediaClass });
				break;
			case 'leave':
				events.push({ t, type: 'leave', peerId: e.peer });
				break;
			case 'speaker':
				events.push({ t, type: 'speaker', roomId: e.room, peerId: e.peer });
				break;
			case 'subscribe':
			case 'subscription':
				for (const mediaClass of classesOf(e.publisher, e.pub)) {
					const spatial = mediaClass === 'audio' ? undefined : e.spatialLayer;
					events.push({ t, type: 'subscribe', peerId: e.peer, publisherId: e.publisher, mediaClass, ...(spatial !== undefined ? { spatial } : {}), paused: e.paused });
				}
				break;
			case 'unsubscribe':
				for (const mediaClass of classesOf(e.publisher, e.pub)) events.push({ t, type: 'unsubscribe', peerId: e.peer, publisherId: e.publisher, mediaClass });
				break;
		}
	}
	return { name: `${family}#${seed}`, durationS: options.durationS, workers: options.workers, seed, subscriptions: true, events };
}

/** Peak concurrent producers + consumers receiving media (app-paused ones left out), if every join were admitted. */
export function peakSimStreams(scenario: SimScenario): number {
	const producers = new Map<string, Set<MediaClass>>();
	const links = new Map<string, boolean>();
	let peak = 0;
	let lastT = -1;
	const count = (): number => {
		let n = 0;
		for (const set of producers.values()) n += set.size;
		for (const [key, paused] of links) {
			const [peer, publisher, cls] = key.split('\u0000') as [string, string, MediaClass];
			if (!paused && producers.has(peer) && producers.get(publisher)?.has(cls)) n++;
		}
		return n;
	};
	for (const e of scenario.events) {
		if (e.t !== lastT) {
			peak = Math.max(peak, count());
			lastT = e.t;
		}
		switch (e.type) {
			case 'join':
				producers.set(e.peerId, new Set(e.sends));
				break;
			case 'leave':
				producers.delete(e.peerId);
				for (const key of [...links.keys()]) if (key.startsWith(`${e.peerId}\u0000`)) links.delete(key);
				break;
			case 'startProducer':
				producers.get(e.peerId)?.add(e.mediaClass);
				break;
			case 'stopProducer':
				producers.get(e.peerId)?.delete(e.mediaClass);
				break;
			case 'subscribe':
				links.set(`${e.peerId}\u0000${e.publisherId}\u0000${e.mediaClass}`, e.paused);
				break;
			case 'unsubscribe':
				links.delete(`${e.peerId}\u0000${e.publisherId}\u0000${e.mediaClass}`);
				break;
			case 'speaker':
				break;
		}
	}
	return Math.max(peak, count());
}
