import { createHash } from 'node:crypto';
import { eventKey } from '../../core/event-identity.js';
import type { EnrichedEvent } from '../../core/types.js';

/**
 * The wire format between the external sink and the external system (docs/external.md is the
 * prose version; the reference receiver in src/receiver/ implements the receiving side).
 *
 *   POST <EXTERNAL_API_URL>
 *   Content-Type: application/json
 *   Idempotency-Key: <64 hex>            deterministic for the batch's event keys (see below)
 *   <auth header>                        from EXTERNAL_API_AUTH_HEADER, when set
 *
 *   { "schema_version": 1, "events": [ <EnrichedEvent> + "event_key", … ] }
 *
 * Any 2xx means the whole batch is accepted. The receiver must dedupe by Idempotency-Key AND by
 * `event_key`: a retried or replayed batch carries the same key, and an event can also arrive again
 * inside a differently composed batch (e.g. after a DLQ replay or a backfill). `event_key` is the
 * event's identity (src/core/event-identity.ts), `<event_id>@<event_ts in µs since the epoch>`:
 * NOT `event_id` alone, which a sequence reset (TRUNCATE … RESTART IDENTITY, a restore) hands to
 * new events; the same row re-sent, by any path, always carries the same key.
 */

export const WIRE_SCHEMA_VERSION = 1;
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** An event as sent: the enriched event and its identity. */
export type WireEvent = EnrichedEvent & { event_key: string };

export interface WireBatch {
  schema_version: typeof WIRE_SCHEMA_VERSION;
  events: WireEvent[];
}

/**
 * The batch's Idempotency-Key: SHA-256 over the event keys (`eventKey`) in batch order, each
 * terminated by a newline, as lower-case hex. Depends only on the events' identities (not on
 * timing, attempt or payload), so every retry and every replay of the same records carries the
 * same key, and a batch of new events that reuse old ids does not.
 */
export function idempotencyKey(eventKeys: readonly string[]): string {
  const h = createHash('sha256');
  for (const key of eventKeys) h.update(key, 'utf8').update('\n');
  return h.digest('hex');
}

/** Serialises a batch as sent on the wire: each event with its `event_key` (`keys[i]`, computed when not given). */
export function encodeBatch(events: readonly EnrichedEvent[], keys: readonly string[] = events.map(eventKey)): string {
  const batch: WireBatch = {
    schema_version: WIRE_SCHEMA_VERSION,
    events: events.map((e, i) => ({ ...e, event_key: keys[i] as string })),
  };
  return JSON.stringify(batch);
}
