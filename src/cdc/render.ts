import { UNAVAILABLE_VALUE } from '../core/types.js';
/**
 * How a PostgreSQL value becomes JSON in a change event. Pure functions over the value's text form
 * (pgoutput sends text; the snapshot reads with every type parser switched off, so both paths render
 * identically). Both connections run with TimeZone=UTC and DateStyle=ISO (see PG_SESSION_OPTIONS).
 *
 * | PostgreSQL            | JSON                                                                 |
 * | --------------------- | -------------------------------------------------------------------- |
 * | int2, int4, oid       | number                                                               |
 * | int8 (BIGSERIAL ids)  | string of the exact decimal digits (lossless beyond 2^53; Debezium   |
 * |                       | would write a number — a deliberate deviation)                       |
 * | float4, float8        | number; NaN / Infinity / -Infinity as those strings                  |
 * | numeric               | string of the exact digits (Debezium decimal.handling.mode=string)   |
 * | bool                  | true / false                                                         |
 * | uuid, text, varchar…  | string                                                               |
 * | timestamptz           | ISO-8601 UTC, fraction kept as stored: "2025-08-01T10:00:00.123456Z" |
 * | timestamp             | ISO-8601 without zone: "2025-08-01T10:00:00.123456"                  |
 * | date                  | "2025-08-01"                                                         |
 * | json, jsonb           | string holding the JSON text (Debezium io.debezium.data.Json)        |
 * | bytea                 | base64 string (Debezium's default binary handling)                   |
 * | anything else         | its PostgreSQL text form                                             |
 * | NULL                  | null                                                                 |
 * | unchanged TOAST value | "__debezium_unavailable_value" when no before image can supply it    |
 */

export { UNAVAILABLE_VALUE };

/** libpq options for every CDC connection: value text forms the renderer relies on. */
export const PG_SESSION_OPTIONS =
  '-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=iso_8601 -c extra_float_digits=1';

export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

export interface ColumnType {
  name: string;
  typeOid: number;
}

/** A raw column value: text, SQL NULL (null), or an unchanged TOAST value pgoutput did not send (undefined). */
export type RawValue = string | null | undefined;

export function renderValue(typeOid: number, text: RawValue): unknown {
  if (text === undefined) return UNAVAILABLE_VALUE;
  if (text === null) return null;
  switch (typeOid) {
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return Number(text);
    case OID.float4:
    case OID.float8: {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case OID.bool:
      return text === 't' || text === 'true';
    case OID.timestamptz:
      return timestamptzToIso(text);
    case OID.timestamp:
      return /^\d{4,}-\d\d-\d\d \d/.test(text) ? text.replace(' ', 'T') : text;
    case OID.bytea:
      return text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex').toString('base64') : text;
    default:
      // int8, numeric, uuid, text, json(b), date and every other type: the text form itself.
      return text;
  }
}

/** A column's rendering class, chosen once per column so the per-row path is a switch on a small int. */
export const Kind = {
  /** int2, int4, oid: PostgreSQL's text is already the JSON number. */
  Integer: 0,
  /** int8, numeric, uuid, date: a JSON string whose text never needs escaping. */
  PlainString: 1,
  Timestamptz: 2,
  /** text, json(b) and every other type: a JSON string. */
  Text: 3,
  /** float, bool, timestamp, bytea: through renderValue. */
  Other: 4,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export function kindOf(typeOid: number): Kind {
  switch (typeOid) {
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return Kind.Integer;
    case OID.int8:
    case OID.numeric:
    case OID.uuid:
    case OID.date:
      return Kind.PlainString;
    case OID.timestamptz:
      return Kind.Timestamptz;
    case OID.float4:
    case OID.float8:
    case OID.bool:
    case OID.timestamp:
    case OID.bytea:
      return Kind.Other;
    default:
      return Kind.Text;
  }
}

const UNAVAILABLE_JSON = JSON.stringify(UNAVAILABLE_VALUE);

/**
 * JSON text of one value: exactly `JSON.stringify(renderValue(typeOid, text))` (test/cdc/render.test.ts
 * checks it), without the intermediate value for the common types — the hot path of every row.
 */
export function valueJson(kind: Kind, typeOid: number, text: RawValue): string {
  if (text === undefined) return UNAVAILABLE_JSON;
  if (text === null) return 'null';
  switch (kind) {
    case Kind.Integer:
      return text;
    case Kind.PlainString:
      return `"${text}"`;
    case Kind.Timestamptz:
      return timestamptzJson(text);
    case Kind.Text:
      return JSON.stringify(text);
    default:
      return JSON.stringify(renderValue(typeOid, text));
  }
}

/** `"<ISO-8601 UTC>"`; PostgreSQL's usual `YYYY-MM-DD HH:MM:SS[.f]+00` is rewritten in place. */
function timestamptzJson(text: string): string {
  const n = text.length;
  if (
    n >= 22 &&
    text.charCodeAt(n - 3) === 43 /* + */ &&
    text.charCodeAt(n - 2) === 48 /* 0 */ &&
    text.charCodeAt(n - 1) === 48 /* 0 */ &&
    text.charCodeAt(4) === 45 /* - */ &&
    text.charCodeAt(7) === 45 /* - */ &&
    text.charCodeAt(10) === 32 /* space */ &&
    text.charCodeAt(13) === 58 /* : */ &&
    text.charCodeAt(16) === 58 /* : */ &&
    (n === 22 || text.charCodeAt(19) === 46) /* . */
  ) {
    return `"${text.slice(0, 10)}T${text.slice(11, n - 3)}Z"`;
  }
  return JSON.stringify(timestamptzToIso(text));
}

const TSTZ = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/;

/**
 * `2025-08-01 10:00:00.123456+00` → `2025-08-01T10:00:00.123456Z`. Any other offset is converted to
 * UTC with the fraction kept digit for digit. Values outside the proleptic range this handles
 * (`infinity`, BC dates) are returned as PostgreSQL printed them.
 */
export function timestamptzToIso(text: string): string {
  const m = TSTZ.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s, frac = '', sign, oh = '00', om = '00', os = '00'] = m;
  const offsetSeconds = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os));
  if (offsetSeconds === 0) return `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}Z`;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s) - offsetSeconds, 0);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, iso.length - 5)}${frac}Z`;
}
