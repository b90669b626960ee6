import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import type { EnrichedEvent } from '../../../src/core/types.js';
import type { Sink } from '../../../src/core/sink-contract.js';
import type { TestEnv } from '../../helpers/env.js';
import {
  createMemoryStore,
  memoryCount,
  memorySink,
  type MemoryStore,
  type MemoryVariant,
} from '../../helpers/memory-sink.js';
import { checkCrashBeforeCommit, checkSameBatchTwice, sinkContractSuite, type MakeSink } from '../contract-suite.js';

/**
 * Proves the shared contract suite on the in-memory sink, in both shapes the contract allows
 * (offsets stored with the data; idempotent on the event id), and proves it can fail: a sink that
 * neither stores offsets nor dedupes is caught by the duplicate and crash checks.
 */

function maker(variant: MemoryVariant): MakeSink {
  const stores = new Map<string, MemoryStore>();
  return async (env: TestEnv) => {
    const store = stores.get(env.id) ?? createMemoryStore();
    stores.set(env.id, store);
    const sink = memorySink({
      name: `memory-${variant}`,
      variant,
      store,
      rejects: (e) =>
        e.event_type === 'click' && e.device === 'poison' ? new PipelineError('INVALID_VALUE', 'poison device') : null,
    });
    return { sink, count: async () => memoryCount(store, variant), teardown: async () => undefined };
  };
}

const poison = (e: EnrichedEvent): EnrichedEvent => ({ ...e, event_type: 'click', device: 'poison' });

sinkContractSuite('memory (offsets stored with the data)', maker('offsets'), { poison });
sinkContractSuite('memory (idempotent on event id)', maker('idempotent'), { poison });

/** Neither stores offsets nor dedupes: every delivery appends (storage shared per env, like a real store). */
const brokenRows = new Map<string, string[]>();
const brokenMaker: MakeSink = async (env) => {
  const rows = brokenRows.get(env.id) ?? [];
  brokenRows.set(env.id, rows);
  const sink: Sink = {
    name: 'broken',
    start: async () => undefined,
    storedOffsets: async () => null,
    write: async (batch) => {
      for (const r of batch.records) rows.push(r.event.event_id);
    },
    close: async () => undefined,
  };
  return { sink, count: async () => rows.length, teardown: async () => undefined };
};

describe('the contract suite catches a sink that breaks the contract', () => {
  test('the duplicate-batch check fails', { timeout: 60000 }, async () => {
    await assert.rejects(
      checkSameBatchTwice(brokenMaker),
      (err: Error) => err.name === 'AssertionError' && /changes no count/.test(err.message),
    );
  });
  test('the crash check fails', { timeout: 90000 }, async () => {
    await assert.rejects(
      checkCrashBeforeCommit(brokenMaker),
      (err: Error) => err.name === 'AssertionError' && /once/.test(err.message),
    );
  });
});
