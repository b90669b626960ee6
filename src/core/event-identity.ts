/**
 * The identity of an engagement event, as every idempotent sink and the external system see it:
 * the pair (event_id, event_ts at microsecond precision).
 *
 * Why not event_id alone: `engagement_events.id` is a BIGSERIAL, and `TRUNCATE … RESTART
 * IDENTITY`, a sequence reset or a restore of an older dump hand the same ids to new events. The
 * id alone then makes a new event look like a re-delivery of an old one, and the sinks that dedupe
 * on it drop it. event_ts is set when the row is written and never updated by the pipeline; a new
 * event that reuses an id has its own event_ts, while every re-delivery of the same row — a Kafka
 * redelivery, a DLQ replay, a backfill re-reading it from PostgreSQL (no LSN known there) —
 * carries the same one. The CDC renders the instant with PostgreSQL's own fraction digits
 * (`…:00.5Z`) and the backfill with six (`…:00.500000Z`): the identity compares the instant, not
 * the text.
 *
 * Limits: two rows with the same id AND the same microsecond are one event to the sinks (a restore
 * of the very rows already delivered is exactly that). Pure functions.
 */

/** Accepted form (the warehouse's): ISO-8601 with a zone, `T` or space, seconds optional, ≤ 9 fraction digits. */
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/;

/**
 * Microseconds since the epoch of an ISO-8601 instant (digits past the sixth are dropped, as the
 * warehouse's TIMESTAMPTZ drops them); null when the text is not such an instant.
 */
export function instantMicros(text: string): bigint | null {
  const m = ISO_RE.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '0', frac = '', zone = 'Z'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (!Number.isFinite(ms)) return null;
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * 1000n + BigInt((frac + '000000').slice(0, 6));
}

/**
 * The event's key, `<event_id>@<event_ts in µs since the epoch>` (e.g. `42@1754042400123456`):
 * what the warehouse, the Idempotency-Key and the external system dedupe on. When event_ts is not
 * an instant (a record the sinks' checks refuse anyway) the text itself stands in for it.
 */
export function eventKey(event: { event_id: string; event_ts: string }): string {
  const micros = typeof event.event_ts === 'string' ? instantMicros(event.event_ts) : null;
  return `${event.event_id}@${micros === null ? String(event.event_ts) : micros.toString()}`;
}
