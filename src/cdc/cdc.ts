import type { Config } from '../config/load.js';
import { PipelineError, errorMessage, isFatal } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { sleep, type RetryPolicy } from '../runtime/retry.js';
import type { RunningComponent } from '../runtime/lifecycle.js';
import type { CommittedBatch } from './change-pipeline.js';
import { formatLsn } from './lsn.js';
import type { SnapshotProgressView } from './incremental-snapshot/progress.js';
import { cdcMetrics } from './metrics.js';
import { HEALTHY_SESSION_MS, RECONNECT_POLICY, ReconnectBackoff } from './reconnect-backoff.js';
import { openSession, type OpenSession, type Session } from './session.js';

/**
 * `engage cdc` as a component: PostgreSQL (pgoutput logical replication) → Kafka, exactly once.
 * `startCdc` resolves once the first session streams (after the snapshot, when one is taken) and
 * rejects on a fatal error (slot in use by another instance after CDC_SLOT_WAIT_SECONDS, slot gone
 * while Kafka holds a position, a slot without a position, misconfiguration); `done` rejects when a
 * running session fails fatally (`isFatal`: a schema change the registry's rule refuses).
 * Any other failure — PostgreSQL or Kafka down or restarted, a dropped connection — closes the
 * session and opens a new one after a capped, jittered exponential backoff (reconnect-backoff.ts)
 * that starts over once a session has run healthily; the committed position makes the resumption
 * exactly-once. See docs/cdc.md.
 */

export interface CdcStatus {
  slot: string;
  phase: 'starting' | 'snapshot' | 'streaming' | 'reconnecting' | 'stopped' | 'failed';
  /** End LSN of the last PostgreSQL transaction committed to Kafka (and confirmed). */
  last_lsn: string | null;
  last_commit_ts_ms: number | null;
  lag_ms: number | null;
  lag_bytes: number | null;
  retained_wal_bytes: number | null;
  transactions: number;
  rows: number;
  snapshot_rows: number;
  sessions: number;
  /** TRUNCATEs of captured tables seen (not propagated; ids may be reused after RESTART IDENTITY). */
  table_truncates: number;
  last_truncate: { at: string; tables: string[] } | null;
  /** Change events written with oversized values replaced by a marker (docs/cdc.md). */
  truncated_events: number;
  /** The incremental snapshot running now (table, chunk, rows, rows/s, ETA), or null. */
  incremental_snapshot: SnapshotProgressView | null;
  last_error: string | null;
}

export interface CdcOptions {
  /** `engage cdc --reset-position` (session.ts SessionOptions); applies until a session opens. */
  resetPosition?: boolean;
  /** Tests: the session factory, the reconnect backoff and what counts as a healthy session. */
  openSession?: OpenSession;
  reconnectPolicy?: RetryPolicy;
  healthySessionMs?: number;
}

export interface CdcComponent extends RunningComponent {
  status(): CdcStatus & Record<string, unknown>;
  done: Promise<void>;
}

export async function startCdc(config: Config, log: Logger, options: CdcOptions = {}): Promise<CdcComponent> {
  const cdc = new Cdc(config, log.child({ component: 'cdc', slot: config.CDC_SLOT_NAME }), options);
  await cdc.start();
  return cdc;
}

class Cdc implements CdcComponent {
  private readonly abort = new AbortController();
  private session: Session | undefined;
  private stopping = false;
  done: Promise<void> = Promise.resolve();
  private readonly state: CdcStatus;
  private readonly metrics = cdcMetrics();
  private readonly backoff: ReconnectBackoff;
  private readonly open: OpenSession;
  private resetPosition: boolean;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    options: CdcOptions,
  ) {
    this.backoff = new ReconnectBackoff(
      options.reconnectPolicy ?? RECONNECT_POLICY,
      options.healthySessionMs ?? HEALTHY_SESSION_MS,
    );
    this.open = options.openSession ?? openSession;
    this.resetPosition = options.resetPosition ?? false;
    this.state = {
      slot: config.CDC_SLOT_NAME,
      phase: 'starting',
      last_lsn: null,
      last_commit_ts_ms: null,
      lag_ms: null,
      lag_bytes: null,
      retained_wal_bytes: null,
      transactions: 0,
      rows: 0,
      snapshot_rows: 0,
      sessions: 0,
      table_truncates: 0,
      last_truncate: null,
      truncated_events: 0,
      incremental_snapshot: null,
      last_error: null,
    };
  }

  async start(): Promise<void> {
    this.session = await this.connect();
    this.done = this.supervise();
    this.done.catch(() => undefined);
  }

  status(): CdcStatus & Record<string, unknown> {
    return { ...this.state };
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.done.catch(() => undefined);
    this.stopping = true;
    this.abort.abort(new Error('stopping'));
    await this.session
      ?.stop()
      .catch((err: unknown) =>
        this.log.warn({ err }, 'cdc: drain failed; nothing was confirmed beyond the last Kafka commit'),
      );
    this.state.phase = 'stopped';
    await this.done.catch(() => undefined);
  }

  /** Keeps a session open until stop(); rejects on a fatal (non-retriable) error. */
  private async supervise(): Promise<void> {
    while (!this.stopping) {
      const session = this.session;
      if (!session) return;
      try {
        await session.ended;
      } catch (err) {
        if (this.stopping) return;
        if (isFatal(err)) {
          // A restart cannot help (a schema change the registry refuses): nothing more is written.
          this.state.phase = 'failed';
          this.state.last_error = errorMessage(err);
          await session.close();
          throw err;
        }
        this.state.phase = 'reconnecting';
        this.state.last_error = errorMessage(err);
        this.metrics.reconnects.inc({ slot: this.config.CDC_SLOT_NAME });
        const { delayMs, failures, ranMs } = this.backoff.failed();
        this.log.warn(
          {
            err: errorMessage(err),
            hint: hintFor(err),
            delay_ms: delayMs,
            failures_in_a_row: failures,
            session_ran_ms: ranMs,
          },
          `cdc session failed; reconnecting in ${delayMs} ms (nothing is confirmed beyond the last Kafka commit)`,
        );
        await session.close();
        try {
          await sleep(delayMs, this.abort.signal);
          this.session = await this.connect();
        } catch (fatal) {
          if (this.stopping) return;
          this.state.phase = 'failed';
          throw fatal;
        }
        // stop() may have come while this session was being opened: it only saw the failed one.
        if (this.stopping) await this.session.stop().catch(() => undefined);
      }
    }
  }

  /** Opens a session, waiting the backoff between failed attempts; a non-retriable error is final. */
  private async connect(): Promise<Session> {
    for (;;) {
      if (this.stopping) throw new PipelineError('INTERNAL', 'stopping', { retriable: false });
      this.state.sessions++;
      try {
        const session = await this.open(this.config, this.log, this.events, this.abort.signal, {
          resetPosition: this.resetPosition,
        });
        this.resetPosition = false; // done: the slot and the position agree from now on
        this.backoff.opened();
        return session;
      } catch (err) {
        if (this.stopping || (err instanceof PipelineError && !err.retriable)) throw err;
        const { delayMs, failures } = this.backoff.failed();
        this.state.last_error = errorMessage(err);
        this.log.warn(
          { attempt: failures, delay_ms: delayMs, err: errorMessage(err), hint: hintFor(err) },
          'cdc: cannot start a session yet; retrying',
        );
        await sleep(delayMs, this.abort.signal);
      }
    }
  }

  private readonly events = {
    onPhase: (phase: 'snapshot' | 'streaming') => {
      this.state.phase = phase;
    },
    onSnapshotRows: (rows: number) => {
      this.state.snapshot_rows += rows;
    },
    onCommitted: (b: CommittedBatch) => {
      const slot = this.config.CDC_SLOT_NAME;
      let rows = 0;
      for (const [key, n] of b.rows) {
        const [table = '?', op = '?'] = key.split('|');
        this.metrics.rows.inc({ slot, table, op }, n);
        rows += n;
      }
      this.metrics.transactions.inc({ slot }, b.transactions);
      this.metrics.kafkaCommits.inc({ slot });
      const now = Date.now();
      const lag = Math.max(0, now - b.commitTsMs);
      this.metrics.lagMs.set({ slot }, lag);
      for (const t of b.commitTimesMs) this.metrics.freshnessSeconds.observe({ slot }, Math.max(0, now - t) / 1000);
      this.state.last_lsn = formatLsn(b.endLsn);
      this.state.last_commit_ts_ms = b.commitTsMs;
      this.state.lag_ms = lag;
      this.state.transactions += b.transactions;
      this.state.rows += rows;
    },
    onTruncated: (table: string) => {
      this.metrics.truncated.inc({ slot: this.config.CDC_SLOT_NAME, table });
      this.state.truncated_events++;
    },
    onTableTruncate: (tables: string[]) => {
      for (const table of tables) this.metrics.tableTruncates.inc({ slot: this.config.CDC_SLOT_NAME, table });
      this.state.table_truncates++;
      this.state.last_truncate = { at: new Date().toISOString(), tables };
    },
    onIncrementalSnapshot: (view: SnapshotProgressView | null) => {
      const slot = this.config.CDC_SLOT_NAME;
      const previous = this.state.incremental_snapshot;
      if (view && previous && view.chunk > previous.chunk && view.table === previous.table)
        this.metrics.snapshotChunks.inc({ slot }, view.chunk - previous.chunk);
      this.state.incremental_snapshot = view;
      this.metrics.snapshotRowsPerSecond.set({ slot }, view?.rows_per_second ?? 0);
      this.metrics.snapshotEtaSeconds.set({ slot }, view?.eta_seconds ?? 0);
      const left = view?.rows_estimate === null || !view ? 0 : Math.max(0, view.rows_estimate - view.rows);
      this.metrics.snapshotRemainingRows.set({ slot }, left);
    },
    onWalStats: (s: { retainedBytes: number; lagBytes: number }) => {
      const slot = this.config.CDC_SLOT_NAME;
      this.metrics.retainedWalBytes.set({ slot }, s.retainedBytes);
      this.metrics.lagBytes.set({ slot }, s.lagBytes);
      this.state.retained_wal_bytes = s.retainedBytes;
      this.state.lag_bytes = s.lagBytes;
    },
  };
}

/** What to do about a failure the operator can fix, if it is one (logged with the failure). */
function hintFor(err: unknown): string | undefined {
  if (/message size too large|MSG_SIZE_TOO_LARGE/i.test(errorMessage(err))) {
    return "Kafka refused a record as too large: a topic's max.message.bytes is below KAFKA_MESSAGE_MAX_BYTES + 64 KiB (topics that existed before the pipeline created them keep their own limit); raise it with kafka-configs.sh --alter --add-config max.message.bytes=…, or lower KAFKA_MESSAGE_MAX_BYTES";
  }
  return undefined;
}
