import type { SinkProof } from './sink-proof.js';

/**
 * The fault matrix's table: one row per fault, each sink's lost / duplicated counts as proven from
 * the sink after it caught up (cumulative over the run: a loss stays visible in every later row),
 * the DLQ's entries, and the verdict. Pure formatting.
 */

export interface MatrixRow {
  id: number;
  name: string;
  proof: SinkProof | null;
  /** Seconds the fault itself took to inject (outage, restarts). */
  faultSeconds: number;
  notes: string[];
  problems: string[];
}

export const TABLE_LEGEND = [
  'lost/dup per sink, cumulative since the start; Redis: window count and dedupe ledgers (one MULTI);',
  'warehouse: DuckDB rows by (event_id, event_ts), read with sink-warehouse stopped (SIGTERM, drained) and started again;',
  "external: the reference receiver's distinct events (re-sent deliveries it absorbed in brackets);",
  'DLQ: entries that are the 4 bad rows / any other entry. The load (generator) is stopped while each row is proven.',
];

function counts(c: { lost: number; duplicated: number }): string {
  return `${c.lost}/${c.duplicated}`;
}

export function formatRow(r: MatrixRow): string {
  const p = r.proof;
  const cells = [
    String(r.id),
    r.name,
    `${r.faultSeconds.toFixed(0)} s`,
    p ? `${p.caughtUpSeconds.toFixed(0)} s` : '-',
    p ? String(p.expected) : '-',
    p ? counts(p.redis) : '-',
    p ? counts(p.warehouse) : '-',
    p ? `${counts(p.external)} (${p.external.resent})` : '-',
    p ? `${p.dlq.badFound}/${p.dlq.unexpected.length}` : '-',
    r.problems.length === 0 ? 'pass' : 'FAIL',
  ];
  return `| ${cells.join(' | ')} |`;
}

export function formatTable(rows: readonly MatrixRow[]): string {
  const head =
    '| # | fault | fault took | caught up in | events | Redis lost/dup | warehouse lost/dup | external lost/dup (re-sent) | DLQ bad/other | result |';
  const rule = '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  return [head, rule, ...rows.map(formatRow)].join('\n');
}

/** The notes and problems under the table, one line per row that has any. */
export function formatDetails(rows: readonly MatrixRow[]): string {
  return rows
    .filter((r) => r.notes.length + r.problems.length > 0)
    .map((r) => `${r.id}. ${[...r.notes, ...r.problems.map((p) => `PROBLEM: ${p}`)].join('; ')}`)
    .join('\n');
}
