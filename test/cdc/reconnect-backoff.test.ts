import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { startCdc } from '../../src/cdc/cdc.js';
import { ReconnectBackoff } from '../../src/cdc/reconnect-backoff.js';
import type { OpenSession, Session } from '../../src/cdc/session.js';
import { loadConfig } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { waitFor } from '../helpers/wait.js';

/**
 * CDC session failures back off: capped exponential with jitter over consecutive failures (a
 * session that fails right after opening counts like one that cannot open), starting over once a
 * session ran healthily. No services: the session factory is injected.
 */

const POLICY = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 40, maxMs: 320, jitter: 'none' as const };

test('the backoff doubles per failure up to its cap, and starts over after a healthy session', () => {
  let now = 0;
  const b = new ReconnectBackoff(
    { ...POLICY, jitter: 'full' },
    1000,
    () => 0.5,
    () => now,
  );
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    b.opened();
    now += 10; // fails 10 ms after opening
    delays.push(b.failed().delayMs);
  }
  assert.deepEqual(delays, [20, 40, 80, 160, 160, 160], 'half of 40, 80, 160, 320, 320, 320 (full jitter drew 0.5)');
  b.opened();
  now += 1000; // ran healthily
  const r = b.failed();
  assert.deepEqual([r.delayMs, r.failures, r.ranMs], [20, 1, 1000]);
  // Failing to open (no `opened`) counts on.
  assert.equal(b.failed().failures, 2);
});

function failingSession(afterMs: number): Session {
  const ended = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new PipelineError('SERVICE_UNREACHABLE', 'Broker: Message size too large', { retriable: true })),
      afterMs,
    ),
  );
  ended.catch(() => undefined);
  return { ended, stop: () => Promise.resolve(), close: () => Promise.resolve() };
}

test(
  'a session that fails right after opening is reopened after a growing delay, not at once',
  { timeout: 30_000 },
  async () => {
    const config = loadConfig({ CDC_SLOT_NAME: 'backoff_test' });
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: 'warn' },
      { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    const opens: number[] = [];
    const open: OpenSession = () => {
      opens.push(Date.now());
      // The third attempt cannot even open: it counts in the same sequence.
      if (opens.length === 3)
        return Promise.reject(new PipelineError('SERVICE_UNREACHABLE', 'Kafka down', { retriable: true }));
      return Promise.resolve(failingSession(5));
    };
    const cdc = await startCdc(config, log, { openSession: open, reconnectPolicy: POLICY, healthySessionMs: 60_000 });
    try {
      await waitFor('six session attempts', () => opens.length >= 6, { timeoutMs: 20_000, everyMs: 10 });
    } finally {
      await cdc.stop();
    }
    const delays = lines.filter((l) => typeof l.delay_ms === 'number').map((l) => l.delay_ms as number);
    assert.deepEqual(delays.slice(0, 5), [40, 80, 160, 320, 320], 'exponential, capped at maxMs');
    for (let i = 1; i < 6; i++) {
      const gap = (opens[i] ?? 0) - (opens[i - 1] ?? 0);
      assert.ok(
        gap >= (delays[i - 1] ?? 0),
        `attempt ${i + 1} came ${gap} ms after the previous one, not before its ${delays[i - 1]} ms backoff`,
      );
    }
    assert.ok(
      lines.some((l) => /reconnecting in 40 ms/.test(String(l.msg))),
      'the log says how long it waits',
    );
  },
);

test('a non-retriable error while reopening ends the CDC instead of retrying', { timeout: 10_000 }, async () => {
  const config = loadConfig({ CDC_SLOT_NAME: 'backoff_test' });
  const log = pino({ level: 'silent' });
  let calls = 0;
  const open: OpenSession = () => {
    calls++;
    if (calls === 1) return Promise.resolve(failingSession(5));
    return Promise.reject(new PipelineError('SERVICE_MISCONFIGURED', 'CDC position missing: …', { retriable: false }));
  };
  const cdc = await startCdc(config, log, { openSession: open, reconnectPolicy: POLICY });
  await assert.rejects(
    cdc.done,
    (err: unknown) => err instanceof PipelineError && err.code === 'SERVICE_MISCONFIGURED',
  );
  assert.equal(calls, 2);
  assert.equal(cdc.status().phase, 'failed');
});
