import { Rng } from '../../plugin/util/rng';
import { parseScenario, type Scenario, type ScenarioInput } from './scenario';

/**
 * The browser family: a meeting whose publishers are real headless Chromium pages
 * (mediasoup-client, VP8 simulcast ×3 + Opus from the recorder's Y4M/WAV sources;
 * loadgen/browserClients.ts), seeded like the generated families (generator.ts): how
 * many browsers publish, when each joins and leaves, whether it chats, and an audience of
 * SRTP consumer bots arriving in waves with churn at the layers its view asks for.
 *
 * Cameras and microphones go out together from one page (one publication each), so the
 * views that hide cameras (last-N, pages) would also cut that peer's audio; every
 * consumer therefore receives every browser's publication (the `all` view) and the
 * structure varies through who is present, the audience and the layers it asks for.
 *
 * It is scored only (training/loso.ts): recorded with evaluation seeds (≥ 10000) and never
 * trained on or used to choose anything.
 */

export const BROWSER_FAMILY = 'browser-meeting';

export interface BrowserFamilyOptions {
	/** Scenario length (default 90 s). */
	durationS?: number;
	/** Most browser pages over the whole session (default 4: what one Chromium encodes at once on 2 shared cores). */
	pages?: number;
	/** Most consumer bots in the audience (default 8). */
	listeners?: number;
}

export const BROWSER_FAMILY_DEFAULTS = { durationS: 90, pages: 4, listeners: 8 } as const;

type GroupInput = ScenarioInput['groups'][number];

function round1(x: number): number {
	return Math.round(x * 10) / 10;
}

/** The family's own stream per seed, so that its draws do not follow another family's for the same seed. */
function familySeed(seed: number): number {
	let h = 2166136261;
	for (const c of `${BROWSER_FAMILY}:${seed}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
	return h >>> 0;
}

export function browserScenario(seed: number, options: BrowserFamilyOptions = {}): Scenario {
	const durationS = options.durationS ?? BROWSER_FAMILY_DEFAULTS.durationS;
	const pages = Math.round(options.pages ?? BROWSER_FAMILY_DEFAULTS.pages);
	const listeners = Math.round(options.listeners ?? BROWSER_FAMILY_DEFAULTS.listeners);
	if (!(durationS >= 30)) throw new Error(`the browser family needs durationS ≥ 30, got ${durationS}`);
	if (!(pages >= 2)) throw new Error(`the browser family needs pages ≥ 2, got ${pages}`);
	if (!(listeners >= 0)) throw new Error(`the browser family needs listeners ≥ 0, got ${listeners}`);
	const rng = new Rng(familySeed(seed));
	const groups: GroupInput[] = [];
	const layers = rng.chance(0.5) ? 'tile' : 'preferred';
	const view: GroupInput['view'] = { video: { mode: 'all' }, layers };

	// Publishers: most join in the first seconds, some later; some leave before the end.
	const publishers = rng.int(Math.min(3, pages), pages);
	const names: string[] = [];
	for (let i = 0; i < publishers; i++) {
		const name = `browser-p${i}`;
		names.push(name);
		const late = i > 0 && rng.chance(0.35);
		const leaves = rng.chance(0.3);
		const joinAt = late ? rng.uniform(0.2, 0.55) * durationS : rng.uniform(0, 8);
		groups.push({
			name,
			count: 1,
			client: 'browser',
			join: { atS: round1(joinAt) },
			...(leaves ? { stayS: { min: round1(0.25 * durationS), max: round1(0.6 * durationS) } } : {}),
			publish: [{ recording: 'talking-head', data: rng.chance(0.3) }],
			view,
			...(rng.chance(0.25) ? { preferredSpatialLayer: 1 } : {}),
		});
	}

	// The audience: bots arriving in one to three waves, some leaving early.
	const audience = listeners === 0 ? 0 : rng.int(Math.ceil(listeners / 2), listeners);
	const waves = Math.min(audience, rng.int(1, 3));
	let left = audience;
	for (let w = 0; w < waves; w++) {
		const count = w === waves - 1 ? left : Math.max(1, Math.round(audience / waves));
		left -= count;
		if (count <= 0) break;
		groups.push({
			name: `audience-w${w}`,
			count,
			join: { atS: round1(rng.uniform(0, 0.6) * durationS), spreadS: round1(rng.uniform(0, 0.15) * durationS) },
			...(rng.chance(0.5) ? { stayS: { min: round1(0.2 * durationS), max: round1(0.6 * durationS) } } : {}),
			view,
			...(rng.chance(0.5) ? { preferredSpatialLayer: rng.pick([0, 1, 2]) } : {}),
		});
	}
	for (const g of groups) g.consume = names;
	return parseScenario({
		name: BROWSER_FAMILY,
		description: `generated (1 room, ${publishers} browser publisher${publishers === 1 ? '' : 's'}, ${audience} consumer bots): a meeting of real headless Chromium clients with an audience arriving in waves`,
		seed,
		durationS,
		groups,
	});
}
