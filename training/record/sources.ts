import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Source media for recordings, generated with ffmpeg so that the ground truth
 * (where the scene cuts are, when slides change, how much moves) is known by
 * construction rather than estimated afterwards.
 *
 * Chromium's fake capture loops the Y4M file, so every source's loop point is
 * itself a cut; `loopS` is recorded alongside the cut list.
 */

export type VideoSourceName = 'talking-head' | 'scene-cuts' | 'screen-share';
export type AudioSourceName = 'speech-mono' | 'speech-stereo';

export interface VideoGroundTruth {
	source: VideoSourceName;
	width: number;
	height: number;
	fps: number;
	/** Duration of the file; Chromium restarts it from frame 0 at this point. */
	loopS: number;
	/** Times (s from the first frame of the file) where the picture changes abruptly. */
	cutsS: number[];
	/** Human description of the content per segment, in order. */
	segments: Array<{ startS: number; endS: number; content: string }>;
	motion: 'low' | 'high' | 'static-with-changes';
}

export interface AudioGroundTruth {
	source: AudioSourceName;
	channels: 1 | 2;
	sampleRate: number;
	loopS: number;
	/** Intervals (s) in which the synthetic talker speaks; silence elsewhere. */
	talkS: Array<[number, number]>;
}

const FPS = 30;
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

interface VideoRecipe {
	truth: VideoGroundTruth;
	filter: string;
}

function sceneCutsRecipe(): VideoRecipe {
	const w = 960;
	const h = 540;
	// Varied segment lengths so that a detector cannot lock onto a period.
	const segments: Array<[string, number, string]> = [
		[`testsrc2=s=${w}x${h}:r=${FPS}`, 2, 'testsrc2 (moving pattern)'],
		[`smptebars=s=${w}x${h}:r=${FPS}`, 1.5, 'smptebars (static)'],
		[`mandelbrot=s=${w}x${h}:r=${FPS}:end_scale=0.05`, 2.5, 'mandelbrot zoom (high motion)'],
		[`life=s=${w}x${h}:r=${FPS}:mold=10:life_color=#00ff00:death_color=#aa0000:ratio=0.3`, 1.5, 'game of life (high entropy)'],
		[`gradients=s=${w}x${h}:r=${FPS}:speed=0.05`, 2, 'gradients (smooth motion)'],
		[`cellauto=s=${w}x${h}:r=${FPS}:rule=110:scroll=1`, 2.5, 'cellular automaton scrolling'],
	];
	const inputs: string[] = [];
	const labels: string[] = [];
	const truthSegments: VideoGroundTruth['segments'] = [];
	let t = 0;
	segments.forEach(([src, dur, content], i) => {
		inputs.push(`${src},trim=duration=${dur},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[s${i}]`);
		labels.push(`[s${i}]`);
		truthSegments.push({ startS: t, endS: t + dur, content });
		t += dur;
	});
	const filter = `${inputs.join(';')};${labels.join('')}concat=n=${segments.length}:v=1:a=0[out]`;
	return {
		filter,
		truth: {
			source: 'scene-cuts',
			width: w,
			height: h,
			fps: FPS,
			loopS: t,
			cutsS: truthSegments.slice(1).map((s) => s.startS),
			segments: truthSegments,
			motion: 'high',
		},
	};
}

function talkingHeadRecipe(): VideoRecipe {
	const w = 1280;
	const h = 720;
	const loopS = 12;
	// A still, softly lit background with a head-sized patch that sways slowly, a
	// mouth that opens at syllable rate, and light temporal sensor noise as a
	// webcam has; no cuts inside the file.
	const filter = [
		`gradients=s=${w}x${h}:r=${FPS}:d=${loopS}:c0=0x354555:c1=0x8a7a6a:speed=0.0005,format=yuv420p[bg]`,
		`color=c=0xd2a27c:s=240x300:r=${FPS}:d=${loopS},format=yuv420p[head]`,
		`color=c=0x5a2020:s=80x24:r=${FPS}:d=${loopS},format=yuv420p[mouth]`,
		`[bg][head]overlay=x='520+18*sin(2*PI*0.35*t)':y='190+8*sin(2*PI*0.5*t)':eval=frame[a]`,
		`[a][mouth]overlay=x='600+18*sin(2*PI*0.35*t)':y='400+8*sin(2*PI*0.5*t)+6*abs(sin(2*PI*2.5*t))':eval=frame,noise=alls=3:allf=t,setsar=1[out]`,
	].join(';');
	return {
		filter,
		truth: {
			source: 'talking-head',
			width: w,
			height: h,
			fps: FPS,
			loopS,
			cutsS: [],
			segments: [{ startS: 0, endS: loopS, content: 'static background, slowly swaying head patch, syllable-rate mouth, sensor noise' }],
			motion: 'low',
		},
	};
}

function screenShareRecipe(): VideoRecipe {
	const w = 1280;
	const h = 720;
	const slideS = 3;
	const slides = 4;
	const colors = ['white', '0xf4f1e8', '0xe8f0f8', 'white'];
	const parts: string[] = [];
	const labels: string[] = [];
	const segments: VideoGroundTruth['segments'] = [];
	for (let i = 0; i < slides; i++) {
		const lines = [`Slide ${i + 1}: quarterly review`, `- item ${i * 3 + 1}: throughput up ${10 + i * 7} pct`, `- item ${i * 3 + 2}: latency p99 ${120 - i * 9} ms`, `- item ${i * 3 + 3}: cost per stream ${(0.8 + i / 10).toFixed(2)}`];
		const text = lines
			.map((l, j) => `drawtext=fontfile=${FONT}:text='${l.replace(/:/g, '\\:')}':x=80:y=${100 + j * 90}:fontsize=${j === 0 ? 56 : 40}:fontcolor=0x202020`)
			.join(',');
		// A highlight box whose position differs per slide; nothing moves within a slide.
		parts.push(`color=c=${colors[i]}:s=${w}x${h}:r=${FPS}:d=${slideS},${text},drawbox=x=${900 + i * 40}:y=${500 - i * 30}:w=${120}:h=${80}:color=0x3366cc:t=fill,format=yuv420p,setsar=1[p${i}]`);
		labels.push(`[p${i}]`);
		segments.push({ startS: i * slideS, endS: (i + 1) * slideS, content: `slide ${i + 1} (static text)` });
	}
	const filter = `${parts.join(';')};${labels.join('')}concat=n=${slides}:v=1:a=0[out]`;
	return {
		filter,
		truth: {
			source: 'screen-share',
			width: w,
			height: h,
			fps: FPS,
			loopS: slides * slideS,
			cutsS: segments.slice(1).map((s) => s.startS),
			segments,
			motion: 'static-with-changes',
		},
	};
}

const VIDEO_RECIPES: Record<VideoSourceName, () => VideoRecipe> = {
	'talking-head': talkingHeadRecipe,
	'scene-cuts': sceneCutsRecipe,
	'screen-share': screenShareRecipe,
};

/**
 * Speech-like audio: a voiced tone with a few harmonics whose pitch drifts,
 * amplitude-modulated at syllable rate (~4 Hz) and gated into phrases and pauses.
 * The stereo variant has a second talker on the right channel who speaks in the
 * first talker's pauses, so the channels really differ.
 */
function speechExpr(f0: number, phase: number, talk: Array<[number, number]>): string {
	const gate = talk.map(([a, b]) => `between(t,${a},${b})`).join('+');
	const pitch = `${f0}*(1+0.08*sin(2*PI*0.7*t+${phase}))`;
	const voice = `(sin(2*PI*${pitch}*t)+0.5*sin(4*PI*${pitch}*t)+0.25*sin(6*PI*${pitch}*t))`;
	const syllables = `(0.55+0.45*sin(2*PI*4.2*t+${phase}))`;
	return `0.25*(${gate})*${syllables}*${voice}`;
}

const AUDIO_LOOP_S = 12;
const TALK_A: Array<[number, number]> = [[0.5, 3.5], [4.3, 7.9], [9, 11.2]];
const TALK_B: Array<[number, number]> = [[3.6, 4.2], [8, 8.9], [11.3, 11.9]];

function audioRecipe(name: AudioSourceName): { expr: string; truth: AudioGroundTruth } {
	if (name === 'speech-mono') {
		return { expr: speechExpr(130, 0, TALK_A), truth: { source: name, channels: 1, sampleRate: 48000, loopS: AUDIO_LOOP_S, talkS: TALK_A } };
	}
	return {
		expr: `${speechExpr(130, 0, TALK_A)}|${speechExpr(210, 1.3, TALK_B)}`,
		truth: { source: name, channels: 2, sampleRate: 48000, loopS: AUDIO_LOOP_S, talkS: [...TALK_A, ...TALK_B].sort((x, y) => x[0] - y[0]) },
	};
}

function ffmpeg(args: string[]): Promise<void> {
	return new Promise((resolve, reject) => {
		const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
		let err = '';
		p.stderr.on('data', (b: Buffer) => (err += b.toString()));
		p.on('error', reject);
		p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
	});
}

export function videoGroundTruth(name: VideoSourceName): VideoGroundTruth {
	return VIDEO_RECIPES[name]().truth;
}

export function audioGroundTruth(name: AudioSourceName): AudioGroundTruth {
	return audioRecipe(name).truth;
}

/** Writes `<dir>/<name>.y4m` unless it exists; returns its path and ground truth. */
export async function makeVideoSource(name: VideoSourceName, dir: string): Promise<{ path: string; truth: VideoGroundTruth }> {
	mkdirSync(dir, { recursive: true });
	const recipe = VIDEO_RECIPES[name]();
	const path = join(dir, `${name}.y4m`);
	if (!existsSync(path)) {
		await ffmpeg(['-f', 'lavfi', '-i', 'nullsrc=s=16x16:d=0.04', '-filter_complex', recipe.filter, '-map', '[out]', '-t', String(recipe.truth.loopS), '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', path]);
	}
	return { path, truth: recipe.truth };
}

/** Writes `<dir>/<name>.wav` (48 kHz, 16-bit) unless it exists. */
export async function makeAudioSource(name: AudioSourceName, dir: string): Promise<{ path: string; truth: AudioGroundTruth }> {
	mkdirSync(dir, { recursive: true });
	const recipe = audioRecipe(name);
	const path = join(dir, `${name}.wav`);
	if (!existsSync(path)) {
		const layout = recipe.truth.channels === 2 ? 'stereo' : 'mono';
		await ffmpeg(['-f', 'lavfi', '-i', `aevalsrc=exprs='${recipe.expr}':s=48000:d=${recipe.truth.loopS}:c=${layout}`, '-c:a', 'pcm_s16le', path]);
	}
	return { path, truth: recipe.truth };
}
