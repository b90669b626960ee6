import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import { eventKey } from '../../../src/core/event-identity.js';
import { CircuitBreaker, type CircuitState } from '../../../src/sinks/external/circuit-breaker.js';
import { classifyStatus, parseAuthHeader, parseRetryAfter } from '../../../src/sinks/external/http-client.js';
import { externalSinkFactory, requestedDelayMs } from '../../../src/sinks/external/index.js';
import { Pseudonymiser, pseudonymiseEvent, pseudonymiseUserId } from '../../../src/sinks/external/pseudonymise.js';
import { encodeBatch, idempotencyKey } from '../../../src/sinks/external/wire-format.js';
import { makeEvent } from './external-fixtures.js';

/** Pure parts of the external sink: no network, no services. */

describe('external sink: wire format', () => {
  it('derives the Idempotency-Key from the event ids only, deterministically', () => {
    const k = idempotencyKey(['1', '2', '3']);
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.equal(idempotencyKey(['1', '2', '3']), k);
    assert.notEqual(idempotencyKey(['1', '2']), k);
    assert.notEqual(idempotencyKey(['12', '3']), idempotencyKey(['1', '23']), 'ids are delimited');
  });

  it('encodes a batch as {schema_version, events}, each event with its event_key', () => {
    const e = makeEvent('7');
    const body = JSON.parse(encodeBatch([e])) as {
      schema_version: number;
      events: Array<{ event_id: string; event_key: string }>;
    };
    assert.equal(body.schema_version, 1);
    assert.deepEqual(
      body.events.map((x) => x.event_id),
      ['7'],
    );
    assert.deepEqual(
      body.events.map((x) => x.event_key),
      [eventKey(e)],
    );
  });

  it('keys a reused id with another event_ts apart, the same event in either rendering of its time alike', () => {
    const old = makeEvent('7', { event_ts: '2025-08-01T10:00:00.5Z' });
    assert.equal(eventKey({ ...old, event_ts: '2025-08-01T10:00:00.500000Z' }), eventKey(old));
    const reused = makeEvent('7', { event_ts: '2025-08-01T11:00:00Z' });
    assert.notEqual(idempotencyKey([eventKey(reused)]), idempotencyKey([eventKey(old)]));
  });
});

describe('external sink: pseudonymisation', () => {
  const key = 'a-key-of-at-least-16-chars';
  it('is HMAC-SHA256 of the user id, stable, and never the raw id', () => {
    const p = pseudonymiseUserId(key, 'user-42');
    assert.equal(p, createHmac('sha256', key).update('user-42').digest('hex'));
    assert.equal(pseudonymiseUserId(key, 'user-42'), p);
    assert.notEqual(p, 'user-42');
    assert.notEqual(pseudonymiseUserId('another-key-of-16-chars', 'user-42'), p);
  });

  it('replaces only user_id, keeps null, and is a no-op without a key', () => {
    const e = makeEvent('1', { user_id: 'u1' });
    const out = pseudonymiseEvent(e, key);
    assert.equal(out.user_id, pseudonymiseUserId(key, 'u1'));
    assert.equal(e.user_id, 'u1', 'the input is not mutated');
    assert.deepEqual({ ...out, user_id: 'u1' }, e);
    assert.equal(pseudonymiseEvent(makeEvent('2', { user_id: null }), key).user_id, null);
    assert.equal(pseudonymiseEvent(e, undefined), e);
  });

  it('gives the same pseudonyms through the bounded memo as without it', () => {
    const p = new Pseudonymiser(key, 2);
    for (const id of ['a', 'b', 'c', 'a', 'b', 'c', 'a']) assert.equal(p.userId(id), pseudonymiseUserId(key, id));
    const e = makeEvent('5', { user_id: 'u5' });
    assert.deepEqual(p.event(e), pseudonymiseEvent(e, key));
    assert.equal(p.event(makeEvent('6', { user_id: null })).user_id, null);
  });
});

describe('external sink: HTTP classification', () => {
  it('parses "Name: value" auth headers, and a bare value as Authorization', () => {
    assert.deepEqual(parseAuthHeader('Authorization: Bearer x:y'), { name: 'authorization', value: 'Bearer x:y' });
    assert.deepEqual(parseAuthHeader('X-Api-Key:  k1 '), { name: 'x-api-key', value: 'k1' });
    assert.deepEqual(parseAuthHeader('Bearer abc'), { name: 'authorization', value: 'Bearer abc' });
  });

  it('parses Retry-After as seconds or an HTTP-date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  it('makes 5xx, 408 and 429 retriable with retryAfterMs, other 4xx and 3xx final', () => {
    const e503 = classifyStatus(503, '2', '');
    assert.equal(e503.code, 'HTTP_RETRIABLE');
    assert.equal(e503.retriable, true);
    assert.equal(e503.details?.retryAfterMs, 2000);
    assert.equal(requestedDelayMs(e503), 2000);
    const e429 = classifyStatus(429, null, '');
    assert.equal(e429.retriable, true);
    assert.equal(e429.outcome, '429');
    assert.equal(requestedDelayMs(e429), undefined);
    assert.equal(classifyStatus(408, null, '').retriable, true);
    for (const status of [400, 409, 413, 422]) {
      const e = classifyStatus(status, null, 'nope');
      assert.equal(e.code, 'HTTP_REJECTED', `status ${status}`);
      assert.equal(e.retriable, false, `status ${status}`);
    }
    // Wrong credentials or address: no record causes them, so the sink waits for a fix.
    for (const status of [401, 403, 404, 301]) {
      const e = classifyStatus(status, null, 'nope');
      assert.equal(e.code, 'HTTP_RETRIABLE', `status ${status}`);
      assert.equal(e.retriable, true, `status ${status}`);
    }
  });

  it('batches 1000 events and flushes within a second', () => {
    const b = externalSinkFactory.batching?.({} as never);
    assert.ok(b);
    assert.ok(b.maxWaitMs <= 1000);
    assert.ok(b.maxRecords >= 500);
  });
});

describe('external sink: circuit breaker', () => {
  function breaker(threshold = 3, cooldownMs = 1000) {
    const clock = { t: 0 };
    const states: CircuitState[] = [];
    const b = new CircuitBreaker({
      failureThreshold: threshold,
      cooldownMs,
      now: () => clock.t,
      onStateChange: (s) => states.push(s),
    });
    return { b, clock, states };
  }
  const refused = (fn: () => void): PipelineError => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof PipelineError);
      return err;
    }
    assert.fail('expected CIRCUIT_OPEN');
  };

  it('opens after N consecutive failures and fails fast with the remaining cool-down', () => {
    const { b, clock } = breaker(3, 1000);
    for (let i = 0; i < 2; i++) {
      b.acquire();
      b.failure();
    }
    b.acquire();
    b.success();
    assert.equal(b.snapshot().consecutive_failures, 0, 'a success resets the count');
    for (let i = 0; i < 3; i++) {
      b.acquire();
      b.failure();
    }
    assert.equal(b.state, 'open');
    clock.t = 400;
    const err = refused(() => b.acquire());
    assert.equal(err.code, 'CIRCUIT_OPEN');
    assert.equal(err.retriable, true);
    assert.equal(err.details?.retryAfterMs, 600);
  });

  it('lets one probe through after the cool-down; success closes, failure re-opens', () => {
    const { b, clock, states } = breaker(1, 1000);
    b.acquire();
    b.failure();
    clock.t = 1000;
    b.acquire();
    assert.equal(b.state, 'half-open');
    assert.equal(refused(() => b.acquire()).details?.circuit, 'half-open', 'one probe at a time');
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(refused(() => b.acquire()).details?.retryAfterMs, 1000, 'a failed probe restarts the cool-down');
    clock.t = 2000;
    b.acquire();
    b.neutral();
    b.acquire();
    b.success();
    assert.equal(b.state, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'open', 'half-open', 'closed']);
    assert.equal(b.snapshot().opened_count, 2);
  });
});
