/**
 * Coded errors. Every error that crosses a component boundary is a PipelineError with a stable
 * `code` and a `retriable` flag: the runtime's retry helper retries only retriable errors, and a
 * non-retriable error on a record sends that record to the dead-letter queue with the code as reason.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SERVICE_UNREACHABLE'
  | 'SERVICE_MISCONFIGURED'
  | 'STACK_START_FAILED'
  | 'USAGE'
  | 'DECODE_FAILED'
  | 'MISSING_FIELD'
  | 'INVALID_VALUE'
  | 'UNKNOWN_CONTENT'
  | 'UNSUPPORTED_CHANGE'
  | 'SCHEMA_INCOMPATIBLE'
  | 'SINK_WRITE_FAILED'
  | 'SINK_REJECTED'
  | 'SINK_STATE_LOST'
  | 'HTTP_RETRIABLE'
  | 'HTTP_REJECTED'
  | 'CIRCUIT_OPEN'
  | 'TIMEOUT'
  | 'SLOT_IN_USE'
  | 'FENCED'
  | 'CONSUMER_STARVED'
  | 'INTERNAL';

export interface PipelineErrorOptions {
  retriable?: boolean;
  /**
   * False for a failure that says nothing about the work itself (a circuit breaker refusing to
   * call a system known to be down): the retry helper waits and tries again without spending one
   * of the bounded attempts, so an outage holds records back instead of dead-lettering them.
   */
  consumesAttempt?: boolean;
  cause?: unknown;
  /** Free-form context shown in logs and DLQ entries (never secrets). */
  details?: Record<string, unknown>;
}

export class PipelineError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly consumesAttempt: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: PipelineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipelineError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.consumesAttempt = options.consumesAttempt ?? true;
    this.details = options.details;
  }
}

/** True when a sink reports its own state gone (SINK_STATE_LOST): the runtime re-positions its partitions. */
export function isStateLost(err: unknown): boolean {
  return err instanceof PipelineError && err.code === 'SINK_STATE_LOST';
}

/**
 * True when restarting the process cannot help: its configuration is invalid (CONFIG_INVALID,
 * USAGE), a service is set up in a way only its operator can change (a non-retriable
 * SERVICE_MISCONFIGURED, such as wal_level = replica), or a schema change was refused by the
 * registry's compatibility rule (SCHEMA_INCOMPATIBLE: the operator reverts it or changes the rule).
 */
export function isFatal(err: unknown): boolean {
  if (!(err instanceof PipelineError)) return false;
  return (
    err.code === 'CONFIG_INVALID' ||
    err.code === 'USAGE' ||
    err.code === 'SCHEMA_INCOMPATIBLE' ||
    (err.code === 'SERVICE_MISCONFIGURED' && !err.retriable)
  );
}

/** The CLI's exit code for a usage error (unknown command, flag or value). */
export const EXIT_USAGE = 2;
/** sysexits.h EX_CONFIG: a fatal error (isFatal) — a supervisor must not restart the command. */
export const EXIT_CONFIG = 78;

/**
 * The CLI's exit code for a command that failed with `err`: EXIT_USAGE for USAGE, EXIT_CONFIG for
 * any other fatal error, 1 otherwise (a restart may help). `engage run` stops restarting a
 * component on the first two, as systemd does with `RestartPreventExitStatus=2 78`.
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof PipelineError && err.code === 'USAGE') return EXIT_USAGE;
  return isFatal(err) ? EXIT_CONFIG : 1;
}

/** True when `err` is worth another attempt: a retriable PipelineError or a transient network error. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof PipelineError) return err.retriable;
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
  );
}

/** Normalises anything thrown into a PipelineError, keeping the original as `cause`. */
export function toPipelineError(err: unknown, fallback: ErrorCode = 'INTERNAL'): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PipelineError(fallback, message, { retriable: isRetriable(err), cause: err });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
