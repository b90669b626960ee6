import { envSchema } from './schema.js';

/**
 * Environment variables that look like this project's settings but are none of them: a name from
 * another tool (KAFKA_BROKERS) or a typo (REDIS_UR) would otherwise be ignored without a word while
 * the default is used. Pure; loadConfig prints the warnings once per process.
 */

/** The prefixes of the settings in schema.ts; a variable with one of them is expected to be a setting. */
const PREFIXES = [
  'DATABASE_',
  'KAFKA_',
  'REDIS_',
  'DUCKDB_',
  'BIGQUERY_',
  'WAREHOUSE_',
  'EXTERNAL_',
  'PROCESSOR_',
  'CDC_',
  'SINK_',
  'API_',
  'STACK_',
  'BATCH_',
  'CONTENT_',
  'BACKFILL_',
  'GENERATOR_',
  'HEALTH_',
];

/** Names other tools use for what a setting of ours does. */
const ALIASES: Readonly<Record<string, string>> = {
  KAFKA_BROKERS: 'KAFKA_BOOTSTRAP_SERVERS',
  KAFKA_BROKER: 'KAFKA_BOOTSTRAP_SERVERS',
  KAFKA_BOOTSTRAP_SERVER: 'KAFKA_BOOTSTRAP_SERVERS',
  KAFKA_URL: 'KAFKA_BOOTSTRAP_SERVERS',
  DATABASE_URI: 'DATABASE_URL',
  REDIS_HOST: 'REDIS_URL',
  REDIS_PORT: 'REDIS_URL',
  REDIS_URI: 'REDIS_URL',
  BIGQUERY_PROJECT: 'BIGQUERY_PROJECT_ID',
  BIGQUERY_DATASET: 'BIGQUERY_DATASET_ID',
};

/** Settings that existed and were removed, with what replaced them (said instead of a guess). */
const RETIRED: Readonly<Record<string, string>> = {
  EXTERNAL_MAX_ATTEMPTS:
    'a retriable failure of the external system is retried for as long as it lasts, and only a record the system refuses alone goes to the DLQ (docs/sinks.md)',
  ENABLE_EXACTLY_ONCE:
    'the pipeline is always exactly once (Kafka transactions, offsets stored with the data); there is no at-least-once mode to switch to',
  CDC_MIN_COMMIT_GAP_MS:
    "the CDC paces its Kafka commits by what they cost (a live stream commits about one commit after PostgreSQL's, a backlog fills batches up to CDC_COMMIT_INTERVAL_MS and CDC_MAX_BATCH_ROWS; docs/cdc.md)",
  PROCESSOR_MIN_COMMIT_GAP_MS:
    'the processor paces its transactions by what they cost (at most 100 ms apart, at once when PROCESSOR_MAX_BATCH records wait; docs/processor.md)',
};

export interface UnknownSetting {
  name: string;
  suggestion: string | undefined;
  /** Set for a setting that was removed: why, and what happens instead. */
  retired?: string;
}

export function knownSettings(): string[] {
  return Object.keys(envSchema.shape);
}

/** Edit distance, for suggesting the setting a typo meant (names are short: a plain DP table). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

export function unknownSettings(
  source: NodeJS.ProcessEnv,
  known: readonly string[] = knownSettings(),
): UnknownSetting[] {
  const names = new Set(known);
  const out: UnknownSetting[] = [];
  for (const name of Object.keys(source).sort()) {
    if (names.has(name)) continue;
    const retired = RETIRED[name];
    if (retired !== undefined) {
      out.push({ name, suggestion: undefined, retired });
      continue;
    }
    if (!PREFIXES.some((p) => name.startsWith(p))) continue;
    let suggestion = ALIASES[name];
    if (suggestion === undefined) {
      const [best] = known.map((k) => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d);
      if (best && best.d <= 3) suggestion = best.k;
    }
    out.push({ name, suggestion });
  }
  return out;
}

export function formatUnknownSetting(u: UnknownSetting): string {
  if (u.retired !== undefined)
    return `engage: warning: ${u.name} is no longer a setting of engage and is ignored: ${u.retired}`;
  return `engage: warning: ${u.name} is not a setting of engage and is ignored${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}; see .env.example`;
}
