import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { readCpuSeconds } from '../lib/proc-stats.js';

/**
 * What the vs-debezium bench reads about other processes, beside bench/lib/proc-stats.ts: a
 * process's peak RSS (VmHWM, the kernel's own high-water mark, so no sampling can miss a peak), the
 * walsender serving a replication slot, and `CpuTracker`, which follows a changing set of pids.
 *
 * Contract: a tracker's `mark()` takes a reading of every pid `pids()` names now and remembers the
 * last reading of each, so a process that exits (pg_recvlogical, a stopped tool) keeps the CPU it
 * had at its last reading; `since(mark)` is the CPU seconds used by the set between two marks.
 */

/** Peak resident set size in MiB (VmHWM); 0 when the process is gone. */
export function peakRssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The pid of the walsender streaming `slot` (PostgreSQL runs on this machine), if it is active. */
export async function walsenderPid(db: pg.Client, slot: string): Promise<number | undefined> {
  const r = await db.query<{ pid: number | null }>(
    'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return r.rows[0]?.pid ?? undefined;
}

export type CpuMark = ReadonlyMap<number, number>;

export class CpuTracker {
  private readonly last = new Map<number, number>();

  constructor(private readonly pids: () => Array<number | undefined>) {}

  /** Reads every pid of the set now; returns the readings so far (gone pids at their last one). */
  mark(): CpuMark {
    for (const pid of this.pids()) {
      if (!pid) continue;
      const v = readCpuSeconds(pid);
      if (v !== undefined) this.last.set(pid, Math.max(v, this.last.get(pid) ?? 0));
    }
    return new Map(this.last);
  }

  /** CPU seconds of the set between `from` and `to` (a pid first seen after `from` counts from 0). */
  static between(from: CpuMark, to: CpuMark): number {
    let s = 0;
    for (const [pid, v] of to) s += v - (from.get(pid) ?? 0);
    return s;
  }
}

/** The 1-, 5- and 15-minute load averages as printed beside each figure. */
export function loadText(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
