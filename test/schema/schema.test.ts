import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { INIT_SQL } from '../../src/stack/stack.js';
import { useTestDatabase } from '../helpers/test-database.js';

/** sql/init.sql, applied to a fresh database: the source schema exactly as issue 2 specifies it. */

describe('source schema (sql/init.sql)', () => {
  const t = useTestDatabase();
  async function columns(table: string): Promise<Array<[string, string, string, string | null]>> {
    const rows = (
      await t.db.query<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
        `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
        [table],
      )
    ).rows;
    return rows.map((r) => [r.column_name, r.data_type, r.is_nullable, r.column_default]);
  }

  async function constraints(table: string): Promise<Map<string, string>> {
    const rows = (
      await t.db.query<{ contype: string; def: string }>(
        `SELECT contype, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass`,
        [table],
      )
    ).rows;
    return new Map(rows.map((r) => [r.def, r.contype]));
  }

  test('content: columns, types, nullability', async () => {
    assert.deepEqual(await columns('content'), [
      ['id', 'uuid', 'NO', null],
      ['slug', 'text', 'NO', null],
      ['title', 'text', 'NO', null],
      ['content_type', 'text', 'YES', null],
      ['length_seconds', 'integer', 'YES', null],
      ['publish_ts', 'timestamp with time zone', 'NO', null],
    ]);
    const c = await constraints('content');
    assert.equal(c.get('PRIMARY KEY (id)'), 'p');
    assert.equal(c.get('UNIQUE (slug)'), 'u');
    assert.equal(
      c.get("CHECK ((content_type = ANY (ARRAY['podcast'::text, 'newsletter'::text, 'video'::text])))"),
      'c',
    );
    assert.equal(c.size, 3);
  });

  test('engagement_events: columns, types, nullability, bigserial id, foreign key', async () => {
    assert.deepEqual(await columns('engagement_events'), [
      ['id', 'bigint', 'NO', "nextval('engagement_events_id_seq'::regclass)"],
      ['content_id', 'uuid', 'YES', null],
      ['user_id', 'uuid', 'YES', null],
      ['event_type', 'text', 'YES', null],
      ['event_ts', 'timestamp with time zone', 'NO', null],
      ['duration_ms', 'integer', 'YES', null],
      ['device', 'text', 'YES', null],
      ['raw_payload', 'jsonb', 'YES', null],
    ]);
    const c = await constraints('engagement_events');
    assert.equal(c.get('PRIMARY KEY (id)'), 'p');
    assert.equal(c.get('FOREIGN KEY (content_id) REFERENCES content(id)'), 'f');
    assert.equal(
      c.get("CHECK ((event_type = ANY (ARRAY['play'::text, 'pause'::text, 'finish'::text, 'click'::text])))"),
      'c',
    );
    assert.equal(c.size, 3);
  });

  test('CHECK constraints reject a bad event_type or content_type; the foreign key an unknown content', async () => {
    const content = (await t.db.query<{ id: string }>('SELECT id FROM content LIMIT 1')).rows[0]?.id;
    assert.ok(content);
    const insertEvent = (type: string, contentId: string) =>
      t.db.query(
        `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts) VALUES ($1, gen_random_uuid(), $2, now())`,
        [contentId, type],
      );
    await assert.rejects(insertEvent('skip', content), /engagement_events_event_type_check/);
    await assert.rejects(
      insertEvent('play', '00000000-0000-4000-8000-000000000000'),
      /engagement_events_content_id_fkey/,
    );
    await insertEvent('play', content);
    await assert.rejects(
      t.db.query(
        `INSERT INTO content (id, slug, title, content_type, publish_ts) VALUES (gen_random_uuid(), 'x-audiobook', 'X', 'audiobook', now())`,
      ),
      /content_content_type_check/,
    );
    await assert.rejects(
      t.db.query(`INSERT INTO engagement_events (content_id, event_type) VALUES ($1, 'play')`, [content]),
      /event_ts/,
    );
  });

  test('indexes on event_ts and content_id', async () => {
    const defs = (
      await t.db.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE tablename = 'engagement_events'`)
    ).rows.map((r) => r.indexdef);
    assert.ok(
      defs.some((d) => /USING btree \(event_ts\)$/.test(d)),
      defs.join('\n'),
    );
    assert.ok(
      defs.some((d) => /USING btree \(content_id\)$/.test(d)),
      defs.join('\n'),
    );
  });

  test('the publication exists and covers both tables', async () => {
    const rows = (
      await t.db.query<{ tablename: string }>(
        `SELECT tablename FROM pg_publication_tables WHERE pubname = 'engage_pub' ORDER BY tablename`,
      )
    ).rows;
    assert.deepEqual(
      rows.map((r) => r.tablename),
      ['content', 'engagement_events'],
    );
  });

  test('the catalogue: ≥ 50 items, all three types, plausible lengths, a few NULL lengths, past publication', async () => {
    const rows = (
      await t.db.query<{
        content_type: string;
        n: number;
        nulls: number;
        lo: number;
        hi: number;
        oldest: Date;
        newest: Date;
      }>(`
      SELECT content_type, count(*)::int AS n, count(*) FILTER (WHERE length_seconds IS NULL)::int AS nulls,
             min(length_seconds) AS lo, max(length_seconds) AS hi, min(publish_ts) AS oldest, max(publish_ts) AS newest
        FROM content GROUP BY content_type ORDER BY content_type`)
    ).rows;
    assert.deepEqual(
      rows.map((r) => r.content_type),
      ['newsletter', 'podcast', 'video'],
    );
    const total = rows.reduce((n, r) => n + r.n, 0);
    assert.ok(total >= 50, `${total} items`);
    const nulls = rows.reduce((n, r) => n + r.nulls, 0);
    assert.ok(nulls >= 3 && nulls <= 5, `${nulls} NULL lengths`);
    const by = Object.fromEntries(rows.map((r) => [r.content_type, r]));
    assert.ok(by.podcast && by.podcast.lo >= 15 * 60 && by.podcast.hi <= 90 * 60);
    assert.ok(by.video && by.video.lo >= 60 && by.video.hi <= 30 * 60);
    assert.ok(by.newsletter && by.newsletter.lo >= 120 && by.newsletter.hi <= 15 * 60);
    for (const r of rows) {
      assert.ok(r.newest.getTime() <= Date.now());
      assert.ok(r.oldest.getTime() >= Date.now() - 2.1 * 365 * 86_400_000);
    }
  });

  test('applying init.sql again changes nothing', async () => {
    const before = (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM content')).rows[0]?.n;
    await t.db.query(readFileSync(INIT_SQL, 'utf8'));
    const after = (
      await t.db.query<{ n: number; ids: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM content`,
      )
    ).rows[0];
    assert.equal(after?.n, before);
    assert.equal(after?.ids, before);
  });
});
