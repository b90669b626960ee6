import type { LogicalType } from './schema.js';

/**
 * Every difference between DuckDB SQL and BigQuery GoogleSQL that the warehouse relies on, in one
 * place. The schema (schema.ts) and the view definitions (views.ts) are written once against this
 * interface; the DuckDB backend runs the result for real (and the tests check the figures), the
 * BigQuery backend sends it to BigQuery.
 */
export interface Dialect {
  readonly name: 'duckdb' | 'bigquery';
  /** A quoted identifier: "name" (DuckDB) or `name` (BigQuery). */
  ident(name: string): string;
  /** A fully qualified table or view name: "name" in the attached file, or `project.dataset.name`. */
  table(name: string): string;
  /** The SQL type of a logical column type (DDL and casts). */
  type(t: LogicalType): string;
  /** Rows of the group where `cond` holds. */
  countIf(cond: string): string;
  /** `num / den` as a float, NULL when `den` is 0 or NULL. */
  safeDivide(num: string, den: string): string;
  /** The current instant. */
  now(): string;
  /** True when the string list `list` (NULL counts as empty) does not hold the literal `value`. */
  lacks(list: string, value: string): string;
}

const DUCKDB_TYPES: Record<LogicalType, string> = {
  string: 'VARCHAR',
  int64: 'BIGINT',
  float64: 'DOUBLE',
  timestamp: 'TIMESTAMPTZ',
  date: 'DATE',
  json: 'JSON',
  string_list: 'VARCHAR[]',
};

const BIGQUERY_TYPES: Record<LogicalType, string> = {
  string: 'STRING',
  int64: 'INT64',
  float64: 'FLOAT64',
  timestamp: 'TIMESTAMP',
  date: 'DATE',
  json: 'JSON',
  string_list: 'ARRAY<STRING>',
};

/** BigQuery REST table-schema field (tables.insert): type and mode of a logical column. */
export function bigQueryField(
  t: LogicalType,
  required: boolean,
): { type: string; mode: 'REQUIRED' | 'NULLABLE' | 'REPEATED' } {
  if (t === 'string_list') return { type: 'STRING', mode: 'REPEATED' };
  return { type: BIGQUERY_TYPES[t], mode: required ? 'REQUIRED' : 'NULLABLE' };
}

/** BigQuery query-parameter type (jobs.insert queryParameters) of a logical column. */
export function bigQueryParamType(t: LogicalType): { type: string; arrayType?: { type: string } } {
  if (t === 'string_list') return { type: 'ARRAY', arrayType: { type: 'STRING' } };
  return { type: BIGQUERY_TYPES[t] };
}

/**
 * DuckDB. TIMESTAMPTZ for instants (the sink's connection runs with TimeZone=UTC, so rendering is
 * UTC); the division is cast to DOUBLE and guarded for a zero divisor.
 */
export const duckdbDialect: Dialect = {
  name: 'duckdb',
  ident: (name) => `"${name.replace(/"/g, '""')}"`,
  table: (name) => `"${name.replace(/"/g, '""')}"`,
  type: (t) => DUCKDB_TYPES[t],
  countIf: (cond) => `COUNT(*) FILTER (WHERE ${cond})`,
  safeDivide: (num, den) => `CASE WHEN (${den}) = 0 THEN NULL ELSE CAST(${num} AS DOUBLE) / (${den}) END`,
  now: () => 'now()',
  lacks: (list, value) => `NOT coalesce(list_contains(${list}, '${value.replaceAll("'", "''")}'), false)`,
};

/** BigQuery GoogleSQL: backtick-quoted `project.dataset.table` names, COUNTIF, SAFE_DIVIDE. */
export function bigQueryDialect(projectId: string, datasetId: string): Dialect {
  const quote = (s: string) => `\`${s.replace(/`/g, '\\`')}\``;
  return {
    name: 'bigquery',
    ident: quote,
    table: (name) => quote(`${projectId}.${datasetId}.${name}`),
    type: (t) => BIGQUERY_TYPES[t],
    countIf: (cond) => `COUNTIF(${cond})`,
    safeDivide: (num, den) => `SAFE_DIVIDE(${num}, ${den})`,
    now: () => 'CURRENT_TIMESTAMP()',
    lacks: (list, value) => `'${value.replace(/['\\]/g, (c) => `\\${c}`)}' NOT IN UNNEST(${list})`,
  };
}
