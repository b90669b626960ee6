import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { copyPage } from '../../src/backfill/copy-reader.js';
import { bulkColumnSql } from '../../src/backfill/pseudonym-sql.js';
import { hmacPads, pseudonymSql, setPseudonymKey } from '../../src/core/pseudonym-sql.js';
import { parseDateRange } from '../../src/backfill/range.js';
import { SOURCE_COLUMN_SQL } from '../../src/backfill/reader.js';
import type { PiiKey } from '../../src/config/pii-keys.js';
import { Pseudonymiser, pseudonym } from '../../src/core/pseudonym.js';
import { useTestDatabase } from '../helpers/test-database.js';

/**
 * The pseudonym computed by PostgreSQL for the bulk import (src/backfill/pseudonym-sql.ts) is the
 * one core/pseudonym.ts computes, character for character: for UUIDs as PostgreSQL prints them,
 * text with multi-byte characters, the empty string, long values, NULL; with secrets shorter than,
 * exactly, and longer than SHA-256's 64-byte block (ASCII and multi-byte); a listed key's
 * pseudonym kept as the Pseudonymiser keeps it. And the COPY's file holds no raw value.
 */

const t = useTestDatabase();

const KEYS: PiiKey[] = [
  { id: 'k1', secret: 'a'.repeat(43) }, // 43 bytes
  { id: 'Block64', secret: 'x'.repeat(64) }, // exactly the block
  { id: 'b65', secret: 'y'.repeat(65) }, // one byte over: hashed first
  { id: 'long', secret: 'z0-_'.repeat(40) }, // 160 bytes
  { id: 'mb', secret: 'é'.repeat(32) }, // 32 characters, 64 bytes
  { id: 'mb2', secret: 'ключ🔑'.repeat(8) }, // 40 characters, 96 bytes
];

const TEXTS = [
  '',
  'web',
  'naïve café',
  '日本語のテキスト',
  '🎉 emoji 👩‍👩‍👧',
  "quote ' and \\ backslash",
  'line\nbreak,comma "quoted"',
  'ß'.repeat(500),
  'x'.repeat(10_000),
  'k1.short',
  'k1.' + 'A'.repeat(23),
];
/** Each of `values` through the SQL of `key` (null kept), as a uuid or a text column. */
async function inSql(key: PiiKey, known: readonly string[], values: Array<string | null>, type: 'uuid' | 'text') {
  await setPseudonymKey(t.db, key);
  const expr = pseudonymSql('v::text', key.id, known, type === 'text');
  const res = await t.db.query<{ p: string | null }>(
    `SELECT ${expr} AS p FROM unnest($1::${type}[]) WITH ORDINALITY AS t(v, n) ORDER BY n`,
    [values],
  );
  return res.rows.map((r) => r.p);
}

describe('the pseudonym in PostgreSQL', () => {
  it('derives the padded keys as HMAC does', () => {
    for (const key of KEYS) {
      const { inner, outer } = hmacPads(key.secret);
      const m = Buffer.from('a message');
      const manual = createHash('sha256')
        .update(outer)
        .update(createHash('sha256').update(inner).update(m).digest())
        .digest();
      assert.deepEqual(manual, createHmac('sha256', key.secret).update(m).digest(), key.id);
    }
  });

  it('equals pseudonym() for random UUIDs as PostgreSQL prints them, NULL staying NULL, with every key', async () => {
    const uuids: Array<string | null> = Array.from({ length: 500 }, () => randomUUID());
    uuids.push(null, '00000000-0000-0000-0000-000000000000', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF');
    for (const key of KEYS) {
      const got = await inSql(key, [key.id], uuids, 'uuid');
      // PostgreSQL prints a UUID in lower case whatever it was given: the text the CDC and the row reader hash.
      const want = uuids.map((u) => (u === null ? null : pseudonym(key, u.toLowerCase())));
      assert.deepEqual(got, want, key.id);
      // The row path's: user_id::text through the Pseudonymiser.
      const p = new Pseudonymiser([{ table: 'engagement_events', column: 'user_id' }], [key]);
      assert.deepEqual(
        got,
        uuids.map((u) => (u === null ? null : p.protect(u.toLowerCase()))),
      );
    }
  });

  it('equals pseudonym() for text with multi-byte characters, empty, long and odd values, with every key', async () => {
    const values: Array<string | null> = [...TEXTS, null, ...Array.from({ length: 200 }, (_, i) => `user-${i}-ü`)];
    for (const key of KEYS) {
      const got = await inSql(key, [key.id], values, 'text');
      const p = new Pseudonymiser([{ table: 'engagement_events', column: 'device' }], [key]);
      assert.deepEqual(
        got,
        values.map((v) => (v === null ? null : pseudonym(key, v))),
        key.id,
      );
      assert.deepEqual(
        got,
        values.map((v) => (v === null ? null : p.protect(v))),
      );
    }
  });

  it("keeps a listed key's pseudonym as the Pseudonymiser does, and hashes anything else shaped like one", async () => {
    const [k1, k2] = [KEYS[0] as PiiKey, KEYS[5] as PiiKey];
    const u = randomUUID();
    const values = [
      pseudonym(k1, u), // listed: kept
      pseudonym(k2, u), // listed: kept
      pseudonym(KEYS[2] as PiiKey, u), // b65 not listed: hashed
      `${pseudonym(k1, u)} `, // trailing space: not the shape
      `x${pseudonym(k1, u)}`, // xk1 not listed
      `K1${pseudonym(k1, u).slice(2)}`, // key ids are case-sensitive
      `k1.${'+'.repeat(22)}`, // not base64url
      `k1.${'A'.repeat(21)}`,
      `k1.${'A'.repeat(22)}\n`,
      'k1.short',
      u,
    ];
    const p = new Pseudonymiser([{ table: 'engagement_events', column: 'device' }], [k2, k1]);
    const got = await inSql(k2, p.keyIds, values, 'text');
    assert.deepEqual(
      got,
      values.map((v) => p.protect(v)),
    );
    assert.equal(got[0], values[0]);
    assert.equal(got[1], values[1]);
    assert.equal(got[2], pseudonym(k2, values[2] as string));
  });

  it('bulkColumnSql: the tagged columns computed (a UUID column without the shape check), others refused', async () => {
    const key = KEYS[0] as PiiKey;
    const tag = (...columns: string[]) =>
      new Pseudonymiser(
        columns.map((column) => ({ table: 'engagement_events', column })),
        [key],
      );
    const none = await bulkColumnSql(t.db, tag());
    assert.deepEqual(none, { columns: SOURCE_COLUMN_SQL });
    const both = await bulkColumnSql(t.db, tag('user_id', 'device', 'not_read'));
    assert.ok('columns' in both);
    assert.ok(both.columns.user_id.includes('sha256') && !both.columns.user_id.includes('CASE'), both.columns.user_id);
    assert.ok(both.columns.device.includes('CASE WHEN device ~'), both.columns.device);
    assert.equal(both.columns.id, SOURCE_COLUMN_SQL.id);
    assert.ok(!Object.values(both.columns).join(' ').includes(key.secret), 'no key material in the query text');
    assert.ok(
      !Object.values(both.columns).join(' ').includes(hmacPads(key.secret).inner.toString('hex')),
      'no padded key in the query text',
    );
    for (const c of ['raw_payload', 'event_ts', 'id', 'content_id']) {
      const r = await bulkColumnSql(t.db, tag('user_id', c));
      assert.ok('refused' in r && r.refused.includes(`engagement_events.${c}`), JSON.stringify(r));
    }
  });

  it('a COPY page under PII_FIELDS holds the pseudonyms, never a raw value', async () => {
    const key = KEYS[4] as PiiKey;
    const rows = Array.from({ length: 50 }, (_, i) => ({
      user: i % 7 === 0 ? null : randomUUID(),
      device: i % 5 === 0 ? null : `device ${i} — ténéré ${randomUUID()}`,
    }));
    await t.db.query(
      `INSERT INTO engagement_events (user_id, device, event_type, event_ts, duration_ms, raw_payload)
       SELECT u, d, 'play', '2031-05-01T00:00:00Z'::timestamptz + n * interval '1 s', 1, '{}'
         FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(u, d, n)`,
      [rows.map((r) => r.user), rows.map((r) => r.device)],
    );
    const pii = new Pseudonymiser(
      [
        { table: 'engagement_events', column: 'user_id' },
        { table: 'engagement_events', column: 'device' },
      ],
      [key],
    );
    const plan = await bulkColumnSql(t.db, pii);
    assert.ok('columns' in plan);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-pseudonym-sql-'));
    try {
      const file = path.join(dir, 'page.csv');
      const copied = await copyPage(t.db, parseDateRange('2031-05-01', '2031-05-01'), null, 100, file, plan.columns);
      assert.equal(copied?.rows, rows.length);
      const csv = readFileSync(file, 'utf8');
      for (const r of rows) {
        if (r.user) {
          assert.ok(!csv.includes(r.user), `raw user id ${r.user} in the file`);
          assert.ok(csv.includes(pseudonym(key, r.user)));
        }
        if (r.device) {
          assert.ok(!csv.includes(r.device), `raw device in the file`);
          assert.ok(csv.includes(pseudonym(key, r.device)));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
