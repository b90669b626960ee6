import type { ChangeOp, ChangeSource } from '../core/types.js';
import type { ColumnType } from './render.js';
import type { RowJson } from './row-json.js';

/**
 * Debezium-style change events (JSON converter, schemas disabled) and the Kafka records that carry
 * them. Pure: the stream and the snapshot both build their records here.
 *
 * - key: JSON of the primary key columns, e.g. `{"id":"123"}` (int8 rendered as a string), or null
 *   for a table without a primary key;
 * - value: `{before, after, source, op, ts_ms}`;
 * - a delete is followed by a tombstone (same key, null value) so compaction can drop the key;
 * - an update that changes the primary key becomes a delete (+ tombstone) of the old key and a create
 *   of the new one, as Debezium does.
 */

export const CDC_VERSION = '1.0.0-engage';

export type Row = Record<string, unknown>;

/** What the CDC knows about a published table (from the pgoutput Relation message + catalogue). */
export interface TableMeta {
  relationOid: number;
  schema: string;
  table: string;
  columns: ColumnType[];
  /** Primary key columns in key order (empty: no primary key). */
  primaryKey: string[];
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  /** The rows' JSON renderer for these columns and this primary key. */
  json: RowJson;
}

export interface OutMessage {
  topic: string;
  key: string | null;
  value: string | null;
}

export interface TopicRoutes {
  [qualifiedTable: string]: string;
}

/** `public.engagement_events` → events topic, `public.content` → content topic; others unrouted. */
export function defaultRoutes(eventsTopic: string, contentTopic: string): TopicRoutes {
  return { 'public.engagement_events': eventsTopic, 'public.content': contentTopic };
}

export function routeFor(routes: TopicRoutes, schema: string, table: string): string | undefined {
  return routes[`${schema}.${table}`];
}

/** The source block's fixed part (everything but lsn and sequence), serialised once per transaction
 *  and table: `{"version":…,"txId":…,` — the hot path only appends the change's own fields. */
export type SourceFixed = Omit<ChangeSource, 'lsn' | 'sequence'>;

export function sourcePrefix(fixed: SourceFixed): string {
  const json = JSON.stringify(fixed);
  return `${json.slice(0, -1)},`;
}

/** Where one change sits: the serialised fixed source part, its LSN and Debezium-style sequence. */
export interface ChangeAt {
  prefix: string;
  lsn: number | null;
  /** JSON text `["<commit lsn>","<change lsn>"]` (decimal), or undefined (snapshot rows). */
  sequence?: string;
}

/** Receives the Kafka records of a change, in order (the TxnWriter's `add`). */
export type Emit = (topic: string, key: string | null, value: string | null) => void;

/** JSON text of `{before, after, source, op, ts_ms}` from the rows' JSON text (`'null'` for none) —
 *  byte for byte what JSON.stringify of the ChangeEvent would give (key order included). */
export function envelopeJson(op: ChangeOp, beforeJson: string, afterJson: string, at: ChangeAt, tsMs: number): string {
  const seq = at.sequence === undefined ? '' : `,"sequence":${JSON.stringify(at.sequence)}`;
  return `{"before":${beforeJson},"after":${afterJson},"source":${at.prefix}"lsn":${at.lsn === null ? 'null' : at.lsn}${seq}},"op":"${op}","ts_ms":${tsMs}}`;
}

/** The records of one row change: the event, plus a tombstone after a delete that has a key. */
export function emitChange(
  emit: Emit,
  topic: string,
  key: string | null,
  op: ChangeOp,
  beforeJson: string,
  afterJson: string,
  at: ChangeAt,
  tsMs: number,
): void {
  emit(topic, key, envelopeJson(op, beforeJson, afterJson, at, tsMs));
  if (op === 'd' && key !== null) emit(topic, key, null);
}

/**
 * An update's records. `oldKey` is the key of the before image or key tuple pgoutput sent (null when
 * the key did not change under REPLICA IDENTITY DEFAULT); `oldRowJson` that image (full or key-only),
 * `beforeJson` the full before image or `'null'`. A changed primary key gives delete + tombstone +
 * create, as Debezium does; otherwise one `u` record.
 */
export function emitUpdate(
  emit: Emit,
  topic: string,
  oldKey: string | null,
  newKey: string | null,
  beforeJson: string,
  oldRowJson: string,
  afterJson: string,
  at: ChangeAt,
  tsMs: number,
): void {
  if (oldKey !== null && newKey !== null && oldKey !== newKey) {
    emitChange(emit, topic, oldKey, 'd', oldRowJson, 'null', at, tsMs);
    emitChange(emit, topic, newKey, 'c', 'null', afterJson, at, tsMs);
    return;
  }
  emitChange(emit, topic, newKey, 'u', beforeJson, afterJson, at, tsMs);
}
