import { createHmac } from 'node:crypto';
import type { PiiField, PiiKey } from '../config/pii-keys.js';
import { PipelineError } from './errors.js';

/**
 * Keyed pseudonyms of personal data (PII_FIELDS, PII_KEYS; docs/security.md). A tagged column's
 * value becomes `<keyid>.<base64url of the first 16 bytes of HMAC-SHA-256(secret, value)>`
 * (`dev1.` + 22 characters): deterministic, so counts of distinct users and joins on the column
 * keep working; not reversible without the secret; naming the key that made it, so keys rotate
 * (the first listed key makes new pseudonyms, every listed key is recognised).
 *
 * A value that already is a pseudonym of a listed key (a record sent again) is kept as it is,
 * never hashed twice. A UUID, an integer or a timestamp can never look like one (a pseudonym has
 * a `.` between letters and digits, then exactly 22 base64url characters).
 */

/** 128 bits of the MAC: collisions need ~2^64 values; shorter than the full 32 bytes on every record. */
const MAC_BYTES = 16;
const PSEUDONYM = /^([A-Za-z0-9]{1,16})\.[A-Za-z0-9_-]{22}$/;

export function pseudonym(key: PiiKey, value: string): string {
  const mac = createHmac('sha256', key.secret).update(value).digest();
  return `${key.id}.${mac.subarray(0, MAC_BYTES).toString('base64url')}`;
}

/** True when `text` has a pseudonym's shape (with any key id). */
export function isPseudonym(text: string): boolean {
  return PSEUDONYM.test(text);
}

/** The key id a pseudonym names, or undefined when `text` is not shaped as one. */
export function pseudonymKeyId(text: string): string | undefined {
  return PSEUDONYM.exec(text)?.[1];
}

/**
 * Values seen recently and their pseudonyms: a user's events repeat their id, and a hit costs a
 * map lookup instead of an HMAC (~3.7 µs). Emptied whole when full, which bounds it at ~8 MB.
 */
const CACHE_ENTRIES = 65_536;

/** Turns one value's text into its pseudonym (null and undefined — SQL NULL, an unchanged TOAST value — pass). */
export type Protect = (text: string) => string;

/** Builds the per-column protection of the configured fields with the configured keys. */
export class Pseudonymiser {
  private readonly current: PiiKey | undefined;
  private readonly known: ReadonlySet<string>;
  private readonly cache = new Map<string, string>();
  private readonly byTable = new Map<string, Set<string>>();
  private readonly warned = new Set<string>();
  readonly protect: Protect;

  /** `onMissing` is told once per field whose table lacks the column (not fatal: nothing to protect there). */
  constructor(
    readonly fields: readonly PiiField[],
    keys: readonly PiiKey[],
    private readonly onMissing?: (field: PiiField) => void,
  ) {
    this.current = keys[0];
    this.known = new Set(keys.map((k) => k.id));
    for (const f of fields) {
      let columns = this.byTable.get(f.table);
      if (!columns) this.byTable.set(f.table, (columns = new Set()));
      columns.add(f.column);
    }
    this.protect = (text) => this.pseudonymOf(text);
  }

  /** The key new pseudonyms are made with (the first of PII_KEYS), for a computation elsewhere (backfill/pseudonym-sql.ts). */
  get currentKey(): PiiKey | undefined {
    return this.current;
  }

  /** The ids of every listed key: a value already a pseudonym of one of them is kept as it is. */
  get keyIds(): readonly string[] {
    return [...this.known];
  }

  /** True when some field is tagged (protection on). */
  get active(): boolean {
    return this.fields.length > 0;
  }

  /** The tagged columns of `table` (`schema.table` or bare); empty when none. */
  columnsOf(table: string): ReadonlySet<string> {
    return this.byTable.get(bareTable(table)) ?? EMPTY;
  }

  /**
   * For a table whose columns are `names`, the protection of each tagged column present (by name),
   * or undefined when the table has none — so an untagged table's rows cost nothing extra. A
   * tagged column the table lacks is reported once through `onMissing`.
   */
  columns(table: string, names: readonly string[]): ReadonlyMap<string, Protect> | undefined {
    const tagged = this.columnsOf(table);
    if (tagged.size === 0) return undefined;
    const present = new Map<string, Protect>();
    for (const column of tagged) {
      if (names.includes(column)) present.set(column, this.protect);
      else if (!this.warned.has(`${bareTable(table)}.${column}`)) {
        this.warned.add(`${bareTable(table)}.${column}`);
        this.onMissing?.({ table: bareTable(table), column });
      }
    }
    return present.size > 0 ? present : undefined;
  }

  /** Replaces the tagged columns of a row object of `table` in place (the backfill's rows). */
  protectRow(table: string, row: Record<string, unknown>): void {
    for (const column of this.columnsOf(table)) {
      const v = row[column];
      if (v !== null && v !== undefined) row[column] = this.pseudonymOf(String(v));
    }
  }

  private pseudonymOf(text: string): string {
    const hit = this.cache.get(text);
    if (hit !== undefined) return hit;
    const key = this.current;
    if (!key) throw new Error('no pseudonym key (PII_KEYS)'); // refused at start; see requireKey
    const kept = pseudonymKeyId(text);
    const out = kept !== undefined && this.known.has(kept) ? text : pseudonym(key, text);
    if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
    this.cache.set(text, out);
    return out;
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function bareTable(table: string): string {
  const dot = table.lastIndexOf('.');
  return dot < 0 ? table : table.slice(dot + 1);
}

/**
 * The pseudonymiser of the configuration, for `who` (`engage cdc`, the backfill). Refuses
 * (CONFIG_INVALID) when PII_FIELDS tags a column but no key is available (DATABASE_URL set and
 * PII_KEYS not): carrying the raw value must be asked for, never the fallback.
 */
export function configuredPseudonymiser(
  config: { piiFields: readonly PiiField[]; piiKeys: readonly PiiKey[] },
  who: string,
  onMissing?: (field: PiiField) => void,
): Pseudonymiser {
  if (config.piiFields.length > 0 && config.piiKeys.length === 0) {
    const fields = config.piiFields.map((f) => `${f.table}.${f.column}`).join(',');
    throw new PipelineError(
      'CONFIG_INVALID',
      `${who}: PII_FIELDS=${fields} tags personal data but no pseudonym key is set. Set PII_KEYS=<keyid>:<secret> ` +
        `(generate one with: engage pii new-key, or node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64url'))"), ` +
        'the same value for every component; or set PII_FIELDS=none to carry the raw values (docs/security.md)',
    );
  }
  return new Pseudonymiser(config.piiFields, config.piiKeys, onMissing);
}
