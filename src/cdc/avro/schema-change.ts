import type { AvroField, AvroRecord, AvroType, TableSchemas } from './schema.js';

/**
 * What changed between two registered schemas of a table, in words an operator reads in a
 * SCHEMA_INCOMPATIBLE message: `column engagement_events.duration_ms changed int → string`,
 * `column engagement_events.referrer added (string)`, `column engagement_events.device dropped`,
 * `primary key of content changed (id) → (id, slug)`. Pure.
 */

/** The Value record's fields of an Envelope schema (null when it is not one). */
export function valueFields(envelope: unknown): AvroField[] | null {
  const fields = (envelope as Partial<AvroRecord> | null)?.fields;
  const before = fields?.find((f) => f.name === 'before');
  const union = before?.type;
  if (!Array.isArray(union)) return null;
  const record = union.find((t) => typeof t === 'object' && (t as Partial<AvroRecord>).type === 'record') as
    AvroRecord | undefined;
  return record?.fields ?? null;
}

/** A type in a few words: `int`, `string (io.debezium.data.Uuid)`; unions show their non-null branch. */
export function typeLabel(type: AvroType | undefined): string {
  if (type === undefined) return '?';
  if (Array.isArray(type)) {
    const branches = type.filter((t) => t !== 'null');
    return branches.length === 1 ? typeLabel(branches[0]) : branches.map((b) => typeLabel(b)).join(' | ');
  }
  if (typeof type === 'string') return type;
  const base = typeof type.type === 'string' ? type.type : typeLabel(type.type);
  const name = type['connect.name'];
  return typeof name === 'string' ? `${base} (${name})` : base;
}

function fieldChanges(what: string, table: string, before: AvroField[], after: AvroField[]): string[] {
  const old = new Map(before.map((f) => [f.name, f]));
  const now = new Map(after.map((f) => [f.name, f]));
  const out: string[] = [];
  for (const f of after) {
    const was = old.get(f.name);
    if (!was) out.push(`${what} ${table}.${f.name} added (${typeLabel(f.type)})`);
    else if (typeLabel(was.type) !== typeLabel(f.type))
      out.push(`${what} ${table}.${f.name} changed ${typeLabel(was.type)} → ${typeLabel(f.type)}`);
  }
  for (const f of before) if (!now.has(f.name)) out.push(`${what} ${table}.${f.name} dropped`);
  return out;
}

/** The value schema's changes from `previous` (null: the subject's first schema). */
export function describeValueChange(table: string, previous: unknown, next: TableSchemas): string {
  const was = previous === null ? null : valueFields(previous);
  const now = valueFields(next.value) ?? [];
  if (was === null) return `table ${table}: first schema (${now.length} columns)`;
  const changes = fieldChanges('column', table, was, now);
  return changes.length ? changes.join(', ') : `table ${table}: schema changed (same columns)`;
}

/** The key schema's changes from `previous` (null: the subject's first key schema). */
export function describeKeyChange(table: string, previous: unknown, next: AvroRecord): string {
  const was = (previous as Partial<AvroRecord> | null)?.fields;
  if (!was) return `table ${table}: first key schema`;
  const names = (fs: AvroField[]) => `(${fs.map((f) => f.name).join(', ')})`;
  if (names(was) !== names(next.fields)) return `primary key of ${table} changed ${names(was)} → ${names(next.fields)}`;
  const changes = fieldChanges('key column', table, was, next.fields);
  return changes.length ? changes.join(', ') : `table ${table}: key schema changed`;
}
