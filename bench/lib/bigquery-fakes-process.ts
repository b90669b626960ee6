import { createInterface } from 'node:readline';
import { FakeBigQuery } from '../../test/helpers/fake-bigquery.js';
import { FakeBigQueryStorage } from '../../test/helpers/fake-bigquery-storage.js';

/**
 * The local fakes of BigQuery (REST) and of its Storage Write API (gRPC) as a process of their own,
 * for bench/warehouse-bigquery.bench.ts: the service's work (checking the rows) then runs outside
 * the sink's process, as it would on Google's side. Prints one JSON line with both URLs, then
 * answers one JSON line per command line on stdin (bigquery-fakes-client.ts):
 * - `cpu`: this process's CPU time so far, in µs;
 * - `settle <dataset>`: the fact rows of the dataset, converted now (the REST fake converts stored
 *   rows when a table is next read — any REST request, e.g. the next round's schema check — so the
 *   bench settles a round's rows between rounds, not during the next one), and their count;
 * - `watch <dataset>`: from now on, note when rows of the dataset's fact table become visible
 *   (committed); `freshness <dataset>`: per row noted, visible time − its `source_ts_ms`, as
 *   percentiles in ms.
 * Serves until stdin closes.
 */
const FACT = 'engagement_events_enriched';
const rest = await FakeBigQuery.start(process.argv[2] ?? 'bench-project');
const storage = await FakeBigQueryStorage.start(rest);

const watched = new Set<string>();
const visible = new Map<string, Array<[number, ReadonlyArray<() => Record<string, unknown>>]>>();
const defer = rest.defer.bind(rest);
rest.defer = (table, rows) => {
  if (watched.has(table)) visible.get(table)?.push([Date.now(), rows]);
  defer(table, rows);
};

function freshness(dataset: string): object {
  const lags: number[] = [];
  for (const [at, rows] of visible.get(`${dataset}.${FACT}`) ?? [])
    for (const row of rows) lags.push(at - Number(row().source_ts_ms));
  lags.sort((a, b) => a - b);
  const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] ?? null;
  return { rows: lags.length, p50: q(0.5), p99: q(0.99), max: lags.at(-1) ?? null };
}

function answer(line: string): object {
  const [command, dataset = ''] = line.trim().split(/\s+/);
  const cpu = process.cpuUsage();
  const cpuUs = cpu.user + cpu.system;
  if (command === 'cpu') return { cpuUs };
  if (command === 'settle') return { rows: rest.rows(dataset, FACT).length, cpuUs };
  if (command === 'watch') {
    watched.add(`${dataset}.${FACT}`);
    visible.set(`${dataset}.${FACT}`, []);
    return { watching: dataset };
  }
  if (command === 'freshness') return freshness(dataset);
  return { error: `unknown command ${command}` };
}

process.stdout.write(`${JSON.stringify({ rest: rest.url, storage: storage.url })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => process.stdout.write(`${JSON.stringify(answer(line))}\n`));
lines.on('close', () => {
  void storage
    .close()
    .then(() => rest.close())
    .then(() => process.exit(0));
});
