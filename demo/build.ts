import { join } from 'node:path';
import { build } from 'esbuild';

/** Where the client bundles go (gitignored, rebuilt on every start). */
export const BUILD_DIR = join(__dirname, '../.foresight/demo-build');

/**
 * `demo:build`: bundles the room and dashboard pages (mediasoup-client, uPlot and
 * its CSS come from node_modules; nothing is fetched from a CDN). Runs on every
 * server start; takes well under a second.
 */
export async function buildClient(outdir = BUILD_DIR): Promise<{ ms: number }> {
	const t0 = performance.now();
	await build({
		entryPoints: { room: join(__dirname, 'client/room.ts'), dashboard: join(__dirname, 'client/dashboard.ts') },
		bundle: true,
		outdir,
		format: 'iife',
		platform: 'browser',
		target: 'chrome110',
		sourcemap: true,
		minify: false,
		logLevel: 'silent',
		define: { 'process.env.NODE_ENV': '"production"' },
	});
	return { ms: performance.now() - t0 };
}
