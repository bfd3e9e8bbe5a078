import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '../..');

/**
 * Runs a training script of `fixtures/` in a child process (see fixtures/train-synthetic.ts
 * for why) with `dir` as its output directory; resolves to the JSON of its last stdout line.
 */
export async function runTrainingFixture<T>(script: string, dir: string): Promise<T> {
	const { stdout } = await promisify(execFile)(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(__dirname, 'fixtures', script), dir], {
		cwd: ROOT,
		timeout: 170_000,
	});
	return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}
