// JavaScript shipped by the build: every .js file under build/, gzip -9 as a server would send
// it. Prints one line per file and the total; exits 1 when the total is over the budget.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_KB = 150;
const root = new URL('../build/', import.meta.url).pathname;

/** @param {string} dir @returns {string[]} */
function walk(dir) {
	return readdirSync(dir).flatMap((name) => {
		const p = join(dir, name);
		return statSync(p).isDirectory() ? walk(p) : [p];
	});
}

/** Gzipped size of the build's JavaScript, in bytes, with a per-file list. */
export function jsSize() {
	const files = walk(root).filter((f) => f.endsWith('.js'));
	const rows = files.map((f) => {
		const raw = readFileSync(f);
		return { file: relative(root, f), raw: raw.length, gzip: gzipSync(raw, { level: 9 }).length };
	});
	return { rows, raw: rows.reduce((a, r) => a + r.raw, 0), gzip: rows.reduce((a, r) => a + r.gzip, 0) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
	const s = jsSize();
	if (s.rows.length === 0) {
		console.error('no JavaScript under build/: run `npm run build` first');
		process.exit(1);
	}
	for (const r of s.rows) console.log(`${r.file}: ${(r.raw / 1024).toFixed(1)} KB raw, ${(r.gzip / 1024).toFixed(1)} KB gzip`);
	console.log(`JS shipped: ${(s.gzip / 1024).toFixed(1)} KB gzip (${(s.raw / 1024).toFixed(1)} KB raw), budget ${BUDGET_KB} KB`);
	process.exit(s.gzip / 1024 < BUDGET_KB ? 0 : 1);
}
