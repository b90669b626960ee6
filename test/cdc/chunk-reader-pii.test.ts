import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { ChunkReader } from '../../src/cdc/incremental-snapshot/chunk-reader.js';
import type { SnapshotTask } from '../../src/cdc/incremental-snapshot/progress.js';
import { pgClientConfig } from '../../src/cdc/pg-control.js';
import { RowJson } from '../../src/cdc/row-json.js';
import type { PiiKey } from '../../src/config/pii-keys.js';
import { Pseudonymiser, pseudonym } from '../../src/core/pseudonym.js';
import { useTestDatabase } from '../helpers/test-database.js';

/**
 * The incremental snapshot's chunks with tagged columns (src/cdc/incremental-snapshot/chunk-reader.ts):
 * a tagged column outside the primary key is pseudonymised by PostgreSQL in the chunk's COPY
 * (core/pseudonym-sql.ts), a tagged key column in this process, and every row comes out exactly as
 * the stream's renderer makes it of the raw values with the JS pseudonym (core/pseudonym.ts): a
 * uuid, text with multi-byte characters, the empty string, NULL, a value already a pseudonym of a
 * listed key (kept) or of an unlisted one (hashed), and a key longer than SHA-256's block. Paging
 * goes on from the raw last key of a tagged key column.
 */

const KEYS: PiiKey[] = [
  { id: 'cur', secret: 'z'.repeat(70) }, // longer than the 64-byte block: hashed first
  { id: 'old', secret: 'o'.repeat(40) },
];
const TASK = (last: string[] | null): SnapshotTask => ({
  id: 't',
  table: 'public.pii_chunks',
  where: null,
  last_key: last,
  max_key: null,
  chunk: last === null ? 0 : 1,
  rows: 0,
  rows_estimate: null,
  started_at_ms: 0,
});

const EMAILS = [
  'ana@example.org',
  'zoë@exämple.org',
  '',
  null,
  pseudonym(KEYS[1] as PiiKey, 'kept-as-is'),
  `other.${'A'.repeat(22)}`,
];

const t = useTestDatabase({
  client: (url) => pgClientConfig(url, 'chunk-reader-pii-test'),
  setup: async (db) => {
    await db.query('CREATE TABLE pii_chunks (code text PRIMARY KEY, email text, ref uuid, n int)');
    for (let i = 0; i < 40; i++)
      await db.query('INSERT INTO pii_chunks VALUES ($1, $2, $3, $4)', [
        `c${String(i).padStart(3, '0')}`,
        EMAILS[i % EMAILS.length],
        i % 7 === 0 ? null : randomUUID(),
        i,
      ]);
  },
});

async function readAll(inPostgres: boolean): Promise<void> {
  const fields = ['code', 'email', 'ref'].map((column) => ({ table: 'pii_chunks', column }));
  const reader = await ChunkReader.connect(
    t.env.config.databaseUrl,
    'unused',
    new Pseudonymiser(fields, KEYS),
    inPostgres,
  );
  try {
    assert.equal(reader.pseudonymsInPostgres, inPostgres);
    const first = await reader.read(TASK(null), 25);
    assert.equal(first.rows.length, 25);
    assert.deepEqual(first.lastKey, ['c024'], 'the last key is the raw value of the tagged key column');
    const second = await reader.read({ ...TASK(first.lastKey), max_key: first.maxKey }, 25);
    assert.equal(second.rows.length, 15);
    assert.equal(second.last, true);

    const raw = await t.db.query({
      text: 'SELECT code, email, ref::text, n::text FROM pii_chunks ORDER BY code',
      rowMode: 'array',
    });
    const columns = first.layout.columns;
    const json = new RowJson(
      columns,
      ['code'],
      new Pseudonymiser(fields, KEYS).columns('pii_chunks', ['code', 'email', 'ref']),
    );
    const expected = (raw.rows as Array<Array<string | null>>).map((r) => ({ key: json.key(r), after: json.row(r) }));
    assert.deepEqual([...first.rows, ...second.rows], expected);
    const kept = expected.find((r) => r.after.includes(EMAILS[4] as string));
    assert.ok(kept, 'a listed key’s pseudonym is kept as it is');
    assert.ok(!JSON.stringify(expected).includes('ana@example.org'), 'no raw value');
  } finally {
    await reader.close();
  }
}

test('tagged columns hashed by PostgreSQL (CDC_SNAPSHOT_PSEUDONYMS=postgres) and here: the stream renderer’s pseudonyms; paging follows the raw key', async () => {
  await readAll(true);
});

test('CDC_SNAPSHOT_PSEUDONYMS=cdc: the same rows, every tagged column hashed in this process', async () => {
  await readAll(false);
});
