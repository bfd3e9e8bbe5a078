import type { MediaClass } from '../snapshot';
import { Rng } from '../../util/rng';

/** What a sender publishes: its class, and for cameras the recording (its rates) and simulcast layers offered. */
export interface SimTrack {
	mediaClass: MediaClass;
	recording?: string;
	/** Simulcast spatial layers offered (video; default 3). */
	layers?: number;
}

/**
 * A scripted session timeline; the simulator plays it against any policy. Scenarios with
 * `subscriptions` say who consumes what (subscribe/unsubscribe, the layer each receiver
 * wants, app pauses): consumers exist only for subscriptions. Without it every peer that
 * consumes receives every producer of its room at the top layer.
 */
export type SimEvent =
	| { t: number; type: 'join'; peerId: string; roomId: string; sends: MediaClass[]; consumes: boolean; priority: number; tracks?: SimTrack[] }
	| { t: number; type: 'leave'; peerId: string }
	| { t: number; type: 'startProducer'; peerId: string; mediaClass: MediaClass; recording?: string; layers?: number }
	| { t: number; type: 'stopProducer'; peerId: string; mediaClass: MediaClass }
	| { t: number; type: 'speaker'; roomId: string; peerId: string }
	/** Starts or changes `peerId`'s subscription to `publisherId`'s `mediaClass`: the layer it wants (unset = the top) and whether the app pauses it. */
	| { t: number; type: 'subscribe'; peerId: string; publisherId: string; mediaClass: MediaClass; spatial?: number; paused: boolean }
	| { t: number; type: 'unsubscribe'; peerId: string; publisherId: string; mediaClass: MediaClass };

export interface Scenario {
	name: string;
	durationS: number;
	workers: number;
	seed: number;
	/** Consumers come from subscribe events only (see SimEvent). */
	subscriptions?: boolean;
	/** Sorted by time. */
	events: SimEvent[];
}

export const SCENARIO_NAMES = ['steady-meeting', 'bursty-joins', 'webinar-fanout', 'screen-share-storm', 'audio-only-town-hall'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ScenarioOptions {
	workers: number;
	durationS: number;
	seed: number;
}

export const SCENARIO_DEFAULTS: Readonly<ScenarioOptions> = Object.freeze({ workers: 32, durationS: 600, seed: 1 });

/** Consumer priority of a regular participant; some tiles matter less (background grid). */
const NORMAL_PRIORITY = 100;
const LOW_PRIORITY = 50;

class Timeline {
	readonly events: SimEvent[] = [];
	private peerSeq = 0;

	constructor(
		readonly rng: Rng,
		readonly durationS: number,
	) {}

	peer(prefix: string): string {
		return `${prefix}-p${this.peerSeq++}`;
	}

	add(event: SimEvent): void {
		if (event.t < this.durationS) this.events.push(event);
	}

	/** A meeting: everyone sends audio + video and consumes everyone; speakers rotate. */
	meeting(roomId: string, size: number, joinFrom: number, joinSpreadS: number, stayS: number, rotateSpeakers = true): string[] {
		const peers: string[] = [];
		for (let i = 0; i < size; i++) {
			const peerId = this.peer(roomId);
			const t = Math.floor(joinFrom + this.rng.uniform(0, joinSpreadS));
			peers.push(peerId);
			this.add({ t, type: 'join', peerId, roomId, sends: ['audio', 'video'], consumes: true, priority: this.rng.chance(0.3) ? LOW_PRIORITY : NORMAL_PRIORITY });
			this.add({ t: Math.floor(t + stayS * this.rng.uniform(0.85, 1.15)), type: 'leave', peerId });
		}
		if (rotateSpeakers) this.speakers(roomId, peers, joinFrom + joinSpreadS, joinFrom + stayS);
		return peers;
	}

	speakers(roomId: string, peers: readonly string[], from: number, to: number): void {
		for (let t = from; t < to; t += Math.max(2, Math.floor(this.rng.exponential(10)))) {
			this.add({ t: Math.floor(t), type: 'speaker', roomId, peerId: this.rng.pick(peers) });
		}
	}

	sorted(): SimEvent[] {
		// Stable by time; leaves before joins in the same second frees room for the newcomers.
		const order: Record<SimEvent['type'], number> = { leave: 0, unsubscribe: 1, stopProducer: 2, join: 3, startProducer: 4, subscribe: 5, speaker: 6 };
		return this.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.t - b.e.t || order[a.e.type] - order[b.e.type] || a.i - b.i).map(({ e }) => e);
	}
}

/** Sixty meetings, most small, a few of 16–24: long-lived rooms with churn. */
function steadyMeeting(tl: Timeline): void {
	for (let r = 0; r < 60; r++) {
		const big = r % 10 === 0;
		const size = big ? tl.rng.int(14, 20) : tl.rng.int(4, 9);
		const peers = tl.meeting(`meet${r}`, size, tl.rng.uniform(0, 90), 40, tl.durationS * 2);
		// Churn: a few participants leave and others take their place.
		for (let k = 0; k < Math.ceil(size / 5); k++) {
			const t = Math.floor(tl.rng.uniform(150, tl.durationS - 60));
			tl.add({ t, type: 'leave', peerId: peers[k]! });
			tl.meeting(`meet${r}`, 1, t, 1, tl.rng.uniform(60, 300), false);
		}
	}
}

/** Classes of 20–28 start in bursts (all join within ~10 s) and end 4 minutes later, over a base of small meetings. */
function burstyJoins(tl: Timeline): void {
	for (let r = 0; r < 30; r++) tl.meeting(`base${r}`, tl.rng.int(3, 7), tl.rng.uniform(0, 60), 30, tl.durationS * 2);
	for (let c = 0; c < 12; c++) {
		const start = 20 + c * 45;
		tl.meeting(`class${c}`, tl.rng.int(20, 28), start, 10, 240);
	}
}

/** Eight webinars: one or two presenters and 300–600 viewers who only watch. */
function webinarFanout(tl: Timeline): void {
	for (let w = 0; w < 8; w++) {
		const roomId = `webinar${w}`;
		const start = w * 25;
		const presenters = tl.rng.int(1, 2);
		const presenterIds: string[] = [];
		for (let i = 0; i < presenters; i++) {
			const peerId = tl.peer(roomId);
			presenterIds.push(peerId);
			tl.add({ t: start, type: 'join', peerId, roomId, sends: ['audio', 'video'], consumes: true, priority: 220 });
		}
		tl.speakers(roomId, presenterIds, start + 5, tl.durationS);
		const viewers = tl.rng.int(300, 600);
		const rampS = tl.rng.uniform(60, 150);
		for (let v = 0; v < viewers; v++) {
			const peerId = tl.peer(roomId);
			const t = Math.floor(start + 5 + tl.rng.uniform(0, rampS));
			tl.add({ t, type: 'join', peerId, roomId, sends: [], consumes: true, priority: tl.rng.chance(0.2) ? LOW_PRIORITY : NORMAL_PRIORITY });
			if (tl.rng.chance(0.15)) tl.add({ t: Math.floor(t + tl.rng.uniform(60, 300)), type: 'leave', peerId });
		}
	}
}

/** Forty meetings of 10–16; around t = 200 s most of them start sharing screens within 20 s. */
function screenShareStorm(tl: Timeline): void {
	for (let r = 0; r < 40; r++) {
		const roomId = `room${r}`;
		const peers = tl.meeting(roomId, tl.rng.int(10, 16), tl.rng.uniform(0, 60), 30, tl.durationS * 2);
		if (!tl.rng.chance(0.7)) continue;
		const sharer = tl.rng.pick(peers);
		const start = Math.floor(200 + tl.rng.uniform(0, 20));
		tl.add({ t: start, type: 'startProducer', peerId: sharer, mediaClass: 'screen' });
		tl.add({ t: Math.floor(start + tl.rng.uniform(120, 300)), type: 'stopProducer', peerId: sharer, mediaClass: 'screen' });
	}
}

/** Four audio-only town halls: four speakers each, 500–900 listeners consuming all speakers. */
function audioOnlyTownHall(tl: Timeline): void {
	for (let h = 0; h < 4; h++) {
		const roomId = `hall${h}`;
		const start = h * 40;
		const speakers: string[] = [];
		for (let s = 0; s < 4; s++) {
			const peerId = tl.peer(roomId);
			speakers.push(peerId);
			tl.add({ t: start, type: 'join', peerId, roomId, sends: ['audio'], consumes: true, priority: 220 });
		}
		tl.speakers(roomId, speakers, start + 1, tl.durationS);
		const listeners = tl.rng.int(500, 900);
		const rampS = tl.rng.uniform(60, 180);
		for (let l = 0; l < listeners; l++) {
			const peerId = tl.peer(roomId);
			const t = Math.floor(start + 2 + tl.rng.uniform(0, rampS));
			tl.add({ t, type: 'join', peerId, roomId, sends: [], consumes: true, priority: tl.rng.chance(0.2) ? LOW_PRIORITY : NORMAL_PRIORITY });
			if (tl.rng.chance(0.1)) tl.add({ t: Math.floor(t + tl.rng.uniform(60, 300)), type: 'leave', peerId });
		}
	}
}

const BUILDERS: Record<ScenarioName, (tl: Timeline) => void> = {
	'steady-meeting': steadyMeeting,
	'bursty-joins': burstyJoins,
	'webinar-fanout': webinarFanout,
	'screen-share-storm': screenShareStorm,
	'audio-only-town-hall': audioOnlyTownHall,
};

export function buildScenario(name: ScenarioName, overrides: Partial<ScenarioOptions> = {}): Scenario {
	const options: ScenarioOptions = { ...SCENARIO_DEFAULTS, ...overrides };
	// Each scenario gets its own stream of randomness so adding one does not change the others.
	const rng = new Rng(options.seed * 7919 + SCENARIO_NAMES.indexOf(name) * 104729);
	const tl = new Timeline(rng, options.durationS);
	BUILDERS[name](tl);
	return { name, durationS: options.durationS, workers: options.workers, seed: options.seed, events: tl.sorted() };
}
