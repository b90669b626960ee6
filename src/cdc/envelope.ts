import type { ChangeOp, ChangeSource } from '../core/types.js';
import type { ColumnType } from './render.js';

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

/** JSON of the primary key taken from an already-rendered row; null without a primary key. */
export function keyOf(primaryKey: readonly string[], row: Row | null): string | null {
  if (primaryKey.length === 0 || row === null) return null;
  if (primaryKey.length === 1) {
    const col = primaryKey[0] as string;
    return `{${JSON.stringify(col)}:${JSON.stringify(row[col] ?? null)}}`;
  }
  const key: Row = {};
  for (const col of primaryKey) key[col] = row[col] ?? null;
  return JSON.stringify(key);
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

/** JSON text of `{before, after, source, op, ts_ms}` — byte for byte what JSON.stringify of the
 *  ChangeEvent would give (key order included). */
export function envelopeJson(op: ChangeOp, before: Row | null, after: Row | null, at: ChangeAt, tsMs: number): string {
  const seq = at.sequence === undefined ? '' : `,"sequence":${JSON.stringify(at.sequence)}`;
  return `{"before":${JSON.stringify(before)},"after":${JSON.stringify(after)},"source":${at.prefix}"lsn":${at.lsn === null ? 'null' : at.lsn}${seq}},"op":"${op}","ts_ms":${tsMs}}`;
}

/** The Kafka records of one row change: one record, plus a tombstone after a delete. */
export function changeRecords(topic: string, meta: TableMeta, op: ChangeOp, before: Row | null, after: Row | null, at: ChangeAt, tsMs: number): OutMessage[] {
  const key = keyOf(meta.primaryKey, op === 'd' ? before : after);
  const value = envelopeJson(op, before, after, at, tsMs);
  return op === 'd' && key !== null ? [{ topic, key, value }, { topic, key, value: null }] : [{ topic, key, value }];
}

/**
 * An update's records. `oldKeyRow` is the before image or key tuple pgoutput sent (null when the
 * key did not change under REPLICA IDENTITY DEFAULT). A changed primary key gives delete + tombstone
 * + create; otherwise one `u` record.
 */
export function updateRecords(
  topic: string,
  meta: TableMeta,
  before: Row | null,
  oldKeyRow: Row | null,
  after: Row,
  at: ChangeAt,
  tsMs: number,
): OutMessage[] {
  const newKey = keyOf(meta.primaryKey, after);
  const oldKey = keyOf(meta.primaryKey, oldKeyRow);
  if (oldKey !== null && newKey !== null && oldKey !== newKey) {
    return [...changeRecords(topic, meta, 'd', before ?? oldKeyRow, null, at, tsMs), ...changeRecords(topic, meta, 'c', null, after, at, tsMs)];
  }
  return changeRecords(topic, meta, 'u', before, after, at, tsMs);
}
