import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SessionsIndex } from '../../training/sessions';

const FIXTURES = path.join(__dirname, 'fixtures', 'sessions');

/**
 * A sessions directory made of the fixture sessions relabelled: each `[i, scenario, seed]`
 * copies fixture session i as family `scenario` with that seed, so a test can lay out
 * held-out and tuning families without recording any. Returns the directory (the caller removes it).
 */
export async function relabelledSessions(prefix: string, layout: ReadonlyArray<readonly [number, string, number]>): Promise<string> {
	const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
	const index = JSON.parse(await readFile(path.join(FIXTURES, 'sessions.json'), 'utf8')) as SessionsIndex;
	const sessions = [];
	for (const [i, scenario, seed] of layout) {
		const entry = index.sessions[i];
		if (!entry) throw new Error(`no fixture session ${i}`);
		const id = `${scenario}-seed${seed}`;
		await cp(path.join(FIXTURES, entry.file), path.join(dir, `${id}.jsonl.gz`));
		sessions.push({ ...entry, id, scenario, seed, file: `${id}.jsonl.gz` });
	}
	await writeFile(path.join(dir, 'sessions.json'), JSON.stringify({ ...index, sessions }));
	return dir;
}
