import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { main } from '../../src/cli/main.js';

/** `engage sink <name>`: the registry knows the four sinks; an unknown name is a usage error. */

test('the registry holds redis, warehouse, external and file; an unknown sink is a USAGE error naming them', async () => {
  const { SINKS, getSinkFactory, sinkNames } = await import('../../src/sinks/registry.js');
  assert.deepEqual(sinkNames(), ['external', 'file', 'redis', 'warehouse']);
  for (const [name, factory] of Object.entries(SINKS)) {
    assert.equal(factory.name, name);
    assert.equal(typeof factory.create, 'function');
    assert.equal(getSinkFactory(name), factory);
  }
  assert.throws(
    () => getSinkFactory('nope'),
    (err: unknown) =>
      err instanceof PipelineError &&
      err.code === 'USAGE' &&
      /unknown sink "nope"; known: external, file, redis, warehouse/.test(err.message),
  );
  assert.throws(() => getSinkFactory('toString'), PipelineError, 'no prototype names');
});

test("the runtime reads each factory's retry policy and write concurrency from the contract", async () => {
  const { getSinkFactory } = await import('../../src/sinks/registry.js');
  const { resolveRetryPolicy, resolveWriteConcurrency } = await import('../../src/runtime/sink-runner-options.js');
  const { DEFAULT_RETRY } = await import('../../src/runtime/retry.js');
  const { loadConfig } = await import('../../src/config/load.js');
  const { DUCKDB_WRITE_CONCURRENCY, STORAGE_WRITE_CONCURRENCY } = await import('../../src/sinks/warehouse/index.js');
  const { REDIS_WRITE_CONCURRENCY } = await import('../../src/sinks/redis/options.js');
  type Config = ReturnType<typeof loadConfig>;
  const duck: Config = { ...loadConfig(), warehouse: 'duckdb' };
  const bigquery: Config = { ...duck, warehouse: 'bigquery', BIGQUERY_WRITE_API: 'storage' };
  const bigqueryJobs: Config = { ...bigquery, BIGQUERY_WRITE_API: 'query' };
  const policy = (name: string, config = duck) => resolveRetryPolicy(config, getSinkFactory(name), {});
  const concurrency = (name: string, config = duck) => resolveWriteConcurrency(config, getSinkFactory(name), {});
  assert.deepEqual([policy('redis'), policy('file')], [DEFAULT_RETRY, DEFAULT_RETRY]);
  assert.deepEqual([policy('external').baseMs, policy('external').maxMs], [500, 30000]);
  assert.deepEqual([policy('warehouse').baseMs, policy('warehouse', bigquery).baseMs], [200, 500]);
  assert.deepEqual(
    [
      concurrency('redis'),
      concurrency('warehouse'),
      concurrency('warehouse', bigquery),
      concurrency('warehouse', bigqueryJobs),
      concurrency('external'),
      concurrency('file'),
    ],
    [REDIS_WRITE_CONCURRENCY, DUCKDB_WRITE_CONCURRENCY, STORAGE_WRITE_CONCURRENCY, 1, 2, 1],
  );
  assert.equal(
    resolveWriteConcurrency(duck, getSinkFactory('redis'), { writeConcurrency: 3 }),
    3,
    'an option overrides the factory',
  );
});

test('`engage sink nope` exits 2', async () => {
  const writes: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['sink', 'nope']);
  } finally {
    process.stderr.write = original;
  }
  assert.equal(code, 2);
  assert.match(writes.join(''), /unknown sink "nope"/);
});
