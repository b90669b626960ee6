import pg from 'pg';
import type { Config } from '../../src/config/load.js';
import { durationFlag } from '../../src/processor/enrich.js';

/**
 * The events the fault matrix expects in the sinks, accumulated over the whole run as event keys
 * (`<event_id>@<event_ts in µs>`, src/core/event-identity.ts): after `TRUNCATE … RESTART IDENTITY`
 * PostgreSQL no longer holds the earlier rows and new rows reuse their ids, so the expectation is
 * the union of every snapshot taken, never the table as it is at the end.
 *
 * A snapshot taken while nothing writes (the matrix stops the generator first) holds every row
 * committed so far. Rows the test inserted as bad (`markBad`) are expected in the DLQ only. Rows
 * whose duration the processor flags `implausible_duration` (src/processor/enrich.ts) are expected
 * in every sink but kept out of Redis's aggregates, so out of its window count.
 */

interface Known {
  id: string;
  /** Left out of Redis's aggregates (implausible duration). */
  notInRedis: boolean;
}

/** One query on a connection of its own: the matrix restarts PostgreSQL, which ends any session. */
export async function withDb<T>(config: Config, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: config.databaseUrl });
  db.on('error', () => undefined);
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}

/** The key of a row, computed by PostgreSQL from its own timestamp (exact µs). */
export const KEY_SQL = `e.id::text || '@' || (extract(epoch FROM e.event_ts) * 1000000)::bigint::text`;

export class ExpectedEvents {
  private readonly known = new Map<string, Known>();
  private readonly bad = new Set<string>();

  /** Adds every row PostgreSQL holds now; returns how many were new to the expectation. */
  async snapshot(config: Config): Promise<number> {
    const rows = await withDb(
      config,
      async (db) =>
        (
          await db.query<{ key: string; id: string; duration_ms: number | null; length_seconds: number | null }>(
            `SELECT ${KEY_SQL} AS key, e.id::text AS id, e.duration_ms, c.length_seconds
             FROM engagement_events e LEFT JOIN content c ON c.id = e.content_id`,
          )
        ).rows,
    );
    let added = 0;
    for (const r of rows) {
      if (this.known.has(r.key)) continue;
      this.known.set(r.key, { id: r.id, notInRedis: durationFlag(r.duration_ms, r.length_seconds) !== null });
      added++;
    }
    return added;
  }

  markBad(keys: Iterable<string>): void {
    for (const k of keys) this.bad.add(k);
  }

  isBad(key: string): boolean {
    return this.bad.has(key);
  }

  get badCount(): number {
    return this.bad.size;
  }

  /** Every valid event so far: what the warehouse and the external system must hold, once each. */
  valid(): string[] {
    return [...this.known.keys()].filter((k) => !this.bad.has(k));
  }

  /** The valid events Redis aggregates (not flagged implausible). */
  inRedis(): string[] {
    return [...this.known].filter(([k, v]) => !this.bad.has(k) && !v.notInRedis).map(([k]) => k);
  }

  /** Whether `key` is a row PostgreSQL held at some snapshot (valid or bad). */
  has(key: string): boolean {
    return this.known.has(key);
  }

  /** Ids carried by more than one event (reused after a TRUNCATE … RESTART IDENTITY). */
  reusedIds(): number {
    const seen = new Map<string, number>();
    for (const { id } of this.known.values()) seen.set(id, (seen.get(id) ?? 0) + 1);
    return [...seen.values()].filter((n) => n > 1).length;
  }
}
