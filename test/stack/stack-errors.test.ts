import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, privatePorts } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import {
  checkExternalPostgres,
  fallbackRoot as clusterFallback,
  pgAnswers,
  startPrivatePostgres,
} from '../../src/stack/postgres.js';
import { portHolder } from '../../src/stack/process.js';
import { startPrivateRedis } from '../../src/stack/redis.js';
import { stackUp } from '../../src/stack/stack.js';
import { engage } from './engage-cli.js';
import { readStackState } from '../../src/config/stack-state.js';

/**
 * `engage stack` refusing what it cannot fix: a PostgreSQL without logical WAL, a private port held
 * by another process, an unreachable service the environment names, and the CLI's usage errors.
 * Nothing here starts a private stack; the shared one is only read.
 */

const shared = loadConfig();
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'engage-stack-errors-'));
const asRoot = process.getuid?.() === 0;

after(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('misconfigured and unreachable services', () => {
  const machinePg = 'postgresql://postgres@127.0.0.1:5432/postgres';

  test('a PostgreSQL with wal_level=replica is refused with the fix', async (t) => {
    // The machine's own PostgreSQL (wal_level=replica) is only connected to and read (SHOW).
    if (!(await pgAnswers(machinePg))) {
      t.skip('no PostgreSQL on 127.0.0.1:5432 on this machine');
      return;
    }
    await assert.rejects(checkExternalPostgres(machinePg), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'SERVICE_MISCONFIGURED');
      assert.match(err.message, /wal_level = replica/);
      assert.match(err.message, /ALTER SYSTEM SET wal_level = logical/);
      assert.match(err.message, /DATABASE_URL/);
      return true;
    });
    const dir = path.join(tmpRoot, 'misconfigured');
    const config = loadConfig(
      {
        STACK_DIR: dir,
        DATABASE_URL: machinePg,
        KAFKA_BOOTSTRAP_SERVERS: shared.kafkaBrokers.join(','),
        REDIS_URL: shared.redisUrl,
        SCHEMA_REGISTRY_URL: shared.schemaRegistryUrl,
      },
      tmpRoot,
    );
    await assert.rejects(
      stackUp(config, { topics: false }),
      (err: unknown) => err instanceof PipelineError && err.code === 'SERVICE_MISCONFIGURED',
    );
    assert.equal(readStackState(dir)?.services.postgres, undefined, 'a refused server is not recorded');
  });

  test('a private port held by another process: the message names the process and the ways out', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    // `ss` names another user's process only to root; without `ss` the message omits the holder.
    const named = asRoot && spawnSync('ss', ['-V']).status === 0;
    try {
      if (named) assert.equal(portHolder(port), `node, pid ${process.pid}`);
      const ports = { ...privatePorts(0), redis: port };
      await assert.rejects(startPrivateRedis(path.join(tmpRoot, 'taken'), ports, undefined), (err: unknown) => {
        assert.ok(err instanceof PipelineError);
        assert.equal(err.code, 'STACK_START_FAILED');
        assert.match(
          err.message,
          new RegExp(
            `^port ${port} is taken by another process${named ? ` \\(node, pid ${process.pid}\\)` : ''}; the private Redis cannot start`,
          ),
        );
        assert.match(err.message, /set REDIS_URL to use it, or set STACK_PORT_OFFSET/);
        return true;
      });
      // PostgreSQL too: whatever answers on the port is not taken for the stack's own server.
      // (tmpRoot is 0700: the cluster's folder falls back to /var/tmp, removed below.)
      await assert.rejects(
        startPrivatePostgres(path.join(tmpRoot, 'taken'), { ...privatePorts(0), postgres: port }, undefined),
        (err: unknown) => {
          assert.ok(err instanceof PipelineError);
          assert.equal(err.code, 'STACK_START_FAILED');
          assert.match(
            err.message,
            new RegExp(
              `^port ${port} is taken by another process.*; the private PostgreSQL cannot start\\. Stop it, set DATABASE_URL to use it`,
            ),
          );
          return true;
        },
      );
    } finally {
      holder.close();
      rmSync(clusterFallback(path.join(tmpRoot, 'taken')), { recursive: true, force: true });
    }
    assert.equal(portHolder(port), null, 'nobody listens any more');
  });

  test('an unreachable DATABASE_URL names the variable and what to do', async () => {
    await assert.rejects(checkExternalPostgres('postgresql://postgres@127.0.0.1:1/x'), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'SERVICE_UNREACHABLE');
      assert.match(err.message, /DATABASE_URL/);
      assert.match(err.message, /engage stack up/);
      return true;
    });
  });
});

// Started at once, so the CLI's start-up overlaps the tests above; awaited by the last test.
const usageRuns = Promise.all([
  engage(['bogus'], undefined, tmpRoot),
  engage(['stack', '--bogus'], undefined, tmpRoot),
]);

describe('engage CLI usage errors', () => {
  test('an unknown command or an unknown flag exits 2 with usage', async () => {
    const [command, flag] = await usageRuns;
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command 'bogus'/);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /unknown option '--bogus'/);
  });
});
