import type pg from 'pg';
import type { Cursor } from './reader.js';

/**
 * Where a backfill records how far it got, in a small control table of the source database
 * (`engage_backfill_progress`, outside the CDC publication). It is written after each page's
 * Kafka delivery is confirmed, so a killed backfill resumes at the first unconfirmed page; a page
 * re-sent after a crash between delivery and this write is absorbed by the sinks' idempotency on
 * (event_id, event_ts) (at-least-once delivery, exactly-once in effect).
 */

export interface Progress {
  cursor: Cursor | null;
  done: boolean;
  delivered: number;
}

export async function ensureProgressTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS engage_backfill_progress (
    range_key   TEXT PRIMARY KEY,
    last_ts     TEXT,
    last_id     TEXT,
    delivered   BIGINT NOT NULL DEFAULT 0,
    done        BOOLEAN NOT NULL DEFAULT false,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
  )`);
}

export async function loadProgress(client: pg.ClientBase, key: string): Promise<Progress | null> {
  const res = await client.query<{ last_ts: string | null; last_id: string | null; done: boolean; delivered: string }>(
    'SELECT last_ts, last_id, done, delivered::text FROM engage_backfill_progress WHERE range_key = $1',
    [key],
  );
  const row = res.rows[0];
  if (!row) return null;
  return {
    cursor: row.last_ts && row.last_id ? { eventTs: row.last_ts, id: row.last_id } : null,
    done: row.done,
    delivered: Number(row.delivered),
  };
}

export async function saveProgress(client: pg.ClientBase, key: string, p: Progress): Promise<void> {
  await client.query(
    `INSERT INTO engage_backfill_progress (range_key, last_ts, last_id, delivered, done, updated_at)
     VALUES ($1, $2, $3, $4, $5, now())
     ON CONFLICT (range_key) DO UPDATE SET last_ts = $2, last_id = $3, delivered = $4, done = $5, updated_at = now()`,
    [key, p.cursor?.eventTs ?? null, p.cursor?.id ?? null, p.delivered, p.done],
  );
}
