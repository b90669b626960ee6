#!/usr/bin/env node
// `npm run build`, second step: copies what src/ holds beside its TypeScript and reads at run time
// (the dashboard's html, css and js) to the same place under dist/, so the compiled code finds it
// where the sources do (src/api/dashboard/plugin.ts reads the files beside itself). Then stamps
// dist/ with the build time: bin/engage.mjs runs dist/ only while no file of src/ is newer.
// Plain JavaScript: it runs right after tsc, with nothing else installed.
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
/** Files that are not compiled but read at run time, by extension. */
const ASSETS = new Set(['.html', '.css', '.js', '.json', '.sql', '.lua']);

let copied = 0;
function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const from = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(from);
    else if (ASSETS.has(path.extname(entry.name))) {
      const to = path.join(dist, path.relative(src, from));
      mkdirSync(path.dirname(to), { recursive: true });
      copyFileSync(from, to);
      copied += 1;
    }
  }
}
walk(src);
writeFileSync(path.join(dist, '.build-stamp'), `${new Date().toISOString()}\n`);
process.stderr.write(`[build] dist/ compiled; ${copied} asset file(s) copied from src/\n`);
