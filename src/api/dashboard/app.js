// The live dashboard: polls /metrics, /metrics/history, /top-content and /health every REFRESH_MS
// and redraws (the charts of the last 15 minutes: trend-panels.js).
// Token: when the API has API_TOKEN set, open the page once as /?token=<API_TOKEN>; the token is
// kept in sessionStorage for this tab (and removed from the address bar), and sent as a bearer
// header. A 401 shows a form to enter it. No external resources: plain DOM and SVG.

import { fmt1, fmtBytes, fmtDuration, fmtInt, fmtRate } from './format.js';
import { renderTrends } from './trend-panels.js';

const REFRESH_MS = 3000;
const TOKEN_KEY = 'engage.api.token';
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);

function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
}

async function getJson(path) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers, cache: 'no-store' });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtLag(entry) {
  if (entry.unit === 'bytes') return fmtBytes(entry.value);
  if (entry.unit === 'ms' || entry.unit === 'seconds') return fmtDuration(entry.value, entry.unit);
  return fmtInt.format(entry.value);
}

function fillRows(tableId, rows, emptyText, columns) {
  const tbody = $(tableId).querySelector('tbody');
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = el('tr');
    tr.append(el('td', { colspan: String(columns), class: 'empty' }, emptyText));
    tbody.append(tr);
    return;
  }
  for (const cells of rows) {
    const tr = el('tr');
    for (const c of cells) tr.append(el('td', c.cls ? { class: c.cls } : {}, c.text));
    tbody.append(tr);
  }
}

function renderMetrics(m) {
  fillRows(
    'throughput',
    m.throughput.map((t) => [
      { text: t.stage },
      { text: fmtRate(t.per_second), cls: 'num' },
      { text: fmtInt.format(t.total), cls: 'num' },
    ]),
    'no stage has reported records yet',
    3,
  );

  // Red above the stage's promise (target_seconds), amber above a fifth of it.
  const slow = (v, unit, target) => {
    const s = v === null ? 0 : unit === 'ms' ? v / 1000 : v;
    return s > target ? 'num bad' : s > target / 5 ? 'num warn' : 'num';
  };
  fillRows(
    'freshness',
    m.freshness.map((f) => [
      { text: `${f.stage} (≤ ${f.target_seconds} s)` },
      { text: fmtDuration(f.p50, f.unit), cls: slow(f.p50, f.unit, f.target_seconds) },
      { text: fmtDuration(f.p95, f.unit), cls: slow(f.p95, f.unit, f.target_seconds) },
      { text: fmtDuration(f.p99, f.unit), cls: slow(f.p99, f.unit, f.target_seconds) },
      { text: fmtInt.format(f.count), cls: 'num' },
    ]),
    'no sink has reported freshness yet',
    5,
  );

  fillRows(
    'lags',
    m.lags.map((l) => [
      { text: l.stage },
      { text: l.metric.replace(/^engage_(cdc|processor|sink)_/, '').replace(/_/g, ' ') },
      { text: fmtLag(l), cls: 'num' },
    ]),
    'no lag reported',
    3,
  );

  // Red while records are being parked; amber for records parked earlier (replayed or not:
  // these are counters since the processes started; `engage dlq list` says what is left to replay).
  const parking = (d) => d.per_second !== null && d.per_second > 0;
  fillRows(
    'dlq',
    m.dlq.map((d) => [
      { text: d.stage },
      { text: fmtInt.format(d.total), cls: parking(d) ? 'num bad' : d.total > 0 ? 'num warn' : 'num' },
      { text: fmtRate(d.per_second), cls: 'num' },
    ]),
    'no DLQ counter reported',
    3,
  );
  const badge = $('dlq-total');
  badge.textContent = fmtInt.format(m.dlq_total);
  badge.className = m.dlq.some(parking) ? 'badge bad' : m.dlq_total > 0 ? 'badge warn' : 'badge';
}

function renderTop(data) {
  const box = $('top-chart');
  const by = data.by === 'events' ? 'events' : 'engagement_seconds';
  $('top-window').textContent = `last ${data.window_minutes} min, by ${data.by}`;
  if (data.items.length === 0) {
    box.replaceChildren(el('p', { class: 'empty' }, 'no engagement in the window yet'));
    return;
  }
  const rowH = 26;
  const labelW = 260;
  const valueW = 110;
  const width = Math.max(box.clientWidth, 480);
  const barMax = width - labelW - valueW;
  const max = Math.max(...data.items.map((i) => i[by]), 1);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${data.items.length * rowH}`);
  svg.setAttribute('height', String(data.items.length * rowH));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'top content bar chart');
  data.items.forEach((item, i) => {
    const y = i * rowH;
    const g = document.createElementNS(SVG, 'g');
    g.setAttribute('class', 'row');
    g.setAttribute('data-content-id', item.content_id);
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('class', 'label');
    label.setAttribute('x', '0');
    label.setAttribute('y', String(y + 17));
    const name = item.title ?? item.slug ?? item.content_id;
    label.textContent = `${item.rank}. ${name.length > 33 ? `${name.slice(0, 32)}…` : name}`;
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${name} (${item.content_type ?? 'unknown type'}): ${fmt1.format(item.engagement_seconds)} s engaged, ${fmtInt.format(item.events)} events`;
    const bar = document.createElementNS(SVG, 'rect');
    bar.setAttribute('class', 'bar');
    bar.setAttribute('x', String(labelW));
    bar.setAttribute('y', String(y + 4));
    bar.setAttribute('height', String(rowH - 8));
    bar.setAttribute('rx', '3');
    bar.setAttribute('width', String(Math.max(2, (item[by] / max) * barMax)));
    const value = document.createElementNS(SVG, 'text');
    value.setAttribute('class', 'value');
    value.setAttribute('x', String(width - valueW + 8));
    value.setAttribute('y', String(y + 17));
    value.textContent =
      by === 'events' ? `${fmtInt.format(item.events)} events` : `${fmtInt.format(item.engagement_seconds)} s`;
    g.append(title, label, bar, value);
    svg.append(g);
  });
  box.replaceChildren(svg);
}

function renderHealth(h) {
  const pill = $('overall');
  pill.textContent = h.status;
  pill.className = `pill pill-${h.status}`;
  pill.title = [...h.problems, ...h.warnings].join('\n') || 'all components healthy';
  const list = $('components');
  list.replaceChildren();
  for (const [name, stage] of Object.entries(h.stages)) {
    const li = el('li');
    li.append(el('span', { class: `dot ${stage.ok ? 'up' : 'down'}` }));
    const lag = stage.consumer_lag === null ? '' : `, lag ${fmtInt.format(stage.consumer_lag)}`;
    li.append(el('span', {}, `${name}: ${stage.ok ? `${stage.instances.length} live${lag}` : 'no heartbeat'}`));
    list.append(li);
  }
  for (const [name, svc] of Object.entries(h.services)) {
    const li = el('li');
    li.append(el('span', { class: `dot ${svc.ok ? 'up' : 'down'}` }));
    li.append(el('span', {}, `${name}: ${svc.ok ? `${fmt1.format(svc.latency_ms)} ms` : (svc.error ?? 'down')}`));
    list.append(li);
  }
}

async function refresh() {
  const by = $('top-by').value;
  const [metrics, top, health, history] = await Promise.allSettled([
    getJson('/metrics'),
    getJson(`/top-content?limit=10&by=${by}`),
    getJson('/health'),
    getJson('/metrics/history'),
  ]);
  const errors = [];
  if (metrics.status === 'fulfilled' && metrics.value.status === 200) renderMetrics(metrics.value.body);
  else errors.push('metrics unavailable');
  if (history.status === 'fulfilled' && history.value.status === 200) renderTrends(history.value.body);
  else errors.push('metrics history unavailable');
  if (top.status === 'fulfilled' && top.value.status === 200) {
    $('token-banner').hidden = true;
    renderTop(top.value.body);
  } else if (top.status === 'fulfilled' && top.value.status === 401) {
    $('token-banner').hidden = false;
  } else {
    errors.push(
      `top content unavailable${top.status === 'fulfilled' && top.value.body ? `: ${top.value.body.message}` : ''}`,
    );
  }
  if (health.status === 'fulfilled' && health.value.body && health.value.body.status) renderHealth(health.value.body);
  const banner = $('error-banner');
  banner.hidden = errors.length === 0;
  banner.textContent = errors.join('; ');
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function start() {
  takeTokenFromUrl();
  $('interval').textContent = String(REFRESH_MS / 1000);
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token-input').value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    void refresh();
  });
  $('top-by').addEventListener('change', () => void refresh());
  const loop = async () => {
    try {
      await refresh();
    } finally {
      setTimeout(loop, REFRESH_MS);
    }
  };
  void loop();
}

start();
