/**
 * A one-line progress bar with rate and ETA for long runs (stderr). On a non-TTY it prints a plain
 * line at most every few seconds instead of redrawing.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  setTotal(total: number): void {
    this.total = total;
  }

  update(done: number, force = false): void {
    const now = Date.now();
    const tty = Boolean(this.out.isTTY);
    if (!force && now - this.lastDraw < (tty ? 200 : 5000)) return;
    this.lastDraw = now;
    this.out.write(`${tty ? '\r' : ''}${this.render(done, now)}${tty ? '' : '\n'}`);
  }

  finish(done: number): void {
    this.update(done, true);
    if (this.out.isTTY) this.out.write('\n');
  }

  render(done: number, now = Date.now()): string {
    const secs = Math.max((now - this.started) / 1000, 0.001);
    const rate = done / secs;
    const frac = this.total > 0 ? Math.min(done / this.total, 1) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const eta = rate > 0 && this.total > done ? (this.total - done) / rate : 0;
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ${Math.round(rate).toLocaleString('en-US')}/s ETA ${formatDuration(eta)}`;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
