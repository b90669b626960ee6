import type { Config } from '../../config/load.js';
import type { Logger } from '../../core/logger.js';
import { SchemaRegistry } from '../../kafka/schema-registry/registry.js';
import type { TableMeta } from '../envelope.js';
import type { SnapshotLayout } from '../snapshot.js';
import { AvroEncoder } from './avro-encoder.js';
import type { TableLayout } from './schema.js';

/**
 * The CDC's output format, chosen by KAFKA_VALUE_FORMAT: null for JSON (the default: nothing
 * changes), else the Avro encoder the session's TxnWriter encodes with and the hooks that register
 * each table's schemas where the CDC learns its columns — the stream's Relation messages
 * (ChangeRenderer), the initial snapshot's cursor and the incremental snapshot's chunks.
 *
 * One registry connection and one encoder per CDC process (sessions share them, so a session
 * after a reconnect does not register its schemas again).
 */

export interface CdcAvro {
  encoder: AvroEncoder;
  onRelation(topic: string, meta: TableMeta): Promise<void>;
  onColumns(topic: string, layout: SnapshotLayout): Promise<void>;
}

/** Which columns of a table are written as plain strings whatever their type: the pseudonymised
 *  ones (core/pseudonym.ts Pseudonymiser). */
export interface ProtectedColumns {
  columns(table: string, names: readonly string[]): ReadonlyMap<string, unknown> | undefined;
}

const outputs = new WeakMap<Config, CdcAvro>();

export async function cdcAvro(
  config: Config,
  log: Logger,
  protectedColumns?: ProtectedColumns,
): Promise<CdcAvro | null> {
  if (config.KAFKA_VALUE_FORMAT !== 'avro') return null;
  const known = outputs.get(config);
  if (known) return known;
  const registry = await SchemaRegistry.connect({
    url: config.schemaRegistryUrl,
    ...(config.SCHEMA_REGISTRY_BASIC_AUTH ? { basicAuth: config.SCHEMA_REGISTRY_BASIC_AUTH } : {}),
    compatibility: config.SCHEMA_COMPATIBILITY,
  });
  const encoder = new AvroEncoder(registry, config.CDC_SERVER_NAME, log);
  const layout = (l: Omit<TableLayout, 'stringColumns'>): TableLayout => {
    const tagged = protectedColumns?.columns(
      l.table,
      l.columns.map((c) => c.name),
    );
    return tagged ? { ...l, stringColumns: new Set(tagged.keys()) } : l;
  };
  const avro: CdcAvro = {
    encoder,
    onRelation: (topic, meta) =>
      encoder.streamLayout(
        topic,
        layout({ schema: meta.schema, table: meta.table, columns: meta.columns, primaryKey: meta.primaryKey }),
      ),
    onColumns: (topic, l) => encoder.snapshotLayout(topic, layout(l)),
  };
  outputs.set(config, avro);
  return avro;
}
