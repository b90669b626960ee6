import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PipelineError, errorMessage } from '../core/errors.js';
import { redact } from '../stack/postgres.js';
import type { CatalogueItem } from './popularity.js';
import type { EventPayload, GeneratedEvent } from './session.js';

/**
 * The generator's I/O: connecting, reading the catalogue once, and writing events by COPY (one
 * statement, hence one transaction, per call: a bulk chunk or a live tick's few hundred rows).
 * Each call commits on its own, so an interrupted run keeps what it wrote. COPY over a multi-row
 * INSERT for the live ticks too: PostgreSQL's backend spent ~30 µs per row against ~41 for a
 * 160-row INSERT … VALUES (parsed and planned every tick) and ~34 for a prepared INSERT … SELECT
 * FROM unnest(…) (docs/benchmarks.md, 2026-11-27).
 */

const COLUMNS = '(content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)';

export async function connect(databaseUrl: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: 5000,
    application_name: 'engage-generate',
  });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new PipelineError(
      'SERVICE_UNREACHABLE',
      `PostgreSQL at ${redact(databaseUrl)} does not answer: ${errorMessage(err)}. Run \`engage stack up\`, or fix DATABASE_URL.`,
      { retriable: true, cause: err },
    );
  }
  return client;
}

/** The content items engagement can refer to, read once at start (ordered by id). */
export async function loadCatalogue(client: pg.Client): Promise<CatalogueItem[]> {
  let rows: Array<{
    id: string;
    content_type: CatalogueItem['content_type'];
    length_seconds: number | null;
    publish_ms: string;
  }>;
  try {
    rows = (
      await client.query(
        `SELECT id::text AS id, content_type, length_seconds, (extract(epoch FROM publish_ts) * 1000)::bigint::text AS publish_ms
           FROM content WHERE content_type IS NOT NULL ORDER BY id`,
      )
    ).rows;
  } catch (err) {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `cannot read the content table: ${errorMessage(err)}. Apply sql/init.sql (\`engage stack up\` does it for a new database).`,
      { cause: err },
    );
  }
  if (rows.length === 0) {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      'the content table is empty: nothing to generate engagement for. Apply sql/init.sql, which loads the catalogue.',
    );
  }
  return rows.map((r) => ({
    id: r.id,
    content_type: r.content_type,
    length_seconds: r.length_seconds,
    publish_ms: Number(r.publish_ms),
  }));
}

/** JSON string literals of the few distinct values (app versions, countries, referrers) seen. */
const quoted = new Map<string, string>();
function q(value: string): string {
  let json = quoted.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (quoted.size < 10_000) quoted.set(value, json);
  }
  return json;
}

/**
 * raw_payload as JSON text, written out by hand (this is the generator's hot path). Strings go
 * through JSON.stringify, so the output is valid JSON whatever they contain.
 */
export function payloadJson(p: EventPayload): string {
  const pos = p.position_ms === undefined ? '' : `,"position_ms":${p.position_ms}`;
  return `{"session_id":${JSON.stringify(p.session_id)},"app_version":${q(p.app_version)},"seq":${p.seq},"country":${q(p.country)},"referrer":${q(p.referrer)}${pos}}`;
}

/** One COPY text-format line per event. */
export function copyLine(e: GeneratedEvent): string {
  let json = payloadJson(e.raw_payload);
  // JSON never contains raw tabs or newlines; its backslashes must be doubled in COPY's text format.
  if (json.includes('\\')) json = json.replace(/\\/g, '\\\\');
  return `${e.content_id}\t${e.user_id}\t${e.event_type}\t${new Date(e.event_ts).toISOString()}\t${e.duration_ms === null ? '\\N' : e.duration_ms}\t${e.device}\t${json}\n`;
}

/** Lines per string handed to the stream: ~60 KB, below V8's large-object size, so the pieces
 *  die young instead of filling the old generation (which cost more in GC than generating). */
const LINES_PER_PIECE = 240;

function* copyText(chunks: Iterable<readonly GeneratedEvent[]>, onChunk?: (rows: number) => void): Generator<string> {
  for (const events of chunks) {
    for (let i = 0; i < events.length; i += LINES_PER_PIECE) {
      let piece = '';
      const end = Math.min(events.length, i + LINES_PER_PIECE);
      for (let j = i; j < end; j++) piece += copyLine(events[j] as GeneratedEvent);
      yield piece;
    }
    onChunk?.(events.length);
  }
}

/**
 * Writes the events with one COPY (one transaction, committed when it returns). `chunks` is pulled
 * lazily as PostgreSQL drains the stream, so generating the next rows overlaps with the server
 * storing the previous ones; `onChunk` is told each chunk's size once it is in the stream.
 */
export async function copyEvents(
  client: pg.Client,
  chunks: Iterable<readonly GeneratedEvent[]>,
  onChunk?: (rows: number) => void,
): Promise<void> {
  const sink = client.query(copyFrom(`COPY engagement_events ${COLUMNS} FROM STDIN`));
  await pipeline(Readable.from(copyText(chunks, onChunk), { highWaterMark: 16 }), sink);
}
