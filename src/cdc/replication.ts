import { LogicalReplicationService } from 'pg-logical-replication';
import { PipelineError } from '../core/errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { pgClientConfig } from './pg-control.js';
import { TextPgoutputPlugin, type StreamMessage } from './pgoutput-rows.js';

/**
 * The pgoutput replication stream of one session, through pg-logical-replication with
 * `acknowledge.auto = false` and `timeoutSeconds = 0` (the library never confirms anything by
 * itself) and flow control on: the socket is paused while messages are handled and the next message
 * waits for a promise `onMessage` returns, so a slow Kafka never lets messages pile up in memory.
 * The only LSNs ever confirmed are the ones passed to `ack`. Row messages are decoded by
 * pgoutput-rows.ts.
 */

export interface StreamHandlers {
  /** Called once per pgoutput message, strictly in order; must not throw. A returned promise holds
   *  the next message back (the library awaits it; the socket stays paused meanwhile). */
  onMessage(lsn: string, msg: StreamMessage): Promise<void> | undefined;
  /** The server's keepalive; `replyRequested` means it wants a standby status update now. */
  onKeepalive(walEnd: string, replyRequested: boolean): void;
}

export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private stopped = false;
  /** Settles when the stream ends for any reason other than `stop()` (always rejects). */
  readonly ended: Promise<never>;
  private readonly started: Promise<void>;

  constructor(url: string, slot: string, publication: string, handlers: StreamHandlers) {
    this.service = new LogicalReplicationService(pgClientConfig(url, `engage-cdc-stream:${slot}`), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true },
    });
    let failEnded: (err: unknown) => void = () => undefined;
    this.ended = new Promise<never>((_, reject) => {
      failEnded = reject;
    });
    this.ended.catch(() => undefined);
    this.started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    this.service.on('data', (lsn: string, msg: StreamMessage) => handlers.onMessage(lsn, msg));
    this.service.on('heartbeat', (lsn: string, _ts: number, reply: boolean) => handlers.onKeepalive(lsn, reply));
    this.service.on('error', (err: Error) => failEnded(classifyStreamError(err)));
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [publication], messages: true });
    // '0/0': the server starts at the slot's confirmed_flush_lsn; the session skips what Kafka holds.
    this.service.subscribe(plugin, slot, '0/0').then(
      () => failEnded(new PipelineError('SERVICE_UNREACHABLE', 'replication stream ended', { retriable: true })),
      (err: unknown) => failEnded(classifyStreamError(err)),
    );
  }

  /** Resolves once the server streams; rejects if START_REPLICATION fails (e.g. slot in use). */
  async start(): Promise<void> {
    await Promise.race([this.started, this.ended]);
  }

  /** Standby status update confirming everything below `lsn` (flush = write = apply = lsn). */
  ack(lsn: Lsn): void {
    if (this.stopped || lsn <= 0n) return;
    // The library reports lsn + 1 as flushed; pass lsn - 1 so the server records exactly `lsn`.
    void this.service.acknowledge(formatLsn(lsn - 1n)).catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.service.destroy().catch(() => undefined);
  }
}

function classifyStreamError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  const code = (err as { code?: string } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === '55006') {
    return new PipelineError('SLOT_IN_USE', `replication slot busy: ${message}`, { retriable: true, cause: err });
  }
  return new PipelineError('SERVICE_UNREACHABLE', `replication stream: ${message}`, { retriable: true, cause: err });
}
