import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registry } from '../../src/core/metrics.js';
import { evaluateHealth, type HealthInputs } from '../../src/api/health/evaluate.js';
import { circuitOf, consumerLagOf, failingSinceLastWrite } from '../../src/api/health/status-fields.js';
import { parseHeartbeat, type LiveHeartbeat } from '../../src/api/heartbeats.js';
import type { Heartbeat } from '../../src/runtime/heartbeat.js';
import { externalMetrics } from '../../src/sinks/external/metrics.js';
import { sinkMetrics } from '../../src/runtime/sink-metrics.js';

/**
 * The pure half of /health: what it reads from heartbeat status and metrics (tolerant of naming),
 * and how probes and heartbeats become healthy / degraded / unhealthy.
 */

const NOW = 1_750_000_000_000;

function hb(component: string, status: Record<string, unknown>, metrics: unknown = [], ageMs = 1000): LiveHeartbeat {
  const beat: Heartbeat = {
    component,
    instance: `${component}-1`,
    pid: 1,
    host: 'h',
    started_at: new Date(NOW - 60_000).toISOString(),
    sent_at: new Date(NOW - ageMs).toISOString(),
    status,
    metrics,
  };
  const parsed = parseHeartbeat(JSON.stringify(beat));
  assert.ok(parsed);
  return parsed;
}

const up = { ok: true, latency_ms: 1 };
function inputs(heartbeats: LiveHeartbeat[] | null, expected: string[]): HealthInputs {
  return {
    nowMs: NOW,
    postgres: {
      ...up,
      slot: { name: 's', exists: false, active: null, retained_wal_bytes: null, confirmed_lag_bytes: null },
    },
    kafka: up,
    redis: up,
    heartbeats,
    expected,
    walWarnBytes: 1024,
    warehouseBackend: 'duckdb',
  };
}

describe('status fields', () => {
  it('reads the circuit from a status field, the sink status block, or the circuit gauge', async () => {
    assert.equal(circuitOf(hb('sink-external', { circuit: 'half-open' })), 'half_open');
    assert.equal(circuitOf(hb('sink-external', { external: { state: 'open', consecutive_failures: 5 } })), 'open');
    assert.equal(circuitOf(hb('sink-external', { circuit: { state: 'closed' } })), 'closed');
    const gauge = externalMetrics().circuit;
    gauge.set(2);
    assert.equal(circuitOf(hb('sink-external', { lag: 0 }, await registry.getMetricsAsJSON())), 'open');
    gauge.set(0);
    assert.equal(circuitOf(hb('sink-external', { lag: 0 }, await registry.getMetricsAsJSON())), 'closed');
    assert.equal(circuitOf(hb('sink-external', {})), 'unknown');
  });

  it('reads a consumer lag as a number, a per-partition map, or from the lag gauges', async () => {
    assert.equal(consumerLagOf(hb('processor', { lag: 12 })), 12);
    assert.equal(consumerLagOf(hb('processor', { consumer: { lag: { 0: 3, 1: 4 } } })), 7);
    assert.equal(consumerLagOf(hb('processor', { partitions: [{ partition: 0, lag: 2 }] })), null);
    sinkMetrics('warehouse').lag.set(33);
    assert.equal(consumerLagOf(hb('sink-warehouse', {}, await registry.getMetricsAsJSON())), 33);
  });

  it('tells a sink failing since its last write from one that recovered', () => {
    const at = NOW - 5000;
    assert.equal(
      failingSinceLastWrite(
        hb('sink-warehouse', {
          last_error: { code: 'SINK_WRITE_FAILED', message: 'disk full', at },
          last_write_at: new Date(at - 1000).toISOString(),
        }),
      ),
      true,
    );
    assert.equal(
      failingSinceLastWrite(
        hb('sink-warehouse', {
          last_error: { code: 'X', message: 'm', at },
          last_write_at: new Date(at + 1000).toISOString(),
        }),
      ),
      false,
    );
    assert.equal(failingSinceLastWrite(hb('sink-warehouse', { last_error: null, last_write_at: null })), false);
  });
});

describe('evaluateHealth', () => {
  it('is healthy when the expected stages beat and nothing needs attention', () => {
    const r = evaluateHealth(inputs([hb('cdc', {}), hb('sink-redis', { lag: 3 })], ['cdc', 'sink-redis']));
    assert.equal(r.status, 'healthy');
    assert.equal(r.stages['sink-redis']?.consumer_lag, 3);
  });

  it('counts a heartbeat older than 6 s as missing', () => {
    const r = evaluateHealth(inputs([hb('cdc', {}, [], 7000)], ['cdc']));
    assert.equal(r.status, 'unhealthy');
    assert.deepEqual(r.problems, ['stage cdc: no heartbeat in the last 6 s (not running?)']);
  });

  it('is degraded while the warehouse sink fails since its last write, naming the error', () => {
    const failing = hb('sink-warehouse', {
      lag: 0,
      last_error: { code: 'SINK_WRITE_FAILED', message: 'IO Error: disk full', at: NOW - 2000 },
      last_write_at: new Date(NOW - 60_000).toISOString(),
    });
    const r = evaluateHealth(inputs([failing], ['sink-warehouse']));
    assert.equal(r.status, 'degraded');
    assert.equal(r.warehouse.ok, false);
    assert.deepEqual(r.warnings, ['the warehouse sink cannot write: SINK_WRITE_FAILED: IO Error: disk full']);
  });

  it('reports every stage unknown when Redis (the heartbeat store) is unreachable', () => {
    const r = evaluateHealth({
      ...inputs(null, ['cdc']),
      redis: { ok: false, latency_ms: 2000, error: 'Redis did not answer within 2000 ms' },
    });
    assert.equal(r.status, 'unhealthy');
    assert.deepEqual(r.problems, [
      'redis unreachable: Redis did not answer within 2000 ms',
      'stage cdc: unknown (heartbeats are kept in Redis, which is unreachable)',
    ]);
  });

  it('a beating stage that reports no progress is unhealthy; one waiting out an outage is degraded', () => {
    const stuck = hb('sink-redis', {
      lag: 50,
      liveness: { ok: false, reasons: ['its membership of group g is "init", not steady, with the coordinator up'] },
    });
    const r = evaluateHealth(inputs([stuck], ['sink-redis']));
    assert.equal(r.status, 'unhealthy');
    assert.deepEqual(r.problems, [
      'stage sink-redis (sink-redis-1) makes no progress: its membership of group g is "init", not steady, with the coordinator up',
    ]);

    const waiting = hb('sink-external', {
      lag: 50,
      liveness: { ok: true, reasons: [] },
      waiting_since: new Date(NOW - 42_000).toISOString(),
      last_error: { code: 'HTTP_RETRIABLE', message: 'external system answered 503' },
    });
    const w = evaluateHealth(inputs([waiting], ['sink-external']));
    assert.equal(w.status, 'degraded');
    assert.deepEqual(w.warnings, [
      'stage sink-external (sink-external-1) is waiting for its system for 42 s (retrying, nothing parked): external system answered 503',
    ]);
  });

  it('a TRUNCATE seen by the CDC is a warning for a while, then history', () => {
    const at = (agoMs: number) =>
      hb('cdc', {
        table_truncates: 1,
        last_truncate: { at: new Date(NOW - agoMs).toISOString(), tables: ['public.engagement_events'] },
      });
    const recent = evaluateHealth(inputs([at(60_000)], ['cdc']));
    assert.equal(recent.status, 'degraded');
    assert.match(
      recent.warnings[0] ?? '',
      /^stage cdc \(cdc-1\) saw TRUNCATE of public\.engagement_events at .* \(1 in all\)/,
    );
    assert.equal(evaluateHealth(inputs([at(16 * 60_000)], ['cdc'])).status, 'healthy');
  });

  it("is degraded while a sink's own health() says it cannot write, once per finding", () => {
    const bad = (error: string) => ({ lag: 0, health: { ok: false, detail: { error } } });
    const r = evaluateHealth(
      inputs(
        [hb('sink-redis', bad('not connected')), hb('sink-file', { lag: 0, health: { ok: true, detail: {} } })],
        ['sink-redis', 'sink-file'],
      ),
    );
    assert.equal(r.status, 'degraded');
    assert.deepEqual(r.warnings, ['stage sink-redis (sink-redis-1) reports its sink unhealthy: not connected']);
    // The warehouse's and the circuit's own findings say it already: no second warning.
    const wh = evaluateHealth(
      inputs(
        [
          hb('sink-warehouse', bad('IO Error: disk full')),
          hb('sink-external', { ...bad('circuit open'), circuit: 'open' }),
        ],
        [],
      ),
    );
    assert.equal(wh.warehouse.ok, false);
    assert.deepEqual(wh.warnings, [
      'the warehouse sink cannot write: IO Error: disk full',
      "the external system's circuit is open (the external sink is holding deliveries)",
    ]);
  });
});
