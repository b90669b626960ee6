import type { ContentRow, ContentType } from '../core/types.js';
import { parseJsonObject, sourceLsnOf } from './decode.js';

/**
 * Decoding a message of the compacted content topic into a change of the content table. Pure.
 * c / r / u upsert the row and d deletes it, each at its source position (`source.lsn`); a
 * tombstone (null value) follows a delete. A malformed record is reported as `invalid` (the table
 * logs and counts it and keeps its previous state for that key): the content topic is re-read from
 * the beginning by every instance, so parking it in the DLQ would park it again on every start.
 */

export type ContentChange =
  | { kind: 'upsert'; row: ContentRow; pos: number | null }
  | { kind: 'delete'; id: string; pos: number | null }
  | { kind: 'tombstone'; id: string }
  | { kind: 'invalid'; message: string };

function idFromKey(key: Buffer | null): string | null {
  if (key === null) return null;
  const parsed = parseJsonObject(key);
  if (typeof parsed === 'string') return null;
  return typeof parsed.id === 'string' && parsed.id.length > 0 ? parsed.id : null;
}

function asRow(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** Validates a rendered `content` row; returns the row or what is wrong with it. */
export function toContentRow(after: Record<string, unknown>): ContentRow | string {
  const { id, slug, title, content_type: type, length_seconds: length, publish_ts: publish } = after;
  if (typeof id !== 'string' || id.length === 0) return 'content row has no string id';
  if (typeof slug !== 'string') return `content ${id}: slug is not a string`;
  if (typeof title !== 'string') return `content ${id}: title is not a string`;
  if (type !== null && type !== undefined && typeof type !== 'string')
    return `content ${id}: content_type is not a string`;
  if (length !== null && length !== undefined && (typeof length !== 'number' || !Number.isFinite(length))) {
    return `content ${id}: length_seconds is not a number`;
  }
  if (typeof publish !== 'string') return `content ${id}: publish_ts is not a string`;
  return {
    id,
    slug,
    title,
    content_type: (type ?? null) as ContentType | null,
    length_seconds: (length ?? null) as number | null,
    publish_ts: publish,
  };
}

/** The JSON front end: a message of the content topic (Debezium JSON) → a change of the table. */
export function decodeContentChange(key: Buffer | null, value: Buffer | null): ContentChange {
  if (value === null) return contentTombstone(idFromKey(key));
  const env = parseJsonObject(value);
  if (typeof env === 'string') return { kind: 'invalid', message: env };
  return contentChangeOf(env, () => idFromKey(key));
}

/** A tombstone of the key's id (null: the key has none). */
export function contentTombstone(id: string | null): ContentChange {
  return id === null ? { kind: 'invalid', message: 'tombstone without a {"id": …} key' } : { kind: 'tombstone', id };
}

/** The envelope, once parsed (JSON or Avro: format.ts), judged; `keyId` is read only for a delete. */
export function contentChangeOf(env: Record<string, unknown>, keyId: () => string | null): ContentChange {
  if (env.op === 'd') {
    const before = asRow(env.before);
    const id = (before && typeof before.id === 'string' ? before.id : null) ?? keyId();
    return id === null
      ? { kind: 'invalid', message: 'delete without an id' }
      : { kind: 'delete', id, pos: sourceLsnOf(env) };
  }
  if (env.op !== 'c' && env.op !== 'r' && env.op !== 'u')
    return { kind: 'invalid', message: `op ${JSON.stringify(env.op)} is not one of c, r, u, d` };
  const after = asRow(env.after);
  if (!after) return { kind: 'invalid', message: `op ${env.op} without an "after" row` };
  const row = toContentRow(after);
  return typeof row === 'string' ? { kind: 'invalid', message: row } : { kind: 'upsert', row, pos: sourceLsnOf(env) };
}
