import http from 'node:http';
import https from 'node:https';
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
 *   401, 403, 404, 3xx (never followed) → HTTP_RETRIABLE, retriable: credentials or the address are
 *                                       wrong, which no record can cause; the sink waits until an
 *                                       operator fixes them instead of parking good events
 *   other 4xx (400, 413, 422…)        → HTTP_REJECTED, not retriable: the runtime splits the batch
 *                                       until the record refused alone is found, and DLQs that one
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

/** 4xx answers that say the sink is misconfigured (or the system is not ready), not the records bad. */
const WAIT_STATUSES = new Set([401, 403, 404, 408]);

/** The error for a non-2xx answer (pure). */
export function classifyStatus(
  status: number,
  retryAfter: string | null,
  body: string,
  now: number = Date.now(),
): HttpFailure {
  const outcome = outcomeOf(status);
  const snippet = body.length > 500 ? `${body.slice(0, 500)}…` : body;
  if (outcome === '5xx' || outcome === '429' || outcome === '3xx' || WAIT_STATUSES.has(status)) {
    const retryAfterMs = parseRetryAfter(retryAfter, now);
    return new HttpFailure(
      outcome,
      new PipelineError(
        'HTTP_RETRIABLE',
        `external system answered ${status}${retryAfterMs === undefined ? '' : ` (Retry-After ${retryAfterMs} ms)`}`,
        {
          retriable: true,
          details: { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), body: snippet },
        },
      ),
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

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** Node's http(s) request, resolved with the status, the headers and the whole answer body. */
function exchange(
  url: URL,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(url, {
      method: 'POST',
      agent: secure ? agents.https : agents.http,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
    });
    const timer = setTimeout(() => req.destroy(new TimeoutSignal(timeoutMs)), timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', (err) => req.destroy(err));
      res.once('end', () => {
        clearTimeout(timer);
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.end(body);
  });
}

class TimeoutSignal extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/**
 * POSTs `body` (JSON) to `url` on a kept-alive connection (node:http; measured cheaper per event
 * than fetch, docs/external.md). Resolves on 2xx with the answer; rejects with an HttpFailure
 * otherwise. The timeout covers the whole exchange, body included. Redirects are not followed.
 */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<PostResult> {
  let res: { status: number; retryAfter: string | null; text: string };
  try {
    res = await exchange(new URL(url), body, headers, timeoutMs);
  } catch (err) {
    if (err instanceof TimeoutSignal) {
      throw new HttpFailure(
        'timeout',
        new PipelineError('TIMEOUT', `external system did not answer within ${timeoutMs} ms`, {
          retriable: true,
          cause: err,
          details: { timeoutMs },
        }),
      );
    }
    const code = (err as { code?: unknown } | null)?.code;
    const network = typeof code === 'string' ? code : undefined;
    throw new HttpFailure(
      'network',
      new PipelineError(
        'HTTP_RETRIABLE',
        `external system unreachable: ${network ?? (err instanceof Error ? err.message : String(err))}`,
        {
          retriable: true,
          cause: err,
          details: { network: network ?? 'unknown' },
        },
      ),
    );
  }
  if (res.status >= 200 && res.status < 300) return { status: res.status, body: res.text };
  throw classifyStatus(res.status, res.retryAfter, res.text);
}
