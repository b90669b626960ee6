import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

/** `engage --version` (and -V) prints the package's version and exits 0. */

const ROOT = path.resolve(import.meta.dirname, '../..');

test("engage --version prints package.json's version", () => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const res = spawnSync(process.execPath, [path.join(ROOT, 'bin/engage.mjs'), flag], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, `${version}\n`);
  }
});
