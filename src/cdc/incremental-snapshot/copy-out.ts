import type { Socket } from 'node:net';
import type pg from 'pg';

/**
 * `COPY … TO STDOUT` on a node-postgres client, read straight off the connection's socket: the
 * rows' text lines (COPY text format, copy-text.ts), one string per row, without a message object,
 * a Buffer slice or a stream chunk per row (node-postgres's own CopyData path, pg-copy-streams).
 *
 * How (as pg-copy-streams does it): node-postgres runs it like any query (`client.query(copy)`:
 * queued, then `submit`); for the COPY's duration the socket's one `data` listener (node-postgres's
 * protocol parser) is swapped for this reader, which walks the backend's messages itself —
 * CopyOutResponse, one CopyData per row, CopyDone, and the NoticeResponse / ParameterStatus /
 * NotificationResponse the protocol lets the backend send meanwhile (ignored). At the first other
 * message (CommandComplete, or an ErrorResponse) the parser's listener is put back and handed
 * everything from that message on: node-postgres then finishes the query as usual (its
 * `handleCommandComplete` / `handleError` and `handleReadyForQuery` below), so the client goes on
 * to its next query. The COPY's output is held in memory: meant for bounded results (one chunk).
 */

/** Backend message types (PostgreSQL protocol). */
const COPY_OUT_RESPONSE = 0x48; // H
const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const NOTICE = 0x4e; // N
const PARAMETER_STATUS = 0x53; // S
const NOTIFICATION = 0x41; // A

type DataListener = (chunk: Buffer) => void;

interface PgConnection {
  stream: Socket;
  query(text: string): void;
}

export class CopyOutLines implements pg.Submittable {
  /** One string per row, each ending with its newline. */
  readonly lines: string[] = [];
  readonly done: Promise<string[]>;
  private resolve!: (lines: string[]) => void;
  private reject!: (err: unknown) => void;
  private stream: Socket | undefined;
  private parserListener: DataListener | undefined;
  /** An incomplete message's bytes so far, and how many bytes it needs to be whole (or to tell its length). */
  private rest: Buffer[] = [];
  private restBytes = 0;
  private need = 0;
  private readonly onData: DataListener = (chunk) => this.read(chunk);

  constructor(private readonly text: string) {
    this.done = new Promise<string[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Called by node-postgres when the query's turn comes. */
  submit(connection: pg.Connection): void {
    const con = connection as unknown as PgConnection;
    const stream = con.stream;
    const listeners = stream.listeners('data') as DataListener[];
    if (listeners.length !== 1) throw new Error(`COPY reader: ${listeners.length} data listeners on the connection`);
    this.stream = stream;
    this.parserListener = listeners[0];
    stream.removeListener('data', this.parserListener as DataListener);
    stream.on('data', this.onData);
    con.query(this.text);
  }

  private read(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest.length > 0) {
      // Joined once the message is whole: a row longer than many socket reads is copied once.
      this.rest.push(chunk);
      this.restBytes += chunk.length;
      if (this.restBytes < this.need) return;
      buf = Buffer.concat(this.rest, this.restBytes);
      this.rest = [];
      this.restBytes = 0;
    }
    const n = buf.length;
    let i = 0;
    while (i + 5 <= n) {
      const code = buf[i] as number;
      const end = i + 1 + buf.readUInt32BE(i + 1);
      if (code === COPY_DATA) {
        if (end > n) break;
        this.lines.push(buf.toString('utf8', i + 5, end));
      } else if (
        code !== COPY_OUT_RESPONSE &&
        code !== COPY_DONE &&
        code !== NOTICE &&
        code !== PARAMETER_STATUS &&
        code !== NOTIFICATION
      ) {
        return this.handBack(buf.subarray(i)); // CommandComplete or ErrorResponse: node-postgres's again
      } else if (end > n) break;
      i = end;
    }
    if (i < n) {
      this.rest.push(buf.subarray(i));
      this.restBytes = n - i;
      this.need = n - i < 5 ? 5 : 1 + buf.readUInt32BE(i + 1);
    }
  }

  /** Puts node-postgres's parser back on the socket and gives it the bytes from `from` on. */
  private handBack(from: Buffer): void {
    const stream = this.stream as Socket;
    const parser = this.parserListener as DataListener;
    stream.removeListener('data', this.onData);
    stream.on('data', parser);
    parser(from);
  }

  handleCommandComplete(): void {}

  /** The backend's ErrorResponse (then ReadyForQuery follows), or the connection lost. */
  handleError(err: Error): void {
    if (this.stream?.listeners('data').includes(this.onData)) {
      this.stream.removeListener('data', this.onData);
      this.stream.on('data', this.parserListener as DataListener);
    }
    this.reject(err);
  }

  handleReadyForQuery(): void {
    this.resolve(this.lines);
  }

  // The other callbacks node-postgres may call on a query: nothing of them happens for a COPY TO.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY (…) TO STDOUT` on `client`; resolves with its rows' lines. */
export function copyOutLines(client: pg.Client, sql: string): Promise<string[]> {
  const copy = new CopyOutLines(sql);
  client.query(copy);
  return copy.done;
}
