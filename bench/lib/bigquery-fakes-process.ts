import { FakeBigQuery } from '../../test/helpers/fake-bigquery.js';
import { FakeBigQueryStorage } from '../../test/helpers/fake-bigquery-storage.js';

/**
 * The local fakes of BigQuery (REST) and of its Storage Write API (gRPC) as a process of their own,
 * for bench/warehouse-bigquery.bench.ts: the service's work (decoding the rows) then runs outside
 * the sink's process, as it would on Google's side. Prints one JSON line with both URLs, serves
 * until stdin closes, then prints how many fact rows it holds per dataset.
 */
const rest = await FakeBigQuery.start(process.argv[2] ?? 'bench-project');
const storage = await FakeBigQueryStorage.start(rest);
process.stdout.write(`${JSON.stringify({ rest: rest.url, storage: storage.url })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  const rows = Object.fromEntries(
    [...rest.datasets.keys()].map((d) => [d, rest.rows(d, 'engagement_events_enriched').length]),
  );
  process.stdout.write(`${JSON.stringify({ rows })}\n`);
  void storage
    .close()
    .then(() => rest.close())
    .then(() => process.exit(0));
});
