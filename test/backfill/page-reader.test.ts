import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { copyPage } from '../../src/backfill/copy-reader.js';
import { parseDateRange } from '../../src/backfill/range.js';
import { readPage, type Cursor, type Page } from '../../src/backfill/reader.js';
import { useTestDatabase } from '../helpers/test-database.js';

/**
 * The backfill's page reader (src/backfill/reader.ts) and its COPY twin (copy-reader.ts): the
 * keyset order across a page boundary, and COPY pages ending where row pages end.
 */

const t = useTestDatabase();
describe('page reader', () => {
  it('keeps (event_ts, id) order across a page boundary where ids change digit count', async () => {
    // Same instant, ids 9999999999 and 10000000000: as text '10000000000' sorts first, so a page
    // ordered by the text columns would end on it and the next page (numeric keyset) skip the other.
    await t.db
      .query(`INSERT INTO engagement_events (id, content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
      (9999999999, NULL, NULL, 'play', '2031-01-01T00:00:00Z', 1, 'web', '{}'),
      (10000000000, NULL, NULL, 'play', '2031-01-01T00:00:00Z', 1, 'web', '{}')`);
    const range = parseDateRange('2031-01-01', '2031-01-01');
    const p1 = await readPage(t.db, range, null, 1);
    const p2 = await readPage(t.db, range, p1.last, 1);
    const p3 = await readPage(t.db, range, p2.last, 1);
    assert.deepEqual(
      [...p1.rows, ...p2.rows, ...p3.rows].map((r) => r.id),
      ['9999999999', '10000000000'],
    );
  });

  it('COPY pages end where row pages end, whatever the last row holds, and the file holds exactly the page', async () => {
    // Devices and payloads that look like the end of a line to a reader that splits on newlines or
    // commas; ids of different digit counts at one instant (they sort otherwise as text).
    await t.db
      .query(`INSERT INTO engagement_events (id, content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
      (8000000001, NULL, NULL, 'play', '2032-01-01T00:00:00.000001Z', 1, E'tv\n2032-01-01T00:00:00.000000Z,1', '{"a": "x,\\"y\\"\\n"}'),
      (8000000002, NULL, NULL, 'play', '2032-01-01T00:00:00.000001Z', NULL, '', NULL),
      (8000000003, NULL, NULL, 'play', '2032-01-01T01:00:00Z', 1, E'a,"b"\nc', '{"k": [1, 2]}'),
      (99999999999, NULL, NULL, 'play', '2032-01-01T00:00:00.000001Z', 1, 'web', '{}'),
      (100000000000, NULL, NULL, 'play', '2032-01-01T00:00:00.000001Z', 1, 'web', '{}')`);
    const range = parseDateRange('2032-01-01', '2032-01-01');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-copy-test-'));
    try {
      for (const size of [1, 2, 3, 4]) {
        let rowsAfter: Cursor | null = null;
        let copyAfter: Cursor | null = null;
        for (let n = 0; ; n++) {
          const file = path.join(dir, `p${size}-${n}.csv`);
          const rows: Page = await readPage(t.db, range, rowsAfter, size);
          const copied = await copyPage(t.db, range, copyAfter, size, file);
          if (rows.rows.length === 0) {
            assert.equal(copied, null, 'no page past the last');
            break;
          }
          assert.deepEqual(copied?.last, rows.last, `page ${n} of ${size} ends on the same row`);
          assert.equal(copied?.rows, rows.rows.length);
          const again = await readPage(t.db, range, copyAfter, 1000, copied?.last);
          assert.deepEqual(
            again.rows.map((r) => r.id),
            rows.rows.map((r) => r.id),
            'read again through its bounds: the same rows',
          );
          assert.ok(readFileSync(file, 'utf8').includes(rows.rows[0]?.id as string));
          rowsAfter = rows.last;
          copyAfter = copied?.last ?? null;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
