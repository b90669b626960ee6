import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor } from './wait.js';

/** The tests' polling helper: what it resolves with, `until`, and what its timeout error says. */

test('waitFor resolves with the first value that is neither undefined nor false', async () => {
  let n = 0;
  const probe = (): number | undefined => (++n >= 3 ? n : undefined);
  assert.equal(await waitFor('the third probe', probe, { everyMs: 1 }), 3);
  let flag = 0;
  assert.equal(await waitFor('a true flag', async () => ++flag > 1, { everyMs: 1 }), true);
  assert.equal(flag, 2);
});

test('waitFor resolves with 0 and the empty string: only undefined and false mean "not yet"', async () => {
  assert.equal(await waitFor('zero', () => 0), 0);
  assert.equal(await waitFor('empty', () => ''), '');
});

test('with until, waitFor resolves with the first value for which it holds', async () => {
  let n = 0;
  const v = await waitFor('n to reach 4', () => ++n, { until: (x) => x >= 4, everyMs: 1 });
  assert.equal(v, 4);
  let calls = 0;
  const f = await waitFor('false twice', () => ++calls > 2 && false, { until: () => calls > 2, everyMs: 1 });
  assert.equal(f, false);
});

test('on timeout waitFor names what it waited for, the timeout, the last value and the state', async () => {
  const err = await waitFor('the queue to drain', () => ({ queued: 7 }) as { queued: number } | undefined, {
    until: (v) => v?.queued === 0,
    timeoutMs: 30,
    everyMs: 5,
    describe: () => new Map([[0, 12n]]),
  }).catch((e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /^timed out after 30 ms waiting for the queue to drain/);
  assert.match(err.message, /last: \{"queued":7\}/);
  assert.match(err.message, /state: \{"0":"12"\}/);
});

test('a number as the options is the timeout; a long state is cut to about 2000 characters', async () => {
  const t0 = Date.now();
  const err = await waitFor('never', () => 'x'.repeat(10_000) && undefined, 20).catch((e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /timed out after 20 ms waiting for never; last: undefined$/);
  assert.ok(Date.now() - t0 < 5000);
  const long = await waitFor('a short string', () => 'x'.repeat(10_000), {
    until: (s) => s.length < 5,
    timeoutMs: 1,
  }).catch((e: unknown) => e);
  assert.ok(long instanceof Error);
  assert.ok(long.message.length < 2200, `message of ${long.message.length} chars`);
});

test('sleep is the product sleep: it waits, and an aborted signal ends it', async () => {
  const t0 = Date.now();
  await sleep(20);
  assert.ok(Date.now() - t0 >= 15);
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await assert.rejects(sleep(10_000, ac.signal), /stop/);
});
