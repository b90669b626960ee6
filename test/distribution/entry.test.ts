/**
 * Which code `engage` runs (bin/entry.mjs): dist/ when built and current, src/ through tsx when
 * dist/ is absent or older than a source file, dist/ alone in an installed package (no src/).
 * On a scratch package root, so the repository's own dist/ plays no part.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { cliEntry } from '../../bin/entry.mjs';

const root = mkdtempSync(path.join(os.tmpdir(), 'engage-entry-'));
after(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, mtimeSec: number): void {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '');
  utimesSync(file, mtimeSec, mtimeSec);
}
/** Dates every folder under src/ back to `sec` (folders made by the test are new). */
function ageFolders(sec: number, dir = path.join(root, 'src')): void {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) ageFolders(sec, path.join(dir, e.name));
  utimesSync(dir, sec, sec);
}
// cliEntry resolves tsx from the root's package.json: point it at this repository's node_modules.
writeFileSync(path.join(root, 'package.json'), '{}');
const repo = path.resolve(import.meta.dirname, '..', '..');
symlinkSync(path.join(repo, 'node_modules'), path.join(root, 'node_modules'));

test('no dist/: the TypeScript through tsx', () => {
  write('src/cli/main.ts', 1000);
  const e = cliEntry(root);
  assert.equal(e.kind, 'src');
  assert.equal(e.args[0], '--import');
  assert.match(String(e.args[1]), /tsx/);
  assert.equal(e.args[2], path.join(root, 'src', 'cli', 'main.ts'));
});

test('dist/ built after every source: the compiled JavaScript, no loader', () => {
  write('dist/cli/main.js', 2000);
  write('dist/.build-stamp', 2000);
  ageFolders(1000);
  assert.deepEqual(cliEntry(root), { kind: 'dist', args: [path.join(root, 'dist', 'cli', 'main.js')] });
});

test('a source edited after the build (however deep): the TypeScript again, never stale JavaScript', () => {
  write('src/sinks/redis/deep/x.ts', 3000);
  ageFolders(1000);
  assert.equal(cliEntry(root).kind, 'src');
  write('dist/.build-stamp', 4000);
  assert.equal(cliEntry(root).kind, 'dist');
});

test('a source removed after the build: the TypeScript again (its folder changed)', () => {
  rmSync(path.join(root, 'src', 'sinks', 'redis', 'deep', 'x.ts'));
  assert.equal(cliEntry(root).kind, 'src');
  ageFolders(1000);
  assert.equal(cliEntry(root).kind, 'dist');
});

test('dist/ without its build stamp (an interrupted build) is not used', () => {
  rmSync(path.join(root, 'dist', '.build-stamp'));
  assert.equal(cliEntry(root).kind, 'src');
});

test('an installed package (no src/): dist/ whatever its age', () => {
  write('dist/.build-stamp', 10);
  rmSync(path.join(root, 'src'), { recursive: true });
  assert.equal(cliEntry(root).kind, 'dist');
});
