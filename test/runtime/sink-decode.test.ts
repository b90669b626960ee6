import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import type { DlqEntry } from '../../src/core/types.js';
import { toDlqEntry } from '../../src/runtime/dlq-writer.js';
import {
  decodeEnrichedMessage,
  dlqReplayDecoder,
  parseDlqEntry,
  type InboundMessage,
} from '../../src/runtime/sink-decode.js';
import { enrichedEvent } from '../helpers/sink-harness.js';

/** Decoding consumed messages (enriched events, DLQ entries for a replay) and building DLQ entries. */

const msg = (value: Buffer | null, offset = '7', key: string | null = 'k'): InboundMessage => ({
  topic: 'enriched',
  partition: 2,
  offset,
  key: key === null ? null : Buffer.from(key),
  value,
});

test('an enriched event decodes into a record at its Kafka position', () => {
  const e = enrichedEvent();
  const d = decodeEnrichedMessage(msg(Buffer.from(JSON.stringify(e))));
  assert.equal(d.kind, 'record');
  if (d.kind !== 'record') return;
  assert.deepEqual(d.record, { topic: 'enriched', partition: 2, offset: '7', key: 'k', event: e });
  assert.equal(d.origin.replay, false);
});

test('undecodable values are rejected with DECODE_FAILED, keeping the original bytes', () => {
  const cases: Array<[Buffer | null, RegExp]> = [
    [Buffer.from([0xff, 0xfe, 0x00]), /not JSON/],
    [Buffer.from('{"event_id": 12}'), /event_id/],
    [Buffer.from('[1,2]'), /not a JSON object/],
    [Buffer.from('null'), /not a JSON object/],
    [null, /tombstone/],
  ];
  for (const [value, reason] of cases) {
    const d = decodeEnrichedMessage(msg(value));
    assert.equal(d.kind, 'reject');
    if (d.kind !== 'reject') continue;
    assert.equal(d.error.code, 'DECODE_FAILED');
    assert.match(d.error.message, reason);
    assert.equal(d.origin.value, value);
    assert.equal(d.origin.offset, '7');
  }
});

test('a DLQ entry is built with stage, reason, code, position, bytes and attempts', () => {
  const d = decodeEnrichedMessage(msg(Buffer.from('nope'), '9', null));
  assert.equal(d.kind, 'reject');
  if (d.kind !== 'reject') return;
  const entry = toDlqEntry(
    'sink:redis',
    { origin: d.origin, error: d.error, attempts: 1 },
    new Date('2025-01-02T03:04:05.000Z'),
  );
  assert.deepEqual(entry, {
    reason: d.error.message,
    code: 'DECODE_FAILED',
    stage: 'sink:redis',
    topic: 'enriched',
    partition: 2,
    offset: '9',
    key: null,
    value_base64: Buffer.from('nope').toString('base64'),
    failed_at: '2025-01-02T03:04:05.000Z',
    attempts: 1,
  });
});

test('the replay decoder delivers entries of its stage at the DLQ position and skips the others', () => {
  const e = enrichedEvent();
  const entry: DlqEntry = {
    reason: 'down',
    code: 'SINK_WRITE_FAILED',
    stage: 'sink:external',
    topic: 'enriched',
    partition: 1,
    offset: '40',
    key: e.content_id,
    value_base64: Buffer.from(JSON.stringify(e)).toString('base64'),
    failed_at: new Date().toISOString(),
    attempts: 8,
  };
  const dlqMsg = (en: DlqEntry | string): InboundMessage => ({
    topic: 'dlq',
    partition: 0,
    offset: '3',
    key: null,
    value: Buffer.from(typeof en === 'string' ? en : JSON.stringify(en)),
  });
  const decode = dlqReplayDecoder('sink:external');
  const d = decode(dlqMsg(entry));
  assert.equal(d.kind, 'record');
  if (d.kind !== 'record') return;
  assert.deepEqual([d.record.topic, d.record.partition, d.record.offset, d.record.key], ['dlq', 0, '3', e.content_id]);
  assert.deepEqual(d.record.event, e);
  assert.deepEqual(
    [d.origin.topic, d.origin.partition, d.origin.offset, d.origin.priorAttempts, d.origin.replay],
    ['enriched', 1, '40', 8, true],
  );
  const again = toDlqEntry('sink:external', {
    origin: d.origin,
    error: new PipelineError('HTTP_REJECTED', 'still refused'),
    attempts: 5,
  });
  assert.equal(again.attempts, 9, 'a replayed record failing again counts one more round');
  assert.equal(again.offset, '40', 'and keeps its original position');
  assert.deepEqual(decode(dlqMsg({ ...entry, stage: 'sink:redis' })), { kind: 'skip' });
  assert.deepEqual(decode(dlqMsg('garbage')), { kind: 'skip' });
  const broken = decode(dlqMsg({ ...entry, value_base64: Buffer.from('x').toString('base64') }));
  assert.equal(broken.kind, 'reject');
  assert.equal(parseDlqEntry(Buffer.from('{"stage":"x"}')), null);
});
