import { managedwriter } from '@google-cloud/bigquery-storage';
import { grpc, type ClientOptions } from 'google-gax';
import type { Config } from '../../../config/load.js';
import { errorMessage, PipelineError } from '../../../core/errors.js';
import { credentialsFile } from '../bigquery-client.js';

/**
 * The Storage Write API client of the BigQuery warehouse (`@google-cloud/bigquery-storage`'s
 * managed writer), and how its failures become PipelineErrors.
 *
 * Endpoint: Google's, or BIGQUERY_STORAGE_API_ENDPOINT (http: plaintext without credentials — a
 * local fake such as the tests'; https: TLS with the usual credentials). Credentials as for the
 * REST client (bigquery-client.ts): GOOGLE_APPLICATION_CREDENTIALS, else
 * config/bigquery-credentials.json, else application-default credentials. The managed writer's
 * own append retries stay off: a failed flush is retried whole, on new streams, by the runtime.
 */

export type WriterClient = managedwriter.WriterClient;

export function createWriterClient(config: Config): WriterClient {
  // The universe named, so google-auth-library never asks a metadata server which one it is.
  const options: ClientOptions = { projectId: config.BIGQUERY_PROJECT_ID, universeDomain: 'googleapis.com' };
  const endpoint = config.BIGQUERY_STORAGE_API_ENDPOINT;
  if (config.BIGQUERY_API_ENDPOINT && !endpoint) {
    // A REST endpoint elsewhere (an emulator) with the writes going to Google's would split the warehouse.
    throw new PipelineError(
      'CONFIG_INVALID',
      'BIGQUERY_API_ENDPOINT is set but BIGQUERY_STORAGE_API_ENDPOINT is not: point the Storage Write API at the same place, or set BIGQUERY_WRITE_API=query',
    );
  }
  if (endpoint) {
    const u = new URL(endpoint);
    options.apiEndpoint = u.hostname;
    options.port = Number(u.port || (u.protocol === 'http:' ? 80 : 443));
    if (u.protocol === 'http:') options.sslCreds = grpc.credentials.createInsecure();
  }
  const keyFilename = credentialsFile(config);
  if (keyFilename && !options.sslCreds) options.keyFilename = keyFilename;
  options.clientConfig = NO_CLIENT_RETRIES;
  const client = new managedwriter.WriterClient(options);
  client.enableWriteRetries(false);
  return client;
}

/** Per-call deadline of the unary calls (the library's default lets CreateWriteStream wait 20 minutes). */
const CALL_TIMEOUT_MS = 60_000;
const METHODS = ['CreateWriteStream', 'GetWriteStream', 'FinalizeWriteStream', 'BatchCommitWriteStreams', 'FlushRows'];

/**
 * The generated client retries the unary calls itself (CreateWriteStream from 10 s on, for up to
 * 10 minutes): off, as for the REST client — the runtime retries the whole flush with the sink's
 * backoff (one retry policy, src/runtime/retry.ts), and every call here is safe to repeat.
 */
const NO_CLIENT_RETRIES = {
  interfaces: {
    'google.cloud.bigquery.storage.v1.BigQueryWrite': {
      // google-gax reads a method's retry_codes_name from the override's own retry_codes only.
      retry_codes: { none: [] },
      methods: Object.fromEntries(
        METHODS.map((m) => [m, { timeout_millis: CALL_TIMEOUT_MS, retry_codes_name: 'none' }]),
      ),
    },
  },
};

/** gRPC status codes (google.rpc.Code) by name, for messages and the classification below. */
const Status = grpc.status;

const TRANSIENT = new Set<number>([
  Status.CANCELLED,
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
  Status.ABORTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  // A fresh stream per flush: an offset conflict or a refused state means this attempt is
  // spoiled, not the records; the retry writes them on new streams.
  Status.ALREADY_EXISTS,
  Status.OUT_OF_RANGE,
  Status.FAILED_PRECONDITION,
]);

export interface StorageFailure {
  code?: number | null;
  message?: string | null;
  /** AppendRowsResponse.row_errors: the rows the service refused, with its reason. */
  rowErrors?: ReadonlyArray<{ index?: number | string | null; message?: string | null }> | null;
}

/**
 * A Storage Write API failure (a gRPC error, or an AppendRowsResponse's `error`) as a PipelineError:
 * - transient codes above, and anything without a code (a dropped connection): SINK_WRITE_FAILED,
 *   retriable — the runtime waits and writes the batch again;
 * - UNAUTHENTICATED / PERMISSION_DENIED: SERVICE_MISCONFIGURED, retriable (an operator fixes the
 *   credentials; nothing is parked for it);
 * - NOT_FOUND (a table dropped while running): SINK_STATE_LOST — the schema is made again and the
 *   runtime re-reads the stored offsets;
 * - INVALID_ARGUMENT (a row the service refuses, with `row_errors`): SINK_REJECTED, not retriable —
 *   the runtime splits the batch until the one record is found and parks it with this reason.
 */
export function classifyStorageError(err: unknown, during: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const f = (err ?? {}) as StorageFailure;
  const code = typeof f.code === 'number' ? f.code : undefined;
  const rows = (f.rowErrors ?? []).map((r) => `row ${String(r.index)}: ${r.message ?? ''}`);
  const base = f.message ?? errorMessage(err);
  const message = `BigQuery Storage Write API ${during} failed: ${base}${rows.length ? ` (${rows.join('; ')})` : ''}`;
  const details = { grpcCode: code === undefined ? null : (Status[code] ?? code), rowErrors: rows.length };
  if (code === Status.NOT_FOUND)
    return new PipelineError('SINK_STATE_LOST', message, { retriable: true, cause: err, details });
  if (code === Status.UNAUTHENTICATED || code === Status.PERMISSION_DENIED)
    return new PipelineError('SERVICE_MISCONFIGURED', message, { retriable: true, cause: err, details });
  if (code === undefined || TRANSIENT.has(code))
    return new PipelineError('SINK_WRITE_FAILED', message, { retriable: true, cause: err, details });
  return new PipelineError('SINK_REJECTED', message, { retriable: false, cause: err, details });
}
