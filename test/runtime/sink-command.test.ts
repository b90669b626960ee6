import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { main } from '../../src/cli/main.js';

/** `engage sink <name>`: the registry knows the three sinks; an unknown name is a usage error. */

test('the registry holds redis, warehouse and external; an unknown sink is a USAGE error naming them', async () => {
  const { SINKS, getSinkFactory, sinkNames } = await import('../../src/sinks/registry.js');
  assert.deepEqual(sinkNames(), ['external', 'redis', 'warehouse']);
  for (const [name, factory] of Object.entries(SINKS)) {
    assert.equal(factory.name, name);
    assert.equal(typeof factory.create, 'function');
    assert.equal(getSinkFactory(name), factory);
  }
  assert.throws(() => getSinkFactory('nope'), (err: unknown) => err instanceof PipelineError && err.code === 'USAGE' && /unknown sink "nope"; known: external, redis, warehouse/.test(err.message));
  assert.throws(() => getSinkFactory('toString'), PipelineError, 'no prototype names');
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
