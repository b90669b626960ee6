import { test } from 'node:test';
import { bigTransactionCase } from '../cdc/big-transaction.js';

/** One 3,000,000-row PostgreSQL transaction in Kafka transactions of 100,000, SIGKILLed inside it: every row once. */
test('a 3,000,000-row transaction, the CDC SIGKILLed in the middle: every row once', { timeout: 1_800_000 }, (t) =>
  bigTransactionCase({ rows: 3_000_000, splitRows: 100_000, timeoutMs: 900_000, diagnostic: (l) => t.diagnostic(l) }),
);
