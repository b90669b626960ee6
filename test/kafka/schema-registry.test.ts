import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { AvroReader } from '../../src/kafka/schema-registry/avro-reader.js';
import { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';

/**
 * The registry module against the stack's real registry (Apicurio's Confluent-compatible API, or
 * SCHEMA_REGISTRY_URL): registration under the subject's rule, the wire format read back by the
 * library's stock AvroDeserializer, schema evolution and its refusal.
 */

const config = loadConfig();

async function registry(): Promise<SchemaRegistry> {
  return SchemaRegistry.connect({ url: config.schemaRegistryUrl, compatibility: 'BACKWARD' });
}

/** avsc decodes records into instances of a class per record type: compare their fields. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}

function topicName(): string {
  return `sr-test-${randomBytes(4).toString('hex')}`;
}

const V1 = {
  type: 'record',
  name: 'Value',
  namespace: 'test.sr',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'user', type: ['null', 'string'], default: null },
    { name: 'seconds', type: 'int' },
  ],
};

describe('schema registry (real)', () => {
  it('writes the Confluent wire format that the stock deserializer reads, and sets the subject rule', async () => {
    const sr = await registry();
    const topic = topicName();
    const writer = await sr.writer(topic, 'value', V1);
    const bytes = writer.encode({ id: 42, user: 'u1', seconds: 7 });
    assert.equal(bytes[0], 0, 'magic byte');
    assert.equal(AvroReader.schemaIdOf(bytes), writer.id);

    const { avro, serde } = sr.serdes;
    const stock = new avro.AvroDeserializer(sr.client, serde.SerdeType.VALUE, {});
    assert.deepEqual(plain(await stock.deserialize(topic, bytes)), { id: 42, user: 'u1', seconds: 7 });
    assert.equal(await sr.client.getCompatibility(`${topic}-value`), 'BACKWARD');

    const again = await sr.writer(topic, 'value', V1);
    assert.equal(again.id, writer.id, 'the same schema keeps its id');
  });

  it('reads records of every version after a column is added, one is dropped and one widened', async () => {
    const sr = await registry();
    const topic = topicName();
    const w1 = await sr.writer(topic, 'value', V1);
    const v2 = {
      ...V1,
      fields: [
        { name: 'id', type: 'long' },
        // dropped: user; widened: seconds int → long; added: device with a default
        { name: 'seconds', type: 'long' },
        { name: 'device', type: ['null', 'string'], default: null },
      ],
    };
    const w2 = await sr.writer(topic, 'value', v2, 'column device added, user dropped, seconds widened');
    assert.notEqual(w2.id, w1.id);
    const versions = await sr.client.getAllVersions(`${topic}-value`);
    assert.equal(versions.length, 2);

    const reader = sr.reader(topic, 'value');
    const records = [w1.encode({ id: 1, user: 'a', seconds: 3 }), w2.encode({ id: 2, seconds: 2 ** 40, device: 'tv' })];
    await reader.prepare(records);
    assert.deepEqual(plain(reader.decode(records[0] as Buffer)), { id: 1, user: 'a', seconds: 3 });
    assert.deepEqual(plain(reader.decode(records[1] as Buffer)), { id: 2, seconds: 2 ** 40, device: 'tv' });
  });

  it('refuses an incompatible change with SCHEMA_INCOMPATIBLE naming the change and the rule', async () => {
    const sr = await registry();
    const topic = topicName();
    await sr.writer(topic, 'value', V1);
    const changed = { ...V1, fields: [V1.fields[0], V1.fields[1], { name: 'seconds', type: 'string' }] };
    await assert.rejects(
      () => sr.writer(topic, 'value', changed, 'column seconds changed int → string'),
      (err: unknown) => {
        assert.ok(err instanceof PipelineError);
        assert.equal(err.code, 'SCHEMA_INCOMPATIBLE');
        assert.match(err.message, /column seconds changed int → string/);
        assert.match(err.message, /BACKWARD/);
        return true;
      },
    );
  });

  it('fails a record that is not Avro, or names a schema the registry lacks, with DECODE_FAILED', async () => {
    const sr = await registry();
    const reader = sr.reader(topicName(), 'value');
    const json = Buffer.from('{"id":1}');
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2]);
    await reader.prepare([json, unknownId, null]);
    for (const payload of [json, unknownId])
      assert.throws(
        () => reader.decode(payload),
        (err: unknown) => err instanceof PipelineError && err.code === 'DECODE_FAILED',
      );
  });

  it('refuses a value that does not fit the schema with INVALID_VALUE naming the field', async () => {
    const sr = await registry();
    const writer = await sr.writer(topicName(), 'value', V1);
    assert.throws(
      () => writer.encode({ id: 1, user: null, seconds: 'seven' }),
      (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_VALUE' && /seconds/.test(err.message),
    );
  });
});
