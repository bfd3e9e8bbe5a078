import { execFileSync } from 'node:child_process';
import { CHROMIUM_PATH, HEADLESS_CHROMIUM_FLAGS } from '../../training/media/chromium';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const TEST_OUTPUT = join(__dirname, '../../test-output');

/**
 * A 960×540 Y4M clip for Chromium's fake camera: at its default 640×480 Chromium
 * sends fewer than three simulcast layers.
 */
export function fakeCameraClip(): string {
	mkdirSync(TEST_OUTPUT, { recursive: true });
	const path = join(TEST_OUTPUT, 'fake-camera-960x540.y4m');
	if (!existsSync(path)) {
		execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=960x540:rate=30', '-t', '1', '-pix_fmt', 'yuv420p', path]);
	}
	return path;
}

export function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: CHROMIUM_PATH,
		args: [
			...HEADLESS_CHROMIUM_FLAGS,
			`--use-file-for-fake-video-capture=${fakeCameraClip()}`,
			'--autoplay-policy=no-user-gesture-required',
			// FORESIGHT_CHROMIUM_LOG=1 (with DEBUG=pw:browser to see it): libwebrtc's receive-side log, for a frozen video.
			...(process.env.FORESIGHT_CHROMIUM_LOG ? ['--enable-logging=stderr', '--v=0', '--vmodule=*/webrtc/modules/video_coding/*=1,*/webrtc/video/*=1,*/webrtc/modules/rtp_rtcp/*=1'] : []),
		],
	});
}
