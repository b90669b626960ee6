import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PiiKey } from '../config/pii-keys.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import { SOURCE_COLUMN_SQL } from './reader.js';

/**
 * The keyed pseudonym of core/pseudonym.ts computed by PostgreSQL, for the direct backfill's bulk
 * import (page-flow.ts, copy-reader.ts): the tagged columns of COPY's CSV then hold pseudonyms and
 * the raw values never leave PostgreSQL (docs/security.md, docs/warehouse.md "Bulk import").
 *
 * HMAC-SHA-256(K, m) = SHA-256((K' ⊕ opad) ‖ SHA-256((K' ⊕ ipad) ‖ m)), K' being the secret's UTF-8
 * bytes (hashed first when longer than SHA-256's 64-byte block) padded with zeros to 64 bytes.
 * PostgreSQL 11+ has `sha256(bytea)`; the two padded keys are computed here once per run and given
 * to the backfill's session as two settings through bind parameters (`set_config`), which the COPY
 * reads once each (an InitPlan): COPY takes no parameters, and a key written into its text would be
 * in pg_stat_activity, pg_stat_statements and, for a page slower than log_min_duration_statement,
 * the server's log. The padded keys are the key: they are never logged here.
 *
 * The value hashed is the column's text as the row reader renders it (`user_id::text`: a UUID in
 * PostgreSQL's lower-case hyphenated form, which is also what the CDC's pgoutput sends), converted
 * to UTF-8 as the JS path hashes it; SQL NULL stays NULL. A value already a pseudonym of a listed
 * key is kept as it is, as `Pseudonymiser` does — checked only for a column that can hold one (a
 * UUID column cannot: its text is 36 characters of hex and hyphens).
 */

const BLOCK_BYTES = 64;
const MAC_BYTES = 16;
const INNER_SETTING = 'engage.pii_inner_pad';
const OUTER_SETTING = 'engage.pii_outer_pad';

/**
 * The columns the bulk import treats as opaque text, which may therefore arrive as pseudonyms. A
 * tagged column among the others would be declined on every page (`content_id`, `event_type`,
 * `duration_ms`, `raw_payload` are checked or parsed by the import) or break the page bounds
 * (`id`, `event_ts`): its pages go row by row.
 */
export const BULK_PSEUDONYM_COLUMNS: ReadonlySet<string> = new Set(['user_id', 'device']);

type SourceColumn = keyof typeof SOURCE_COLUMN_SQL;
export type SourceColumnSql = Readonly<Record<SourceColumn, string>>;

/** (K' ⊕ ipad, K' ⊕ opad) of a secret, as HMAC-SHA-256 (and Node's createHmac) derives them. */
export function hmacPads(secret: string): { inner: Buffer; outer: Buffer } {
  let key = Buffer.from(secret, 'utf8');
  if (key.length > BLOCK_BYTES) key = createHash('sha256').update(key).digest();
  const inner = Buffer.alloc(BLOCK_BYTES, 0x36);
  const outer = Buffer.alloc(BLOCK_BYTES, 0x5c);
  for (let i = 0; i < key.length; i++) {
    inner[i] = (inner[i] as number) ^ (key[i] as number);
    outer[i] = (outer[i] as number) ^ (key[i] as number);
  }
  return { inner, outer };
}

/** Gives the session `client` the padded keys of `key` (bind parameters, not query text). */
export async function setPseudonymKey(client: pg.ClientBase, key: PiiKey): Promise<void> {
  const { inner, outer } = hmacPads(key.secret);
  await client.query('SELECT set_config($1, $2, false), set_config($3, $4, false)', [
    INNER_SETTING,
    inner.toString('hex'),
    OUTER_SETTING,
    outer.toString('hex'),
  ]);
}

const KEY_ID = /^[A-Za-z0-9]{1,16}$/;

/**
 * The SQL of the pseudonym of the text expression `text` with the key `keyId`, made in a session
 * `setPseudonymKey` prepared. With `keepKnown`, a value shaped as a pseudonym of a key of
 * `knownIds` is kept as it is (core/pseudonym.ts's rule; its shape `[A-Za-z0-9]{1,16}.` + 22
 * base64url characters).
 */
export function pseudonymSql(text: string, keyId: string, knownIds: readonly string[], keepKnown: boolean): string {
  for (const id of [keyId, ...knownIds]) if (!KEY_ID.test(id)) throw new Error(`not a key id: ${JSON.stringify(id)}`);
  const pad = (setting: string) => `(SELECT decode(current_setting('${setting}'), 'hex'))`;
  const mac = `substr(sha256(${pad(OUTER_SETTING)} || sha256(${pad(INNER_SETTING)} || convert_to(${text}, 'UTF8'))), 1, ${MAC_BYTES})`;
  // base64url without padding; 16 bytes make 24 base64 characters, never a line break.
  const made = `'${keyId}.' || translate(rtrim(encode(${mac}, 'base64'), '='), '+/', '-_')`;
  if (!keepKnown) return made; // NULL in, NULL out: || and sha256 are strict
  return `CASE WHEN ${text} ~ '^(${knownIds.join('|')})[.][A-Za-z0-9_-]{22}$' THEN ${text} ELSE ${made} END`;
}

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
  if (version < 110000) return { refused: `PostgreSQL ${version} has no sha256() (11 and later have)` };
  const types = info.rows[0]?.types ?? {};
  await setPseudonymKey(client, key);
  const columns: Record<SourceColumn, string> = { ...SOURCE_COLUMN_SQL };
  for (const c of tagged) columns[c] = pseudonymSql(SOURCE_COLUMN_SQL[c], key.id, pii.keyIds, types[c] !== 'uuid');
  return { columns };
}
