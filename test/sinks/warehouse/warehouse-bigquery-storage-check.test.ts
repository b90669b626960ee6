import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { grpc } from 'google-gax';
import { runWarehouseCheck } from '../../../src/sinks/warehouse/check-command.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import {
  startedStorageSink,
  startStorageFakes,
  storageConfig,
  type StorageFakes,
} from './bigquery-storage-fixtures.js';

/**
 * `engage sink warehouse --check` against the local fakes: a new project is reported as what the
 * sink would create (exit 0); a ready one passes every step, the write path included, without a
 * visible row; a write permission missing fails with what to grant (exit 1).
 */

let fakes: StorageFakes;
let env: TestEnv;

before(async () => {
  fakes = await startStorageFakes();
  env = await createTestEnv();
});

after(async () => {
  await env.cleanup();
  await fakes.close();
});

async function check(dataset: string): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runWarehouseCheck(storageConfig(env.config, fakes, dataset), (t) => (out += `${t}\n`));
  return { code, out };
}

describe('engage sink warehouse --check', () => {
  it(
    'on a new dataset, lists what the sink would create and exits 0 (the command itself)',
    { timeout: 60000 },
    async () => {
      const child = spawn(process.execPath, ['bin/engage.mjs', 'sink', 'warehouse', '--check'], {
        env: { ...env.env, ...fakes.env, BIGQUERY_DATASET_ID: 'check_new' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0, out);
      assert.match(out, /\+ dataset: storage-project\.check_new in US/);
      assert.match(out, /ready: `engage sink warehouse` creates what is marked \+/);
      assert.equal(fakes.rest.datasets.has('check_new'), false, 'nothing was created');
    },
  );

  it('on a ready dataset, passes every step, the write path leaving nothing visible', async () => {
    await (await startedStorageSink(storageConfig(env.config, fakes, 'check_ready'))).close();
    const { code, out } = await check('check_ready');
    assert.equal(code, 0, out);
    for (const step of [
      'dataset',
      'table engagement_events_enriched',
      'view daily_engagement_summary',
      'read at assignment',
    ])
      assert.match(out, new RegExp(`✔ ${step}`));
    assert.match(out, /partitioned by event_date \(DAY\), clustered by content_id/);
    assert.match(out, /✔ write path \(Storage Write API\): appended to .* \(PENDING, never committed/);
    assert.deepEqual(fakes.rest.rows('check_ready', 'warehouse_commit_log'), [], 'the test row is invisible');
    assert.equal(fakes.storage.uncommitted('check_ready.warehouse_commit_log').length, 1);
  });

  it('fails with what to grant when the write path is refused', async () => {
    await (await startedStorageSink(storageConfig(env.config, fakes, 'check_denied'))).close();
    fakes.storage.fail('CreateWriteStream', { code: grpc.status.PERMISSION_DENIED, message: 'Permission denied' });
    const { code, out } = await check('check_denied');
    assert.equal(code, 1, out);
    assert.match(out, /✖ write path \(Storage Write API\): .*Permission denied.* grant bigquery\.tables\.updateData/);
    assert.match(out, /not ready: fix the lines marked ✖/);
  });
});
