import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { BigQuery } from '@google-cloud/bigquery';
import { PipelineError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import {
  DIRECT_PARTITION,
  type Sink,
  type SinkBatch,
  type SinkContext,
  type SinkHealth,
} from '../../../core/sink-contract.js';
import { classifyBigQueryError } from '../bigquery-client.js';
import { contentJob, readOffsetsQuery } from '../bigquery-script.js';
import { ContentMemo } from '../duckdb/content-memo.js';
import { CONTENT_DIM, contentRows, FACT_TABLE, OFFSETS_TABLE, uniqueByEventKey } from '../schema.js';
import { viewDefinitions } from '../views.js';
import { warehouseRows } from '../warehouse-metrics.js';
import { COMMIT_LOG, readDecisionsQuery, resolveStoredOffset, type Decision } from './commit-log.js';
import { encodeFactRows } from './fact-encoder.js';
import { BigQueryRestBase } from './rest-base.js';
import { createWriterClient, type WriterClient } from './storage-client.js';
import { StorageWriteProtocol } from './storage-protocol.js';

/**
 * The BigQuery warehouse on the Storage Write API (BIGQUERY_WRITE_API=storage, the default when
 * BIGQUERY_PROJECT_ID is set). Each batch is one flush of storage-protocol.ts: the rows in a
 * PENDING stream, the decision in the commit log, the stream committed — exactly once, and no
 * query per batch. Its cost is the batch's bytes (docs/warehouse.md, "Cost model").
 *
 * - storedOffsets: one query of the commit log when partitions are assigned (commit-log.ts), then
 *   per partition a GetWriteStream (and a roll-forward commit after a crash); a partition the log
 *   does not know falls back to `warehouse_offsets`, where the query-job backend kept it.
 * - The same event twice (a backfill's re-send, a DLQ replay) is appended twice: the views read
 *   one row per (event_id, event_ts) and the documented compaction folds the table. Within one
 *   batch an event is written once (uniqueByEventKey).
 * - content_dim: a MERGE (one small query) only for content this process has not written yet or
 *   whose values changed — a catalogue changes rarely, so almost no batch runs one.
 * The REST API (bigquery-client.ts) makes the dataset, tables and views at start.
 */

export interface StorageWarehouseOptions {
  /** Ready clients (tests); default: built from the config. */
  client?: BigQuery;
  writer?: WriterClient;
}

export class StorageWarehouse extends BigQueryRestBase implements Sink {
  private readonly protocol: StorageWriteProtocol;
  private readonly log: Logger;
  private readonly writerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly content = new ContentMemo();
  /** Per partition, the offset stored so far (read at assignment, advanced by each flush). */
  private readonly stored = new Map<number, bigint>();
  private lastCommitMs: number | null = null;
  private totals = { rows: 0, flushes: 0, rolledForward: 0 };

  constructor(ctx: SinkContext, opts: StorageWarehouseOptions = {}) {
    super(ctx.config, opts.client);
    const { config } = ctx;
    const project = config.BIGQUERY_PROJECT_ID ?? '';
    const table = (name: string) => `projects/${project}/datasets/${this.datasetId}/tables/${name}`;
    this.protocol = new StorageWriteProtocol(opts.writer ?? createWriterClient(config), {
      fact: table(FACT_TABLE.name),
      log: table(COMMIT_LOG.name),
    });
    this.log = ctx.log.child({ backend: 'bigquery-storage', dataset: `${project}.${this.datasetId}` });
  }

  async start(): Promise<void> {
    await this.ensureSchema();
    this.log.info('BigQuery warehouse ready (Storage Write API)');
  }

  async storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string>> {
    if (!this.schemaReady) await this.ensureSchema();
    const topicParam = [{ name: 'topic', parameterType: { type: 'STRING' }, parameterValue: { value: topic } }];
    const rows = await this.query(readDecisionsQuery(this.d), topicParam, 'commit_log');
    const decisions = new Map<number, Decision[]>();
    for (const r of rows) {
      const p = Number(r.kafka_partition);
      const factStream = r.fact_stream === null || r.fact_stream === undefined ? null : String(r.fact_stream);
      decisions.set(p, [...(decisions.get(p) ?? []), { partition: p, nextOffset: String(r.next_offset), factStream }]);
    }
    const out = new Map<number, string>();
    for (const p of partitions) {
      this.protocol.forget(p);
      this.stored.delete(p);
      const stored = await resolveStoredOffset(
        decisions.get(p) ?? [],
        (s) => this.protocol.isCommitted(s),
        async (s) => {
          const outcome = await this.protocol.commit(s);
          if (outcome === 'committed') {
            this.totals.rolledForward++;
            this.log.warn({ partition: p, stream: s }, 'a decided flush was committed on restart (roll-forward)');
          }
          return outcome;
        },
      );
      if (stored !== null) out.set(p, stored);
    }
    if (partitions.some((p) => !out.has(p))) {
      // Partitions the log does not know yet: where the query-job backend left them, if it ran.
      for (const r of await this.query(readOffsetsQuery(this.d), topicParam, 'legacy_offsets')) {
        const p = Number(r.kafka_partition);
        if (partitions.includes(p) && !out.has(p)) out.set(p, String(r.next_offset));
      }
    }
    for (const [p, o] of out) this.stored.set(p, BigInt(o));
    return out;
  }

  async write(batch: SinkBatch): Promise<void> {
    if (!this.schemaReady) await this.ensureSchema();
    const logged = batch.partition !== DIRECT_PARTITION;
    // What a previous flush already stored (the same batch written twice) is not appended again.
    const stored = logged ? this.stored.get(batch.partition) : undefined;
    if (stored !== undefined && BigInt(batch.nextOffset) <= stored) return;
    const fresh = stored === undefined ? batch.records : batch.records.filter((r) => BigInt(r.offset) >= stored);
    const records = uniqueByEventKey(fresh);
    const changed = this.content.changed(contentRows(records));
    if (changed.length > 0) {
      const job = contentJob(this.d, changed);
      await this.query(job.query, job.params, 'content');
      this.content.committed(changed);
    }
    const loadedAt = new Date().toISOString();
    const rows = { count: records.length, encode: () => encodeFactRows(records, loadedAt).rows };
    try {
      await this.protocol.flush({
        topic: batch.topic,
        partition: batch.partition,
        nextOffset: batch.nextOffset,
        rows,
        writer: this.writerId,
        logged,
      });
      if (logged) this.stored.set(batch.partition, BigInt(batch.nextOffset));
      this.lastError = null;
    } catch (err) {
      const e = err instanceof PipelineError ? err : classifyBigQueryError(err, 'flush');
      this.lastError = e.message;
      if (e.code === 'SINK_STATE_LOST') this.schemaReady = false;
      throw e;
    }
    this.lastCommitMs = Date.now();
    this.totals.flushes++;
    this.totals.rows += rows.count;
    warehouseRows().inc({ backend: 'bigquery', outcome: 'inserted' }, rows.count);
  }

  async health(): Promise<SinkHealth> {
    return {
      ok: this.schemaReady && this.lastError === null,
      detail: {
        backend: 'bigquery-storage',
        dataset: this.datasetId,
        lastCommitAt: this.lastCommitMs && new Date(this.lastCommitMs).toISOString(),
        ...this.totals,
        ...(this.lastError ? { error: this.lastError } : {}),
      },
    };
  }

  async close(): Promise<void> {
    this.protocol.close();
  }

  private async ensureSchema(): Promise<void> {
    await this.makeSchema(
      this.log,
      {
        tables: [FACT_TABLE, CONTENT_DIM, OFFSETS_TABLE, COMMIT_LOG],
        views: viewDefinitions(this.d, { dedupe: true }),
        // The fact table may hold an event twice until compaction; the log, a flush per row.
        declaresKey: (t) => t === CONTENT_DIM || t === OFFSETS_TABLE,
      },
      [COMMIT_LOG, OFFSETS_TABLE],
    );
    this.content.clear();
  }
}
