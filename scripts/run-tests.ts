import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { stackUp } from '../src/stack/stack.js';

/**
 * `npm test`: brings the stack up, lists the test files explicitly (Node 20's runner silently finds
 * nothing given a directory or a quoted glob) and fails when the list is empty, then runs them one
 * file at a time against the real services. `--e2e` runs the long end-to-end suite instead of the
 * short one, `--faults` the fault matrix (`*.faults.test.ts`, on a private stack of its own: it
 * needs no shared stack, so none is brought up); `--only <substring>` narrows the list while
 * developing.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const e2e = args.includes('--e2e');
const faults = args.includes('--faults');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

const files = walk(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => {
    if (faults) return f.endsWith('.faults.test.ts');
    if (f.endsWith('.faults.test.ts')) return false;
    return e2e ? f.includes(`${path.sep}e2e${path.sep}`) && f.endsWith('.e2e.test.ts') : !f.endsWith('.e2e.test.ts');
  })
  .filter((f) => !only || f.includes(only))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found; refusing to report success.');
  process.exit(1);
}

if (!faults) {
  const t0 = Date.now();
  await stackUp(loadConfig(), {
    onReady: (s, ms) =>
      console.log(
        `stack: ${s.name} ready in ${(ms / 1000).toFixed(1)} s (${s.startedByStack ? 'private' : 'from environment'})`,
      ),
  });
  console.log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log(`running ${files.length} test files`);

const res = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    ...files.map((f) => path.relative(root, f)),
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, ENGAGE_TEST: '1' } },
);
process.exit(res.status ?? 1);
