import { Rng } from '../../plugin/util/rng';
import { parseScenario, type Scenario, type ScenarioInput } from './scenario';

/**
 * Seeded scenario generator: random but realistic rooms, each family named by its
 * structure. A generated scenario is an ordinary Scenario (scenario.ts): planScenario()
 * turns it into the timeline that the real load generator, the allocation simulator
 * and the cluster harness all play. Same family, seed and options, same scenario.
 *
 * Seeds ≥ EVALUATION_SEED_MIN are reserved for evaluation: nothing is designed, tuned
 * or selected on them.
 */

export const EVALUATION_SEED_MIN = 10_000;

export const FAMILIES = ['grid-meetings', 'last-n-meeting', 'stage-webinar', 'classroom-bursts', 'audio-stage', 'breakout-rooms'] as const;
export type Family = (typeof FAMILIES)[number];

export const FAMILY_DESCRIPTIONS: Readonly<Record<Family, string>> = {
	'grid-meetings': 'several small rooms (3-8) with paged grids sized by tile, late joiners and early leavers, the odd screen share',
	'last-n-meeting': 'one or two large meetings joining in waves, cameras limited to the last N speakers (off-screen paused or closed)',
	'stage-webinar': 'a panel of presenters with a long screen share, an audience arriving in bursts on an active-speaker stage, audience questions on the mic',
	'classroom-bursts': 'classes that start and end in bursts: a teacher with screen share paging through student tiles, students on low layers',
	'audio-stage': 'audio-only rooms: a few speakers with chat, listeners arriving in waves with churn, listeners brought on stage for a while',
	'breakout-rooms': 'a plenary grid that splits into breakout rooms (new connections) and comes back together',
};

export interface GeneratorOptions {
	/** Scenario length (default 120 s). */
	durationS?: number;
	/** About how many peers are present at the busiest moment (default 24). */
	peers?: number;
}

export function isEvaluationSeed(seed: number): boolean {
	return seed >= EVALUATION_SEED_MIN;
}

type GroupInput = ScenarioInput['groups'][number];
type PublishInput = NonNullable<GroupInput['publish']>[number];

/** Draws shared by the families: what a peer publishes and how long it stays. */
class Draw {
	constructor(
		readonly rng: Rng,
		readonly durationS: number,
	) {}

	/** A camera alone (its own publication, so views can limit it without touching audio). */
	camera(maxLayersOdds: readonly [number, number, number] = [0.1, 0.2, 0.7]): PublishInput {
		const r = this.rng.next();
		const maxLayers = r < maxLayersOdds[0] ? 1 : r < maxLayersOdds[0] + maxLayersOdds[1] ? 2 : 3;
		return this.rng.chance(0.7) ? { recording: 'talking-head', labels: ['camera'], maxLayers } : { recording: 'scene-cuts', maxLayers };
	}

	/** A microphone, sometimes with the room's chat on a data channel. */
	mic(chatOdds = 0.3): PublishInput {
		const chat = this.rng.chance(chatOdds);
		if (this.rng.chance(0.15)) return { recording: 'opus-stereo' };
		return this.rng.chance(0.5) ? { recording: 'talking-head', labels: ['mic'], data: chat } : { recording: 'opus-mono-chat', data: chat };
	}

	screen(startAfterS: number, durationS: number): PublishInput {
		return { recording: 'screen-share', startAfterS: round1(startAfterS), durationS: round1(Math.max(1, durationS)) };
	}

	/** Stays until the end with probability `stayOdds`, else for a share of the scenario. */
	stay(stayOdds: number, minShare = 0.2, maxShare = 0.7): GroupInput['stayS'] {
		if (this.rng.chance(stayOdds)) return undefined;
		const a = round1(this.durationS * this.rng.uniform(minShare, maxShare));
		return { min: a, max: round1(a * this.rng.uniform(1, 1.5)) };
	}
}

function round1(x: number): number {
	return Math.round(x * 10) / 10;
}

/**
 * Largest meeting a family builds before it opens another room: everyone in a meeting
 * receives everyone's audio, so links grow with the square of its size.
 */
const MEETING_ROOM_CAP = 40;
/** Largest audience on one stage before another webinar starts. */
const STAGE_ROOM_CAP = 300;

interface Build {
	groups: GroupInput[];
	rooms: number;
	speakerTurnS?: { min: number; max: number };
}

/** Several small meetings, each a paged grid; people trickle in late and some leave early; now and then someone shares a screen. */
function gridMeetings(d: Draw, peers: number): Build {
	const groups: GroupInput[] = [];
	let budget = peers;
	let r = 0;
	for (; budget > 0; r++) {
		const room = `grid${r}`;
		const size = Math.min(budget, d.rng.int(3, 8));
		budget -= size;
		const start = d.rng.uniform(0, d.durationS * 0.25);
		const view: GroupInput['view'] = { video: { mode: 'page', size: d.rng.pick([4, 9, 9, 16]), flipS: d.rng.uniform(15, 60) }, layers: 'tile', offscreen: d.rng.chance(0.3) ? 'pause' : 'unsubscribe' };
		const names: string[] = [];
		const sharer = d.rng.chance(0.4) ? d.rng.int(0, size - 1) : -1;
		for (let i = 0; i < size; i++) {
			const late = d.rng.chance(0.3);
			const publish = [d.mic(), ...(d.rng.chance(0.9) ? [d.camera()] : [])];
			if (i === sharer) publish.push(d.screen(d.rng.uniform(10, d.durationS * 0.4), d.rng.uniform(15, d.durationS * 0.4)));
			names.push(`${room}-p${i}`);
			groups.push({
				name: `${room}-p${i}`,
				room,
				count: 1,
				join: late ? { atS: round1(start + d.rng.uniform(20, d.durationS * 0.6)) } : { atS: round1(start), spreadS: 20 },
				stayS: d.stay(0.7, 0.3, 0.8),
				publish,
				view,
				preferredSpatialLayer: d.rng.chance(0.2) ? 1 : undefined,
			});
		}
		for (const g of groups) if (g.room === room) g.consume = names;
	}
	return { groups, rooms: r };
}

/** One or two big meetings arriving in waves; cameras follow the conversation (last-N). */
function lastNMeeting(d: Draw, peers: number): Build {
	const rooms = Math.ceil(peers / MEETING_ROOM_CAP);
	const groups: GroupInput[] = [];
	for (let r = 0; r < rooms; r++) {
		const room = `big${r}`;
		const size = Math.round(peers / rooms);
		const view: GroupInput['view'] = { video: { mode: 'last-n', n: d.rng.pick([3, 4, 6, 9]) }, layers: 'tile', offscreen: d.rng.chance(0.5) ? 'pause' : 'unsubscribe' };
		const waves = d.rng.int(2, 3);
		const names: string[] = [];
		let left = size;
		for (let w = 0; w < waves; w++) {
			const count = w === waves - 1 ? left : Math.max(1, Math.round(size / waves));
			left -= count;
			if (count <= 0) break;
			const atS = round1(w === 0 ? 0 : d.rng.uniform(0.15, 0.5) * d.durationS * (w / (waves - 1)));
			// Talkers (a few per wave) take most turns; the rest speak now and then.
			const talkers = Math.min(count, d.rng.int(1, 2));
			for (const [role, n, weight] of [
				['talker', talkers, 6],
				['member', count - talkers, 1],
			] as const) {
				if (n === 0) continue;
				const name = `${room}-w${w}-${role}`;
				names.push(name);
				groups.push({
					name,
					room,
					count: n,
					join: { atS, spreadS: round1(d.rng.uniform(2, 15)) },
					stayS: d.stay(role === 'talker' ? 0.9 : 0.7, 0.3, 0.8),
					publish: [d.mic(0.2), ...(d.rng.chance(0.85) ? [d.camera()] : [])],
					view,
					speakWeight: weight,
				});
			}
		}
		if (d.rng.chance(0.4)) {
			const name = `${room}-presenter`;
			names.push(name);
			const at = d.rng.uniform(0.2, 0.5) * d.durationS;
			groups.push({ name, room, count: 1, join: { atS: round1(at) }, publish: [d.mic(0), d.camera(), d.screen(d.rng.uniform(3, 10), d.rng.uniform(20, d.durationS * 0.4))], view, speakWeight: 10 });
		}
		for (const g of groups) if (g.room === room) g.consume = names;
	}
	return { groups, rooms, speakerTurnS: { min: 2, max: 10 } };
}

/** A panel on stage with a long screen share; the audience arrives in bursts, watches the active speaker, and a few ask questions. */
function stageWebinar(d: Draw, peers: number): Build {
	return inRooms(d, peers, STAGE_ROOM_CAP, { min: 4, max: 20 }, oneStage);
}

function oneStage(d: Draw, peers: number, prefix: string): Build {
	const room = `${prefix}stage`;
	const groups: GroupInput[] = [];
	const presenters = d.rng.int(1, 3);
	const panel: string[] = [];
	for (let i = 0; i < presenters; i++) {
		const name = `${prefix}presenter${i}`;
		panel.push(name);
		const publish = [d.mic(0.5), d.camera([0, 0.1, 0.9])];
		if (i === 0) publish.push(d.screen(d.rng.uniform(10, d.durationS * 0.3), d.rng.uniform(0.3, 0.6) * d.durationS));
		groups.push({ name, room, count: 1, join: { atS: round1(d.rng.uniform(0, 5)) }, publish, view: { video: { mode: 'all' }, layers: 'tile' }, speakWeight: 10 });
	}
	const questions: string[] = [];
	for (let q = 0, n = d.rng.int(1, 3); q < n; q++) {
		const name = `${prefix}question${q}`;
		questions.push(name);
		const joinS = d.rng.uniform(5, d.durationS * 0.5);
		const publish: PublishInput[] = [{ ...d.mic(0), startAfterS: round1(d.rng.uniform(10, 30)), durationS: round1(d.rng.uniform(10, 30)) }];
		if (d.rng.chance(0.5)) publish.push({ ...d.camera(), startAfterS: publish[0]!.startAfterS, durationS: publish[0]!.durationS });
		groups.push({ name, room, count: 1, join: { atS: round1(joinS) }, publish, view: { video: { mode: 'active-speaker', thumbnails: 0 }, layers: 'tile' }, speakWeight: 4 });
	}
	const audience = Math.max(1, peers - presenters - questions.length);
	const waves = d.rng.int(2, 4);
	const thumbnails = d.rng.int(0, 3);
	let left = audience;
	for (let w = 0; w < waves && left > 0; w++) {
		const count = w === waves - 1 ? left : Math.max(1, Math.round((audience / waves) * d.rng.uniform(0.6, 1.4)));
		left -= Math.min(count, left);
		groups.push({
			name: `${prefix}audience${w}`,
			room,
			count: Math.max(1, count),
			join: { atS: round1(w * d.rng.uniform(0.1, 0.25) * d.durationS + d.rng.uniform(3, 8)), spreadS: round1(d.rng.chance(0.5) ? d.rng.uniform(0.5, 3) : d.rng.uniform(10, 30)) },
			stayS: d.stay(0.6, 0.2, 0.7),
			view: { video: { mode: 'active-speaker', thumbnails }, layers: 'tile', offscreen: 'unsubscribe' },
			preferredSpatialLayer: d.rng.chance(0.3) ? 1 : undefined,
		});
	}
	for (const g of groups) g.consume = [...panel, ...questions];
	return { groups, rooms: 1 };
}

/** Classes that start in a burst and end in one; the teacher shares a screen and pages through students; students see the teacher. */
function classroomBursts(d: Draw, peers: number): Build {
	const classes = Math.max(1, Math.round(peers / 14));
	const groups: GroupInput[] = [];
	for (let c = 0; c < classes; c++) {
		const room = `class${c}`;
		const students = Math.max(2, Math.round(peers / classes) - 1);
		const start = c === 0 ? d.rng.uniform(0, 5) : d.rng.uniform(0.1, 0.4) * d.durationS;
		const length = d.rng.uniform(0.5, 0.9) * (d.durationS - start);
		const teacher = `${room}-teacher`;
		groups.push({
			name: teacher,
			room,
			count: 1,
			join: { atS: round1(start) },
			publish: [d.mic(0.6), d.camera([0, 0, 1]), d.screen(d.rng.uniform(5, 20), length * d.rng.uniform(0.4, 0.8))],
			view: { video: { mode: 'page', size: d.rng.pick([9, 16]), flipS: d.rng.uniform(8, 30) }, layers: 'tile', offscreen: 'unsubscribe' },
			speakWeight: 8,
		});
		const cameraShare = d.rng.uniform(0.3, 0.9);
		const withCamera = Math.round(students * cameraShare);
		// Class ends: everyone leaves within a few seconds of each other.
		const stay = { min: round1(length), max: round1(length + d.rng.uniform(1, 6)) };
		const studentView: GroupInput['view'] = d.rng.chance(0.5) ? { video: { mode: 'active-speaker', thumbnails: 0 }, layers: 'tile' } : { video: { mode: 'page', size: 4 }, layers: 'tile' };
		const burst = { atS: round1(start + d.rng.uniform(0, 4)), spreadS: round1(d.rng.uniform(0.5, 4)) };
		const maxLayers = d.rng.pick([1, 2]);
		if (withCamera > 0) groups.push({ name: `${room}-cam`, room, count: withCamera, join: burst, stayS: stay, publish: [{ ...d.mic(0) }, { recording: 'talking-head', labels: ['camera'], maxLayers }], view: studentView, speakWeight: 1 });
		if (students - withCamera > 0) groups.push({ name: `${room}-nocam`, room, count: students - withCamera, join: burst, stayS: stay, publish: [{ ...d.mic(0) }], view: studentView, speakWeight: 1 });
		const names = groups.filter((g) => g.room === room).map((g) => g.name);
		for (const g of groups) if (g.room === room) g.consume = names;
	}
	return { groups, rooms: classes, speakerTurnS: { min: 3, max: 15 } };
}

/** Audio-only rooms: speakers with chat, listeners arriving in waves and leaving, some listeners brought on stage. */
function audioStage(d: Draw, peers: number): Build {
	const rooms = Math.max(1, Math.round(peers / 40));
	const groups: GroupInput[] = [];
	for (let r = 0; r < rooms; r++) {
		const room = `space${r}`;
		const size = Math.round(peers / rooms);
		const speakers = d.rng.int(2, 5);
		const onStage: string[] = [];
		for (let s = 0; s < speakers; s++) {
			const name = `${room}-speaker${s}`;
			onStage.push(name);
			groups.push({ name, room, count: 1, join: { atS: round1(d.rng.uniform(0, 10)) }, stayS: d.stay(0.8, 0.5, 0.9), publish: [d.mic(0.6)], speakWeight: d.rng.uniform(1, 5) });
		}
		for (let p = 0, n = d.rng.int(1, 3); p < n; p++) {
			const name = `${room}-raised${p}`;
			onStage.push(name);
			groups.push({ name, room, count: 1, join: { atS: round1(d.rng.uniform(5, d.durationS * 0.5)) }, publish: [{ ...d.mic(0), startAfterS: round1(d.rng.uniform(5, 30)), durationS: round1(d.rng.uniform(10, 40)) }], speakWeight: 2 });
		}
		const listeners = Math.max(1, size - speakers);
		const waves = d.rng.int(1, 3);
		for (let w = 0; w < waves; w++) {
			groups.push({
				name: `${room}-listeners${w}`,
				room,
				count: Math.max(1, Math.round(listeners / waves)),
				join: { atS: round1(d.rng.uniform(0, 0.5) * d.durationS), spreadS: round1(d.rng.uniform(0.1, 0.5) * d.durationS) },
				stayS: d.stay(0.4, 0.2, 0.7),
			});
		}
		for (const g of groups) if (g.room === room) g.consume = onStage.filter((n) => n !== g.name);
	}
	return { groups, rooms, speakerTurnS: { min: 3, max: 15 } };
}

/** A plenary grid splits into breakout rooms (new connections there) and comes back together. */
function breakoutRooms(d: Draw, peers: number): Build {
	return inRooms(d, peers, MEETING_ROOM_CAP, { min: 2, max: 10 }, onePlenary);
}

function onePlenary(d: Draw, peers: number, prefix: string): Build {
	const groups: GroupInput[] = [];
	const plenaryRoom = `${prefix}plenary`;
	const splitS = d.rng.uniform(0.2, 0.35) * d.durationS;
	const backS = d.rng.uniform(0.6, 0.75) * d.durationS;
	const participants = Math.max(4, peers - 1);
	const breakouts = Math.max(2, Math.round(participants / d.rng.int(3, 5)));
	const plenaryView: GroupInput['view'] = { video: { mode: 'page', size: d.rng.pick([9, 16]), flipS: d.rng.uniform(20, 60) }, layers: 'tile' };
	groups.push({ name: `${prefix}host`, room: plenaryRoom, count: 1, join: { atS: 0 }, publish: [d.mic(0.5), d.camera([0, 0, 1])], view: plenaryView, speakWeight: 6 });
	const perRoom = Math.ceil(participants / breakouts);
	const camera = d.camera();
	const mic = d.mic(0);
	for (let b = 0; b < breakouts; b++) {
		const count = Math.min(perRoom, participants - b * perRoom);
		if (count <= 0) break;
		// Before the split: in the plenary, joining within the first seconds, leaving at the split.
		const joinAt = d.rng.uniform(1, 4);
		const spread = d.rng.uniform(1, 3);
		const inPlenary = Math.max(2, splitS - joinAt - spread);
		groups.push({ name: `${prefix}plenary-b${b}`, room: plenaryRoom, count, join: { atS: round1(joinAt), spreadS: round1(spread) }, stayS: { min: round1(inPlenary - 2), max: round1(inPlenary) }, publish: [mic, camera], view: plenaryView });
		const inBreakout = Math.max(3, backS - splitS - 6);
		groups.push({ name: `${prefix}breakout${b}`, room: `${prefix}breakout${b}`, count, join: { atS: round1(splitS + d.rng.uniform(1, 3)), spreadS: round1(d.rng.uniform(1, 3)) }, stayS: { min: round1(inBreakout - 2), max: round1(inBreakout) }, publish: [mic, camera], view: { video: { mode: 'all' }, layers: 'tile' }, consume: [`${prefix}breakout${b}`] });
		groups.push({ name: `${prefix}return-b${b}`, room: plenaryRoom, count, join: { atS: round1(backS + d.rng.uniform(0, 2)), spreadS: round1(d.rng.uniform(2, 8)) }, stayS: d.stay(0.8, 0.1, 0.2), publish: [mic, camera], view: plenaryView });
	}
	const plenary = groups.filter((g) => g.room === plenaryRoom).map((g) => g.name);
	for (const g of groups) if (g.room === plenaryRoom) g.consume = plenary;
	return { groups, rooms: breakouts + 1 };
}

/** Splits `peers` over as few rooms of at most `cap` as needed, each built by `one` (its groups' names prefixed). */
function inRooms(d: Draw, peers: number, cap: number, speakerTurnS: Build['speakerTurnS'], one: (d: Draw, peers: number, prefix: string) => Build): Build {
	const n = Math.ceil(peers / cap);
	const built = Array.from({ length: n }, (_, i) => one(d, Math.round(peers / n), n === 1 ? '' : `s${i}-`));
	return { groups: built.flatMap((b) => b.groups), rooms: built.reduce((a, b) => a + b.rooms, 0), speakerTurnS };
}

const BUILDERS: Record<Family, (d: Draw, peers: number) => Build> = {
	'grid-meetings': gridMeetings,
	'last-n-meeting': lastNMeeting,
	'stage-webinar': stageWebinar,
	'classroom-bursts': classroomBursts,
	'audio-stage': audioStage,
	'breakout-rooms': breakoutRooms,
};

function familySeed(family: Family, seed: number): number {
	let h = 2166136261;
	for (const c of `${family}:${seed}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
	return h >>> 0;
}

/** The scenario of `family` for `seed` (its name is the family's: sessions are `<family>-seed<seed>`). */
export function generateScenario(family: Family, seed: number, options: GeneratorOptions = {}): Scenario {
	if (!FAMILIES.includes(family)) throw new Error(`unknown scenario family ${String(family)} (known: ${FAMILIES.join(', ')})`);
	const durationS = options.durationS ?? 120;
	const peers = Math.round(options.peers ?? 24);
	if (!(durationS >= 30)) throw new Error(`generated scenarios need durationS ≥ 30, got ${durationS}`);
	if (!(peers >= 4)) throw new Error(`generated scenarios need peers ≥ 4, got ${peers}`);
	const d = new Draw(new Rng(familySeed(family, seed)), durationS);
	const built = BUILDERS[family](d, peers);
	return parseScenario({
		name: family,
		description: `generated (${built.rooms} room${built.rooms === 1 ? '' : 's'}, ${built.groups.reduce((n, g) => n + g.count, 0)} peers): ${FAMILY_DESCRIPTIONS[family]}`,
		seed,
		durationS,
		...(built.speakerTurnS ? { speakerTurnS: built.speakerTurnS } : {}),
		groups: built.groups,
	});
}

/** `gen:<family>` names a generated family (as the sessions and bench CLIs accept them). */
export function parseFamilyRef(ref: string): Family | undefined {
	if (!ref.startsWith('gen:')) return undefined;
	const family = ref.slice(4);
	if (!(FAMILIES as readonly string[]).includes(family)) throw new Error(`unknown scenario family ${family} (known: ${FAMILIES.join(', ')})`);
	return family as Family;
}
