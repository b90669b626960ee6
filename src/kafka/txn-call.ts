import type { RdKafka } from '@confluentinc/kafka-javascript';

/**
 * One call of librdkafka's transactional API (init, begin, send offsets, commit, abort), as a
 * promise that settles even when librdkafka never answers.
 *
 * librdkafka 2.15 does not always honour the timeout it is given: `send_offsets_to_transaction`
 * waits for the group coordinator with no deadline once that coordinator is lost during the call
 * (the request's deadline is set but never checked: confluentinc/librdkafka#5456, and #5511 for a
 * coordinator that left the metadata). Seen here on 2026-12-07: the fault matrix's broker-restart
 * row left the processor blocked in it for minutes, a libuv worker thread parked inside the call
 * (gdb), no error, no log line, every partition's lag growing. So each call gets a deadline of its
 * own timeout plus HUNG_GRACE_MS: past it the promise rejects with a TxnHungError and the producer
 * must be treated as lost — librdkafka still holds the call (and the thread that made it), so the
 * producer can neither be used nor safely destroyed; the owner gives it up, and a process whose
 * producer hung should exit to be restarted (each hung call keeps one of libuv's four threads).
 */

export interface TxnError extends Error {
  fatal: boolean;
  abortable: boolean;
  retriable: boolean;
  /** librdkafka's error code. */
  code?: number;
  /** Set on a TxnHungError: librdkafka never answered the call. */
  hung?: boolean;
}

/** How long past its own timeout a transactional call may go unanswered before it counts as hung. */
export const HUNG_GRACE_MS = 15_000;

/** librdkafka never answered a transactional call: the producer is unusable and cannot be closed. */
export class TxnHungError extends Error implements TxnError {
  readonly fatal = true;
  readonly abortable = false;
  readonly retriable = false;
  readonly hung = true;

  constructor(
    readonly op: string,
    readonly waitedMs: number,
  ) {
    super(
      `librdkafka's ${op} did not answer within ${Math.round(waitedMs / 1000)} s, past its own timeout ` +
        '(a known librdkafka defect after a group coordinator is lost: confluentinc/librdkafka#5456); ' +
        'the transactional producer is unusable until the process restarts',
    );
    this.name = 'TxnHungError';
  }
}

/** True for a TxnHungError (or anything flagged `hung`). */
export function isHung(err: unknown): boolean {
  return Boolean((err as Partial<TxnError> | null)?.hung);
}

/** librdkafka's error with the flags the callers act on. */
export function toTxnError(err: unknown): TxnError {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & Partial<RdKafka.LibrdKafkaError>;
  return Object.assign(e, {
    fatal: Boolean(e.isFatal),
    abortable: Boolean(e.isTxnRequiresAbort),
    retriable: Boolean(e.isRetriable),
  }) as TxnError;
}

/**
 * Runs `fn` (which starts one librdkafka call and passes it the callback) and settles with its
 * answer, or rejects with a TxnHungError once `timeoutMs + graceMs` have passed without one (a late
 * answer is then ignored). The deadline's timer does not hold the process open.
 */
export function txnCall(
  op: string,
  timeoutMs: number,
  fn: (cb: (err: unknown) => void) => void,
  graceMs = HUNG_GRACE_MS,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const deadline = timeoutMs + graceMs;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new TxnHungError(op, deadline));
    }, deadline);
    timer.unref();
    fn((err) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      if (err) reject(toTxnError(err));
      else resolve();
    });
  });
}
