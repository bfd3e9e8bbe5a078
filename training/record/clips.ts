/**
 * Seeded test clips for profile accuracy, generated with ffmpeg lavfi sources so the
 * ground truth (size, framerate, where the cuts are) is known by construction. Each seed
 * draws a size (1280×720 or 960×540), a framerate (24 or 30), and a sequence of segments
 * of random length, each a random source with random motion; a cut is where one segment
 * ends and the next begins. The truth is written beside the clip as JSON.
 *
 * Seeds: tune on seeds < 100; seeds 1000–1019 are the held-out report set of
 * `npm run bench -- profile-accuracy`; seeds ≥ 10000 are reserved for evaluation.
 *
 *   npx tsx training/record/clips.ts --seed 1000 [--seconds 60] [--out test-output/clips]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../plugin/util/rng';

export interface ClipTruth {
	seed: number;
	width: number;
	height: number;
	fps: number;
	/** Length of the file; Chromium's fake capture loops it, so its end is a cut too. */
	loopS: number;
	/** Times (s from the first frame) where the picture changes abruptly, the loop point excluded. */
	cutsS: number[];
	segments: Array<{ startS: number; endS: number; source: string; motion: number }>;
}

export const CLIP_SIZES: ReadonlyArray<readonly [number, number]> = [
	[1280, 720],
	[960, 540],
];
export const CLIP_FPS: readonly number[] = [24, 30];
/** Shortest and longest segment: a cut every 2–8 s, so a detector cannot lock onto a period. */
const SEGMENT_S: readonly [number, number] = [2, 8];

type Source = (rng: Rng, w: number, h: number, fps: number, motion: number) => { filter: string; name: string };

/** Sources with a motion knob in [0, 1]: how much of the picture changes per frame. */
const SOURCES: readonly Source[] = [
	(_r, w, h, fps) => ({ filter: `testsrc2=s=${w}x${h}:r=${fps}`, name: 'testsrc2' }),
	(r, w, h, fps, m) => ({ filter: `mandelbrot=s=${w}x${h}:r=${fps}:end_scale=${(0.3 - 0.29 * m).toFixed(3)}:start_x=${r.uniform(-1.5, 0.3).toFixed(3)}`, name: 'mandelbrot' }),
	(r, w, h, fps) => ({ filter: `life=s=${w}x${h}:r=${fps}:mold=10:ratio=${r.uniform(0.1, 0.5).toFixed(2)}:seed=${r.int(0, 1e6)}`, name: 'life' }),
	(r, w, h, fps, m) => ({ filter: `gradients=s=${w}x${h}:r=${fps}:speed=${(0.005 + 0.1 * m).toFixed(3)}:seed=${r.int(0, 1e6)}`, name: 'gradients' }),
	(r, w, h, fps) => ({ filter: `cellauto=s=${w}x${h}:r=${fps}:rule=${r.pick([18, 30, 90, 110, 150])}:scroll=1`, name: 'cellauto' }),
	(r, w, h, fps, m) => ({
		// A still picture with a box moving across it at a speed set by the motion knob.
		filter: `smptehdbars=s=${w}x${h}:r=${fps},drawbox=x='mod(t*${Math.round(50 + 600 * m)},${w})':y=${r.int(0, h - 100)}:w=100:h=100:color=white:t=fill`,
		name: 'bars+box',
	}),
];

export function clipPlan(seed: number, seconds: number): { truth: ClipTruth; filter: string } {
	const rng = new Rng(seed);
	const [width, height] = rng.pick(CLIP_SIZES);
	const fps = rng.pick(CLIP_FPS);
	const inputs: string[] = [];
	const labels: string[] = [];
	const segments: ClipTruth['segments'] = [];
	let t = 0;
	while (t < seconds - 1e-9) {
		// Whole frames, so cut times are exact frame times.
		const frames = Math.max(1, Math.round(rng.uniform(SEGMENT_S[0], SEGMENT_S[1]) * fps));
		const dur = Math.min(frames / fps, seconds - t);
		const motion = rng.next();
		const { filter, name } = rng.pick(SOURCES)(rng, width!, height!, fps, motion);
		const i = segments.length;
		inputs.push(`${filter},trim=duration=${dur.toFixed(6)},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[s${i}]`);
		labels.push(`[s${i}]`);
		segments.push({ startS: round6(t), endS: round6(t + dur), source: name, motion: round6(motion) });
		t += dur;
	}
	return {
		filter: `${inputs.join(';')};${labels.join('')}concat=n=${segments.length}:v=1:a=0[out]`,
		truth: { seed, width: width!, height: height!, fps, loopS: round6(t), cutsS: segments.slice(1).map((s) => s.startS), segments },
	};
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/**
 * Writes `<dir>/clip-<seed>.y4m` and `clip-<seed>.json` unless they exist. Y4M because its
 * header carries the framerate (Chromium plays an MJPEG file at a fixed 30 fps); a minute
 * at 720p is about 2 GB, so a caller makes one clip at a time and removes it after use.
 */
export async function makeClip(seed: number, dir: string, seconds = 60): Promise<{ path: string; truth: ClipTruth }> {
	mkdirSync(dir, { recursive: true });
	const { filter, truth } = clipPlan(seed, seconds);
	const path = join(dir, `clip-${seed}.y4m`);
	const truthPath = join(dir, `clip-${seed}.json`);
	if (!existsSync(path) || !existsSync(truthPath)) {
		await ffmpeg(['-f', 'lavfi', '-i', 'nullsrc=s=16x16:d=0.04', '-filter_complex', filter, '-map', '[out]', '-t', String(truth.loopS), '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', path]);
		writeFileSync(truthPath, `${JSON.stringify(truth, null, 2)}\n`);
	}
	return { path, truth };
}

function ffmpeg(args: string[]): Promise<void> {
	return new Promise((resolve, reject) => {
		const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
		let err = '';
		p.stderr.on('data', (d: Buffer) => (err += d.toString()));
		p.on('error', reject);
		p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
	});
}

if (require.main === module) {
	const arg = (name: string): string | undefined => {
		const i = process.argv.indexOf(`--${name}`);
		return i === -1 ? undefined : process.argv[i + 1];
	};
	const seed = Number(arg('seed') ?? NaN);
	if (!Number.isInteger(seed)) {
		process.stderr.write('usage: tsx training/record/clips.ts --seed N [--seconds 60] [--out dir]\n');
		process.exit(2);
	}
	makeClip(seed, arg('out') ?? 'test-output/clips', Number(arg('seconds') ?? 60)).then(
		({ path, truth }) => process.stdout.write(`${JSON.stringify({ path, width: truth.width, height: truth.height, fps: truth.fps, cuts: truth.cutsS.length })}\n`),
		(error: unknown) => {
			process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
			process.exit(1);
		},
	);
}
