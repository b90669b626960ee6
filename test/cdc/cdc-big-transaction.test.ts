import { test } from 'node:test';
import { bigTransactionCase } from './big-transaction.js';

/** A 200,000-row PostgreSQL transaction in parts of 20,000, the CDC SIGKILLed inside it: every row once (big-transaction.ts). */
test(
  'a transaction larger than CDC_SPLIT_TRANSACTION_ROWS survives a SIGKILL inside it: every row once',
  { timeout: 300_000 },
  (t) =>
    bigTransactionCase({ rows: 200_000, splitRows: 20_000, timeoutMs: 120_000, diagnostic: (l) => t.diagnostic(l) }),
);
