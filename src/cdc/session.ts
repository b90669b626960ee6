import type { Config } from '../config/load.js';
import { PipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import { ensureTopics } from '../kafka/admin.js';
import { TxnProducer } from '../kafka/txn-producer.js';
import { ChangePipeline, type CommittedBatch } from './change-pipeline.js';
import { defaultRoutes } from './envelope.js';
import { formatLsn, maxLsn, parseLsn, parseLsnOrZero, type Lsn } from './lsn.js';
import { PgControl } from './pg-control.js';
import { maxEventBytes, type TruncatedInfo } from './oversize.js';
import {
  positionRecord,
  readLastPosition,
  rereadPosition,
  snapshotPendingPosition,
  type CdcPosition,
} from './position-store.js';
import { ReplicationStream } from './replication.js';
import { createSlot, runSnapshot } from './snapshot.js';
import { acquireSlot } from './slot-guard.js';
import { TxnWriter } from './txn-writer.js';
import { CAPTURED_TABLES, cdcPseudonymiser } from './cdc-pii.js';
import { settleSlot } from './slot-settle.js';
import { cdcAvro } from './avro/cdc-avro.js';
import { Snapshotter } from './incremental-snapshot/snapshotter.js';
import { SNAPSHOT_TABLES, emptyProgress, newTask, type SnapshotProgressView } from './incremental-snapshot/progress.js';

/**
 * One CDC session: everything from taking the slot to the first failure. A session never repairs
 * itself; on any error it is closed and the CDC opens a new one (src/cdc/cdc.ts), which re-reads the
 * committed position and resumes from the slot's confirmed LSN. That single recovery path covers
 * SIGKILL, a Kafka or PostgreSQL restart and a dropped connection alike.
 *
 * Start-up order matters:
 * 1. advisory lock on the slot name (one `engage cdc` per slot; a second one waits, then SLOT_IN_USE);
 * 2. the transactional producer initialises (fences a zombie predecessor, aborts its open transaction);
 * 3. only then the committed position is read (nothing of ours can commit behind it any more);
 * 4. slot + position decide: stream / snapshot first / redo an unfinished snapshot / refuse.
 *    The slot is dropped only when a `snapshot-pending` record says the CDC created it for a
 *    snapshot that never committed, or when the operator asked (`resetPosition`): a slot without a
 *    position (the position topic deleted, renamed, another cluster) is refused (non-retriable
 *    SERVICE_MISCONFIGURED "CDC position missing", so `engage run` does not restart it), never
 *    silently re-snapshotted.
 */

/** Kafka transaction timeout: the longest one PostgreSQL transaction or the snapshot may take to stream. */
export const TXN_TIMEOUT_MS = 600_000;
/** librdkafka's local queue: records produced but not yet acknowledged by the broker. */
const PRODUCER_QUEUE_MESSAGES = 50_000;
const PRODUCER_QUEUE_KBYTES = 64 * 1024;
/**
 * The CDC producer's `linger.ms`. A transaction's records go into the open Kafka transaction as
 * they are decoded and then wait for the commit pacer (change-pipeline.ts); with a short linger
 * they reach the broker during that wait, so the commit itself is little more than EndTxn (with
 * the default 100 ms they were sent by the commit's flush, a produce round trip later). Measured
 * on 2026-12-07 (an ad hoc script on the development stack, load 30–100, two producers'
 * transactions alternating): 10 records produced, 10 ms of pacer wait, then the commit took p50
 * 1.2 ms / p99 23 ms against 4.6 / 43 ms; producing a backlog in 5,000-record transactions cost
 * the broker 1.1–1.2 µs and the client 2.3–2.4 µs per record against 0.9–3.2 and 2.1–2.7.
 */
const CDC_TXN_LINGER_MS = 5;
const TABLES = CAPTURED_TABLES;

export interface SessionEvents {
  onPhase(phase: 'snapshot' | 'streaming'): void;
  onSnapshotRows(rows: number): void;
  onCommitted(batch: CommittedBatch): void;
  onWalStats(stats: { retainedBytes: number; lagBytes: number }): void;
  /** A TRUNCATE of captured tables was streamed (change-pipeline.ts). */
  onTableTruncate?(tables: string[]): void;
  /** A change event of `table` was written with oversized values replaced by a marker. */
  onTruncated(table: string): void;
  /** The incremental snapshot moved on (a chunk emitted, a task added or finished); null: none runs. */
  onIncrementalSnapshot?(view: SnapshotProgressView | null): void;
}

export interface SessionOptions {
  /**
   * `engage cdc --reset-position`: when the slot and Kafka's position disagree (a slot without a
   * position, a position without its slot), start over — drop the slot if any, create it anew and
   * take a new snapshot (CDC_SNAPSHOT_MODE=initial). Without it such a start is refused.
   */
  resetPosition?: boolean;
}

export type OpenSession = (
  config: Config,
  log: Logger,
  events: SessionEvents,
  signal: AbortSignal,
  options?: SessionOptions,
) => Promise<Session>;

export interface Session {
  /** Rejects when the session fails (never resolves). */
  readonly ended: Promise<never>;
  /** Graceful: commits a batch that ends on a PostgreSQL commit, confirms it, closes everything. */
  stop(): Promise<void>;
  /** After a failure: releases everything without writing. */
  close(): Promise<void>;
}

export const openSession: OpenSession = async (config, log, events, signal, options = {}) => {
  const slot = config.CDC_SLOT_NAME;
  const pii = cdcPseudonymiser(config, log);
  const onTruncated = (_topic: string, key: string | null, info: TruncatedInfo) => {
    log.warn(
      {
        table: info.ref.table,
        key,
        lsn: info.ref.lsn,
        fields: info.fields,
        original_bytes: info.original_bytes,
        limit_bytes: info.limit_bytes,
      },
      'change event exceeds KAFKA_MESSAGE_MAX_BYTES: written with its largest values replaced by a marker (the full row is in PostgreSQL, see "truncated.ref")',
    );
    events.onTruncated(String(info.ref.table));
  };
  const resources: { control?: PgControl; producer?: TxnProducer; stream?: ReplicationStream; timer?: NodeJS.Timeout } =
    {};
  const close = async () => {
    if (resources.timer) clearInterval(resources.timer);
    await resources.stream?.stop();
    await resources.producer?.disconnect().catch(() => undefined);
    await resources.control?.close();
  };
  try {
    const control = (resources.control = await PgControl.connect(config.databaseUrl, slot));
    await acquireSlot(control, slot, config.CDC_SLOT_WAIT_SECONDS, log, signal);
    const db = await control.databaseName();
    await control.ensurePublication(config.CDC_PUBLICATION_NAME, TABLES, log);
    await control.reportReplicaIdentity(TABLES, log);
    await ensureTopics(config);
    log.debug('topics ready');
    const producer = (resources.producer = await TxnProducer.connect({
      connection: config,
      clientId: `${config.KAFKA_CLIENT_ID}-cdc`,
      transactionalId: `engage-cdc-${slot}`,
      transactionTimeoutMs: TXN_TIMEOUT_MS,
      log,
      label: 'cdc',
      queueMaxMessages: PRODUCER_QUEUE_MESSAGES,
      queueMaxKbytes: PRODUCER_QUEUE_KBYTES,
      compression: config.KAFKA_COMPRESSION,
      lingerMs: CDC_TXN_LINGER_MS,
    }));
    log.debug('transactional producer ready (any zombie fenced)');
    const avro = await cdcAvro(config, log, pii);
    const writer = new TxnWriter(producer, undefined, avro?.encoder, log);
    const positionTopic = config.KAFKA_TOPIC_CDC_POSITION;
    let position: CdcPosition | null = await readLastPosition(config, config.KAFKA_CLIENT_ID, positionTopic, slot);
    log.debug({ position }, 'committed position read');
    if (position === null && !options.resetPosition && (await control.slotInfo(slot)) !== null) {
      // A slot without a position is refused below, for good: make sure the position is really not
      // there and not just unreadable a moment after a broker fault (seen once after a 30 s freeze).
      position = await rereadPosition(
        () => readLastPosition(config, config.KAFKA_CLIENT_ID, positionTopic, slot),
        log,
        signal,
      );
    }
    const settled = await settleSlot(config, control, db, position, log, signal, options.resetPosition === true);
    position = settled.position;
    const info = settled.info;
    let confirmed: Lsn = parseLsnOrZero(info?.confirmedFlushLsn);
    if (!info) {
      if (config.CDC_SNAPSHOT_MODE !== 'never') {
        // Marks the slot about to be created as this CDC's, for a snapshot not committed yet.
        await writer.commit([positionRecord(positionTopic, snapshotPendingPosition(slot, config.CDC_SERVER_NAME))]);
      }
      const created = await createSlot(config.databaseUrl, slot, config.CDC_SNAPSHOT_MODE === 'initial');
      confirmed = parseLsn(created.consistentPoint);
      log.info({ consistent_point: created.consistentPoint }, 'replication slot created');
      if (config.CDC_SNAPSHOT_MODE === 'initial') {
        events.onPhase('snapshot');
        const snap = await runSnapshot({
          url: config.databaseUrl,
          slot,
          publication: config.CDC_PUBLICATION_NAME,
          serverName: config.CDC_SERVER_NAME,
          positionTopic: config.KAFKA_TOPIC_CDC_POSITION,
          routes: defaultRoutes(config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, config.KAFKA_TOPIC_CONTENT),
          created,
          control,
          writer,
          maxEventBytes: maxEventBytes(config.KAFKA_MESSAGE_MAX_BYTES),
          onTruncated,
          pii,
          onColumns: avro?.onColumns,
          log,
          onRows: (_t, n) => events.onSnapshotRows(n),
        });
        position = snap.position;
        events.onCommitted({
          endLsn: confirmed,
          commitTsMs: Date.now(),
          transactions: 0,
          commitTimesMs: [],
          rows: snap.rows,
        });
      } else {
        await created.connection.end().catch(() => undefined);
      }
      if (config.CDC_SNAPSHOT_MODE === 'incremental') {
        // The plan is committed before anything streams: from here on a restart resumes it.
        const now = Date.now();
        position = {
          slot,
          server_name: config.CDC_SERVER_NAME,
          phase: 'streaming',
          lsn: created.consistentPoint,
          commit_lsn: null,
          tx_id: null,
          commit_ts_ms: null,
          partial: null,
          incremental: { ...emptyProgress(), tasks: SNAPSHOT_TABLES.map((t) => newTask('initial', t, null, now)) },
          snapshot: null,
          written_at_ms: now,
        };
        await writer.commit([positionRecord(config.KAFKA_TOPIC_CDC_POSITION, position)]);
        log.info({ tables: SNAPSHOT_TABLES }, 'incremental snapshot planned; streaming starts at once');
      }
    }
    return await startStreaming(config, log, events, {
      control,
      writer,
      position,
      confirmed,
      db,
      resources,
      close,
      onTruncated,
      pii,
    });
  } catch (err) {
    await close();
    throw err;
  }
};

interface StreamingParts {
  control: PgControl;
  writer: TxnWriter;
  position: CdcPosition | null;
  confirmed: Lsn;
  db: string;
  resources: { stream?: ReplicationStream; timer?: NodeJS.Timeout };
  close(): Promise<void>;
  onTruncated(topic: string, key: string | null, info: TruncatedInfo): void;
  pii: Pseudonymiser;
}

async function startStreaming(config: Config, log: Logger, events: SessionEvents, p: StreamingParts): Promise<Session> {
  const slot = config.CDC_SLOT_NAME;
  let fail: (err: unknown) => void = () => undefined;
  const ended = new Promise<never>((_, reject) => {
    fail = reject;
  });
  ended.catch(() => undefined);
  let acked = p.confirmed;
  let stream: ReplicationStream | undefined;
  const routes = defaultRoutes(config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, config.KAFKA_TOPIC_CONTENT);
  const avro = await cdcAvro(config, log, p.pii); // the one of openSession (one per CDC)
  const snapshotter = new Snapshotter({
    url: config.databaseUrl,
    slot,
    serverName: config.CDC_SERVER_NAME,
    db: p.db,
    routes,
    chunkRows: config.CDC_SNAPSHOT_CHUNK_ROWS,
    maxRowsPerSecond: config.CDC_SNAPSHOT_MAX_ROWS_PER_SECOND,
    pseudonymsInPostgres: config.CDC_SNAPSHOT_PSEUDONYMS === 'postgres',
    resumeFrom: p.position?.incremental ?? null,
    pii: p.pii,
    onColumns: avro?.onColumns,
    log,
    onProgress: (view) => events.onIncrementalSnapshot?.(view),
    onFail: (err) => fail(err),
  });
  const ack = (lsn: Lsn) => {
    acked = maxLsn(acked, lsn);
    stream?.ack(acked);
  };
  const pipeline = new ChangePipeline({
    slot,
    serverName: config.CDC_SERVER_NAME,
    db: p.db,
    positionTopic: config.KAFKA_TOPIC_CDC_POSITION,
    routes,
    maxBatchRows: config.CDC_MAX_BATCH_ROWS,
    splitRows: config.CDC_SPLIT_TRANSACTION_ROWS,
    commitIntervalMs: config.CDC_COMMIT_INTERVAL_MS,
    skipBelow: p.position ? parseLsn(p.position.lsn) : 0n,
    snapshot: p.position?.snapshot ?? null,
    resumeFrom: p.position,
    writer: p.writer,
    maxEventBytes: maxEventBytes(config.KAFKA_MESSAGE_MAX_BYTES),
    onTruncated: p.onTruncated,
    primaryKey: (oid) => p.control.primaryKey(oid),
    ack,
    onCommitted: (b) => events.onCommitted(b),
    onFail: (err) => fail(err),
    onTableTruncate: (tables) => events.onTableTruncate?.(tables),
    onRelation: avro?.onRelation,
    pii: p.pii,
    tap: snapshotter,
    log,
  });
  stream = p.resources.stream = new ReplicationStream(config.databaseUrl, slot, config.CDC_PUBLICATION_NAME, {
    onMessage: (lsn, msg) => pipeline.handle(lsn, msg),
    onKeepalive: (_walEnd, reply) => {
      if (reply) stream?.ack(acked);
    },
  });
  stream.ended.catch((err: unknown) => fail(err));
  await Promise.race([stream.start(), ended]);
  events.onPhase('streaming');
  snapshotter.start();
  log.info(
    { confirmed_flush_lsn: formatLsn(p.confirmed), kafka_position: p.position?.lsn ?? null },
    'streaming changes',
  );
  let lastWarnAt = 0;
  const tick = async () => {
    try {
      await p.control.emitHeartbeat();
      const stats = await p.control.walStats(slot);
      if (!stats)
        throw new PipelineError('SERVICE_MISCONFIGURED', `replication slot ${slot} disappeared`, { retriable: true });
      events.onWalStats(stats);
      if (stats.retainedBytes > config.CDC_WAL_WARN_BYTES && Date.now() - lastWarnAt > 60_000) {
        lastWarnAt = Date.now();
        log.warn(
          { retained_wal_bytes: stats.retainedBytes, threshold: config.CDC_WAL_WARN_BYTES },
          'replication slot retains more WAL than CDC_WAL_WARN_BYTES: is the CDC keeping up?',
        );
      }
    } catch (err) {
      fail(
        new PipelineError('SERVICE_UNREACHABLE', `heartbeat: ${errorMessage(err)}`, { retriable: true, cause: err }),
      );
    }
  };
  p.resources.timer = setInterval(() => void tick(), config.CDC_HEARTBEAT_SECONDS * 1000);
  void tick();
  return {
    ended,
    async stop() {
      if (p.resources.timer) clearInterval(p.resources.timer);
      await snapshotter.stop();
      await pipeline.drain();
      await p.close();
    },
    async close() {
      await snapshotter.stop();
      await p.writer.abort();
      await p.close();
    },
  };
}
