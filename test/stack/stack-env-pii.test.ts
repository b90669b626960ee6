import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { stackEnv } from '../../src/stack/stack.js';

/** `engage stack env` carries the development pseudonym key: with its DATABASE_URL exported, the CDC would otherwise refuse. */
test('stack env exports the development PII_KEYS, and not a key of the environment', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-stack-env-'));
  try {
    const config = loadConfig({ STACK_DIR: dir });
    assert.equal(config.origins.piiKeys, 'stack');
    const key = config.piiKeys[0];
    assert.ok(key);
    const exported = stackEnv(config).match(/^export PII_KEYS='(.+)'$/m)?.[1];
    assert.equal(exported, `${key.id}:${key.secret}`);
    assert.deepEqual(loadConfig({ STACK_DIR: dir, PII_KEYS: exported, DATABASE_URL: 'postgresql://x@h/db' }).piiKeys, [
      key,
    ]);
    const own = loadConfig({ STACK_DIR: dir, PII_KEYS: `mine:${'m'.repeat(40)}` });
    assert.doesNotMatch(stackEnv(own), /PII_KEYS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
