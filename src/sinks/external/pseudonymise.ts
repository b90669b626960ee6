import { createHmac } from 'node:crypto';
import type { EnrichedEvent } from '../../core/types.js';

/**
 * Pseudonymisation of `user_id` before an event leaves for the external system.
 *
 * Contract: `pseudonymiseUserId(key, id)` is HMAC-SHA256(key, id) as 64 lower-case hex characters.
 * It is deterministic (the same user maps to the same pseudonym on every batch, retry and replay,
 * so the external system can still count unique users), never returns the raw id, and cannot be
 * reversed or recomputed without the key. Pure: no I/O, no shared state.
 */
export function pseudonymiseUserId(key: string, userId: string): string {
  return createHmac('sha256', key).update(userId, 'utf8').digest('hex');
}

/**
 * The event as sent: a copy with `user_id` replaced by its pseudonym when `key` is set (a null
 * `user_id` stays null). Without a key the event is returned unchanged (same object). Only
 * `user_id` is pseudonymised; `raw_payload` and `extra` pass through as the source wrote them.
 */
export function pseudonymiseEvent(event: EnrichedEvent, key: string | undefined): EnrichedEvent {
  if (key === undefined || event.user_id === null) return event;
  return { ...event, user_id: pseudonymiseUserId(key, event.user_id) };
}

/**
 * Pseudonymises events with one key, remembering up to `maxEntries` pseudonyms (users recur far
 * more often than they are new, and the HMAC dominates the sink's CPU). Same results as
 * `pseudonymiseEvent`; the memo is cleared whole when full, so memory stays bounded.
 */
export class Pseudonymiser {
  private readonly memo = new Map<string, string>();

  constructor(
    private readonly key: string,
    private readonly maxEntries = 100_000,
  ) {}

  userId(userId: string): string {
    let p = this.memo.get(userId);
    if (p === undefined) {
      if (this.memo.size >= this.maxEntries) this.memo.clear();
      p = pseudonymiseUserId(this.key, userId);
      this.memo.set(userId, p);
    }
    return p;
  }

  event(event: EnrichedEvent): EnrichedEvent {
    return event.user_id === null ? event : { ...event, user_id: this.userId(event.user_id) };
  }
}
