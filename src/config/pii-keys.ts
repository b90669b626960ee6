import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The keys of the personal-data pseudonyms and the columns they protect (PII_KEYS, PII_FIELDS;
 * docs/security.md). A pseudonym names the key that made it, so keys rotate: the first key makes
 * new pseudonyms, and every listed key is known by its id.
 */

export interface PiiKey {
  /** 1–16 letters or digits, carried in every pseudonym the key makes. */
  id: string;
  secret: string;
}

export interface PiiField {
  table: string;
  column: string;
}

/** `keyid:secret[,keyid:secret…]` (the schema checked its shape). */
export function parsePiiKeys(text: string): PiiKey[] {
  return text.split(',').map((part) => {
    const colon = part.indexOf(':');
    return { id: part.slice(0, colon), secret: part.slice(colon + 1) };
  });
}

/** The keys as PII_KEYS spells them, for a child process's environment (empty string: none). */
export function formatPiiKeys(keys: readonly PiiKey[]): string {
  return keys.map((k) => `${k.id}:${k.secret}`).join(',');
}

/** `table.column[,…]`, or `none` for no protected field. */
export function parsePiiFields(text: string): PiiField[] {
  if (text === 'none') return [];
  return text.split(',').map((part) => {
    const [table = '', column = ''] = part.split('.');
    return { table, column };
  });
}

/** The file holding the private stack's development key, `<STACK_DIR>/pii-keys`. */
export function privatePiiKeysFile(stackDir: string): string {
  return path.join(stackDir, 'pii-keys');
}

/**
 * The private stack's development key: read from `<STACK_DIR>/pii-keys`, created there (mode 0600,
 * 32 random bytes) on first use. Processes starting together agree on one key: the file appears
 * whole (written aside, then hard-linked into place, which fails if it exists) and a loser of
 * that race reads the winner's.
 */
export function privatePiiKeys(stackDir: string): PiiKey[] {
  const file = privatePiiKeysFile(stackDir);
  try {
    return parsePiiKeys(readFileSync(file, 'utf8').trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(stackDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `dev1:${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  return parsePiiKeys(readFileSync(file, 'utf8').trim());
}
