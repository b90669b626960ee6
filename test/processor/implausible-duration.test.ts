import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContentRow, EngagementEventRow } from '../../src/core/types.js';
import {
  durationFlag,
  enrichEvent,
  MAX_PLAUSIBLE_DURATION_MS,
  plausibleDurationLimitMs,
  type EnrichMeta,
} from '../../src/processor/enrich.js';
import { enrichedJson } from '../../src/processor/enriched-json.js';
import { validateEventRow } from '../../src/processor/validate.js';

/**
 * The implausible-duration rule (docs/processor.md): a duration above min(24 h, length × 10 + 1 h),
 * or above 24 h when the length is unknown, is flagged `implausible_duration`, after the other
 * flags; the event is kept with its values. The hot path's JSON agrees with the transform.
 */

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const META: EnrichMeta = { sourceTsMs: NOW - 250, processedTsMs: NOW, origin: 'stream' };
const content = (length: number | null): ContentRow => ({
  id: 'c1',
  slug: 's',
  title: 't',
  content_type: 'video',
  length_seconds: length,
  publish_ts: '2025-01-01T00:00:00Z',
});
const row = (duration: number | null, over: Record<string, unknown> = {}): EngagementEventRow =>
  ({
    id: '42',
    content_id: 'c1',
    user_id: 'u1',
    event_type: 'play',
    event_ts: '2025-06-15T10:20:30.123456Z',
    duration_ms: duration,
    device: 'ios',
    raw_payload: '{}',
    ...over,
  }) as EngagementEventRow;

describe('implausible durations', () => {
  it('the limit: length × 10 + 1 h, capped at 24 h; 24 h when the length is unknown or not positive', () => {
    assert.equal(plausibleDurationLimitMs(60), 60 * 10_000 + 3_600_000);
    assert.equal(plausibleDurationLimitMs(36_000), MAX_PLAUSIBLE_DURATION_MS);
    for (const length of [null, undefined, 0, -5])
      assert.equal(plausibleDurationLimitMs(length), MAX_PLAUSIBLE_DURATION_MS);
    assert.equal(durationFlag(4_200_000, 60), null, 'exactly the limit is plausible');
    assert.equal(durationFlag(4_200_001, 60), 'implausible_duration');
    assert.equal(durationFlag(null, 60), null);
    assert.equal(durationFlag(MAX_PLAUSIBLE_DURATION_MS + 1, null), 'implausible_duration');
  });

  it('flags 2147483647 ms whatever the content, keeps the values, and the hot path writes the same JSON', () => {
    for (const [length, flags] of [
      [600, ['pct_above_100', 'implausible_duration']],
      [null, ['missing_length', 'implausible_duration']],
      [0, ['non_positive_length', 'implausible_duration']],
    ] as const) {
      const res = enrichEvent(row(2147483647, { device: null }), content(length), META);
      assert.ok(res.ok);
      assert.deepEqual(res.event.quality_flags, ['missing_device', ...flags]);
      assert.equal(res.event.duration_ms, 2147483647);
      assert.equal(res.event.engagement_seconds, 2147483.647);
      const valid = validateEventRow(row(2147483647, { device: null }), NOW);
      assert.ok(valid.ok);
      assert.equal(enrichedJson(valid.value, content(length), META), JSON.stringify(res.event));
    }
    const plain = enrichEvent(row(30_000), content(600), META);
    assert.ok(plain.ok);
    assert.deepEqual(plain.event.quality_flags, []);
    const valid = validateEventRow(row(30_000), NOW);
    assert.ok(valid.ok);
    assert.equal(enrichedJson(valid.value, content(600), META), JSON.stringify(plain.event));
  });
});
