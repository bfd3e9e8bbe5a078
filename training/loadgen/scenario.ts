import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Rng } from '../../plugin/util/rng';

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

const groupSchema = z.object({
	name: z.string().min(1),
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
});

export const scenarioSchema = z
	.object({
		name: z.string().min(1),
		description: z.string().default(''),
		seed: z.int().default(1),
		durationS: z.number().positive(),
		groups: z.array(groupSchema).min(1),
	})
	.superRefine((s, ctx) => {
		const names = new Set(s.groups.map((g) => g.name));
		if (names.size !== s.groups.length) ctx.addIssue({ code: 'custom', message: 'group names must be unique', path: ['groups'] });
		s.groups.forEach((g, i) => {
			for (const c of g.consume) if (!names.has(c)) ctx.addIssue({ code: 'custom', message: `unknown group ${c}`, path: ['groups', i, 'consume'] });
		});
	});
export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ScenarioGroup = Scenario['groups'][number];

export function parseScenario(input: unknown): Scenario {
	const r = scenarioSchema.safeParse(input);
	if (!r.success) throw new Error(`invalid scenario: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
	return r.data;
}

export function loadScenario(path: string): Scenario {
	return parseScenario(JSON.parse(readFileSync(path, 'utf8')));
}

export type TimelineEvent =
	| { atMs: number; type: 'join'; peer: string; group: string }
	| { atMs: number; type: 'publish'; peer: string; group: string; pub: number; recording: string; labels?: string[]; maxLayers?: number; data: boolean }
	| { atMs: number; type: 'unpublish'; peer: string; pub: number }
	| { atMs: number; type: 'leave'; peer: string };

const ORDER: Record<TimelineEvent['type'], number> = { join: 0, publish: 1, unpublish: 2, leave: 3 };

/** Expands a scenario into time-ordered events; same scenario and seed, same timeline. */
export function planScenario(scenario: Scenario, seed = scenario.seed): TimelineEvent[] {
	const rng = new Rng(seed);
	const endMs = scenario.durationS * 1000;
	const events: TimelineEvent[] = [];
	for (const g of scenario.groups) {
		for (let i = 0; i < g.count; i++) {
			const peer = `${g.name}-${i}`;
			const joinMs = Math.round((g.join.atS + rng.next() * g.join.spreadS) * 1000);
			if (joinMs >= endMs) continue;
			const leaveMs = g.stayS ? Math.min(endMs, joinMs + Math.round(rng.uniform(g.stayS.min, g.stayS.max) * 1000)) : endMs;
			events.push({ atMs: joinMs, type: 'join', peer, group: g.name });
			g.publish.forEach((p, pub) => {
				const startMs = joinMs + Math.round(p.startAfterS * 1000);
				if (startMs >= leaveMs) return;
				events.push({ atMs: startMs, type: 'publish', peer, group: g.name, pub, recording: p.recording, labels: p.labels, maxLayers: p.maxLayers, data: p.data });
				const stopMs = p.durationS === undefined ? leaveMs : Math.min(leaveMs, startMs + Math.round(p.durationS * 1000));
				if (stopMs < leaveMs) events.push({ atMs: stopMs, type: 'unpublish', peer, pub });
			});
			events.push({ atMs: leaveMs, type: 'leave', peer });
		}
	}
	// Stable: equal times keep join → publish → unpublish → leave, then plan order.
	return events.map((e, i) => ({ e, i })).sort((a, b) => a.e.atMs - b.e.atMs || ORDER[a.e.type] - ORDER[b.e.type] || a.i - b.i).map(({ e }) => e);
}

/** Peak concurrent counts implied by a timeline (for sizing and for checks). */
export function timelinePeaks(scenario: Scenario, events: TimelineEvent[]): { peers: number; publications: number; consumerLinks: number } {
	const groupOf = new Map<string, ScenarioGroup>(scenario.groups.map((g) => [g.name, g]));
	const peerGroup = new Map<string, string>();
	const publications = new Map<string, number>(); // per group
	const peersIn = new Map<string, number>();
	let peers = 0;
	let pubs = 0;
	let peak = { peers: 0, publications: 0, consumerLinks: 0 };
	const links = (): number => {
		let n = 0;
		for (const g of scenario.groups) for (const c of g.consume) n += (peersIn.get(g.name) ?? 0) * (publications.get(c) ?? 0);
		// A peer in a group that consumes its own group does not consume itself.
		for (const g of scenario.groups) if (g.consume.includes(g.name)) n -= publications.get(g.name) ?? 0;
		return n;
	};
	const open = new Set<string>();
	for (const e of events) {
		if (e.type === 'join') {
			peerGroup.set(e.peer, e.group);
			peersIn.set(e.group, (peersIn.get(e.group) ?? 0) + 1);
			peers++;
		} else if (e.type === 'publish') {
			open.add(`${e.peer}#${e.pub}`);
			publications.set(e.group, (publications.get(e.group) ?? 0) + 1);
			pubs++;
		} else {
			const group = peerGroup.get(e.peer)!;
			const closing = e.type === 'unpublish' ? [`${e.peer}#${e.pub}`] : [...open].filter((k) => k.startsWith(`${e.peer}#`));
			for (const k of closing) {
				if (!open.delete(k)) continue;
				publications.set(group, publications.get(group)! - 1);
				pubs--;
			}
			if (e.type === 'leave') {
				peersIn.set(group, peersIn.get(group)! - 1);
				peers--;
			}
		}
		if (!groupOf.has(peerGroup.get(e.peer) ?? '')) continue;
		const l = links();
		peak = { peers: Math.max(peak.peers, peers), publications: Math.max(peak.publications, pubs), consumerLinks: Math.max(peak.consumerLinks, l) };
	}
	return peak;
}
