import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import descriptorExt from 'protobufjs/ext/descriptor/index.js';
import { benchEvent } from '../../../bench/lib/sink-fixtures.js';
import { encodeFactRows } from '../../../src/sinks/warehouse/bigquery/fact-encoder.js';
import { protoDescriptor } from '../../../src/sinks/warehouse/bigquery/row-encoding.js';
import { tableMetadata } from '../../../src/sinks/warehouse/bigquery/schema-setup.js';
import { FACT_TABLE } from '../../../src/sinks/warehouse/schema.js';
import { RowChecker, type Field } from '../../helpers/fake-bigquery-rows.js';

/**
 * The Storage Write API fake's row checks (test/helpers/fake-bigquery-rows.ts), read on the wire:
 * what the service refuses is refused with its reason, a good row is stored and read back as the
 * REST fake's row.
 */

const { DescriptorProto } = descriptorExt as unknown as {
  DescriptorProto: { fromObject(o: object): protobuf.Message };
};
const fromDescriptor = (protobuf.Type as unknown as { fromDescriptor(d: protobuf.Message): protobuf.Type })
  .fromDescriptor;
const d = protoDescriptor(FACT_TABLE) as unknown as { toJSON(): object };
const type = fromDescriptor(DescriptorProto.fromObject(d.toJSON()));
const tableFields = (): Map<string, Field> =>
  new Map((tableMetadata(FACT_TABLE).schema?.fields ?? []).map((f) => [String(f.name), f as Field]));
const row = (over: Record<string, unknown> = {}) => {
  const r = {
    topic: 't',
    partition: 1,
    offset: '5',
    key: null,
    event: { ...benchEvent(5, 1_796_638_272_000), ...over },
  };
  return encodeFactRows([r as never], '2026-12-07T17:00:00.000Z').rows[0] as Buffer;
};
/** A field's tag (a varint) and the given bytes. */
const tagged = (field: number, wire: number, ...bytes: number[]) => {
  const tag: number[] = [];
  for (let v = (field << 3) | wire; ; v >>>= 7) {
    if (v < 128) {
      tag.push(v);
      break;
    }
    tag.push((v & 127) | 128);
  }
  return Buffer.from([...tag, ...bytes]);
};

describe('fake Storage Write API: row checks', () => {
  const checker = new RowChecker(type, tableFields());

  it('passes a good row and reads it back as the table row', () => {
    const bytes = row();
    checker.check(bytes);
    const stored = checker.stored(bytes)();
    assert.equal(stored.event_id, '1000000005');
    assert.equal(stored.event_date, String(stored.event_ts).slice(0, 10));
    assert.deepEqual(stored.quality_flags, []);
    assert.equal(stored.kafka_offset, '5');
  });

  it('refuses a row without a REQUIRED column, naming it', () => {
    assert.throws(() => checker.check(row({ content_slug: null })), /Required field content_slug is missing/);
  });

  it('refuses JSON that does not parse', () => {
    const bad = Buffer.concat([row(), tagged(8, 2, 3, 0x7b, 0x22, 0x61)]); // raw_payload = '{"a'
    assert.throws(() => checker.check(bad), SyntaxError);
  });

  it('refuses a field of the writer schema that the table lacks', () => {
    const fields = tableFields();
    fields.delete('device');
    assert.throws(() => new RowChecker(type, fields).check(row()), /field device is not in the table schema/);
  });

  it('refuses a field written with another wire type than its type takes', () => {
    assert.throws(() => checker.check(Buffer.concat([row(), tagged(15, 0, 1)])), /engagement_seconds: wire type 0/);
  });

  it('refuses truncated rows and bad wire types', () => {
    const good = row();
    assert.throws(() => checker.check(good.subarray(0, good.length - 3)), /truncated/);
    assert.throws(() => checker.check(Buffer.concat([good, Buffer.from([0x80])])), /truncated/);
    assert.throws(() => checker.check(Buffer.concat([good, tagged(40, 7)])), /wire type 7/);
  });

  it('skips fields the writer schema does not declare, as a decoder does', () => {
    checker.check(Buffer.concat([row(), tagged(99, 0, 5)]));
  });
});
