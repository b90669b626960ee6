import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { copyOutLines } from '../../src/cdc/incremental-snapshot/copy-out.js';
import { copyTextRow, copyTextValue, parseCopyText } from '../../src/cdc/incremental-snapshot/copy-text.js';
import { pgClientConfig } from '../../src/cdc/pg-control.js';
import type { Tuple } from '../../src/cdc/pgoutput-rows.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The incremental snapshot reads its chunks as COPY text off the socket (src/cdc/incremental-snapshot/
 * copy-out.ts, copy-text.ts): the tuples read back must be exactly node-postgres's text values of the
 * same query on a CDC connection (type parsers off, the CDC's session options), whatever the values
 * hold and however the socket splits them; an error leaves the client usable.
 */

test('escapes: backslash, control characters, NULL, a value that reads \\N, octal and hex', () => {
  assert.equal(copyTextValue('\\N'), null);
  assert.equal(copyTextValue('\\\\N'), '\\N');
  assert.equal(copyTextValue('a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh'), 'a\tb\nc\rd\\e\bf\fg\vh');
  assert.equal(copyTextValue('\\101\\x42C'), 'ABC');
  assert.equal(copyTextValue(''), '');
  assert.deepEqual(parseCopyText(Buffer.from('1\t\\N\t\n2\tx\\ty\tz\n'), 3), [
    ['1', null, ''],
    ['2', 'x\ty', 'z'],
  ]);
  assert.throws(() => parseCopyText(Buffer.from('1\t2\n'), 3), /2 columns where 3/);
  assert.throws(() => parseCopyText(Buffer.from('1\t2'), 2), /whole row/);
});

let env: TestEnv;
let db: pg.Client;

before(async () => {
  env = await createTestEnv();
  db = new pg.Client(pgClientConfig(env.config.databaseUrl, 'copy-text-test'));
  await db.connect();
});

after(async () => {
  await db.end();
  await env.cleanup();
});

test('COPY text of every kind of value reads back as the query gives it', async () => {
  await db.query(`CREATE TABLE copy_values (
    id bigserial PRIMARY KEY, t text, j jsonb, b bytea, ts timestamptz, tsl timestamp, d date, n numeric,
    f float8, bo bool, u uuid, a text[], i interval, v varchar(20))`);
  await db.query(`INSERT INTO copy_values (t, j, b, ts, tsl, d, n, f, bo, u, a, i, v) VALUES
    (E'tab\\there, newline\\nthere, cr\\r, backslash \\\\ and \\\\N', '{"k": "v\\\\n\\"q\\"", "ü": [1, null]}',
     '\\x00ff5c0a', '2026-12-07 10:00:00.123456+00', '2026-12-07 10:00:00', '2026-12-07', 12345678901234567890.5,
     'NaN', true, gen_random_uuid(), ARRAY['a b', 'c"d', NULL, E'e\\\\f'], '1 day 2 hours', 'x'),
    ('', 'null', '\\x', 'infinity', '-infinity', '-infinity', 'NaN', '-0.000001', false, NULL, '{}', '-1 minute', E'\\\\'),
    (E'multi-byte: \u00e9\u4e2d\ud83d\ude00 \\\\N \\x01\\x7f', NULL, NULL, NULL, NULL, NULL, NULL, '1e300', NULL, NULL, NULL, NULL, NULL),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
  const sql = 'SELECT * FROM copy_values ORDER BY id';
  const expected = (await db.query<Tuple>({ text: sql, rowMode: 'array' })).rows;
  const lines = await copyOutLines(db, `COPY (${sql}) TO STDOUT`);
  const got = lines.map((l) => copyTextRow(l, 14));
  assert.equal(got.length, 4);
  assert.deepEqual(got, expected);
  assert.deepEqual(parseCopyText(lines.join(''), 14), expected);
});

test('rows longer than a socket read, many rows, and an empty result', async () => {
  await db.query(`CREATE TABLE copy_big (id int PRIMARY KEY, t text)`);
  await db.query(`INSERT INTO copy_big SELECT i, repeat(md5(i::text), CASE WHEN i % 1000 = 0 THEN 20000 ELSE 3 END)
                    FROM generate_series(1, 20000) i`);
  const sql = 'SELECT * FROM copy_big ORDER BY id';
  const expected = (await db.query<Tuple>({ text: sql, rowMode: 'array' })).rows;
  const got = (await copyOutLines(db, `COPY (${sql}) TO STDOUT`)).map((l) => copyTextRow(l, 2));
  assert.equal(got.length, 20000);
  assert.deepEqual(got, expected);
  assert.deepEqual(await copyOutLines(db, `COPY (SELECT * FROM copy_big WHERE false) TO STDOUT`), []);
});

test('a COPY PostgreSQL refuses rejects with its error, and the client goes on', async () => {
  await assert.rejects(copyOutLines(db, 'COPY (SELECT no_such_column FROM copy_big) TO STDOUT'), {
    code: '42703',
  });
  await db.query('BEGIN');
  await assert.rejects(copyOutLines(db, 'COPY (SELECT 1 / 0) TO STDOUT'), { code: '22012' });
  await db.query('ROLLBACK');
  assert.deepEqual((await db.query('SELECT 1 AS one')).rows, [{ one: '1' }]);
  assert.deepEqual(await copyOutLines(db, 'COPY (SELECT 1, NULL) TO STDOUT'), ['1\t\\N\n']);
});
