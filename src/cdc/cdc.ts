import type { Config } from '../config/load.js';
import { PipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { retry } from '../runtime/retry.js';
import type { RunningComponent } from '../runtime/lifecycle.js';
import type { CommittedBatch } from './change-pipeline.js';
import { formatLsn } from './lsn.js';
import { cdcMetrics } from './metrics.js';
import { openSession, type Session } from './session.js';

/**
 * `engage cdc` as a component: PostgreSQL (pgoutput logical replication) → Kafka, exactly once.
 * `startCdc` resolves once the first session streams (after the snapshot, when one is taken) and
 * rejects on a fatal error (slot in use by another instance after CDC_SLOT_WAIT_SECONDS, slot gone
 * while Kafka holds a position, misconfiguration). Any other failure — PostgreSQL or Kafka down or
 * restarted, a dropped connection — closes the session and opens a new one with exponential backoff;
 * the committed position makes the resumption exactly-once. See docs/cdc.md.
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
  last_error: string | null;
}

export interface CdcComponent extends RunningComponent {
  status(): CdcStatus & Record<string, unknown>;
  done: Promise<void>;
}

const RECONNECT = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 250, maxMs: 10_000, jitter: 'full' as const };

export async function startCdc(config: Config, log: Logger): Promise<CdcComponent> {
  const cdc = new Cdc(config, log.child({ component: 'cdc', slot: config.CDC_SLOT_NAME }));
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

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
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
    await this.session?.stop().catch((err: unknown) => this.log.warn({ err }, 'cdc: drain failed; nothing was confirmed beyond the last Kafka commit'));
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
        this.state.phase = 'reconnecting';
        this.state.last_error = errorMessage(err);
        this.metrics.reconnects.inc({ slot: this.config.CDC_SLOT_NAME });
        this.log.warn({ err: errorMessage(err) }, 'cdc session failed; reconnecting (nothing is confirmed beyond the last Kafka commit)');
        await session.close();
        try {
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

  private connect(): Promise<Session> {
    return retry(
      async () => {
        if (this.stopping) throw new PipelineError('INTERNAL', 'stopping', { retriable: false });
        this.state.sessions++;
        return openSession(this.config, this.log, this.events, this.abort.signal);
      },
      {
        ...RECONNECT,
        signal: this.abort.signal,
        shouldRetry: (err) => !this.stopping && !(err instanceof PipelineError && !err.retriable),
        onRetry: (err, attempt, delay) => {
          this.state.last_error = errorMessage(err);
          this.log.warn({ attempt, delay_ms: delay, err: errorMessage(err) }, 'cdc: cannot start a session yet; retrying');
        },
      },
    );
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
      const lag = Math.max(0, Date.now() - b.commitTsMs);
      this.metrics.lagMs.set({ slot }, lag);
      this.state.last_lsn = formatLsn(b.endLsn);
      this.state.last_commit_ts_ms = b.commitTsMs;
      this.state.lag_ms = lag;
      this.state.transactions += b.transactions;
      this.state.rows += rows;
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
