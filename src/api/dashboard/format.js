// Number formats shared by the dashboard's tables (app.js) and charts (trend-panels.js). Each takes
// a number (or null/undefined, shown as —) and returns the text to display.

export const fmtInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const fmt1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** A rate: whole numbers from 100, one decimal below. */
export function fmtRate(v) {
  return v === null || v === undefined ? '—' : v >= 100 ? fmtInt.format(v) : fmt1.format(v);
}

/** A duration in `unit` (ms or seconds): "850 ms" below a second, "1.5 s" above. */
export function fmtDuration(v, unit) {
  if (v === null || v === undefined) return '—';
  const s = unit === 'ms' ? v / 1000 : v;
  return s < 1 ? `${fmtInt.format(s * 1000)} ms` : `${fmt1.format(s)} s`;
}

/** A byte count in B, KiB, MiB or GiB. */
export function fmtBytes(v) {
  if (v >= 1024 * 1024 * 1024) return `${fmt1.format(v / 1024 ** 3)} GiB`;
  if (v >= 1024 * 1024) return `${fmt1.format(v / 1024 ** 2)} MiB`;
  return v >= 1024 ? `${fmt1.format(v / 1024)} KiB` : `${fmtInt.format(v)} B`;
}

/** An axis tick: 1.2K for large counts, up to two decimals for small ones. */
export function fmtTick(v) {
  if (v >= 10_000) return compact.format(v);
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: v < 1 ? 2 : 1 }).format(v);
}
