import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitEvent, sizeGuardedEmit, TRUNCATED_VALUE } from '../../src/cdc/oversize.js';

/** The size guard alone (pure): what is replaced, in which order, and what the event says about it. */

const source = {
  version: '1',
  connector: 'postgresql',
  name: 'engage',
  ts_ms: 1,
  snapshot: 'false',
  db: 'db',
  schema: 'public',
  table: 't',
  txId: 7,
  lsn: 123,
};
const envelope = (before: unknown, after: unknown) => JSON.stringify({ before, after, source, op: 'u', ts_ms: 2 });

test('an event within the limit is left alone, byte for byte', () => {
  const value = envelope(null, { id: '1', a: 'x'.repeat(100) });
  assert.equal(fitEvent('{"id":"1"}', value, 1000), null);
  const out: Array<string | null> = [];
  sizeGuardedEmit(
    (_t, _k, v) => void out.push(v),
    1000,
    () => assert.fail('not truncated'),
  )('t', '{"id":"1"}', value);
  assert.deepEqual(out, [value]);
});

test('largest values go first, in both images, never the key; the result fits', () => {
  const value = envelope(
    { id: '1', big: 'b'.repeat(5000), small: 's'.repeat(300) },
    { id: '1', big: 'a'.repeat(6000), small: 's'.repeat(300), n: 5 },
  );
  const fitted = fitEvent('{"id":"1"}', value, 1200);
  assert.ok(fitted);
  const e = JSON.parse(fitted.value) as {
    before: Record<string, unknown>;
    after: Record<string, unknown>;
    op: string;
    truncated: { fields: string[]; original_bytes: number; ref: unknown };
  };
  assert.deepEqual(e.truncated.fields, ['after.big', 'before.big']);
  assert.equal(e.after.big, TRUNCATED_VALUE);
  assert.equal(e.before.big, TRUNCATED_VALUE);
  assert.equal(e.after.small, 's'.repeat(300), 'what fits is kept');
  assert.equal(e.after.id, '1');
  assert.equal(e.op, 'u');
  assert.equal(e.truncated.original_bytes, Buffer.byteLength(value) + Buffer.byteLength('{"id":"1"}'));
  assert.deepEqual(e.truncated.ref, { db: 'db', schema: 'public', table: 't', key: { id: '1' }, lsn: 123 });
  assert.ok(Buffer.byteLength(fitted.value) + 10 <= 1200);
});

test('multi-byte text is measured in UTF-8 bytes', () => {
  const value = envelope(null, { id: '1', text: 'é'.repeat(400) }); // 800 bytes, 400 characters
  assert.ok(fitEvent('{"id":"1"}', value, 700), 'over the limit in bytes');
  assert.equal(fitEvent('{"id":"1"}', value, 1200), null);
});

test('when replacing values is not enough, the rows keep only their key', () => {
  const after: Record<string, unknown> = { id: '1' };
  for (let i = 0; i < 200; i++) after[`column_with_a_rather_long_name_${i}`] = 'v'.repeat(40);
  const fitted = fitEvent('{"id":"1"}', envelope(null, after), 3000);
  assert.ok(fitted);
  const e = JSON.parse(fitted.value) as { after: Record<string, unknown>; truncated: { fields: string[] } };
  assert.deepEqual(e.after, { id: '1' });
  assert.deepEqual(e.truncated.fields, ['after.*']);
});
