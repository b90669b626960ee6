// The "last 15 minutes" panels: turns GET /metrics/history into four line charts (charts.js), one
// line per stage: throughput (records/s), end-to-end freshness p99, consumer lag (records) and
// replication lag (time; the CDC). Each stage keeps its colour across panels and refreshes (the
// first stage seen gets colour 0, the next 1, …). Retained WAL (bytes) stays in the lag table.

import { drawLineChart } from './charts.js';
import { fmtDuration, fmtRate, fmtInt, fmtTick } from './format.js';

const COLOURS = 8;

/** Times: the axis in ms while the scale stays under a second, else in seconds. */
const seconds = {
  axis: (max) =>
    max < 1 ? { label: 'ms', tick: (v) => fmtInt.format(v * 1000) } : { label: 'seconds', tick: fmtTick },
  value: (v) => fmtDuration(v, 'seconds'),
};

/** Which series each panel draws (by kind, stat and unit), and how it labels them. */
const PANELS = [
  {
    id: 'chart-throughput',
    title: 'Throughput per stage, records per second',
    match: (s) => s.kind === 'throughput',
    axis: () => ({ label: 'records/s', tick: fmtTick }),
    value: (v) => `${fmtRate(v)}/s`,
    emptyText: 'no rate yet: a stage has a rate once two of its heartbeats are seen',
  },
  {
    id: 'chart-freshness',
    title: 'End-to-end freshness p99 per stage (source commit to visible), seconds',
    match: (s) => s.kind === 'freshness' && s.stat === 'p99',
    ...seconds,
    emptyText: 'no freshness yet: drawn while records reach a sink',
  },
  {
    id: 'chart-lag',
    title: 'Consumer lag per stage, records',
    match: (s) => s.kind === 'lag' && s.unit === 'records',
    axis: () => ({ label: 'records', tick: fmtTick }),
    value: (v) => fmtInt.format(v),
    integer: true,
    emptyText: 'no consumer lag reported yet',
  },
  {
    id: 'chart-time-lag',
    title: 'Replication lag per stage, seconds',
    match: (s) => s.kind === 'lag' && s.unit === 'seconds',
    ...seconds,
    emptyText: 'no replication lag reported (the CDC reports it)',
  },
];

const colourOf = new Map();

function colour(stage) {
  if (!colourOf.has(stage)) colourOf.set(stage, colourOf.size % COLOURS);
  return colourOf.get(stage);
}

/** Draws every panel from a /metrics/history body. */
export function renderTrends(history) {
  const nowMs = Date.parse(history.generated_at);
  const windowMs = history.window_seconds * 1000;
  const stepMs = history.step_seconds * 1000;
  for (const panel of PANELS) {
    const box = document.getElementById(panel.id);
    if (!box) continue;
    const chosen = history.series.filter(panel.match);
    const perStage = new Map();
    for (const s of chosen) perStage.set(s.stage, (perStage.get(s.stage) ?? 0) + 1);
    const series = chosen.map((s) => ({
      // A stage with two series in one panel (two lag metrics) names each by its metric.
      name: perStage.get(s.stage) > 1 ? `${s.stage} ${s.metric.replace(/^engage_[a-z]+_/, '')}` : s.stage,
      colour: colour(s.stage),
      points: s.points,
    }));
    drawLineChart(box, { ...panel, series, nowMs, windowMs, stepMs });
  }
}
