import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

/**
 * `engage process` refuses a backfill page size it cannot use, and backfill-only options with
 * `--mode stream`, with exit 2 and a message naming the option — before it reads any configuration
 * or opens a connection.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');

function engage(...args: string[]): { status: number | null; stderr: string } {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'bin/engage.mjs'), 'process', ...args], {
    encoding: 'utf8',
  });
  return { status: res.status, stderr: res.stderr };
}

test('--page-size must be a whole number of rows from 1 to 500,000', () => {
  const range = ['--mode', 'backfill', '--start-date', '2025-08-01', '--end-date', '2025-08-01'];
  for (const bad of ['0', '-5', '1.5', 'many', '500001']) {
    const res = engage(...range, '--page-size', bad);
    assert.equal(res.status, 2, `--page-size ${bad}: ${res.stderr}`);
    assert.match(
      res.stderr,
      new RegExp(`USAGE: --page-size accepts a whole number of rows from 1 to 500,000 \\(got "${bad}"\\)`),
    );
  }
});

test('--page-size applies to --mode backfill only', () => {
  const res = engage('--mode', 'stream', '--page-size', '1000');
  assert.equal(res.status, 2, res.stderr);
  assert.match(res.stderr, /USAGE: .*--page-size and --no-bulk-import apply to --mode backfill only/);
});

test('--no-bulk-import applies to --mode backfill only', () => {
  const res = engage('--mode', 'stream', '--no-bulk-import');
  assert.equal(res.status, 2, res.stderr);
  assert.match(res.stderr, /USAGE: .*--no-bulk-import apply to --mode backfill only/);
});
