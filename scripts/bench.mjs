#!/usr/bin/env node
// npm run bench -- <name> [args...]: runs bench/<name>.ts (or .mjs/.js) under tsx.
// A benchmark's last output line is one JSON object with the figures its issue names.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [name, ...args] = process.argv.slice(2);
const available = readdirSync(join(ROOT, 'bench'))
	.filter((f) => /\.(ts|mjs|js)$/.test(f))
	.map((f) => f.replace(/\.(ts|mjs|js)$/, ''));
if (!name || !available.includes(name)) {
	console.error(`usage: npm run bench -- <name>; available: ${available.join(', ') || '(none)'}`);
	process.exit(2);
}
const file = ['ts', 'mjs', 'js'].map((e) => join(ROOT, 'bench', `${name}.${e}`)).find(existsSync);
const res = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [file, ...args], { cwd: ROOT, stdio: 'inherit' });
process.exit(res.status ?? 1);
