import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { startReceiver, type ReceiverOptions, type RunningReceiver } from '../../src/receiver/index.js';
import { receiverFlags } from '../../src/cli/external-receiver-command.js';
import { PipelineError } from '../../src/core/errors.js';

/**
 * The reference receiver over HTTP (in process, ephemeral port): dedup by Idempotency-Key and by
 * event_id, auth, validation, injected failures, and the JSONL file that survives a restart.
 * Touches no shared service (no database, Kafka or Redis), so it needs no test environment.
 */

const tmp = mkdtempSync(path.join(os.tmpdir(), 'engage-receiver-'));
const running: RunningReceiver[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function receiver(opts: ReceiverOptions = {}): Promise<RunningReceiver> {
  const r = await startReceiver(opts);
  running.push(r);
  return r;
}

function post(
  r: RunningReceiver,
  key: string | null,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(r.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'idempotency-key': key }), ...headers },
    body: JSON.stringify(body),
  });
}

const events = (...ids: string[]) => ({
  schema_version: 1,
  events: ids.map((event_id) => ({ event_id, user_id: 'x' })),
});

describe('reference receiver', () => {
  it('dedupes the same batch sent twice (same Idempotency-Key)', async () => {
    const r = await receiver();
    const first = await post(r, 'k1', events('1', '2'));
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { duplicate_batch: false, accepted: 2, duplicates: 0 });
    const again = await post(r, 'k1', events('1', '2'));
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), { duplicate_batch: true, accepted: 2, duplicates: 0 });
    const s = r.stats();
    assert.equal(s.events_unique, 2);
    assert.equal(s.duplicate_batches, 1);
    assert.equal(s.events_received, 4);
    assert.equal(s.events_duplicate, 2);
  });

  it('dedupes an event arriving in two different batches, and twice in one batch', async () => {
    const r = await receiver();
    await post(r, 'a', events('1', '2'));
    const res = await post(r, 'b', events('2', '3', '3'));
    assert.deepEqual(await res.json(), { duplicate_batch: false, accepted: 1, duplicates: 2 });
    assert.equal(r.stats().events_unique, 3);
    assert.deepEqual(r.eventIds(), ['1', '2', '3']);
    const view = (await (await fetch(`${r.baseUrl}/events/2`)).json()) as {
      deliveries: number;
      idempotency_key: string;
    };
    assert.equal(view.deliveries, 2);
    assert.equal(view.idempotency_key, 'a');
    assert.equal((await fetch(`${r.baseUrl}/events/404`)).status, 404);
    const stats = (await (await fetch(`${r.baseUrl}/stats`)).json()) as { events_unique: number };
    assert.equal(stats.events_unique, 3);
  });

  it('counts a new event that reuses an id (another event_ts) and dedupes on event_key, also across a restart', async () => {
    const file = path.join(tmp, 'reused.jsonl');
    const r = await receiver({ dataFile: file });
    const ev = (id: string, ts: string) => ({ event_id: id, event_ts: ts, user_id: 'x' });
    await post(r, 'a', {
      schema_version: 1,
      events: [ev('1', '2025-08-01T10:00:00.5Z'), ev('2', '2025-08-01T10:00:01Z')],
    });
    // After a sequence reset: id 1 again, a new event; and event 2 re-sent with the backfill's rendering of its time.
    const res = await post(r, 'b', {
      schema_version: 1,
      events: [ev('1', '2025-08-01T11:00:00Z'), ev('2', '2025-08-01T10:00:01.000000Z')],
    });
    assert.deepEqual(await res.json(), { duplicate_batch: false, accepted: 1, duplicates: 1 });
    // A sender's event_key is what counts when given.
    await post(r, 'c', {
      schema_version: 1,
      events: [{ ...ev('1', '2025-08-01T12:00:00Z'), event_key: r.eventKeys()[0] }],
    });
    assert.equal(r.stats().events_unique, 3);
    assert.deepEqual(r.eventIds(), ['1', '2']);
    assert.equal(
      r.event('1')?.event_key,
      `1@${Date.parse('2025-08-01T11:00:00Z') * 1000}`,
      'an id names its newest event',
    );
    assert.equal(r.event(r.eventKeys()[0] as string)?.deliveries, 2);
    await r.close();
    const again = await receiver({ dataFile: file });
    assert.deepEqual(
      await (
        await post(again, 'd', {
          schema_version: 1,
          events: [ev('1', '2025-08-01T10:00:00.500Z'), ev('1', '2025-08-01T11:00:00Z')],
        })
      ).json(),
      { duplicate_batch: false, accepted: 0, duplicates: 2 },
    );
  });

  it('checks the auth header when configured', async () => {
    const r = await receiver({ auth: 'X-Api-Key: abc123' });
    assert.equal((await post(r, 'k', events('1'))).status, 401);
    assert.equal((await post(r, 'k', events('1'), { 'x-api-key': 'wrong!' })).status, 401);
    assert.equal((await post(r, 'k', events('1'), { 'x-api-key': 'abc123' })).status, 200);
    assert.equal(r.stats().auth_rejected, 2);
    assert.equal(r.stats().events_unique, 1);
  });

  it('answers 400 to a batch without Idempotency-Key or with a bad event', async () => {
    const r = await receiver();
    assert.equal((await post(r, null, events('1'))).status, 400);
    assert.equal((await post(r, 'k', { events: [{ id: 1 }] })).status, 400);
    assert.equal((await post(r, 'k', { nope: true })).status, 400);
    assert.equal(r.stats().invalid_requests, 3);
    assert.equal(r.stats().events_unique, 0);
  });

  it('injects failures on demand: failNext with Retry-After, a lost ack, down, then healthy', async () => {
    const r = await receiver({ control: { failNext: 1, status: 429, retryAfter: 7 } });
    const limited = await post(r, 'k1', events('1'));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.equal(r.stats().events_unique, 0, 'a failure before counting counts nothing');

    const ctl = await fetch(`${r.baseUrl}/control`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failNext: 1, status: 500, failPhase: 'after', retryAfter: null }),
    });
    assert.equal(ctl.status, 200);
    assert.equal((await post(r, 'k1', events('1'))).status, 500);
    assert.equal(r.stats().events_unique, 1, 'a failure after counting keeps the batch');
    assert.deepEqual(await (await post(r, 'k1', events('1'))).json(), {
      duplicate_batch: true,
      accepted: 1,
      duplicates: 0,
    });

    r.control({ down: true });
    await assert.rejects(post(r, 'k2', events('2')), TypeError);
    assert.equal(r.stats().connections_dropped, 1);
    const bad = await fetch(`${r.baseUrl}/control`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failRate: 3 }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${r.baseUrl}/health`)).status, 200, 'control and health stay up while down');
    r.control({ down: false });
    assert.equal((await post(r, 'k2', events('2'))).status, 200);
    assert.equal(r.stats().failures_injected, 3);
    assert.equal(r.stats().events_unique, 2);
  });

  it('fails at the configured rate', async () => {
    const rolls = [0.1, 0.9, 0.4, 0.6];
    const r = await receiver({ control: { failRate: 0.5 }, random: () => rolls.shift() ?? 1 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(r, `k${i}`, events(String(i)))).status);
    assert.deepEqual(statuses, [503, 200, 503, 200]);
  });

  it('keeps accepted events in a JSONL file and restores dedup state after a restart', async () => {
    const file = path.join(tmp, 'sub', 'received.jsonl');
    const r1 = await receiver({ dataFile: file });
    await post(r1, 'a', events('1', '2'));
    await post(r1, 'b', events('2', '3'));
    await r1.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { idempotency_key: string; event: { event_id: string } });
    assert.deepEqual(
      lines.map((l) => l.event.event_id),
      ['1', '2', '3'],
    );

    const r2 = await receiver({ dataFile: file });
    assert.equal(r2.stats().events_unique, 3);
    assert.equal(r2.stats().events_restored, 3);
    assert.deepEqual(await (await post(r2, 'a', events('1', '2'))).json(), {
      duplicate_batch: true,
      accepted: 2,
      duplicates: 0,
    });
    assert.deepEqual(await (await post(r2, 'c', events('3', '4'))).json(), {
      duplicate_batch: false,
      accepted: 1,
      duplicates: 1,
    });
    assert.equal(r2.event('4')?.deliveries, 1);
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 4);
  });

  it('keeps at most maxStoredEvents bodies but every id', async () => {
    const r = await receiver({ maxStoredEvents: 2 });
    await post(r, 'k', events('1', '2', '3'));
    assert.equal(r.event('1')?.event, null);
    assert.equal(r.event('1')?.deliveries, 1);
    assert.equal(r.event('3')?.event?.event_id, '3');
  });
});

describe('engage external-receiver flags', () => {
  it('turns flags into receiver options', () => {
    const got = receiverFlags({
      host: '127.0.0.1',
      port: '0',
      failRate: '0.25',
      latencyMs: '10',
      status: '429',
      retryAfter: '2',
      down: true,
      dataFile: true,
    });
    assert.equal(got.port, 0);
    assert.deepEqual(got.control, { failRate: 0.25, latencyMs: 10, status: 429, retryAfter: 2, down: true });
    assert.equal(got.dataFile, 'data/external-receiver.jsonl');
  });

  it('rejects bad values as usage errors', () => {
    for (const flags of [
      { failRate: '1.5' },
      { failRate: 'x' },
      { port: '70000' },
      { latencyMs: '-1' },
      { status: '200' },
    ]) {
      assert.throws(
        () => receiverFlags({ host: '127.0.0.1', ...flags }),
        (err: unknown) => err instanceof PipelineError && err.code === 'USAGE',
      );
    }
  });
});
