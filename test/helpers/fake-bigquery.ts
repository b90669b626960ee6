import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decodeParams,
  JobError,
  runScript,
  type Row,
  type ScriptResult,
  type TableState,
} from './fake-bigquery-script.js';

export type { Row } from './fake-bigquery-script.js';

/**
 * A local fake of the BigQuery REST API — only the endpoints the warehouse sink calls — started by
 * a test on 127.0.0.1 and reached through the client's `apiEndpoint`. It records every request,
 * keeps datasets, tables (resource + rows) and jobs in memory, and answers like BigQuery does.
 *
 * Honesty: the fake does not run SQL. It EMULATES exactly the statement shapes the sink relies
 * on, with BigQuery's semantics, and rejects anything else with `invalidQuery`:
 * - the write script: DECLARE; BEGIN TRANSACTION; MERGE target USING UNNEST(@param) ON key
 *   equality (+ an optional `t.col BETWEEN @a AND @b` on the target) WHEN MATCHED [AND s.v >= t.v]
 *   THEN UPDATE SET … / WHEN NOT MATCHED THEN INSERT (…) VALUES (…); SET x = @@row_count;
 *   COMMIT TRANSACTION; SELECT x. Statements run on a copy of the tables that replaces them only
 *   at COMMIT, so a failed script changes nothing (BigQuery rolls an uncommitted transaction back).
 *   A MERGE inserts a source row when NO target row matches its ON condition — that is the
 *   dedupe by event_id the sink relies on — and, like BigQuery, does NOT dedupe source rows
 *   among themselves (two equal new ids in one source would both be inserted).
 * - the offsets read: SELECT kafka_partition, CAST(next_offset AS STRING) … WHERE topic = @topic;
 * - the Storage Write API backend's commit-log read (bigquery/commit-log.ts readDecisionsQuery):
 *   … WHERE topic = @topic QUALIFY DENSE_RANK() OVER (PARTITION BY kafka_partition ORDER BY
 *   next_offset DESC) <= k — rows its Storage Write API fake (fake-bigquery-storage.ts) committed;
 * - emptying a table: DELETE FROM `t` WHERE TRUE.
 * Parameters are decoded by their declared types (malformed values fail the job as BigQuery's
 * would), inserted values must name existing columns of a matching type, REQUIRED ones non-null.
 */

export type Route =
  | 'datasets.get'
  | 'datasets.insert'
  | 'tables.get'
  | 'tables.insert'
  | 'tables.patch'
  | 'jobs.insert'
  | 'jobs.get'
  | 'queries.get';

export interface RecordedRequest {
  route: Route | 'unknown';
  method: string;
  path: string;
  body: unknown;
}

interface Fault {
  route: Route;
  status: number;
  reason: string;
  message: string;
  times: number;
  /** Matching calls to let through before failing. */
  after: number;
  /** jobs.insert only: run (and commit) the job, then answer the error — a lost response. */
  afterApply: boolean;
}

interface JobState {
  resource: Row;
  result?: ScriptResult;
  error?: { reason: string; message: string };
}

export class FakeBigQuery {
  readonly requests: RecordedRequest[] = [];
  readonly datasets = new Map<string, Row>();
  readonly tables = new Map<string, TableState>();
  readonly jobs = new Map<string, JobState>();
  private readonly faults: Fault[] = [];
  private server!: http.Server;
  url = '';

  private constructor(readonly projectId: string) {}

  static async start(projectId: string): Promise<FakeBigQuery> {
    const fake = new FakeBigQuery(projectId);
    fake.server = http.createServer((req, res) => fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * After `after` more calls of `route` succeed, the next `times` calls answer HTTP `status` with
   * `reason` — before doing anything, or (`afterApply`, jobs.insert) after running the job.
   */
  fail(
    route: Route,
    opts: { status: number; reason: string; message?: string; times?: number; after?: number; afterApply?: boolean },
  ): void {
    this.faults.push({
      route,
      status: opts.status,
      reason: opts.reason,
      message: opts.message ?? `injected ${opts.reason}`,
      times: opts.times ?? 1,
      after: opts.after ?? 0,
      afterApply: opts.afterApply ?? false,
    });
  }

  /** Rows of `dataset.table` (committed state). */
  rows(dataset: string, table: string): Row[] {
    this.materialize();
    return this.tables.get(`${dataset}.${table}`)?.rows ?? [];
  }

  /** Rows committed elsewhere (the Storage Write API fake), added to `dataset.table` when tables are next read. */
  defer(table: string, rows: ReadonlyArray<() => Row>): void {
    this.deferred.push([table, rows]);
  }

  private readonly deferred: Array<[string, ReadonlyArray<() => Row>]> = [];

  private materialize(): void {
    for (const [table, rows] of this.deferred.splice(0)) {
      const target = this.tables.get(table)?.rows;
      if (target) for (const r of rows) target.push({ ...r() });
    }
  }

  requestsOf(route: Route): RecordedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.materialize();
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text ? JSON.parse(text) : undefined;
      const url = new URL(req.url ?? '/', this.url);
      const { route, params } = this.route(req.method ?? 'GET', url.pathname);
      this.requests.push({ route, method: req.method ?? 'GET', path: url.pathname, body });
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const error = (status: number, reason: string, message: string) =>
        reply(status, { error: { code: status, message, errors: [{ reason, message }] } });
      let fault = this.faults.find((f) => f.route === route && f.times > 0);
      if (fault && fault.after > 0) {
        fault.after--;
        fault = undefined;
      } else if (fault) fault.times--;
      if (fault && !fault.afterApply) return error(fault.status, fault.reason, fault.message);
      try {
        const [status, payload] = this.dispatch(route, params, body as Row | undefined);
        if (fault) return error(fault.status, fault.reason, fault.message);
        if (status >= 400) return error(status, String((payload as Row).reason), String((payload as Row).message));
        reply(status, payload);
      } catch (err) {
        error(500, 'internalError', (err as Error).message);
      }
    });
  }

  private route(method: string, pathname: string): { route: Route | 'unknown'; params: string[] } {
    const p = pathname.replace(/^\/bigquery\/v2\/projects\/[^/]+/, '');
    const table = /^\/datasets\/([^/]+)\/tables\/([^/]+)$/.exec(p);
    const rules: Array<[Route, boolean, RegExpExecArray | null]> = [
      ['datasets.get', method === 'GET', /^\/datasets\/([^/]+)$/.exec(p)],
      ['datasets.insert', method === 'POST', /^\/datasets$/.exec(p)],
      ['tables.get', method === 'GET', table],
      ['tables.patch', method === 'PATCH' || method === 'PUT', table],
      ['tables.insert', method === 'POST', /^\/datasets\/([^/]+)\/tables$/.exec(p)],
      ['jobs.insert', method === 'POST', /^\/jobs$/.exec(p)],
      ['jobs.get', method === 'GET', /^\/jobs\/([^/]+)$/.exec(p)],
      ['queries.get', method === 'GET', /^\/queries\/([^/]+)$/.exec(p)],
    ];
    const hit = rules.find(([, ok, m]) => ok && m);
    return hit
      ? { route: hit[0], params: (hit[2] as RegExpExecArray).slice(1).map(decodeURIComponent) }
      : { route: 'unknown', params: [] };
  }

  private dispatch(route: Route | 'unknown', params: string[], body: Row | undefined): [number, unknown] {
    const notFound = (what: string): [number, unknown] => [404, { reason: 'notFound', message: `Not found: ${what}` }];
    const exists = (what: string): [number, unknown] => [
      409,
      { reason: 'duplicate', message: `Already Exists: ${what}` },
    ];
    const [a = '', b = ''] = params;
    switch (route) {
      case 'datasets.get':
        return this.datasets.has(a) ? [200, this.datasets.get(a)] : notFound(`Dataset ${this.projectId}:${a}`);
      case 'datasets.insert': {
        const id = String((body?.datasetReference as Row | undefined)?.datasetId);
        if (this.datasets.has(id)) return exists(`Dataset ${this.projectId}:${id}`);
        const resource = {
          ...body,
          kind: 'bigquery#dataset',
          id: `${this.projectId}:${id}`,
          datasetReference: { projectId: this.projectId, datasetId: id },
        };
        this.datasets.set(id, resource);
        return [200, resource];
      }
      case 'tables.get':
        return this.tables.has(`${a}.${b}`)
          ? [200, this.tables.get(`${a}.${b}`)?.resource]
          : notFound(`Table ${this.projectId}:${a}.${b}`);
      case 'tables.insert': {
        const id = String((body?.tableReference as Row | undefined)?.tableId);
        if (!this.datasets.has(a)) return notFound(`Dataset ${this.projectId}:${a}`);
        if (this.tables.has(`${a}.${id}`)) return exists(`Table ${this.projectId}:${a}.${id}`);
        const resource = {
          ...body,
          kind: 'bigquery#table',
          id: `${this.projectId}:${a}.${id}`,
          type: body?.view ? 'VIEW' : 'TABLE',
        } as TableState['resource'];
        this.tables.set(`${a}.${id}`, { resource, rows: [] });
        return [200, resource];
      }
      case 'tables.patch': {
        const t = this.tables.get(`${a}.${b}`);
        if (!t) return notFound(`Table ${this.projectId}:${a}.${b}`);
        Object.assign(t.resource, body);
        return [200, t.resource];
      }
      case 'jobs.insert':
        return [200, this.runJob(body ?? {})];
      case 'jobs.get': {
        const job = this.jobs.get(a);
        return job ? [200, job.resource] : notFound(`Job ${this.projectId}:${a}`);
      }
      case 'queries.get': {
        const job = this.jobs.get(a);
        if (!job) return notFound(`Job ${this.projectId}:${a}`);
        if (job.error) return [400, job.error];
        const result = job.result ?? { schema: [], rows: [] };
        return [
          200,
          {
            kind: 'bigquery#getQueryResultsResponse',
            jobReference: job.resource.jobReference,
            jobComplete: true,
            totalRows: String(result.rows.length),
            schema: { fields: result.schema },
            rows: result.rows.map((r) => ({
              f: result.schema.map((f) => ({
                v: r[f.name] === null || r[f.name] === undefined ? null : String(r[f.name]),
              })),
            })),
          },
        ];
      }
      default:
        return [400, { reason: 'invalid', message: 'the fake BigQuery does not serve this endpoint' }];
    }
  }

  private runJob(body: Row): Row {
    const ref = (body.jobReference ?? {}) as Row;
    const jobId = String(ref.jobId);
    const config = ((body.configuration as Row | undefined)?.query ?? {}) as Row;
    const resource: Row = {
      ...body,
      kind: 'bigquery#job',
      id: `${this.projectId}:${String(ref.location ?? 'US')}.${jobId}`,
      status: { state: 'DONE' },
    };
    const job: JobState = { resource };
    try {
      const params = decodeParams(config.queryParameters);
      job.result = runScript(String(config.query ?? ''), params, this.tables);
    } catch (err) {
      const e = err instanceof JobError ? err : new JobError('internalError', (err as Error).message);
      job.error = { reason: e.reason, message: e.message };
      resource.status = { state: 'DONE', errorResult: job.error, errors: [job.error] };
    }
    this.jobs.set(jobId, job);
    return resource;
  }
}
