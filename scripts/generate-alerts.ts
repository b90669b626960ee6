import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshnessAlertRules, replaceGeneratedBlock } from '../src/api/metrics/freshness-alert.js';
import { registeredSinks } from '../src/sinks/registry.js';

/**
 * Rewrites the generated block of deploy/prometheus/alerts.yml (one EngageFreshnessAboveTarget
 * rule per registered sink) from src/sinks/registry.ts. `--check` changes nothing and exits 1 when
 * the file is out of date (test/api/deploy.test.ts checks the same).
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, 'deploy', 'prometheus', 'alerts.yml');
const text = readFileSync(file, 'utf8');
const block = freshnessAlertRules(
  registeredSinks().map((f) => ({ sink: f.name, seconds: f.operations.freshnessTargetSeconds })),
);
const next = replaceGeneratedBlock(text, block);
if (process.argv.includes('--check')) {
  if (next !== text) {
    process.stderr.write(`${path.relative(root, file)} is out of date: run npx tsx scripts/generate-alerts.ts\n`);
    process.exit(1);
  }
} else if (next !== text) {
  writeFileSync(file, next);
  process.stdout.write(
    `${path.relative(root, file)}: freshness rules for ${registeredSinks()
      .map((f) => f.name)
      .join(', ')}\n`,
  );
}
