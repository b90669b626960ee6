import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { backoffDelay, retry } from '../../src/runtime/retry.js';

const fast = { attempts: 4, baseMs: 1, maxMs: 5, jitter: 'none' as const };
const transient = () => new PipelineError('HTTP_RETRIABLE', 'try again', { retriable: true });

test('retries a retriable failure until it succeeds', async () => {
  let calls = 0;
  const v = await retry(async () => {
    calls++;
    if (calls < 3) throw transient();
    return 'ok';
  }, fast);
  assert.equal(v, 'ok');
  assert.equal(calls, 3);
});

test('gives up after the bounded number of attempts with the last error', async () => {
  let calls = 0;
  await assert.rejects(
    retry(async () => {
      calls++;
      throw transient();
    }, fast),
    (err: unknown) => err instanceof PipelineError && err.code === 'HTTP_RETRIABLE',
  );
  assert.equal(calls, 4);
});

test('a non-retriable error is thrown at once', async () => {
  let calls = 0;
  await assert.rejects(
    retry(async () => {
      calls++;
      throw new PipelineError('HTTP_REJECTED', 'no', { retriable: false });
    }, fast),
  );
  assert.equal(calls, 1);
});

test('refusals that do not consume an attempt (an open circuit) are waited out', async () => {
  let calls = 0;
  const attemptsSeen: number[] = [];
  const v = await retry(async (attempt) => {
    calls++;
    attemptsSeen.push(attempt);
    if (calls <= 10) throw new PipelineError('CIRCUIT_OPEN', 'open', { retriable: true, consumesAttempt: false });
    if (calls <= 12) throw transient();
    return 'delivered';
  }, fast);
  assert.equal(v, 'delivered', '10 refusals + 2 failures fit in 4 attempts');
  assert.equal(calls, 13);
  assert.deepEqual(attemptsSeen.slice(-3), [1, 2, 3]);
});

test('a requested delay (Retry-After) is honoured up to maxMs', async () => {
  const delays: number[] = [];
  let calls = 0;
  await retry(
    async () => {
      calls++;
      if (calls === 1) throw transient();
    },
    { ...fast, maxMs: 50, requestedDelayMs: () => 30, onRetry: (_e, _a, d) => delays.push(d) },
  );
  assert.deepEqual(delays, [30]);
});

test('backoff grows exponentially to the cap; full jitter stays within it', () => {
  const p = { attempts: 10, baseMs: 100, maxMs: 1000, jitter: 'none' as const };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((a) => backoffDelay(p, a)),
    [100, 200, 400, 800, 1000],
  );
  const j = backoffDelay({ ...p, jitter: 'full' }, 3, () => 0.5);
  assert.equal(j, 200);
});
