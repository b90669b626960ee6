import type { Config } from '../../src/config/load.js';
import { configuredPseudonymiser } from '../../src/core/pseudonym.js';
import { createLogger } from '../../src/core/logger.js';
import { CDC_VERSION, envelopeJson, sourcePrefix } from '../../src/cdc/envelope.js';
import { ChunkReader } from '../../src/cdc/incremental-snapshot/chunk-reader.js';
import { newTask } from '../../src/cdc/incremental-snapshot/progress.js';
import { TXN_TIMEOUT_MS } from '../../src/cdc/session.js';
import { TxnWriter } from '../../src/cdc/txn-writer.js';
import { TxnProducer } from '../../src/kafka/txn-producer.js';

/**
 * The Kafka side of the incremental snapshot alone: how fast the CDC's own way of writing — its
 * transactional producer (src/kafka/txn-producer.ts) behind its TxnWriter, with the CDC's producer
 * settings — takes the snapshot's records in the snapshot's transactions (one chunk of records
 * plus a position record each, the next chunk added while the previous one commits, one commit in
 * flight, as the CDC's pipeline does), with no PostgreSQL and no rendering in the timed part.
 *
 * The records are the snapshot's own: the first `sampleRows` rows of the table rendered as the
 * incremental snapshot renders them (its ChunkReader, the CDC's pseudonymiser, the `op: "r"`
 * envelope), cycled to `total` — so the same key and value sizes, and, the sample being larger than
 * a produce batch, no repeated record inside a compressed batch.
 */

/** The CDC's producer queue bounds (src/cdc/session.ts). */
const QUEUE_MESSAGES = 50_000;
const QUEUE_KBYTES = 64 * 1024;

export interface SnapshotRecord {
  key: string | null;
  value: string;
}

/** The table's first `sampleRows` rows as the incremental snapshot's records. */
export async function snapshotRecords(config: Config, table: string, sampleRows: number): Promise<SnapshotRecord[]> {
  const pii = configuredPseudonymiser(config, 'bench');
  const reader = await ChunkReader.connect(config.databaseUrl, config.CDC_SLOT_NAME, pii);
  const [schema = 'public', name = table] = table.split('.');
  const at = {
    prefix: sourcePrefix({
      version: CDC_VERSION,
      connector: 'postgresql',
      name: config.CDC_SERVER_NAME,
      ts_ms: Date.now(),
      snapshot: 'incremental',
      db: new URL(config.databaseUrl).pathname.slice(1),
      schema,
      table: name,
      txId: null,
    }),
    lsn: 412_316_860_416,
    sequence: '["412316860416","412316860416"]',
  };
  try {
    const chunk = await reader.read(newTask('bench', table, null), sampleRows);
    const now = Date.now();
    return chunk.rows.map((r) => ({ key: r.key, value: envelopeJson('r', 'null', r.after, at, now) }));
  } finally {
    await reader.close();
  }
}

/** Writes `total` records (cycling `records`) to `topic` in transactions of `perTxn`; records/s. */
export async function txnProduceCeiling(
  config: Config,
  topic: string,
  records: readonly SnapshotRecord[],
  total: number,
  perTxn: number,
): Promise<{ recordsPerSecond: number; ms: number; bytes: number }> {
  const producer = await TxnProducer.connect({
    connection: config,
    clientId: `${config.KAFKA_CLIENT_ID}-bench-ceiling`,
    transactionalId: `engage-bench-ceiling-${process.pid}`,
    transactionTimeoutMs: TXN_TIMEOUT_MS,
    log: createLogger('warn', 'bench-ceiling'),
    label: 'bench',
    queueMaxMessages: QUEUE_MESSAGES,
    queueMaxKbytes: QUEUE_KBYTES,
    compression: config.KAFKA_COMPRESSION,
  });
  const writer = new TxnWriter(producer);
  const position = (n: number) => ({
    topic: config.KAFKA_TOPIC_CDC_POSITION,
    key: `bench-ceiling-${process.pid}`,
    value: JSON.stringify({ bench: 'ceiling', records: n, padding: 'p'.repeat(400) }),
  });
  let bytes = 0;
  try {
    const t0 = Date.now();
    let inFlight: Promise<void> | null = null;
    for (let sent = 0; sent < total;) {
      const n = Math.min(perTxn, total - sent);
      for (let i = 0; i < n; i++) {
        const r = records[(sent + i) % records.length] as SnapshotRecord;
        bytes += r.value.length + (r.key?.length ?? 0);
        writer.add(topic, r.key, r.value);
        if (writer.full) await writer.room();
      }
      sent += n;
      if (inFlight) await inFlight; // one commit at a time, as the CDC's pipeline
      inFlight = writer.commit([position(sent)]);
    }
    await inFlight;
    const ms = Date.now() - t0;
    return { recordsPerSecond: Math.round(total / (ms / 1000)), ms, bytes };
  } finally {
    await producer.disconnect();
  }
}
