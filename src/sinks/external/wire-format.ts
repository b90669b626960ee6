import { createHash } from 'node:crypto';
import type { EnrichedEvent } from '../../core/types.js';

/**
 * The wire format between the external sink and the external system (docs/external.md is the
 * prose version; the reference receiver in src/receiver/ implements the receiving side).
 *
 *   POST <EXTERNAL_API_URL>
 *   Content-Type: application/json
 *   Idempotency-Key: <64 hex>            deterministic for the batch's event ids (see below)
 *   <auth header>                        from EXTERNAL_API_AUTH_HEADER, when set
 *
 *   { "schema_version": 1, "events": [ <EnrichedEvent>, … ] }
 *
 * Any 2xx means the whole batch is accepted. The receiver must dedupe by Idempotency-Key AND by
 * `event_id`: a retried or replayed batch carries the same key, and an event can also arrive again
 * inside a differently composed batch (e.g. after a DLQ replay).
 */

export const WIRE_SCHEMA_VERSION = 1;
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export interface WireBatch {
  schema_version: typeof WIRE_SCHEMA_VERSION;
  events: EnrichedEvent[];
}

/**
 * The batch's Idempotency-Key: SHA-256 over the event ids in batch order, each terminated by a
 * newline, as lower-case hex. Depends only on the ids (not on timing, attempt or payload), so
 * every retry and every replay of the same records carries the same key.
 */
export function idempotencyKey(eventIds: readonly string[]): string {
  const h = createHash('sha256');
  for (const id of eventIds) h.update(id, 'utf8').update('\n');
  return h.digest('hex');
}

/** Serialises a batch as sent on the wire. */
export function encodeBatch(events: EnrichedEvent[]): string {
  const batch: WireBatch = { schema_version: WIRE_SCHEMA_VERSION, events };
  return JSON.stringify(batch);
}
