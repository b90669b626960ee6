import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../../src/core/logger.js';
import { ensureTopics } from '../../../src/kafka/admin.js';
import { startReceiver, type RunningReceiver } from '../../../src/receiver/index.js';
import { sinkGroupId } from '../../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../../src/runtime/sink-runner.js';
import { externalSinkFactory, externalSinkStatus } from '../../../src/sinks/external/index.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import {
  committedOffsets,
  enrichedEvent,
  eventMessages,
  produce,
  readDlq,
  waitCaughtUp,
} from '../../helpers/sink-harness.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * The external sink driven by the real sink runner from a real topic while the receiver misbehaves:
 * lost acknowledgements at random (stored, then answered 503), then a complete outage long enough
 * to open the circuit, then recovery. Every event must end in the receiver exactly once, none in
 * the DLQ, and every partition's offset must be committed.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'external-runner-test');
const EVENTS = 200;

let receiver: RunningReceiver;
let env: TestEnv;

/** Deterministic [0, 1) sequence, so the injected failures are the same on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

before(async () => {
  receiver = await startReceiver({ control: { failRate: 0.4, failPhase: 'after', status: 503 }, random: seeded(7) });
  env = await createTestEnv({
    EXTERNAL_API_URL: receiver.url,
    EXTERNAL_CIRCUIT_FAILURES: '3',
    EXTERNAL_CIRCUIT_COOLDOWN_MS: '200',
    EXTERNAL_API_TIMEOUT_MS: '5000',
  });
  await ensureTopics(env.config);
});
after(async () => {
  await receiver.close();
  await env.cleanup();
});

describe('external sink under the sink runner', () => {
  it('delivers every event exactly once through lost acks, an outage and recovery', { timeout: 90_000 }, async () => {
    const events = Array.from({ length: EVENTS }, () => enrichedEvent());
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    await produce(env.config, topic, eventMessages(events.slice(0, EVENTS / 2)));
    const runner = await startSinkRunner(env.config, externalSinkFactory, log, {
      batching: { maxRecords: 20, maxWaitMs: 50 },
      retry: { attempts: 60, baseMs: 5, maxMs: 300, jitter: 'full' },
    });
    runner.done.catch(() => undefined);
    try {
      await waitFor('the first half is delivered', () => receiver.stats().events_unique === EVENTS / 2, {
        timeoutMs: 30_000,
        describe: () => receiver.stats(),
      });
      const circuit = () =>
        (externalSinkStatus().external as { state?: string; opened_count?: number } | undefined) ?? {};
      const openedBefore = circuit().opened_count ?? 0;
      receiver.control({ down: true });
      await produce(env.config, topic, eventMessages(events.slice(EVENTS / 2)));
      await waitFor(
        'the outage opens the circuit',
        () => (circuit().opened_count ?? 0) > openedBefore && receiver.stats().connections_dropped > 0,
        { timeoutMs: 30_000, describe: circuit },
      );
      receiver.control({ down: false, failRate: 0.2 });
      await waitCaughtUp(runner, env.config, topic, 60_000);
    } finally {
      await runner.stop();
    }
    const s = receiver.stats();
    assert.equal(s.events_unique, EVENTS, 'every event once');
    assert.deepEqual(new Set(receiver.eventIds()), new Set(events.map((e) => e.event_id)));
    assert.ok(s.failures_injected > 0 && s.connections_dropped > 0, 'failures were injected');
    assert.ok(s.duplicate_batches > 0, 'lost acknowledgements were retried with the same key and deduped');
    assert.equal((await readDlq(env.config)).length, 0, 'nothing was parked');
    const committed = await committedOffsets(env.config, sinkGroupId(env.config, 'external'), topic);
    const total = [...committed.values()].reduce((n, v) => n + Number(v), 0);
    assert.equal(total, EVENTS, 'every offset committed');
  });
});
