import { UNAVAILABLE_VALUE } from '../core/types.js';
import type { ContentRow } from '../core/types.js';
import type { ContentChange } from './content-decode.js';

/**
 * The content table's state: for each content id, its last few versions with the source position
 * (the change's LSN, `source.lsn`) at which each took effect. Pure functions over a Map.
 *
 * An event is joined with the version in force at ITS position — the latest version whose LSN is not
 * after the event's LSN — so a change of `length_seconds` applies to the events written after it,
 * and not to earlier events the processor happens to enrich later (a backlog, a restart). A version
 * without a position (no `lsn`) applies from its arrival on. When an event predates every version
 * kept, the oldest kept is used (older ones were trimmed or compacted away: best effort).
 */

export interface ContentVersion {
  /** Source LSN of the change; null when the change carried none. */
  pos: number | null;
  /** null: deleted at this position. */
  row: ContentRow | null;
}

export type ContentVersions = Map<string, ContentVersion[]>;

/** Versions kept per content id (content changes are rare; a backlog rarely spans more). */
export const MAX_VERSIONS = 8;

/** Applies one decoded change of the content topic. `invalid` changes are the caller's to report. */
export function applyContentChange(table: ContentVersions, change: ContentChange): void {
  if (change.kind === 'invalid') return;
  if (change.kind === 'tombstone') {
    // Follows a delete already applied (keep the history for lagging events); alone (the delete
    // was compacted away), the content is simply gone.
    const versions = table.get(change.id);
    if (versions && versions[versions.length - 1]?.row !== null) table.delete(change.id);
    return;
  }
  const id = change.kind === 'upsert' ? change.row.id : change.id;
  let versions = table.get(id);
  if (!versions) table.set(id, (versions = []));
  let row: ContentRow | null = null;
  if (change.kind === 'upsert') {
    row = change.row;
    const prev = latestRow(versions);
    // An unchanged TOASTed column arrives as a placeholder: keep the value the table has.
    if (prev && (row.title === UNAVAILABLE_VALUE || row.slug === UNAVAILABLE_VALUE)) {
      row = {
        ...row,
        title: row.title === UNAVAILABLE_VALUE ? prev.title : row.title,
        slug: row.slug === UNAVAILABLE_VALUE ? prev.slug : row.slug,
      };
    }
  }
  const version: ContentVersion = { pos: change.pos, row };
  // Keep the list ordered by position (a re-delivered older change lands in its place).
  let i = versions.length;
  while (i > 0 && change.pos !== null && (versions[i - 1]?.pos ?? -Infinity) > change.pos) i--;
  versions.splice(i, 0, version);
  if (versions.length > MAX_VERSIONS) versions.splice(0, versions.length - MAX_VERSIONS);
}

function latestRow(versions: ContentVersion[]): ContentRow | null {
  return versions[versions.length - 1]?.row ?? null;
}

/** The content in force at `pos` (null/undefined: the latest); undefined when unknown or deleted. */
export function contentAt(table: ContentVersions, id: string, pos?: number | null): ContentRow | undefined {
  const versions = table.get(id);
  if (!versions || versions.length === 0) return undefined;
  if (pos === null || pos === undefined) return latestRow(versions) ?? undefined;
  for (let i = versions.length - 1; i >= 0; i--) {
    const v = versions[i] as ContentVersion;
    if (v.pos === null || v.pos <= pos) return v.row ?? undefined;
  }
  return versions[0]?.row ?? undefined;
}

/** True when the id has a live (not deleted) latest version. */
export function isKnown(table: ContentVersions, id: string): boolean {
  return latestRow(table.get(id) ?? []) !== null;
}
