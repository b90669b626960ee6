import type { Config } from '../config/load.js';
import type { Logger } from '../core/logger.js';
import { configuredPseudonymiser, type Pseudonymiser } from '../core/pseudonym.js';

/** The tables the CDC captures (its publication's). */
export const CAPTURED_TABLES = ['content', 'engagement_events'] as const;

/**
 * The CDC's pseudonyms of the PII_FIELDS columns (core/pseudonym.ts): refused (CONFIG_INVALID) when
 * a column is tagged but no key is set; a tagged column the table lacks, or a table the CDC does not
 * capture, is warned about once.
 */
export function cdcPseudonymiser(config: Config, log: Logger): Pseudonymiser {
  const known = pseudonymisers.get(config);
  if (known) return known; // one per CDC: its warnings once, not once per session
  const pii = configuredPseudonymiser(config, 'engage cdc', (f) =>
    log.warn(
      { field: `${f.table}.${f.column}` },
      'PII_FIELDS names a column the table lacks: nothing to protect there',
    ),
  );
  for (const f of config.piiFields) {
    if (!(CAPTURED_TABLES as readonly string[]).includes(f.table))
      log.warn({ field: `${f.table}.${f.column}` }, 'PII_FIELDS names a table the CDC does not capture');
  }
  pseudonymisers.set(config, pii);
  return pii;
}
const pseudonymisers = new WeakMap<Config, Pseudonymiser>();
