import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { readHeartbeats } from '../../src/api/heartbeats.js';
import { main } from '../../src/cli/main.js';
import { RunFigures } from '../../src/supervisor/run-figures.js';
import { REPO_ROOT } from '../../src/stack/stack.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';

/** `engage generate` as a user runs it: usage errors exit 2; a run writes and prints a summary;
 *  SIGINT stops a continuous run cleanly with its summary. */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function engage(
  args: string[],
  env: NodeJS.ProcessEnv,
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  // The CLI entry itself (not the bin wrapper), so a signal reaches the process that handles it.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
    cwd: REPO_ROOT,
    env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    onStderr?.(stderr, child);
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('engage generate (CLI)', () => {
  let env: TestEnv;
  let processEnv: NodeJS.ProcessEnv;
  let db: pg.Client;

  before(async () => {
    env = await createTestEnv();
    processEnv = { ...process.env, DATABASE_URL: env.config.databaseUrl, LOG_LEVEL: 'warn' };
    db = new pg.Client({ connectionString: env.config.databaseUrl });
    await db.connect();
  });

  after(async () => {
    await db?.end();
    await env?.cleanup();
  });

  test('an unknown mode, a flag of another mode, or a bad number exit 2 with usage', async () => {
    // In-process (the same main() the binary runs): usage errors fail before any connection.
    const run = async (args: string[]): Promise<{ code: number; stderr: string }> => {
      let stderr = '';
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array) => {
        stderr += String(chunk);
        return true;
      }) as typeof process.stderr.write;
      try {
        return { code: await main(args), stderr };
      } finally {
        process.stderr.write = write;
      }
    };
    const mode = await run(['generate', '--mode', 'bogus']);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /Allowed choices are continuous, batch, historical/);
    const misplaced = await run(['generate', '--mode', 'batch', '--rate', '5']);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--rate cannot be used with --mode batch/);
    const badNumber = await run(['generate', '--mode', 'batch', '--batch-size', '0']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--batch-size accepts a whole number/);
    const unknownFlag = await run(['generate', '--mode', 'batch', '--bogus']);
    assert.equal(unknownFlag.code, 2);
    assert.match(unknownFlag.stderr, /unknown option '--bogus'/);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0]?.n;
    assert.equal(n, 0, 'nothing written');
  });

  test('--mode batch writes exactly --batch-size rows and prints a summary', async () => {
    const res = await engage(['generate', '--mode', 'batch', '--batch-size', '1500', '--seed', '9'], processEnv);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^generate batch: 1,500 rows, [\d,]+ sessions in [\d.]+ s \([\d,]+ rows\/s\); seed 9$/m);
    assert.match(res.stderr, /batch: 1,500 \/ 1,500 \(100%\) rows/);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0]?.n;
    assert.equal(n, 1500);
  });

  test('SIGINT stops --mode continuous cleanly, with a summary', async () => {
    await db.query('TRUNCATE engagement_events');
    let signalled = false;
    const res = await engage(
      ['generate', '--mode', 'continuous', '--rate', '50', '--seed', '3'],
      processEnv,
      (text, child) => {
        // The first progress line proves rows are being written.
        if (!signalled && /continuous: [\d,]+ rows/.test(text)) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    );
    assert.equal(signalled, true, res.stderr);
    assert.equal(res.code, 0, res.stderr);
    const m = /^generate continuous: ([\d,]+) rows/m.exec(res.stdout);
    assert.ok(m, res.stdout);
    const rows = Number(m[1]?.replace(/,/g, ''));
    assert.ok(rows > 0);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0]?.n;
    assert.equal(n, rows, 'the summary counts what was committed');
  });

  test('with Redis unreachable, --mode continuous writes and exits at the end of --duration (the heartbeat never holds it)', async () => {
    await db.query('TRUNCATE engagement_events');
    const res = await engage(['generate', '--mode', 'continuous', '--rate', '20', '--duration', '2', '--seed', '5'], {
      ...processEnv,
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    assert.equal(res.code, 0, res.stderr);
    const m = /^generate continuous: ([\d,]+) rows/m.exec(res.stdout);
    assert.ok(m, `a summary in: ${res.stdout}`);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0]?.n;
    assert.equal(n, Number(m[1]?.replace(/,/g, '')), 'the summary counts what was committed');
  });

  test('--mode continuous is a live component: its heartbeat carries the rows it wrote, gone once it stops', async () => {
    await db.query('TRUNCATE engagement_events');
    const figures = new RunFigures(env.config.redisUrl, env.config.REDIS_KEY_PREFIX);
    let seen: number | undefined;
    let polling = false;
    const res = await engage(
      ['generate', '--mode', 'continuous', '--rate', '100', '--seed', '4'],
      { ...process.env, ...env.env },
      (text, child) => {
        if (polling || seen !== undefined || !/continuous: [\d,]+ rows/.test(text)) return;
        polling = true;
        // Not found in time, `seen` stays undefined and the assertion below fails.
        void waitFor(
          'a generator heartbeat with rows',
          async () => {
            const total = (await figures.sample()).get('generator')?.total;
            return total !== undefined && total > 0 && total;
          },
          { timeoutMs: 20_000, everyMs: 200 },
        )
          .then(
            (total) => (seen = total),
            () => undefined,
          )
          .finally(() => child.kill('SIGINT'));
      },
    );
    assert.equal(res.code, 0, res.stderr);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0]?.n ?? 0;
    assert.ok(seen !== undefined && seen > 0 && seen <= n, `heartbeat rows ${seen}, committed ${n}`);
    const redis = createClient({ url: env.config.redisUrl });
    await redis.connect();
    try {
      const beats = await readHeartbeats(redis, env.config.REDIS_KEY_PREFIX);
      assert.deepEqual(
        beats.map((b) => b.component),
        [],
        'the heartbeat is removed at stop',
      );
    } finally {
      await redis.quit();
      await figures.close();
    }
  });
});
