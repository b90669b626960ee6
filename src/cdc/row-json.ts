import type { Protect } from '../core/pseudonym.js';
import type { Tuple } from './pgoutput-rows.js';
import { Kind, kindOf, valueJson, type ColumnType, type RawValue } from './render.js';

/** The rendering class of a tagged column (outside render.ts's Kind values). */
const PROTECTED = -1;
type Protected = typeof PROTECTED;

/**
 * A table's rows as JSON text, compiled once per table layout (pgoutput Relation message, snapshot
 * cursor): each column's `"name":` and rendering class are fixed, so a row is one pass of string
 * appends instead of an object per row plus JSON.stringify. The output is byte for byte what
 * JSON.stringify of the rendered row gives (column order kept; test/cdc/render.test.ts checks it).
 *
 * Input: a tuple in column order (pgoutput-rows.ts; the snapshot reads with rowMode 'array'), each
 * value PostgreSQL's text (`null` = SQL NULL, `undefined` = an unchanged TOAST value pgoutput did not
 * send).
 *
 * `protect` (core/pseudonym.ts) names the columns whose values are replaced by their pseudonym, in
 * the row, the before image and the key alike; chosen once per column, so a table without a tagged
 * column renders as before.
 */
export class RowJson {
  private readonly typeOids: number[];
  private readonly kinds: Array<Kind | Protected>;
  /** `{"name":` for the first column, `,"name":` for the others. */
  private readonly heads: string[];
  /** Primary key columns: `{"col":` / `,"col":` and the column's index (-1: not a column). */
  private readonly keyHeads: string[];
  private readonly keyIndex: number[];
  /** The protection of each tagged column, by index (undefined: no tagged column). */
  private protectors: Protect[] | undefined;

  constructor(columns: readonly ColumnType[], primaryKey: readonly string[], protect?: ReadonlyMap<string, Protect>) {
    this.typeOids = columns.map((c) => c.typeOid);
    this.kinds = columns.map((c): Kind | Protected => kindOf(c.typeOid));
    if (protect) {
      columns.forEach((c, i) => {
        const p = protect.get(c.name);
        if (!p) return;
        this.kinds[i] = PROTECTED;
        (this.protectors ??= [])[i] = p;
      });
    }
    this.heads = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`);
    this.keyHeads = primaryKey.map((name, i) => `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`);
    const names = columns.map((c) => c.name);
    this.keyIndex = primaryKey.map((name) => names.indexOf(name));
  }

  /** The whole row; a missing value is an unchanged TOAST value. */
  row(values: Tuple): string {
    const n = this.heads.length;
    if (n === 0) return '{}';
    let s = '';
    for (let i = 0; i < n; i++) s += this.heads[i] + this.value(i, values[i]);
    return `${s}}`;
  }

  /** A before image holding only the key columns pgoutput sent (REPLICA IDENTITY DEFAULT deletes and
   *  key changes): every other column null, as Debezium renders it. */
  keyOnlyRow(values: Tuple): string {
    const n = this.heads.length;
    if (n === 0) return '{}';
    let s = '';
    for (let i = 0; i < n; i++) {
      const v = values[i];
      s += this.heads[i] + (v === undefined ? 'null' : this.value(i, v));
    }
    return `${s}}`;
  }

  /**
   * The Kafka key: JSON of the primary key columns (`{"id":"123"}`), null without a primary key.
   * `keyOnly` says `values` is a key tuple (a missing column is null) rather than a full row (a
   * missing column is an unchanged TOAST value) — matching `row` / `keyOnlyRow` above.
   */
  key(values: Tuple, keyOnly = false): string | null {
    const n = this.keyIndex.length;
    if (n === 0) return null;
    let s = '';
    for (let k = 0; k < n; k++) {
      const i = this.keyIndex[k] as number;
      const v = i < 0 ? null : values[i];
      s += this.keyHeads[k] + (i < 0 || (keyOnly && v === undefined) ? 'null' : this.value(i, v));
    }
    return `${s}}`;
  }

  /** One column's JSON: a tagged column's pseudonym (a JSON string needing no escape), else valueJson. */
  private value(i: number, v: RawValue): string {
    const kind = this.kinds[i] as Kind | Protected;
    if (kind !== PROTECTED || v === null || v === undefined)
      return valueJson(kind === PROTECTED ? Kind.Text : kind, this.typeOids[i] as number, v);
    return `"${((this.protectors as Protect[])[i] as Protect)(v)}"`;
  }
}
