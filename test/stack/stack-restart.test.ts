import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, privatePorts, type Config } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { isAlive, tcpOpen } from '../../src/stack/process.js';
import { redisAnswers } from '../../src/stack/redis.js';
import { stackEnv, stackRemove, stackUp } from '../../src/stack/stack.js';
import { readStackState } from '../../src/config/stack-state.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `engage stack up` restarts a private service that died even when the shell exported the stack's
 * own addresses (`eval "$(engage stack env)"`): an address the state file records for a service
 * the stack started is the stack's, not the user's. On a throwaway stack (own STACK_DIR, ports
 * shifted by STACK_PORT_OFFSET) whose only private service is Redis, the cheapest to kill and
 * restart; PostgreSQL, Kafka and the schema registry are the shared stack's, given by URL, and
 * never touched.
 */

const shared = loadConfig();
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'engage-stack-restart-'));
const stackDir = path.join(tmpRoot, 'stack');

/** An offset (400, 410, … 490) whose private Redis port nobody answers on. */
async function freeRedisOffset(): Promise<number> {
  for (let offset = 400; offset < 500; offset += 10)
    if (!(await tcpOpen('127.0.0.1', privatePorts(offset).redis, 300))) return offset;
  throw new Error('no free STACK_PORT_OFFSET between 400 and 490 for a private Redis');
}

describe("engage stack up with the stack's own addresses exported", { timeout: 90_000 }, () => {
  let base: Config;
  let env: Record<string, string>;

  before(async () => {
    env = {
      STACK_DIR: stackDir,
      STACK_PORT_OFFSET: String(await freeRedisOffset()),
      DATABASE_URL: shared.databaseUrl,
      KAFKA_BOOTSTRAP_SERVERS: shared.kafkaBrokers.join(','),
      // The shared registry too: this stack's only JVM-free private service is Redis.
      SCHEMA_REGISTRY_URL: shared.schemaRegistryUrl,
      LOG_LEVEL: 'warn',
    };
    base = loadConfig(env, tmpRoot);
    assert.equal(base.origins.redis, 'stack');
    await stackUp(base, { topics: false });
  });

  after(async () => {
    // Stops only what this stack started (its Redis); the shared services are records only.
    if (base) await stackRemove(base);
    rmSync(tmpRoot, { recursive: true, force: true });
  });

  it('restarts the private Redis that died, and records its new process', async () => {
    const first = readStackState(stackDir)?.services.redis;
    assert.ok(first?.startedByStack && first.pid, 'the stack started a Redis');
    assert.equal(
      readStackState(stackDir)?.services.postgres?.startedByStack,
      false,
      'PostgreSQL is the shared one, given by URL',
    );
    // As a shell that ran `eval "$(engage stack env)"`.
    const exported = stackEnv(base).match(/^export REDIS_URL='(.+)'$/m)?.[1];
    assert.equal(exported, first.url);
    const config = loadConfig({ ...env, REDIS_URL: exported }, tmpRoot);
    assert.equal(config.origins.redis, 'env');

    process.kill(first.pid, 'SIGKILL');
    await waitFor(
      'the killed Redis to stop answering',
      async () => !isAlive(first.pid) && !(await redisAnswers(first.url)),
      15_000,
    );
    const rows = await stackUp(config, { topics: false });
    const redis = rows.find((r) => r.name === 'redis');
    assert.deepEqual(
      [redis?.up, redis?.startedByStack, redis?.url],
      [true, true, first.url],
      "up again, at the same address, the stack's",
    );
    const second = readStackState(stackDir)?.services.redis;
    assert.ok(
      second?.pid && second.pid !== first.pid && isAlive(second.pid),
      `a new Redis process is recorded (was ${first.pid}, now ${second?.pid})`,
    );
    assert.equal(await redisAnswers(exported), true);
  });

  it("still refuses a REDIS_URL elsewhere that does not answer: that Redis is the user's", async () => {
    const before = readStackState(stackDir)?.services.redis;
    const config = loadConfig({ ...env, REDIS_URL: 'redis://127.0.0.1:1' }, tmpRoot);
    await assert.rejects(
      stackUp(config, { topics: false }),
      (err: unknown) =>
        err instanceof PipelineError && err.code === 'SERVICE_UNREACHABLE' && /REDIS_URL/.test(err.message),
    );
    assert.deepEqual(readStackState(stackDir)?.services.redis, before, "the stack's record is kept");
  });
});
