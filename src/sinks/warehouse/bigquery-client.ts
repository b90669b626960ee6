import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import type { Config } from '../../config/load.js';
import { errorMessage, isRetriable, PipelineError } from '../../core/errors.js';

/**
 * The BigQuery client of the warehouse sink, and how its failures become PipelineErrors.
 *
 * Credentials: GOOGLE_APPLICATION_CREDENTIALS, else `config/bigquery-credentials.json` when it
 * exists, else Google's application-default credentials. With BIGQUERY_API_ENDPOINT set and no
 * key file (a local emulator or the tests' fake), requests carry a placeholder bearer token and no
 * credential lookup happens. The client's own retries are off: the sink runtime retries batches
 * (one retry policy, src/runtime/retry.ts).
 */

export const DEFAULT_CREDENTIALS_FILE = path.join('config', 'bigquery-credentials.json');
/** Per-HTTP-request timeout: a hung request fails (retriable) instead of holding the partition. */
const REQUEST_TIMEOUT_MS = 60000;

export function credentialsFile(config: Config, cwd = process.cwd()): string | undefined {
  if (config.GOOGLE_APPLICATION_CREDENTIALS) return path.resolve(cwd, config.GOOGLE_APPLICATION_CREDENTIALS);
  const fallback = path.resolve(cwd, DEFAULT_CREDENTIALS_FILE);
  return existsSync(fallback) ? fallback : undefined;
}

/** An AuthClient that signs nothing: for an emulator endpoint without credentials. */
const emulatorAuth = {
  getRequestHeaders: async () => new Headers({ authorization: 'Bearer emulator' }),
  getUniverseDomain: async () => 'googleapis.com',
};

export function createBigQueryClient(config: Config): BigQuery {
  const projectId = config.BIGQUERY_PROJECT_ID;
  if (!projectId)
    throw new PipelineError('CONFIG_INVALID', 'BIGQUERY_PROJECT_ID is not set: the BigQuery warehouse needs a project');
  // `timeout` is honoured by the client's Service base class but missing from BigQueryOptions.
  const options: BigQueryOptions & { timeout: number } = {
    projectId,
    location: config.BIGQUERY_LOCATION,
    retryOptions: { autoRetry: false, maxRetries: 0 },
    timeout: REQUEST_TIMEOUT_MS,
    userAgent: 'engagement-pipeline',
  };
  if (config.BIGQUERY_API_ENDPOINT) options.apiEndpoint = config.BIGQUERY_API_ENDPOINT.replace(/\/+$/, '');
  const keyFilename = credentialsFile(config);
  if (keyFilename) {
    if (!existsSync(keyFilename)) {
      throw new PipelineError(
        'CONFIG_INVALID',
        `GOOGLE_APPLICATION_CREDENTIALS=${keyFilename}: no such file (a service-account key JSON)`,
      );
    }
    options.keyFilename = keyFilename;
  } else if (config.BIGQUERY_API_ENDPOINT) {
    // google-auth-library only calls getRequestHeaders on a provided client; the cast is the
    // library's own AuthClient type, which this placeholder does not extend.
    options.authClient = emulatorAuth as unknown as BigQueryOptions['authClient'];
  }
  return new BigQuery(options);
}

interface ApiErrorShape {
  code?: unknown;
  errors?: Array<{ reason?: string; message?: string }>;
}

const RETRIABLE_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'jobRateLimitExceeded',
  'quotaExceeded',
  'tableUnavailable',
  'jobBackendError',
  'jobInternalError',
  'timeout',
  'aborted',
]);

/** Reasons of the error (HTTP body `errors[].reason`, or a job's errorResult). */
export function errorReasons(err: unknown): string[] {
  const errors = (err as ApiErrorShape | null)?.errors;
  return Array.isArray(errors) ? errors.map((e) => e.reason ?? '').filter(Boolean) : [];
}

/**
 * A BigQuery failure as a PipelineError. Retriable: network errors, HTTP 408/429/5xx, the transient
 * reasons above, a transaction aborted by a concurrent one; auth and permission errors too (an
 * operator fixes them; the batch must not be parked for it). SINK_STATE_LOST: a table or dataset
 * not found (dropped while running) — the sink re-creates the schema, the runtime re-reads the
 * stored offsets. Not retriable: an invalid query or value (`invalid`, `invalidQuery`).
 */
export function classifyBigQueryError(err: unknown, during: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = `BigQuery ${during} failed: ${errorMessage(err)}`;
  const status =
    typeof (err as ApiErrorShape | null)?.code === 'number' ? ((err as ApiErrorShape).code as number) : undefined;
  const reasons = errorReasons(err);
  const details = { status, reasons };
  if (status === 404 || reasons.includes('notFound')) {
    return new PipelineError('SINK_STATE_LOST', message, { retriable: true, cause: err, details });
  }
  if (/concurrent update|could not serialize|transaction.*aborted/i.test(errorMessage(err))) {
    return new PipelineError('SINK_WRITE_FAILED', message, { retriable: true, cause: err, details });
  }
  if (
    status === 401 ||
    status === 403 ||
    reasons.some((r) => r === 'accessDenied' || r === 'forbidden' || r === 'unauthorized')
  ) {
    if (!reasons.some((r) => RETRIABLE_REASONS.has(r))) {
      return new PipelineError('SERVICE_MISCONFIGURED', message, { retriable: true, cause: err, details });
    }
  }
  const transient =
    isRetriable(err) ||
    status === undefined ||
    status === 408 ||
    status === 429 ||
    status >= 500 ||
    reasons.some((r) => RETRIABLE_REASONS.has(r)) ||
    /socket hang up|ECONNRESET|ECONNREFUSED|ETIMEDOUT|network/i.test(errorMessage(err));
  if (transient && !reasons.some((r) => r === 'invalid' || r === 'invalidQuery')) {
    return new PipelineError('SINK_WRITE_FAILED', message, { retriable: true, cause: err, details });
  }
  return new PipelineError('SINK_REJECTED', message, { retriable: false, cause: err, details });
}

/** A query parameter as jobs.insert takes it (bigquery-script.ts builds them). */
export interface JobParameter {
  name: string;
  parameterType: object;
  parameterValue: object;
}

/**
 * Runs one query job to completion and returns its rows; a failure is thrown classified
 * (classifyBigQueryError). `what` names the job (its id starts with it, for the job history).
 */
export async function runQueryJob(
  bq: BigQuery,
  location: string,
  query: string,
  params: readonly JobParameter[],
  what: string,
): Promise<Array<Record<string, unknown>>> {
  const jobId = `engage_wh_${what.replace(/[^A-Za-z0-9_-]/g, '_')}_${Date.now()}_${randomBytes(4).toString('hex')}`;
  try {
    const [job] = await bq.createQueryJob({
      query,
      queryParameters: params as never,
      parameterMode: 'NAMED',
      useLegacySql: false,
      jobId,
      location,
      labels: { component: 'engage-sink-warehouse' },
    });
    const [rows] = await job.getQueryResults();
    return rows as Array<Record<string, unknown>>;
  } catch (err) {
    throw classifyBigQueryError(err, `job ${jobId}`);
  }
}
