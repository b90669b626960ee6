import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openDirectTarget } from '../../src/backfill/direct-target.js';
import { runBackfill } from '../../src/backfill/run.js';
import { DEFAULT_PAGE_ROWS } from '../../src/backfill/target.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { replayDlq } from '../../src/dlq/replay.js';
import type { SinkFactory } from '../../src/core/sink-contract.js';
import { getSinkFactory } from '../../src/sinks/registry.js';
import { DUCKDB_ROW_GROUP_ROWS } from '../../src/sinks/warehouse/index.js';
import { PipelineError } from '../../src/core/errors.js';
import { registry } from '../../src/core/metrics.js';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry } from '../../src/core/types.js';
import { generateHistorical } from '../../src/generator/modes.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { pseudonym } from '../../src/core/pseudonym.js';
import { FakeBigQuery } from '../helpers/fake-bigquery.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';
import { openReader } from '../sinks/warehouse/warehouse-fixtures.js';

/**
 * `--direct`: the backfill writes the warehouse (DuckDB; BigQuery against its local fake) and the
 * external system itself, through the sinks' contract, without the enriched topic. Every event of
 * the range is stored once, bad rows reach the DLQ with their reason, a re-run adds nothing, what
 * a sink refuses is parked with the enriched event and replays from there, an interrupted run resumes under its own progress key, sinks that cannot be written so are refused,
 * and a DuckDB file held by another process is a clear error. The page reader's own tests are in
 * page-reader.test.ts.
 */

let env: TestEnv;
let db: pg.Client;
let receiver: RunningReceiver;
const log = createLogger('silent');
let fileNo = 0;

const configWith = (extra: Partial<Config> = {}): Config => ({
  ...env.config,
  DUCKDB_PATH: path.join(path.dirname(env.config.DUCKDB_PATH), `direct-${++fileNo}.duckdb`),
  EXTERNAL_API_URL: receiver.url,
  ...extra,
});

before(async () => {
  receiver = await startReceiver();
  env = await createTestEnv();
  db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  await generateHistorical(env.config, {
    days: 3,
    eventsPerDay: 2000,
    seed: 11,
    nowMs: Date.parse('2025-08-04T12:00:00Z'),
  });
  const content = await db.query<{ id: string }>('SELECT id FROM content WHERE length_seconds IS NOT NULL LIMIT 1');
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
     (NULL, gen_random_uuid(), 'play', '2025-08-02T10:00:00Z', 1000, 'web', '{}'),
     ($1, gen_random_uuid(), 'pause', '2025-08-02T10:00:01Z', -5, 'web', '{}')`,
    [content.rows[0]?.id],
  );
});

after(async () => {
  await db?.end();
  await env?.cleanup();
  await receiver?.close();
});

async function goodIds(fromIso: string, untilIso: string): Promise<Set<string>> {
  const res = await db.query<{ id: string }>(
    `SELECT id::text AS id FROM engagement_events WHERE event_ts >= $1 AND event_ts < $2 AND content_id IS NOT NULL AND (duration_ms IS NULL OR duration_ms >= 0)`,
    [fromIso, untilIso],
  );
  return new Set(res.rows.map((r) => r.id));
}

async function warehouseIds(file: string): Promise<{ ids: string[]; lineage: string[] }> {
  const r = await openReader(file);
  try {
    const rows = await r.rows(
      `SELECT CAST(event_id AS VARCHAR) AS id, origin, kafka_partition, kafka_offset FROM engagement_events_enriched`,
    );
    return {
      ids: rows.map((x) => String(x.id)),
      lineage: [
        ...new Set(rows.map((x) => `${String(x.origin)} ${String(x.kafka_partition)} ${String(x.kafka_offset)}`)),
      ],
    };
  } finally {
    r.close();
  }
}

describe('backfill --direct', () => {
  it('writes every event of the range once into the warehouse and the external system, bad rows to the DLQ, nothing to the topic', async () => {
    const config = configWith();
    const want = await goodIds('2025-08-02T00:00:00Z', '2025-08-04T00:00:00Z');
    assert.ok(want.size > 1000, `history in range: ${want.size}`);
    const before = receiver.stats().events_unique;
    const res = await runBackfill(
      config,
      {
        startDate: '2025-08-02',
        endDate: '2025-08-03',
        pageSize: 700,
        progress: false,
        direct: ['warehouse', 'external'],
      },
      log,
    );
    assert.deepEqual(
      { read: res.read, delivered: res.delivered, dlq: res.dlq },
      { read: want.size + 2, delivered: want.size, dlq: 2 },
    );

    const stored = await warehouseIds(config.DUCKDB_PATH);
    assert.equal(stored.ids.length, want.size, 'each event once');
    assert.deepEqual(new Set(stored.ids), want);
    assert.deepEqual(stored.lineage, ['backfill -1 -1'], 'origin backfill, no Kafka position');
    assert.equal(receiver.stats().events_unique - before, want.size, 'the external system counted each event once');
    for (const id of want) assert.ok(receiver.event(id), `receiver has ${id}`);

    const dlq = parseValues<DlqEntry>(await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ));
    assert.deepEqual(
      dlq.map((d) => [d.stage, d.topic]),
      [
        ['backfill', 'postgres:engagement_events'],
        ['backfill', 'postgres:engagement_events'],
      ],
    );
    assert.deepEqual(dlq.map((d) => d.reason.split(':')[0]).sort(), ['NEGATIVE_DURATION', 'NULL_CONTENT_ID']);
    assert.ok(
      dlq.every((d) => d.value_base64 && JSON.parse(Buffer.from(d.value_base64, 'base64').toString()).id === d.offset),
      'each with its source row',
    );
    assert.equal(
      (await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED)).length,
      0,
      'nothing went through the enriched topic',
    );

    // Run again: the same events, every one a duplicate in both sinks.
    const again = await runBackfill(
      config,
      {
        startDate: '2025-08-02',
        endDate: '2025-08-03',
        pageSize: 700,
        progress: false,
        direct: ['warehouse', 'external'],
      },
      log,
    );
    assert.equal(again.delivered, want.size);
    assert.equal((await warehouseIds(config.DUCKDB_PATH)).ids.length, want.size, 'a re-run adds no row');
    assert.equal(receiver.stats().events_unique - before, want.size, 'nor an external event');
  });

  it('imports pages as COPY writes them into DuckDB, storing what the row-by-row way stores; pages with a bad row go row by row', async () => {
    const fastPath = async () => {
      const metric = await registry.getSingleMetric('engage_sink_fast_path_batches_total')?.get();
      const of = (outcome: string) =>
        metric?.values.find((v) => v.labels.sink === 'warehouse' && v.labels.outcome === outcome)?.value ?? 0;
      return { written: of('written'), declined: of('declined') };
    };
    const run = (config: Config, bulk: boolean) =>
      runBackfill(
        config,
        { startDate: '2025-08-02', endDate: '2025-08-03', pageSize: 700, progress: false, direct: ['warehouse'], bulk },
        log,
      );
    // First with PII_FIELDS=none (the raw values, as before 2026-12-07); below with its default.
    const [bulkConfig, rowsConfig] = [configWith({ piiFields: [] }), configWith({ piiFields: [] })];
    const before = await fastPath();
    const bulk = await run(bulkConfig, true);
    const after = await fastPath();
    const rows = await run(rowsConfig, false);
    assert.equal((await fastPath()).written, after.written, 'the row-by-row run imported nothing');
    const want = await goodIds('2025-08-02T00:00:00Z', '2025-08-04T00:00:00Z');
    assert.deepEqual(
      { read: bulk.read, delivered: bulk.delivered, dlq: bulk.dlq },
      { read: want.size + 2, delivered: want.size, dlq: 2 },
    );
    assert.deepEqual(
      { read: rows.read, delivered: rows.delivered, dlq: rows.dlq },
      { read: bulk.read, delivered: bulk.delivered, dlq: bulk.dlq },
    );
    const pages = Math.ceil(bulk.read / 700);
    assert.ok(
      after.declined - before.declined >= 1 && after.declined - before.declined <= 2,
      'the one or two pages holding the bad rows were declined',
    );
    assert.equal(
      after.written - before.written + after.declined - before.declined,
      pages,
      'every other page was imported',
    );
    assert.deepEqual(
      { pages: bulk.pages, imported: bulk.importedPages },
      { pages, imported: after.written - before.written },
      'the result says so',
    );
    assert.deepEqual({ pages: rows.pages, imported: rows.importedPages }, { pages, imported: 0 });
    const stored = async (file: string) => {
      const r = await openReader(file);
      try {
        return await r.rows(
          `SELECT COLUMNS(* EXCLUDE (loaded_at, source_ts_ms, processed_ts_ms))::VARCHAR FROM engagement_events_enriched ORDER BY event_id`,
        );
      } finally {
        r.close();
      }
    };
    const [a, b] = [await stored(bulkConfig.DUCKDB_PATH), await stored(rowsConfig.DUCKDB_PATH)];
    assert.equal(a.length, want.size);
    assert.deepEqual(a, b, 'every column the same, but the moments of enrichment');

    // With PII_FIELDS' default the pages are still imported in bulk, PostgreSQL computing the
    // pseudonyms: the same pages, and every column what the row-by-row way (the stream's JS
    // pseudonym) stores; no raw user id anywhere in the file.
    const [piiBulkConfig, piiRowsConfig] = [configWith(), configWith()];
    assert.deepEqual(
      piiBulkConfig.piiFields,
      [{ table: 'engagement_events', column: 'user_id' }],
      'PII_FIELDS on by default',
    );
    const piiBulk = await run(piiBulkConfig, true);
    const piiRows = await run(piiRowsConfig, false);
    assert.deepEqual(
      { read: piiBulk.read, delivered: piiBulk.delivered, dlq: piiBulk.dlq, pages: piiBulk.pages },
      { read: bulk.read, delivered: bulk.delivered, dlq: bulk.dlq, pages },
    );
    assert.equal(piiBulk.importedPages, bulk.importedPages, 'as many pages imported in bulk as without protection');
    assert.equal(piiRows.importedPages, 0);
    const [pa, pb] = [await stored(piiBulkConfig.DUCKDB_PATH), await stored(piiRowsConfig.DUCKDB_PATH)];
    assert.equal(pa.length, want.size);
    assert.deepEqual(pa, pb, 'every column the same as the row-by-row way, pseudonyms included');
    const key = piiBulkConfig.piiKeys[0];
    assert.ok(key);
    const raw = await db.query<{ id: string; user_id: string | null }>(
      `SELECT id::text AS id, user_id::text AS user_id FROM engagement_events WHERE event_ts >= '2025-08-02' AND event_ts < '2025-08-04'`,
    );
    const rawOf = new Map(raw.rows.map((r) => [r.id, r.user_id]));
    const rawIds = new Set(raw.rows.flatMap((r) => (r.user_id ? [r.user_id, r.user_id.replaceAll('-', '')] : [])));
    assert.ok(rawIds.size > 100);
    const unprotected = new Map(a.map((row) => [String(row.event_id), row.user_id]));
    for (const row of pa) {
      const user = rawOf.get(String(row.event_id));
      assert.equal(row.user_id, user ? pseudonym(key, user) : null, `event ${String(row.event_id)}`);
      assert.equal(unprotected.get(String(row.event_id)), user ?? null, 'the unprotected file holds the raw id');
      for (const cell of Object.values(row))
        for (const word of String(cell).split(/[^0-9a-f-]+/))
          assert.ok(!rawIds.has(word), `raw user id ${word} in event ${String(row.event_id)}`);
    }
  });

  it('a page whose bulk import fails resolves null (counted as failed): the run then delivers it row by row, as a declined one', async () => {
    const failing: SinkFactory = {
      name: 'import-fails',
      dedupesByEventId: true,
      create: () => ({
        name: 'import-fails',
        start: async () => undefined,
        check: () => null,
        write: async () => undefined,
        storedOffsets: async () => new Map(),
        startPosition: () => 'earliest' as const,
        health: async () => ({ ok: true }),
        close: async () => undefined,
        importSourcePage: async () => {
          throw new PipelineError('SINK_WRITE_FAILED', 'disk on fire', { retriable: true });
        },
      }),
    };
    const failed = async () =>
      (await registry.getSingleMetric('engage_sink_fast_path_batches_total')?.get())?.values.find(
        (v) => v.labels.sink === 'import-fails' && v.labels.outcome === 'failed',
      )?.value ?? 0;
    const target = await openDirectTarget(configWith(), [failing], 'import-fails', log, { bulk: true });
    try {
      assert.ok(target.deliverSource, 'offered: every sink imports');
      const before = await failed();
      assert.equal(
        await target.deliverSource({
          file: '/nonexistent.csv',
          rows: 1,
          content: [],
          nowMs: Date.now(),
          deliveredBefore: 0,
        }),
        null,
      );
      assert.equal((await failed()) - before, 1);
    } finally {
      await target.close();
    }
    const noBulk = await openDirectTarget(configWith(), [failing], 'import-fails', log, { bulk: false });
    assert.equal(noBulk.deliverSource, undefined, '--no-bulk-import: never offered');
    await noBulk.close();
  });

  it('reads pages of one DuckDB row group when it writes DuckDB and no page size is given', async () => {
    const warehouse = getSinkFactory('warehouse');
    const external = getSinkFactory('external');
    assert.equal(
      warehouse.maxBulkRecords?.({ ...env.config, warehouse: 'bigquery' }),
      50_000,
      'BigQuery: 50,000 rows per write',
    );
    const pages = async (factories: ReturnType<typeof getSinkFactory>[]) => {
      const target = await openDirectTarget(configWith(), factories, 'page-size-check', log, { bulk: true });
      await target.close();
      return target.pageRows;
    };
    assert.equal(
      await pages([warehouse]),
      DUCKDB_ROW_GROUP_ROWS,
      'one DuckDB row group: written straight to the file, not through the WAL',
    );
    assert.equal(await pages([warehouse, external]), DUCKDB_ROW_GROUP_ROWS);
    assert.equal(await pages([external]), DEFAULT_PAGE_ROWS);

    const config = configWith();
    const want = await goodIds('2025-08-01T00:00:00Z', '2025-08-04T00:00:00Z');
    const res = await runBackfill(
      config,
      { startDate: '2025-08-01', endDate: '2025-08-03', progress: false, direct: ['warehouse'] },
      log,
    );
    assert.deepEqual({ read: res.read, delivered: res.delivered }, { read: want.size + 2, delivered: want.size });
    assert.deepEqual(new Set((await warehouseIds(config.DUCKDB_PATH)).ids), want);
  });

  it('writes BigQuery the same way (against the local fake of its API)', async () => {
    const fake = await FakeBigQuery.start('engage-test');
    try {
      const config = loadConfig({
        ...env.env,
        BIGQUERY_PROJECT_ID: 'engage-test',
        BIGQUERY_API_ENDPOINT: fake.url,
        BIGQUERY_WRITE_API: 'query', // the query-job backend, whose MERGE dedupes a re-run physically
        BIGQUERY_DATASET_ID: `ds_${env.id}`,
      });
      assert.equal(config.warehouse, 'bigquery');
      const want = await goodIds('2025-08-03T00:00:00Z', '2025-08-04T00:00:00Z');
      const res = await runBackfill(
        config,
        { startDate: '2025-08-03', endDate: '2025-08-03', pageSize: 500, progress: false, direct: ['warehouse'] },
        log,
      );
      assert.equal(res.delivered, want.size);
      const rows = fake.rows(`ds_${env.id}`, 'engagement_events_enriched');
      assert.equal(rows.length, want.size, 'each event once');
      assert.deepEqual(new Set(rows.map((r) => String(r.event_id))), want);
      assert.deepEqual(
        [...new Set(rows.map((r) => `${String(r.origin)} ${String(r.kafka_partition)} ${String(r.kafka_offset)}`))],
        ['backfill -1 -1'],
      );
      await runBackfill(
        config,
        { startDate: '2025-08-03', endDate: '2025-08-03', pageSize: 500, progress: false, direct: ['warehouse'] },
        log,
      );
      assert.equal(fake.rows(`ds_${env.id}`, 'engagement_events_enriched').length, want.size, 'a re-run adds no row');
    } finally {
      await fake.close();
    }
  });

  it('parks what a sink refuses in the DLQ with the event as its bytes while the other sink gets everything, and a replay delivers it', async () => {
    // 2025-08-04 has gone to no receiver yet (the first test sends 08-02..08-03 to it).
    const config = configWith();
    const want = await goodIds('2025-08-04T00:00:00Z', '2025-08-05T00:00:00Z');
    assert.ok(want.size > 300, `history in range: ${want.size}`);
    const dlqBefore = (await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ)).length;
    // The system refuses one event (422, not retriable): the POST holding it is split until it is alone.
    const refusedId = [...want].sort()[Math.floor(want.size / 2)] as string;
    receiver.control({ rejectEventIds: [refusedId] });
    let res;
    try {
      res = await runBackfill(
        config,
        {
          startDate: '2025-08-04',
          endDate: '2025-08-04',
          pageSize: 300,
          progress: false,
          direct: ['warehouse', 'external'],
        },
        log,
      );
    } finally {
      receiver.control({ rejectEventIds: [] });
    }
    assert.deepEqual(new Set((await warehouseIds(config.DUCKDB_PATH)).ids), want, 'the warehouse got every event');

    const parked = parseValues<DlqEntry>(
      (await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ)).slice(dlqBefore),
    ).filter((d) => d.stage === 'sink:external');
    assert.deepEqual(
      parked.map((d) => d.offset),
      [refusedId],
      'only the refused event is parked',
    );
    assert.deepEqual(res.parked, { 'sink:external': parked.length }, 'the run reports what each sink parked');
    for (const d of parked) {
      assert.equal(d.code, 'HTTP_REJECTED');
      assert.match(d.reason, /422/);
      assert.deepEqual(
        [d.topic, d.partition],
        ['postgres:engagement_events', 0],
        'the source table, no Kafka position',
      );
      const event = JSON.parse(Buffer.from(d.value_base64 ?? '', 'base64').toString()) as {
        event_id: string;
        content_id: string;
        origin: string;
      };
      assert.deepEqual(
        [event.event_id, event.content_id, event.origin],
        [d.offset, d.key, 'backfill'],
        'the enriched event, under its source row id',
      );
    }
    const parkedIds = new Set(parked.map((d) => d.offset));
    for (const id of want)
      assert.equal(
        receiver.event(id) !== undefined,
        !parkedIds.has(id),
        `event ${id}: in the receiver or in the DLQ, not both`,
      );

    const replay = await replayDlq(config, log, { stage: 'sink:external', factory: getSinkFactory('external') });
    assert.deepEqual([replay.pending, replay.replayed, replay.failedAgain], [parked.length, parked.length, 0]);
    for (const id of want) assert.ok(receiver.event(id), `event ${id} reached the receiver`);
  });

  it('an interrupted direct run resumes under its own progress key', async () => {
    const config = configWith();
    const want = await goodIds('2025-08-01T00:00:00Z', '2025-08-05T00:00:00Z');
    const abort = new AbortController();
    const key = '2025-08-01..2025-08-04|direct:warehouse';
    const first = runBackfill(
      config,
      {
        startDate: '2025-08-01',
        endDate: '2025-08-04',
        pageSize: 200,
        progress: false,
        direct: ['warehouse'],
        signal: abort.signal,
      },
      log,
    );
    const poll = setInterval(async () => {
      const r = await db.query<{ delivered: string }>(
        `SELECT delivered::text FROM engage_backfill_progress WHERE range_key = $1`,
        [key],
      );
      if (Number(r.rows[0]?.delivered ?? 0) >= 400) abort.abort();
    }, 5);
    const r1 = await first;
    clearInterval(poll);
    assert.ok(r1.read > 0 && r1.read < want.size, `interrupted part-way: read ${r1.read} of ${want.size}`);
    assert.equal((await warehouseIds(config.DUCKDB_PATH)).ids.length, r1.delivered, 'what was confirmed is stored');

    const r2 = await runBackfill(
      config,
      { startDate: '2025-08-01', endDate: '2025-08-04', pageSize: 200, progress: false, direct: ['warehouse'] },
      log,
    );
    assert.equal(r2.resumed, true);
    assert.equal(
      r1.read + r2.read,
      want.size + 2,
      'the second run reads exactly what the first did not (with the two bad rows)',
    );
    assert.deepEqual(new Set((await warehouseIds(config.DUCKDB_PATH)).ids), want);
    const topicProgress = await db.query(
      `SELECT 1 FROM engage_backfill_progress WHERE range_key = '2025-08-01..2025-08-04'`,
    );
    assert.equal(topicProgress.rowCount, 0, 'a topic run of the range would start from its beginning');
  });

  it('refuses sinks that cannot be written without Kafka, and a DuckDB file another process holds', async () => {
    const opts = { startDate: '2025-08-02', endDate: '2025-08-02', progress: false };
    await assert.rejects(
      runBackfill(configWith(), { ...opts, direct: ['redis'] }, log),
      (err: unknown) => err instanceof PipelineError && err.code === 'USAGE' && /Kafka offset/.test(err.message),
    );
    await assert.rejects(
      runBackfill(configWith(), { ...opts, direct: ['nope'] }, log),
      (err: unknown) =>
        err instanceof PipelineError &&
        err.code === 'USAGE' &&
        /known: external, file, redis, warehouse/.test(err.message),
    );

    const config = configWith();
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
      import { DuckDBInstance } from '@duckdb/node-api';
      const i = await DuckDBInstance.create(${JSON.stringify(config.DUCKDB_PATH)});
      await i.connect();
      console.log('ready');
      setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        holder.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      await assert.rejects(
        runBackfill(config, { ...opts, direct: ['warehouse'] }, log),
        (err: unknown) =>
          err instanceof PipelineError &&
          err.code === 'SERVICE_MISCONFIGURED' &&
          /stop `engage sink warehouse`/.test(err.message),
      );
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
