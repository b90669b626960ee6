import type pg from 'pg';
import type { Pseudonymiser } from '../core/pseudonym.js';
import { PSEUDONYM_SQL_MIN_VERSION, pseudonymSql, setPseudonymKey } from '../core/pseudonym-sql.js';
import { SOURCE_COLUMN_SQL } from './reader.js';

/**
 * The keyed pseudonym of core/pseudonym.ts computed by PostgreSQL, for the direct backfill's bulk
 * import (page-flow.ts, copy-reader.ts): the tagged columns of COPY's CSV then hold pseudonyms and
 * the raw values never leave PostgreSQL (docs/security.md, docs/warehouse.md "Bulk import").
 *
 * The SQL itself is core/pseudonym-sql.ts's (shared with the CDC's incremental snapshot).
 */

/**
 * The columns the bulk import treats as opaque text, which may therefore arrive as pseudonyms. A
 * tagged column among the others would be declined on every page (`content_id`, `event_type`,
 * `duration_ms`, `raw_payload` are checked or parsed by the import) or break the page bounds
 * (`id`, `event_ts`): its pages go row by row.
 */
export const BULK_PSEUDONYM_COLUMNS: ReadonlySet<string> = new Set(['user_id', 'device']);

type SourceColumn = keyof typeof SOURCE_COLUMN_SQL;
export type SourceColumnSql = Readonly<Record<SourceColumn, string>>;

/**
 * How COPY should select the source columns for the bulk import under `pii`: every tagged column
 * of engagement_events the backfill reads computed as its pseudonym (the session given the key),
 * or why it cannot be (the pages then go row by row, pseudonymised in JS).
 */
export async function bulkColumnSql(
  client: pg.ClientBase,
  pii: Pseudonymiser,
): Promise<{ columns: SourceColumnSql } | { refused: string }> {
  const tagged = [...pii.columnsOf('engagement_events')].filter((c): c is SourceColumn => c in SOURCE_COLUMN_SQL);
  if (tagged.length === 0) return { columns: SOURCE_COLUMN_SQL };
  const other = tagged.filter((c) => !BULK_PSEUDONYM_COLUMNS.has(c));
  if (other.length > 0)
    return {
      refused: `PII_FIELDS tags ${other.map((c) => `engagement_events.${c}`).join(', ')}, which the bulk import cannot carry as a pseudonym`,
    };
  const key = pii.currentKey;
  if (!key) throw new Error('no pseudonym key (PII_KEYS)'); // refused at start: configuredPseudonymiser
  const info = await client.query<{ version: number; types: Record<string, string> | null }>(
    `SELECT current_setting('server_version_num')::int AS version,
       (SELECT json_object_agg(attname, format_type(atttypid, NULL)) FROM pg_attribute
         WHERE attrelid = 'engagement_events'::regclass AND attname = ANY($1) AND NOT attisdropped) AS types`,
    [tagged],
  );
  const version = info.rows[0]?.version ?? 0;
  if (version < PSEUDONYM_SQL_MIN_VERSION)
    return { refused: `PostgreSQL ${version} has no sha256() (11 and later have)` };
  const types = info.rows[0]?.types ?? {};
  await setPseudonymKey(client, key);
  const columns: Record<SourceColumn, string> = { ...SOURCE_COLUMN_SQL };
  for (const c of tagged) columns[c] = pseudonymSql(SOURCE_COLUMN_SQL[c], key.id, pii.keyIds, types[c] !== 'uuid');
  return { columns };
}
