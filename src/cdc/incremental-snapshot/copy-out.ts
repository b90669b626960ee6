import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * `COPY … TO STDOUT` on a node-postgres client through pg-copy-streams, its output split into the
 * rows' text lines (COPY text format, copy-text.ts): one string per row, each ending with its
 * newline (COPY's text format escapes a newline inside a value, so a raw one only ends a row).
 * The output is held in memory and split once it is whole (no UTF-8 sequence is cut): meant for
 * bounded results (one chunk of the incremental snapshot). A failed COPY rejects with
 * PostgreSQL's error and leaves the client usable for its next query.
 */
export async function copyOutLines(client: pg.ClientBase, sql: string): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of client.query(copyTo(sql))) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const lines: string[] = [];
  for (let pos = 0; pos < text.length;) {
    const end = text.indexOf('\n', pos);
    const next = end < 0 ? text.length : end + 1;
    lines.push(text.slice(pos, next));
    pos = next;
  }
  return lines;
}
