import { PipelineError } from '../../core/errors.js';

/**
 * One HTTP POST to the external system, classified into the pipeline's error codes. No retries
 * here: the runtime retries the batch (src/runtime/retry.ts), reading `details.retryAfterMs`.
 *
 * Classification (the contract the runtime and the DLQ rely on):
 *   2xx                               → resolved
 *   network error (refused, reset…)   → HTTP_RETRIABLE, retriable        outcome 'network'
 *   no answer within timeoutMs        → TIMEOUT, retriable               outcome 'timeout'
 *   5xx, 408, 429                     → HTTP_RETRIABLE, retriable; 429 and 503 carry Retry-After
 *                                       (seconds or HTTP-date) as details.retryAfterMs
 *   other 4xx, 3xx (never followed)   → HTTP_REJECTED, not retriable (the runtime DLQs the batch)
 */

export type RequestOutcome = '2xx' | '3xx' | '4xx' | '429' | '5xx' | 'network' | 'timeout';

export interface PostResult {
  status: number;
  body: string;
}

export class HttpFailure extends PipelineError {
  constructor(
    readonly outcome: RequestOutcome,
    error: PipelineError,
  ) {
    super(error.code, error.message, { retriable: error.retriable, cause: error.cause, details: error.details });
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Parses EXTERNAL_API_AUTH_HEADER: `Name: value` (e.g. `Authorization: Bearer abc`, `X-Api-Key: k`).
 * A line whose part before the first colon is not a header name (e.g. `Bearer abc`) is taken as
 * the whole value of `Authorization`.
 */
export function parseAuthHeader(line: string): { name: string; value: string } {
  const idx = line.indexOf(':');
  const name = idx > 0 ? line.slice(0, idx).trim() : '';
  if (idx > 0 && TOKEN.test(name)) return { name: name.toLowerCase(), value: line.slice(idx + 1).trim() };
  return { name: 'authorization', value: line.trim() };
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP-date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function outcomeOf(status: number): RequestOutcome {
  if (status === 429) return '429';
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}

/** The error for a non-2xx answer (pure). */
export function classifyStatus(status: number, retryAfter: string | null, body: string, now: number = Date.now()): HttpFailure {
  const outcome = outcomeOf(status);
  const snippet = body.length > 500 ? `${body.slice(0, 500)}…` : body;
  if (outcome === '5xx' || outcome === '429' || status === 408) {
    const retryAfterMs = parseRetryAfter(retryAfter, now);
    return new HttpFailure(
      outcome,
      new PipelineError('HTTP_RETRIABLE', `external system answered ${status}${retryAfterMs === undefined ? '' : ` (Retry-After ${retryAfterMs} ms)`}`, {
        retriable: true,
        details: { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), body: snippet },
      }),
    );
  }
  return new HttpFailure(
    outcome,
    new PipelineError('HTTP_REJECTED', `external system rejected the batch with ${status}`, {
      retriable: false,
      details: { status, body: snippet },
    }),
  );
}

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/**
 * POSTs `body` (JSON) to `url`. Resolves on 2xx with the answer; rejects with an HttpFailure
 * otherwise. The timeout covers the whole exchange, body included.
 */
export async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<PostResult> {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      redirect: 'manual',
      signal,
    });
    text = await res.text();
  } catch (err) {
    if (signal.aborted) {
      throw new HttpFailure(
        'timeout',
        new PipelineError('TIMEOUT', `external system did not answer within ${timeoutMs} ms`, { retriable: true, cause: err, details: { timeoutMs } }),
      );
    }
    const code = causeCode(err);
    throw new HttpFailure(
      'network',
      new PipelineError('HTTP_RETRIABLE', `external system unreachable: ${code ?? (err instanceof Error ? err.message : String(err))}`, {
        retriable: true,
        cause: err,
        details: { network: code ?? 'unknown' },
      }),
    );
  }
  if (res.status >= 200 && res.status < 300) return { status: res.status, body: text };
  throw classifyStatus(res.status, res.headers.get('retry-after'), text);
}
