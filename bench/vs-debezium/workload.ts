import pg from 'pg';

/**
 * The rows the vs-debezium bench commits: `engagement_events` shaped like the generator's
 * (src/generator: catalogue content ids, random user and session UUIDs, the four event types with no
 * duration on clicks, its devices, app versions, countries and referrers in `raw_payload`), made by
 * PostgreSQL itself in one INSERT … SELECT per transaction so that the client costs nothing.
 *
 * Contract: `insertRows(n, device)` is one statement inserting n rows; `device` marks rows a
 * consumer must tell apart (the latency run's warm-up), otherwise the generator's devices rotate.
 * `steadyLoad` offers `txnPerSecond` such statements a second on a schedule that a slow one does
 * not delay (a pool of 4 sessions), and says how far it fell behind.
 */

const DEVICES = `ARRAY['ios','android','web','desktop','smart_tv','smart_speaker']`;
const VERSIONS = `ARRAY['6.4.1','6.4.0','6.3.5','web-2026.11.2','desktop-3.2.0','tv-2.8.0','skill-1.14']`;
const COUNTRIES = `ARRAY['US','US','US','GB','DE','CA','IN','AU','FR','BR','NL','ES','SE','JP']`;
const REFERRERS = `ARRAY['library','home_feed','search','push','social','web_embed','newsletter_email','related']`;

export function insertRows(n: number, device?: string): string {
  const dev = device === undefined ? `(${DEVICES})[1 + (g.i + k.s) % 6]` : `'${device.replace(/'/g, "''")}'`;
  return `
    WITH cat AS (SELECT array_agg(id ORDER BY id) AS ids FROM content WHERE content_type IS NOT NULL),
         k AS (SELECT floor(random() * 10000)::int AS s)
    INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
    SELECT cat.ids[1 + (g.i * 13 + k.s) % cardinality(cat.ids)],
           gen_random_uuid(),
           (ARRAY['play','pause','finish','click'])[1 + (g.i + k.s) % 4],
           now() - random() * interval '1 hour',
           CASE (g.i + k.s) % 4 WHEN 3 THEN NULL WHEN 0 THEN 0 ELSE (g.i * 7907 + k.s) % 1800000 END,
           ${dev},
           jsonb_build_object(
             'session_id', gen_random_uuid()::text,
             'app_version', (${VERSIONS})[1 + (g.i + k.s) % 7],
             'seq', (g.i + k.s) % 9,
             'country', (${COUNTRIES})[1 + (g.i * 5 + k.s) % 14],
             'referrer', (${REFERRERS})[1 + (g.i * 3 + k.s) % 8],
             'position_ms', (g.i * 1009 + k.s) % 3600000)
      FROM cat, k, generate_series(1, ${n}) AS g(i)`;
}

/** Commits `rows` rows in `txns` transactions of equal size (the backlog every tool then decodes). */
export async function prefill(db: pg.Client, rows: number, txns: number): Promise<void> {
  const per = Math.max(1, Math.floor(rows / txns));
  const sql = insertRows(per);
  for (let t = 0; t < txns; t++) await db.query(sql);
}

export interface LoadResult {
  rows: number;
  seconds: number;
  offeredRowsPerSecond: number;
  /** Statements started more than 50 ms after their slot (the schedule could not be kept). */
  late: number;
}

export async function steadyLoad(
  databaseUrl: string,
  seconds: number,
  txnPerSecond: number,
  rowsPerTxn: number,
  device?: string,
): Promise<LoadResult> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const sql = insertRows(rowsPerTxn, device);
  try {
    await pool.query('SELECT 1');
    const total = Math.round(seconds * txnPerSecond);
    const pending: Array<Promise<unknown>> = [];
    let late = 0;
    const t0 = Date.now();
    for (let i = 0; i < total; i++) {
      const wait = t0 + (i * 1000) / txnPerSecond - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -50) late++;
      pending.push(pool.query(sql));
    }
    await Promise.all(pending);
    const elapsed = (Date.now() - t0) / 1000;
    const rows = total * rowsPerTxn;
    return { rows, seconds: elapsed, offeredRowsPerSecond: rows / elapsed, late };
  } finally {
    await pool.end();
  }
}
