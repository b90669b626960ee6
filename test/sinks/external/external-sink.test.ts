import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Config } from '../../../src/config/load.js';
import { PipelineError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/core/logger.js';
import { registry } from '../../../src/core/metrics.js';
import { startReceiver, type ReceiverOptions } from '../../../src/receiver/index.js';
import { retry, type RetryOptions } from '../../../src/runtime/retry.js';
import {
  ExternalSink,
  externalSinkStatus,
  requestedDelayMs,
  type ExternalSinkOptions,
} from '../../../src/sinks/external/index.js';
import { pseudonymiseUserId } from '../../../src/sinks/external/pseudonymise.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { waitFor } from '../../helpers/wait.js';
import { makeBatch, makeEvent, range } from './external-fixtures.js';

/**
 * The external sink against the real reference receiver (in process, ephemeral port), with the
 * runtime's retry helper driving retries as the sink runner does. Assertions are on counts the
 * receiver saw, never on elapsed time.
 */

const AUTH = 'Authorization: Bearer test-secret-token';
const PSEUDO_KEY = 'test-pseudonymisation-key-0123456789';
const log = createLogger('silent');

let env: TestEnv;
const open: Array<{ close(): Promise<void> }> = [];

before(async () => {
  env = await createTestEnv({
    EXTERNAL_API_AUTH_HEADER: AUTH,
    EXTERNAL_PSEUDONYMIZE_KEY: PSEUDO_KEY,
    EXTERNAL_API_TIMEOUT_MS: '200',
  });
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
after(async () => {
  await env.cleanup();
});

async function setup(recv: ReceiverOptions = {}, sinkOpts: ExternalSinkOptions = {}, config: Partial<Config> = {}) {
  const receiver = await startReceiver({ auth: AUTH, ...recv });
  open.push(receiver);
  const sink = new ExternalSink(
    { config: { ...env.config, EXTERNAL_API_URL: receiver.url, ...config }, log },
    sinkOpts,
  );
  await sink.start();
  open.push(sink);
  return { receiver, sink };
}

/** Retries as the sink runner does: the sink's Retry-After / cool-down honoured, no jitter, tiny backoff. */
function retryOpts(attempts: number, seen: { delays: number[] } = { delays: [] }): RetryOptions {
  return {
    attempts,
    baseMs: 1,
    maxMs: 5000,
    jitter: 'none',
    requestedDelayMs,
    onRetry: (_e, _a, d) => seen.delays.push(d),
  };
}

async function rejection(p: Promise<unknown>): Promise<PipelineError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PipelineError, `expected a PipelineError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the write to fail');
}

describe('external sink → reference receiver', () => {
  it('delivers a batch with the auth header, pseudonymised user ids and one request', async () => {
    const { receiver, sink } = await setup();
    await sink.write(makeBatch(range(1, 5)));
    const s = receiver.stats();
    assert.equal(s.requests, 1);
    assert.equal(s.events_unique, 5);
    assert.equal(s.auth_rejected, 0);
    const got = receiver.event('3');
    assert.ok(got?.event);
    assert.equal(got.deliveries, 1);
    assert.equal(got.event.content_slug, 'a-slug');
    assert.equal(got.event.user_id, pseudonymiseUserId(PSEUDO_KEY, makeEvent('3').user_id ?? ''));
    assert.notEqual(got.event.user_id, makeEvent('3').user_id);
    assert.equal(sink.status().events_delivered, 5);
  });

  it('sends raw user ids when no pseudonymisation key is set', async () => {
    const { receiver, sink } = await setup({}, {}, { EXTERNAL_PSEUDONYMIZE_KEY: undefined });
    await sink.write(makeBatch(['11']));
    assert.equal(receiver.event('11')?.event?.user_id, makeEvent('11').user_id);
  });

  it('sends nothing for an empty batch and sends the same pseudonym in every batch', async () => {
    const { receiver, sink } = await setup();
    await sink.write({ topic: 't', partition: 0, records: [], nextOffset: '9' });
    assert.equal(receiver.stats().requests, 0);
    const a = makeBatch(['1']);
    const b = makeBatch(['98']); // user-1 again (98 % 97)
    await sink.write(a);
    await sink.write(b);
    assert.equal(receiver.event('1')?.event?.user_id, receiver.event('98')?.event?.user_id);
  });

  it('waits (retriable) with wrong credentials: no record is at fault', async () => {
    const { receiver, sink } = await setup({ auth: 'Authorization: Bearer another-token' });
    let attempts = 0;
    const err = await rejection(retry(() => (attempts++, sink.write(makeBatch(['1']))), retryOpts(3)));
    assert.equal(err.code, 'HTTP_RETRIABLE');
    assert.equal(err.retriable, true);
    assert.equal(err.details?.status, 401);
    assert.equal(attempts, 3);
    assert.equal(receiver.stats().auth_rejected, 3);
    assert.equal(receiver.stats().events_unique, 0);
  });

  it('retries 5xx with the same Idempotency-Key; a lost acknowledgement is deduped', async () => {
    const { receiver, sink } = await setup({ control: { failNext: 2, status: 503, failPhase: 'after' } });
    let attempts = 0;
    await retry(() => (attempts++, sink.write(makeBatch(range(1, 10)))), retryOpts(5));
    assert.equal(attempts, 3);
    const s = receiver.stats();
    assert.equal(s.requests, 3);
    assert.equal(s.failures_injected, 2);
    assert.equal(s.batches, 1, 'one distinct Idempotency-Key');
    assert.equal(s.duplicate_batches, 2, 'both retries carried the first attempt’s key');
    assert.equal(s.events_unique, 10);
    assert.equal(receiver.event('5')?.deliveries, 3);
  });

  it('retries 429 honouring Retry-After, and stops after the attempt bound', async () => {
    const { receiver, sink } = await setup({ control: { failNext: 1, status: 429, retryAfter: 1 } });
    const seen = { delays: [] as number[] };
    let attempts = 0;
    await retry(() => (attempts++, sink.write(makeBatch(['1', '2']))), retryOpts(3, seen));
    assert.equal(attempts, 2);
    assert.deepEqual(seen.delays, [1000], 'the wait is the Retry-After, not the 1 ms backoff');
    assert.equal(receiver.stats().events_unique, 2);
    assert.equal(sink.status().consecutive_failures, 0, '429 is not a circuit failure');

    receiver.control({ failNext: 3, status: 500, retryAfter: null });
    attempts = 0;
    const err = await rejection(retry(() => (attempts++, sink.write(makeBatch(['3']))), retryOpts(3)));
    assert.equal(err.code, 'HTTP_RETRIABLE');
    assert.equal(err.details?.status, 500);
    assert.equal(attempts, 3);
    assert.equal(receiver.event('3'), undefined);
  });

  it('treats other 4xx as final: one attempt, HTTP_REJECTED', async () => {
    const { receiver, sink } = await setup({ control: { failNext: 1, status: 422 } });
    let attempts = 0;
    const err = await rejection(retry(() => (attempts++, sink.write(makeBatch(['1']))), retryOpts(5)));
    assert.equal(err.code, 'HTTP_REJECTED');
    assert.equal(err.retriable, false);
    assert.equal(attempts, 1);
    assert.equal(receiver.stats().events_unique, 0);
    assert.equal(sink.status().state, 'closed', 'an answering system keeps the circuit closed');
  });

  it('times out (retriable) and the retry is deduped against the late original', async () => {
    const { receiver, sink } = await setup({ control: { latencyMs: 600 } });
    const batch = makeBatch(range(1, 4));
    const err = await rejection(sink.write(batch));
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(err.retriable, true);
    receiver.control({ latencyMs: 0 });
    await sink.write(batch);
    await waitFor(
      'the timed-out request to be handled',
      () => receiver.stats().requests === 2 && receiver.stats().batches + receiver.stats().duplicate_batches === 2,
      5000,
    );
    const s = receiver.stats();
    assert.equal(s.events_unique, 4);
    assert.equal(s.batches, 1);
    assert.equal(s.duplicate_batches, 1);
  });

  it('opens the circuit after repeated failures, fails fast, then half-opens and closes', async () => {
    const clock = { t: 0 };
    const { receiver, sink } = await setup(
      { control: { down: true } },
      { failureThreshold: 3, cooldownMs: 1000, now: () => clock.t },
    );
    for (let i = 0; i < 3; i++) {
      const err = await rejection(sink.write(makeBatch(['1'])));
      assert.equal(err.code, 'HTTP_RETRIABLE');
      assert.equal(err.details?.network !== undefined, true);
    }
    assert.equal(sink.status().state, 'open');
    assert.equal((await sink.health()).ok, false);
    assert.deepEqual((externalSinkStatus().external as { state: string }).state, 'open');
    clock.t = 250;
    const fast = await rejection(sink.write(makeBatch(['1'])));
    assert.equal(fast.code, 'CIRCUIT_OPEN');
    assert.equal(fast.retriable, true);
    assert.equal(fast.details?.retryAfterMs, 750);
    assert.equal(receiver.stats().requests, 3, 'an open circuit sends nothing');

    clock.t = 1000; // cool-down over, still down: the probe fails and re-opens
    assert.equal((await rejection(sink.write(makeBatch(['1'])))).code, 'HTTP_RETRIABLE');
    assert.equal(sink.status().state, 'open');
    assert.equal(receiver.stats().requests, 4);

    receiver.control({ down: false, latencyMs: 100 });
    clock.t = 2000;
    const probe = sink.write(makeBatch(['1']));
    const second = await rejection(sink.write(makeBatch(['2'])));
    assert.equal(second.code, 'CIRCUIT_OPEN', 'one probe at a time while half-open');
    assert.equal(second.details?.circuit, 'half-open');
    await probe;
    assert.equal(sink.status().state, 'closed');
    await sink.write(makeBatch(['2']));
    assert.equal(receiver.stats().events_unique, 2);
    assert.equal(sink.status().opened_count, 2);
  });

  it('checks records: an event without an id goes to the DLQ alone', async () => {
    const { sink } = await setup();
    const [good] = makeBatch(['1']).records;
    assert.ok(good);
    assert.equal(sink.check(good), null);
    const bad = { ...good, event: { ...good.event, event_id: '' } };
    assert.equal(sink.check(bad)?.code, 'MISSING_FIELD');
    assert.equal(await sink.storedOffsets(), null);
  });

  it('counts requests by outcome and exposes the circuit state gauge', async () => {
    const text = await registry.metrics();
    assert.match(text, /engage_sink_external_requests_total\{outcome="2xx"\} [1-9]/);
    assert.match(text, /engage_sink_external_requests_total\{outcome="circuit_open"\} [1-9]/);
    assert.match(text, /engage_sink_external_requests_total\{outcome="timeout"\} [1-9]/);
    assert.match(text, /engage_sink_external_circuit_state \d/);
    assert.match(text, /engage_sink_external_request_duration_seconds_count\{outcome="2xx"\} [1-9]/);
  });
});
