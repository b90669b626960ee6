import assert from 'node:assert/strict';
import type { PipelineOptions } from '../../src/cdc/change-pipeline.js';
import type { TxnWriter } from '../../src/cdc/txn-writer.js';
import { createLogger } from '../../src/core/logger.js';

/**
 * ChangePipeline options for the unit tests that drive it with hand-made pgoutput messages and a
 * recording writer: no routes, batches bounded only by what the test sets, a failure fails the test.
 */
export function pipelineOptions(
  writer: TxnWriter,
  ack: (lsn: bigint) => void,
  overrides: Partial<PipelineOptions> = {},
): PipelineOptions {
  return {
    slot: 's',
    serverName: 'engage',
    db: 'db',
    positionTopic: 'p',
    routes: {},
    maxBatchRows: 1_000_000,
    splitRows: 1_000_000,
    commitIntervalMs: 60_000,
    skipBelow: 0n,
    snapshot: null,
    writer,
    maxEventBytes: 1_000_000,
    onTruncated: () => undefined,
    primaryKey: () => Promise.resolve(['id']),
    ack,
    onCommitted: () => undefined,
    onFail: (err) => assert.fail(String(err)),
    log: createLogger('warn', 'cdc-pipeline-test'),
    ...overrides,
  };
}
