import { CONTENT_DIM, writtenColumns, type Row } from '../schema.js';

/** content_dim's value columns: what the writer fills but the key and the version. */
const VALUE_COLUMNS = writtenColumns(CONTENT_DIM)
  .map((c) => c.name)
  .filter((n) => n !== 'content_id' && n !== 'version_ms');

/**
 * What the DuckDB writer last committed to `content_dim`, per content id: the content's values
 * (every written column but the key and `version_ms`). Every batch carries its events' content, but a
 * catalogue changes rarely, and the upsert of the batch's content rows cost ~25–50 ms of CPU per
 * transaction whatever changed (docs/warehouse.md). With the memo, a transaction upserts only the
 * rows whose values differ from what the table already holds from this writer — usually none, and
 * then the staging and the upsert are skipped.
 *
 * Contract: `changed` is pure (it filters); `committed` is called only after the transaction that
 * wrote those rows committed; `clear` whenever the table may no longer hold what the memo says (the
 * database re-opened, a table re-created). A skipped row keeps the `version_ms` of the event that
 * first carried its values: the newest-wins guard still holds, because a different value always
 * comes with a newer version than the stored one's first.
 */
export class ContentMemo {
  private readonly values = new Map<string, string>();

  /** The rows whose values this writer has not committed yet (new ids, changed content). */
  changed(rows: readonly Row[]): Row[] {
    return rows.filter((r) => this.values.get(String(r.content_id)) !== signature(r));
  }

  /** Records rows a committed transaction wrote. */
  committed(rows: readonly Row[]): void {
    for (const r of rows) this.values.set(String(r.content_id), signature(r));
  }

  clear(): void {
    this.values.clear();
  }
}

/** The row's content values, without its version: equal signatures mean nothing to update. */
function signature(r: Row): string {
  return JSON.stringify(VALUE_COLUMNS.map((n) => r[n] ?? null));
}
