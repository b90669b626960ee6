import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * CPU and memory of other processes, read from /proc (Linux). Used by the whole-pipeline bench to
 * report each component's share of a core and its peak RSS over a phase.
 */

/** User + system CPU seconds the process has used so far; undefined when it is gone. */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return undefined;
  }
}

/** As `readCpuSeconds`, 0 when the process is gone or not given. */
export function cpuSeconds(pid: number | undefined): number {
  return (pid && readCpuSeconds(pid)) || 0;
}

/** The pids whose parent is `pid` (PostgreSQL's backends and walsenders, under the postmaster). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds of a process and its current children (a child that exited meanwhile is not counted). */
export function treeCpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  return cpuSeconds(pid) + childPids(pid).reduce((sum, c) => sum + cpuSeconds(c), 0);
}

/** Resident set size in MiB; 0 when the process is gone. */
export function rssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return os.loadavg()[0] ?? 0;
}

export interface ProcessShare {
  name: string;
  /** CPU over the phase as a percentage of one core. */
  cpuPct: number;
  peakRssMiB: number;
}

/**
 * Measures a set of named processes over one phase: `start()` takes the CPU baseline, `sample()`
 * (call it periodically) tracks peak RSS, `finish()` returns each one's share of a core.
 */
export class PhaseMeter {
  private cpu0 = new Map<string, number>();
  private peak = new Map<string, number>();
  private lastCpu = new Map<string, number>();
  private t0 = 0;
  private load0 = 0;

  /** `tree`: count the process's children's CPU too (PostgreSQL's backends). */
  constructor(private readonly processes: () => Array<{ name: string; pid: number | undefined; tree?: boolean }>) {}

  private cpu(p: { pid: number | undefined; tree?: boolean }): number {
    return p.tree ? treeCpuSeconds(p.pid) : cpuSeconds(p.pid);
  }

  start(): void {
    this.t0 = Date.now();
    this.load0 = loadAverage();
    this.cpu0 = new Map(this.processes().map((p) => [p.name, this.cpu(p)]));
    this.peak.clear();
    this.lastCpu.clear();
    this.sample();
  }

  /** Tracks peak RSS, and the last CPU reading (a process that exits before `finish` keeps it). */
  sample(): void {
    for (const p of this.processes()) {
      this.peak.set(p.name, Math.max(this.peak.get(p.name) ?? 0, rssMiB(p.pid)));
      if (p.pid) this.lastCpu.set(p.name, Math.max(this.lastCpu.get(p.name) ?? 0, this.cpu(p)));
    }
  }

  finish(): { seconds: number; load: string; loadEnd: number; shares: ProcessShare[] } {
    this.sample();
    const seconds = (Date.now() - this.t0) / 1000;
    const shares = this.processes().map((p) => ({
      name: p.name,
      cpuPct: Math.round(
        ((Math.max(this.cpu(p), this.lastCpu.get(p.name) ?? 0) - (this.cpu0.get(p.name) ?? 0)) / seconds) * 100,
      ),
      peakRssMiB: Math.round(this.peak.get(p.name) ?? 0),
    }));
    const loadEnd = loadAverage();
    return { seconds, load: `${this.load0.toFixed(1)} → ${loadEnd.toFixed(1)}`, loadEnd, shares };
  }
}
