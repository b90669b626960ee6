import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PiiKey } from '../config/pii-keys.js';

/**
 * The keyed pseudonym of pseudonym.ts computed by PostgreSQL, for the readers that take rows by
 * COPY (the CDC's incremental snapshot chunks, the direct backfill's bulk import): the tagged
 * columns then leave PostgreSQL as pseudonyms, their raw values never reach this process, and the
 * hashing runs in the server's backend instead of on the reader's one JavaScript thread.
 *
 * HMAC-SHA-256(K, m) = SHA-256((K' ⊕ opad) ‖ SHA-256((K' ⊕ ipad) ‖ m)), K' being the secret's UTF-8
 * bytes (hashed first when longer than SHA-256's 64-byte block) padded with zeros to 64 bytes.
 * PostgreSQL 11+ has `sha256(bytea)`; the two padded keys are computed here once per session and
 * given to it as two settings through bind parameters (`set_config`), which a COPY reads once each
 * (an InitPlan): COPY takes no parameters, and a key written into its text would be in
 * pg_stat_activity, pg_stat_statements and, for a statement slower than log_min_duration_statement,
 * the server's log. The padded keys are the key: they are never logged here.
 *
 * The value hashed is the column's text (PostgreSQL's text form, the one pgoutput sends and the JS
 * path hashes), converted to UTF-8 as the JS path hashes it; SQL NULL stays NULL.
 */

const BLOCK_BYTES = 64;
const MAC_BYTES = 16;
const INNER_SETTING = 'engage.pii_inner_pad';
const OUTER_SETTING = 'engage.pii_outer_pad';

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

/** The oldest PostgreSQL with sha256(). */
export const PSEUDONYM_SQL_MIN_VERSION = 110000;

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
