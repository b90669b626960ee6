import { createLogger } from '../../../src/core/logger.js';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { startReceiver, type RunningReceiver } from '../../../src/receiver/index.js';
import { EXTERNAL_WRITE_CONCURRENCY, ExternalSink } from '../../../src/sinks/external/index.js';
import type { TestEnv } from '../../helpers/env.js';
import { sinkContractSuite, type MakeSink } from '../contract-suite.js';

/**
 * The shared sink contract for the external sink, against the reference receiver (one per test
 * environment, in process, ephemeral port). The sink's storage is the receiver: `count` is the
 * number of distinct events it holds, so a re-delivered event counting twice would show. Sinks
 * re-created within one environment (the suite's restarts) post to the same receiver.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'external-contract');
const receivers = new Map<string, { receiver: Promise<RunningReceiver>; users: number }>();

const makeExternalSink: MakeSink = async (env: TestEnv) => {
  let entry = receivers.get(env.id);
  if (entry === undefined) {
    entry = { receiver: startReceiver({ auth: 'Authorization: Bearer contract' }), users: 0 };
    receivers.set(env.id, entry);
  }
  entry.users++;
  const receiver = await entry.receiver;
  const sink = new ExternalSink({
    config: {
      ...env.config,
      EXTERNAL_API_URL: receiver.url,
      EXTERNAL_API_AUTH_HEADER: 'Authorization: Bearer contract',
    },
    log,
  });
  let released = false;
  return {
    sink,
    count: async () => receiver.stats().events_unique,
    teardown: async () => {
      if (released) return;
      released = true;
      const e = receivers.get(env.id);
      if (e && --e.users === 0) {
        receivers.delete(env.id);
        await receiver.close();
      }
    },
  };
};

/** An event without an id: `check` parks it alone (MISSING_FIELD) instead of getting its batch rejected. */
const poison = (e: EnrichedEvent): EnrichedEvent => ({ ...e, event_id: '' });

sinkContractSuite('external (HTTP, deduped by the receiver)', makeExternalSink, {
  poison,
  writeConcurrency: EXTERNAL_WRITE_CONCURRENCY,
});
