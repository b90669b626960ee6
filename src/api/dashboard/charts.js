// Line charts as inline SVG, for the dashboard's "last 15 minutes" panels (no library, no network).
// drawLineChart(box, spec) replaces box's content with one chart: one line per series over
// [spec.nowMs - spec.windowMs, spec.nowMs], y from 0 to a round maximum, axis labels with units, an
// HTML legend with each series' last value, and a <title>/<desc> for screen readers; an empty state
// when no series has a point. A gap longer than GAP_STEPS steps breaks a line. Colours come from
// style.css classes s0..s7 (the caller picks a stable index per stage). The SVG carries its scale
// (data-y-max, data-plot = "left top width height") and each line its stage and last point
// (data-stage, data-last-t, data-last-v), so tests can check what is drawn.

const SVG = 'http://www.w3.org/2000/svg';
const GAP_STEPS = 3;
const HEIGHT = 210;
const M = { left: 58, right: 14, top: 12, bottom: 38 };

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A round upper bound (1, 2, 2.5 or 5 × 10^k) at or above max, with its tick step (4 ticks);
 * whole steps for counts (`integer`).
 */
export function niceScale(max, integer = false) {
  if (!(max > 0)) return integer ? { max: 4, step: 1 } : { max: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s * 4 >= max) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.ceil(step));
  return { max: step * 4, step };
}

function segments(points, stepMs) {
  const out = [];
  let cur = [];
  for (const p of points) {
    const prev = cur[cur.length - 1];
    if (prev && p.t - prev.t > GAP_STEPS * stepMs) {
      out.push(cur);
      cur = [];
    }
    cur.push(p);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * spec: { title, axis(max) -> { label: y axis label with the unit, tick(v) -> tick text },
 *         value(v) -> text with unit, integer (counts: whole ticks), nowMs, windowMs, stepMs, emptyText,
 *         series: [{ name, colour (0..7), points: [{ t, v }] }] }
 */
export function drawLineChart(box, spec) {
  const series = spec.series.filter((s) => s.points.length > 0);
  if (series.length === 0) {
    const p = document.createElement('p');
    p.className = 'empty';
    p.textContent = spec.emptyText;
    box.replaceChildren(p);
    return;
  }
  const width = Math.max(box.clientWidth, 320);
  const w = width - M.left - M.right;
  const h = HEIGHT - M.top - M.bottom;
  const from = spec.nowMs - spec.windowMs;
  const { max, step } = niceScale(Math.max(...series.flatMap((s) => s.points.map((p) => p.v))), spec.integer);
  const axis = spec.axis(max);
  const x = (t) => M.left + Math.min(Math.max((t - from) / spec.windowMs, 0), 1) * w;
  const y = (v) => M.top + h - (Math.max(v, 0) / max) * h;
  const r = (n) => Math.round(n * 10) / 10;

  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${HEIGHT}`,
    height: HEIGHT,
    role: 'img',
    'aria-label': spec.title,
    'data-y-max': max,
    'data-plot': `${M.left} ${M.top} ${w} ${h}`,
  });
  const summary = series.map((s) => `${s.name} ${spec.value(s.points[s.points.length - 1].v)}`).join('; ');
  svg.append(svgEl('title', {}, spec.title), svgEl('desc', {}, `Latest: ${summary}`));

  // Grid and y ticks (0 .. max), x ticks every 5 minutes back from now.
  for (let i = 0; i * step <= max + step / 2; i += 1) {
    const v = i * step;
    svg.append(svgEl('line', { class: 'grid', x1: M.left, x2: M.left + w, y1: r(y(v)), y2: r(y(v)) }));
    svg.append(svgEl('text', { class: 'tick', x: M.left - 6, y: r(y(v)) + 4, 'text-anchor': 'end' }, axis.tick(v)));
  }
  const minutes = spec.windowMs / 60_000;
  const every = minutes > 5 ? 5 : 1;
  for (let m = 0; m <= minutes; m += every) {
    const xm = r(x(spec.nowMs - m * 60_000));
    svg.append(svgEl('line', { class: 'grid', x1: xm, x2: xm, y1: M.top, y2: M.top + h }));
    svg.append(
      svgEl('text', { class: 'tick', x: xm, y: M.top + h + 15, 'text-anchor': 'middle' }, m === 0 ? 'now' : `−${m}`),
    );
  }
  svg.append(svgEl('line', { class: 'axis', x1: M.left, x2: M.left + w, y1: M.top + h, y2: M.top + h }));
  svg.append(svgEl('line', { class: 'axis', x1: M.left, x2: M.left, y1: M.top, y2: M.top + h }));
  svg.append(
    svgEl('text', { class: 'axis-label', x: M.left + w / 2, y: HEIGHT - 4, 'text-anchor': 'middle' }, 'minutes ago'),
  );
  const yl = svgEl('text', { class: 'axis-label', x: 0, y: 0, 'text-anchor': 'middle' }, axis.label);
  yl.setAttribute('transform', `translate(12 ${M.top + h / 2}) rotate(-90)`);
  svg.append(yl);

  for (const s of series) {
    const last = s.points[s.points.length - 1];
    for (const seg of segments(s.points, spec.stepMs)) {
      const end = seg[seg.length - 1];
      const attrs = { class: `line s${s.colour}`, 'data-stage': s.name, 'data-last-t': end.t, 'data-last-v': end.v };
      if (seg.length === 1) {
        svg.append(svgEl('circle', { ...attrs, cx: r(x(end.t)), cy: r(y(end.v)), r: 2.5 }));
        continue;
      }
      const line = svgEl('polyline', { ...attrs, points: seg.map((p) => `${r(x(p.t))},${r(y(p.v))}`).join(' ') });
      line.append(svgEl('title', {}, `${s.name}: ${spec.value(end.v)}`));
      svg.append(line);
    }
    svg.append(svgEl('circle', { class: `dot-last s${s.colour}`, cx: r(x(last.t)), cy: r(y(last.v)), r: 3 }));
  }

  const legend = document.createElement('ul');
  legend.className = 'legend';
  legend.setAttribute('aria-label', `${spec.title}: legend`);
  for (const s of series) {
    const li = document.createElement('li');
    li.dataset.stage = s.name;
    const swatch = svgEl('svg', { width: 16, height: 10, 'aria-hidden': 'true' });
    swatch.append(svgEl('line', { class: `line s${s.colour}`, x1: 0, x2: 16, y1: 5, y2: 5 }));
    const label = document.createElement('span');
    label.textContent = `${s.name} ${spec.value(s.points[s.points.length - 1].v)}`;
    li.append(swatch, label);
    legend.append(li);
  }
  box.replaceChildren(svg, legend);
}
