import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { formatDuration, ProgressBar } from '../../src/backfill/progress-bar.js';
import { parseDateRange } from '../../src/backfill/range.js';

test('an inclusive UTC range covers whole days', () => {
  const r = parseDateRange('2025-08-01', '2025-08-10');
  assert.equal(r.fromTs.toISOString(), '2025-08-01T00:00:00.000Z');
  assert.equal(r.untilTs.toISOString(), '2025-08-11T00:00:00.000Z');
  assert.equal(r.key, '2025-08-01..2025-08-10');
  const one = parseDateRange('2024-02-29', '2024-02-29');
  assert.equal(one.untilTs.getTime() - one.fromTs.getTime(), 86_400_000);
});

for (const [start, end, needle] of [
  ['2025-08-10', '2025-08-01', 'before --start-date'],
  ['2025-02-30', '2025-03-01', '--start-date accepts'],
  ['2025-8-1', '2025-08-02', '--start-date accepts'],
  ['2025-08-01', 'tomorrow', '--end-date accepts'],
  [undefined, '2025-08-01', 'needs --start-date and --end-date'],
] as const) {
  test(`bad range ${start}..${end} is a USAGE error`, () => {
    assert.throws(
      () => parseDateRange(start, end),
      (err: unknown) => err instanceof PipelineError && err.code === 'USAGE' && err.message.includes(needle),
    );
  });
}

test('the progress bar shows percentage, rate and ETA', () => {
  const bar = new ProgressBar('backfill', 1000);
  const line = bar.render(250, Date.now() + 1000);
  assert.match(line, /25\.0% 250\/1,000/);
  assert.match(line, /\/s ETA \d+s/);
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(75), '1m15s');
});
