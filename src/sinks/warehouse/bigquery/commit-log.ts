import type { Dialect } from '../dialect.js';
import type { TableDef } from '../schema.js';

/**
 * The commit log of the Storage Write API backend: the table where a flush's DECISION is recorded
 * (storage-protocol.ts), and how the stored offset of a partition is read back from it.
 *
 * A row says: "partition P of topic T is stored up to `next_offset`, the rows being PENDING stream
 * `fact_stream` of the fact table (`fact_rows` rows; none when the batch had no row)". It is
 * appended, through an offset-checked COMMITTED stream, after that stream was finalized and
 * before it is committed. So a row whose fact stream is committed is a completed flush, and one
 * whose stream is finalized but not committed is a decided flush that a crash interrupted: whoever
 * reads it commits the stream (rolls it forward). A stream that was never recorded here is never
 * committed by anyone, and is garbage.
 *
 * Offsets never move backwards: rows are only appended, and the highest `next_offset` of a
 * partition wins at read time, whichever writer (a stale one included) appended it last.
 */
export const COMMIT_LOG: TableDef = {
  name: 'warehouse_commit_log',
  description:
    'The BigQuery warehouse progress (Storage Write API backend): one row per flush of a partition, appended before the flush commits its fact rows; the highest next_offset per partition is the stored offset (docs/warehouse.md).',
  key: ['topic', 'kafka_partition', 'next_offset', 'fact_stream'],
  clusterBy: ['topic', 'kafka_partition'],
  columns: [
    { name: 'topic', type: 'string', required: true, description: 'Kafka topic' },
    { name: 'kafka_partition', type: 'int64', required: true, description: 'Kafka partition' },
    { name: 'next_offset', type: 'int64', required: true, description: 'next offset to read (last written + 1)' },
    {
      name: 'fact_stream',
      type: 'string',
      required: false,
      description: 'the PENDING write stream holding the flush rows (NULL: the flush had none)',
    },
    { name: 'fact_rows', type: 'int64', required: true, description: 'rows in fact_stream (finalized count)' },
    { name: 'writer', type: 'string', required: true, description: 'the writing process (host:pid), for diagnosis' },
    { name: 'committed_at', type: 'timestamp', required: true, description: 'when the decision was appended' },
  ],
};

/** A commit-log row as read back. */
export interface Decision {
  partition: number;
  nextOffset: string;
  factStream: string | null;
}

/**
 * The candidates of every partition of `@topic`: its rows of the two highest next offsets (the
 * second in case the first's stream can no longer be committed). One query when partitions are
 * assigned; it scans the log's few columns (compaction keeps the log short: docs/warehouse.md).
 */
export function readDecisionsQuery(d: Dialect): string {
  return [
    `SELECT kafka_partition, CAST(next_offset AS STRING) AS next_offset, fact_stream FROM ${d.table(COMMIT_LOG.name)}`,
    `WHERE topic = @topic`,
    `QUALIFY DENSE_RANK() OVER (PARTITION BY kafka_partition ORDER BY next_offset DESC) <= 2`,
  ].join('\n');
}

/** What the service says of a fact stream when asked to commit it (storage-protocol.ts). */
export type CommitOutcome = 'committed' | 'gone';

/**
 * The stored offset of one partition from its decisions (any order), or null when none holds.
 * Highest next offset first: an empty flush's decision holds as it is; otherwise the first
 * decision whose stream is (or, rolled forward now, becomes) committed holds — and only one per
 * offset, so two writers' decisions for the same records never both commit. A decision whose
 * stream is gone (expired uncommitted) is skipped for the next lower one.
 */
export async function resolveStoredOffset(
  decisions: readonly Decision[],
  isCommitted: (stream: string) => Promise<boolean>,
  commit: (stream: string) => Promise<CommitOutcome>,
): Promise<string | null> {
  const byOffset = new Map<string, Decision[]>();
  for (const x of decisions) byOffset.set(x.nextOffset, [...(byOffset.get(x.nextOffset) ?? []), x]);
  const offsets = [...byOffset.keys()].sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0));
  for (const offset of offsets) {
    const group = byOffset.get(offset) as Decision[];
    if (group.some((x) => x.factStream === null)) return offset;
    for (const x of group) if (await isCommitted(x.factStream as string)) return offset;
    for (const x of group) if ((await commit(x.factStream as string)) === 'committed') return offset;
  }
  return null;
}
