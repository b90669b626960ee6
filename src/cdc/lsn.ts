/**
 * PostgreSQL log sequence numbers. The server and pg-logical-replication spell them `X/Y` (two hex
 * halves); the CDC compares and stores them as bigint so ordering is exact, and renders them as a
 * JSON number in change events (Debezium's `source.lsn`; real LSNs stay far below 2^53).
 */

export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses `X/Y`; throws on anything else (a protocol or catalogue value we cannot trust). */
export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** `null`/empty (pgoutput's "no LSN") becomes 0n. */
export function parseLsnOrZero(text: string | null | undefined): Lsn {
  return text ? parseLsn(text) : 0n;
}

/** Upper-case `X/Y` as PostgreSQL prints it. */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n) throw new Error(`negative LSN ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** `X/Y` as a JSON-safe number (exact below 2^53, i.e. for any real WAL position); the hot path. */
export function lsnTextToNumber(text: string): number {
  const slash = text.indexOf('/');
  return parseInt(text.slice(0, slash), 16) * 4294967296 + parseInt(text.slice(slash + 1), 16);
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
