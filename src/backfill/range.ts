import { PipelineError } from '../core/errors.js';

/**
 * The backfill's date range: `--start-date` and `--end-date` are inclusive UTC calendar dates
 * (YYYY-MM-DD). Pure; a bad or reversed range is a USAGE error saying what is accepted.
 */
export interface DateRange {
  start: string;
  end: string;
  /** Inclusive lower bound (start date, 00:00 UTC). */
  fromTs: Date;
  /** Exclusive upper bound (the day after the end date, 00:00 UTC). */
  untilTs: Date;
  /** Stable identity of the range, used as the progress key. */
  key: string;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function parseUtcDate(value: string, flag: string): Date {
  const m = DATE.exec(value ?? '');
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !d || d.toISOString().slice(0, 10) !== value) {
    throw new PipelineError(
      'USAGE',
      `${flag} accepts a calendar date as YYYY-MM-DD (UTC), got ${JSON.stringify(value)}`,
    );
  }
  return d;
}

export function parseDateRange(start: string | undefined, end: string | undefined): DateRange {
  if (!start || !end)
    throw new PipelineError('USAGE', 'backfill needs --start-date and --end-date (YYYY-MM-DD, inclusive, UTC)');
  const fromTs = parseUtcDate(start, '--start-date');
  const endDay = parseUtcDate(end, '--end-date');
  if (endDay < fromTs) {
    throw new PipelineError(
      'USAGE',
      `--end-date ${end} is before --start-date ${start}; the range is inclusive, so use the same date for one day`,
    );
  }
  const untilTs = new Date(endDay.getTime() + 86_400_000);
  return { start, end, fromTs, untilTs, key: `${start}..${end}` };
}
