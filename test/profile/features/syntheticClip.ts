import { gaussian, rng } from './helpers';

export interface SyntheticClip {
	frames: Array<{ tMs: number; bytes: number; keyframe: boolean }>;
	cutsS: number[];
	requestsMs: number[];
}

/**
 * 30 fps, 5 minutes. Scenes of 4–20 s, each at its own complexity level (×0.5–2);
 * frame sizes log-normal around it (σ 0.25). A cut codes one intra-like frame
 * (6–15× the level) and a few decaying catch-up frames. The encoder also sends a
 * keyframe every 5 s (8×) and answers three PLIs with keyframes.
 */
export function syntheticClip(seed: number): SyntheticClip {
	const random = rng(seed);
	const noise = gaussian(random);
	const frames: SyntheticClip['frames'] = [];
	const cutsS: number[] = [];
	const requestsMs = [47_000, 133_000, 251_000];
	let nextCut = 4 + random() * 16;
	let level = 3000;
	let sinceCut = Infinity;
	for (let i = 0; i < 30 * 300; i++) {
		const tS = i / 30;
		const tMs = (i * 1000) / 30;
		let bytes = level * Math.exp(0.25 * noise());
		if (tS >= nextCut) {
			cutsS.push(tS);
			level = 3000 * (0.5 + 1.5 * random());
			nextCut = tS + 4 + random() * 16;
			sinceCut = 0;
			bytes = level * (6 + 9 * random());
		} else if (sinceCut < 6) {
			bytes *= 1 + 1.5 / (sinceCut + 1);
		}
		sinceCut++;
		const scheduled = i % 150 === 0;
		const requested = requestsMs.some((r) => tMs > r && tMs - r < 100 && tMs - r >= 100 - 1000 / 30);
		const keyframe = scheduled || requested;
		if (keyframe && sinceCut > 1) bytes = level * 8 * Math.exp(0.1 * noise());
		frames.push({ tMs, bytes, keyframe });
	}
	return { frames, cutsS, requestsMs };
}
