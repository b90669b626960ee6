import os from 'node:os';
import bindings, { type Vector } from '@duckdb/node-bindings';
import { PipelineError } from '../../../../core/errors.js';

/**
 * Column writers that fill a DuckDB data-chunk vector from JS values with ONE memory copy per
 * column (`copy_data_to_vector`) instead of one call per value: fixed-width values are laid out in
 * a typed array in DuckDB's in-memory format (little-endian int64, double, int32 days), and
 * strings of at most 12 bytes are written inline in their 16-byte `string_t` slot, the format
 * DuckDB itself uses for short strings. Only longer strings need DuckDB to allocate: those go
 * through `vector_assign_string_element`, one call each, after the copy.
 *
 * Measured against the node-api Vector classes (`DuckDBDataChunk.setColumns`, one N-API call per
 * string plus a value object per timestamp): see docs/warehouse.md, "Where a row's CPU goes".
 */

if (os.endianness() !== 'LE')
  throw new PipelineError('SERVICE_MISCONFIGURED', 'the DuckDB vector writers assume a little-endian machine');

const TWO_32 = 4294967296;
export const MAX_ROWS = bindings.vector_size();

/** A reusable scratch buffer of MAX_ROWS 16-byte slots (enough for every fixed-width type and string_t). */
export class Scratch {
  readonly buffer = new ArrayBuffer(MAX_ROWS * 16);
  readonly u8 = new Uint8Array(this.buffer);
  readonly u32 = new Uint32Array(this.buffer);
  readonly i32 = new Int32Array(this.buffer);
  readonly f64 = new Float64Array(this.buffer);
  readonly i64 = new BigInt64Array(this.buffer);
  /** Validity bits, one uint64 word per 64 rows (1 = valid). */
  readonly valid = new Uint32Array(Math.ceil(MAX_ROWS / 32));
  nulls = 0;

  resetValidity(n: number): void {
    this.valid.fill(0xffffffff, 0, Math.ceil(n / 64) * 2);
    this.nulls = 0;
  }

  setNull(i: number): void {
    (this.valid as Uint32Array)[i >>> 5] = (this.valid[i >>> 5] as number) & ~(1 << (i & 31));
    this.nulls++;
  }
}

/** Copies the first `n` rows of `s` (of `width` bytes each) and its validity into `vector`. */
export function commit(vector: Vector, s: Scratch, n: number, width: number): void {
  bindings.copy_data_to_vector(vector, 0, s.buffer, 0, n * width);
  if (s.nulls > 0) {
    bindings.vector_ensure_validity_writable(vector);
    bindings.copy_data_to_vector_validity(vector, 0, s.valid.buffer, 0, Math.ceil(n / 64) * 8);
  }
}

/** An int64 at slot `i`: a safe integer as two 32-bit halves (no BigInt), otherwise as a bigint. */
export function putInt64(s: Scratch, i: number, v: number | bigint): void {
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    const hi = Math.floor(v / TWO_32);
    s.u32[2 * i] = v - hi * TWO_32;
    s.i32[2 * i + 1] = hi;
    return;
  }
  const b = BigInt(v);
  if (BigInt.asIntN(64, b) !== b) throw new PipelineError('SINK_REJECTED', `${b} is out of the int64 range`);
  s.i64[i] = b;
}

/** A decimal int64 text as a number when exactly representable, else as a bigint. */
export function int64Of(text: string): number | bigint {
  if (text.length <= 15) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  return BigInt(text);
}

/**
 * Fills `vector` (VARCHAR or JSON) with `values`: short ASCII strings inline in the copy, the others
 * assigned one by one afterwards.
 */
export function writeStrings(vector: Vector, s: Scratch, values: ReadonlyArray<string | null>, n: number): void {
  s.resetValidity(n);
  const u8 = s.u8;
  const u32 = s.u32;
  let long: number[] | null = null;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const base = i * 16;
    u32[i * 4] = 0;
    u32[i * 4 + 1] = 0;
    u32[i * 4 + 2] = 0;
    u32[i * 4 + 3] = 0;
    if (v === null || v === undefined) {
      s.setNull(i);
      continue;
    }
    if (v.length <= 12 && inlineAscii(u8, base + 4, v)) {
      u32[i * 4] = v.length;
    } else {
      (long ??= []).push(i);
    }
  }
  commit(vector, s, n, 16);
  if (long) for (const i of long) bindings.vector_assign_string_element(vector, i, values[i] as string);
}

/** Writes `v` at `at` when every character is ASCII (then its UTF-8 bytes are its char codes). */
function inlineAscii(u8: Uint8Array, at: number, v: string): boolean {
  for (let k = 0; k < v.length; k++) {
    const c = v.charCodeAt(k);
    if (c > 0x7f) {
      for (let j = 0; j < k; j++) u8[at + j] = 0;
      return false;
    }
    u8[at + k] = c;
  }
  return true;
}

/**
 * Fills a LIST(VARCHAR) `vector` with `lists` (null is written as an empty list): entries of
 * (offset, length) as uint64 pairs, the items in the child vector.
 */
export function writeStringLists(vector: Vector, lists: ReadonlyArray<readonly string[] | null>, n: number): void {
  const items: string[] = [];
  const entries = new Uint32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const l = lists[i];
    entries[i * 4] = items.length;
    entries[i * 4 + 2] = l ? l.length : 0;
    if (l) for (const item of l) items.push(item);
  }
  if (items.length > 0) {
    bindings.list_vector_reserve(vector, items.length);
    const child = bindings.list_vector_get_child(vector);
    for (let k = 0; k < items.length; k++) bindings.vector_assign_string_element(child, k, items[k] as string);
  }
  bindings.list_vector_set_size(vector, items.length);
  bindings.copy_data_to_vector(vector, 0, entries.buffer, 0, n * 16);
}
