import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createTestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { killHard, spawnCdc, type CdcChild } from './child.js';
import { pgClient, readToEnd } from './helpers.js';

/**
 * `engage cdc snapshot` end to end: the signal goes through the WAL to a CDC that took no snapshot
 * (CDC_SNAPSHOT_MODE=never); `--where` selects the rows, `--follow` prints progress until the
 * snapshot is done; the events topic then holds exactly the matching rows as incremental reads.
 * A condition PostgreSQL refuses is refused by the command, before anything is sent.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function engage(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

test(
  'engage cdc snapshot --where … --follow: an ad-hoc incremental snapshot of the matching rows',
  { timeout: 180_000 },
  async (t) => {
    const env = await createTestEnv({
      CDC_SNAPSHOT_MODE: 'never',
      CDC_SNAPSHOT_CHUNK_ROWS: '700',
      CDC_HEARTBEAT_SECONDS: '1',
      LOG_LEVEL: 'warn',
    });
    const db = await pgClient(env.config);
    let cdc: CdcChild | undefined;
    try {
      await db.query(
        `INSERT INTO engagement_events (event_ts, duration_ms, device) SELECT now(), i, 'pre' FROM generate_series(1, 5000) i`,
      );
      cdc = spawnCdc(env.env);
      const c = cdc;
      await waitFor(
        'the CDC streaming',
        async () => {
          if (c.child.exitCode !== null) throw new Error(`engage cdc exited:\n${c.output().slice(-3000)}`);
          const r = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [
            env.config.CDC_SLOT_NAME,
          ]);
          return r.rowCount === 1;
        },
        { timeoutMs: 60_000, everyMs: 50 },
      );
      const refused = await engage(env.env, [
        'cdc',
        'snapshot',
        '--table',
        'engagement_events',
        '--where',
        'no_such_column = 1',
      ]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.out, /--where is refused by PostgreSQL/);

      const where = 'duration_ms % 3 = 0';
      const expected = new Set(
        (await db.query<{ id: string }>(`SELECT id::text AS id FROM engagement_events WHERE ${where}`)).rows.map(
          (r) => r.id,
        ),
      );
      const follow = await engage(env.env, [
        'cdc',
        'snapshot',
        '--table',
        'engagement_events',
        '--where',
        where,
        '--follow',
      ]);
      t.diagnostic(follow.out.trim().split('\n').slice(-3).join(' | '));
      assert.equal(follow.code, 0, follow.out);
      assert.match(follow.out, new RegExp(`done: ${expected.size} rows`));

      c.child.kill('SIGTERM');
      assert.equal((await c.exited).code, 0, c.output().slice(-3000));
      cdc = undefined;
      const reads: string[] = [];
      await readToEnd(
        env.config,
        env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
        env.config.KAFKA_TOPIC_PARTITIONS,
        60_000,
        (r) => {
          if (r.value?.op === 'r') {
            assert.equal(r.value.source.snapshot, 'incremental');
            reads.push(String(r.value.after?.id));
          }
        },
      );
      assert.equal(reads.length, expected.size, 'each matching row read once');
      assert.deepEqual(new Set(reads), expected);
    } finally {
      if (cdc) await killHard(cdc);
      await db.end();
      await env.cleanup();
    }
  },
);
