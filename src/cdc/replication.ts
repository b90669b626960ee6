import { LogicalReplicationService } from 'pg-logical-replication';
import { PipelineError } from '../core/errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { pgClientConfig } from './pg-control.js';
import { TextPgoutputPlugin, type StreamMessage } from './pgoutput-rows.js';

/**
 * The pgoutput replication stream of one session, through pg-logical-replication with
 * `acknowledge.auto = false` and `timeoutSeconds = 0` (the library never confirms anything by
 * itself). The only LSNs ever confirmed are the ones passed to `ack`.
 *
 * Flow control is done here, not by the library: `onMessage` runs synchronously for each message,
 * and only when it returns a promise (the Kafka writer is full, a catalogue lookup) is the socket
 * paused and the messages already received held, in order, until it settles — so a slow Kafka never
 * lets messages pile up in memory. The library's own flow control awaits a promise per message
 * (EventEmitter2 emitAsync plus two awaits), measured at ~5.7 µs per message against ~3 µs for
 * rendering a row (docs/cdc.md). Pausing uses the same handle the library's flow control pauses:
 * its pg connection's socket; `start` fails if that internal is ever missing.
 */

export interface StreamHandlers {
  /** Called once per pgoutput message, strictly in order; must not throw. A returned promise holds
   *  the next message (and the socket) back until it settles. */
  onMessage(lsn: string, msg: StreamMessage): Promise<void> | undefined;
  /** The server's keepalive; `replyRequested` means it wants a standby status update now. */
  onKeepalive(walEnd: string, replyRequested: boolean): void;
}

/** What `service._connection.stream` is: pg's Connection socket (a net.Socket). */
interface PausableSocket {
  pause(): void;
  resume(): void;
}

export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private stopped = false;
  /** Messages received while a handler's promise was pending, handled in order once it settles. */
  private readonly held: Array<{ lsn: string; msg: StreamMessage }> = [];
  private blocked = false;
  private readonly release = () => this.handleHeld();
  /** Settles when the stream ends for any reason other than `stop()` (always rejects). */
  readonly ended: Promise<never>;
  private readonly started: Promise<void>;

  constructor(
    url: string,
    slot: string,
    publication: string,
    private readonly handlers: StreamHandlers,
  ) {
    this.service = new LogicalReplicationService(pgClientConfig(url, `engage-cdc-stream:${slot}`), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    let failEnded: (err: unknown) => void = () => undefined;
    this.ended = new Promise<never>((_, reject) => {
      failEnded = reject;
    });
    this.ended.catch(() => undefined);
    this.started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    this.service.on('data', (lsn: string, msg: StreamMessage) => this.onData(lsn, msg));
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
    if (!this.socket()) {
      throw new PipelineError('INTERNAL', 'pg-logical-replication: cannot reach the replication socket for flow control (library internals changed?)');
    }
  }

  private onData(lsn: string, msg: StreamMessage): void {
    if (this.blocked) {
      this.held.push({ lsn, msg });
      return;
    }
    const wait = this.handlers.onMessage(lsn, msg);
    if (wait) this.hold(wait);
  }

  /** Pauses the socket until `wait` settles. */
  private hold(wait: Promise<void>): void {
    this.blocked = true;
    this.socket()?.pause();
    void wait.then(this.release, this.release);
  }

  private handleHeld(): void {
    for (let m = this.held.shift(); m; m = this.held.shift()) {
      const wait = this.handlers.onMessage(m.lsn, m.msg);
      if (wait) {
        void wait.then(this.release, this.release);
        return;
      }
    }
    this.blocked = false;
    if (!this.stopped) this.socket()?.resume();
  }

  private socket(): PausableSocket | undefined {
    const connection = (this.service as unknown as { _connection?: { stream?: Partial<PausableSocket> } | null })._connection;
    const stream = connection?.stream;
    return typeof stream?.pause === 'function' && typeof stream.resume === 'function' ? (stream as PausableSocket) : undefined;
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
    // A paused socket would never see the server's end of the connection: let it flow for the close.
    this.held.length = 0;
    this.socket()?.resume();
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
