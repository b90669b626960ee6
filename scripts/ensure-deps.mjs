#!/usr/bin/env node
// Installs what `npm start` / `npm test` need and is missing, so a fresh clone needs no other step:
// Debian packages (as root, through apt-get), then the npm dependencies (the Kafka client builds
// librdkafka from its own sources, linked against the system's compression and SASL libraries).
// Plain JavaScript: it runs before tsx is installed.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => {
  if (!quiet) process.stderr.write(`[ensure-deps] ${m}\n`);
};

// Debian package -> a file that proves it is installed.
const APT = {
  'libzstd-dev': '/usr/include/zstd.h',
  'liblz4-dev': '/usr/include/lz4.h',
  'libsasl2-dev': '/usr/include/sasl/sasl.h',
  'libssl-dev': '/usr/include/openssl/ssl.h',
  'build-essential': '/usr/bin/g++',
  python3: '/usr/bin/python3',
  postgresql: '/usr/bin/pg_recvlogical',
  'redis-server': '/usr/bin/redis-server',
  maven: '/usr/bin/mvn',
  'openjdk-17-jdk-headless': '/usr/bin/java',
  openssl: '/usr/bin/openssl',
  prometheus: '/usr/bin/promtool',
  chromium: '/usr/bin/chromium',
  // Validates compose.yaml without a daemon (test/deploy/compose.test.ts).
  'docker-compose': '/usr/bin/docker-compose',
};

function hasPostgresServer() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return false;
  return execSync(`ls ${base}`)
    .toString()
    .split('\n')
    .some((v) => v && existsSync(`${base}/${v}/bin/initdb`));
}

const missing = Object.entries(APT)
  .filter(([pkg, file]) => !existsSync(file) || (pkg === 'postgresql' && !hasPostgresServer()))
  .map(([pkg]) => pkg);
if (missing.length > 0) {
  if (process.getuid?.() === 0) {
    say(`installing Debian packages: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args) => spawnSync('apt-get', args, { stdio: quiet ? 'ignore' : 'inherit', env }).status;
    if (run(['install', '-y', '-q', '--no-install-recommends', ...missing]) !== 0) {
      run(['update', '-q']);
      if (run(['install', '-y', '-q', '--no-install-recommends', ...missing]) !== 0) {
        console.error(`[ensure-deps] apt-get install ${missing.join(' ')} failed; install them and retry.`);
        process.exit(1);
      }
    }
  } else {
    console.error(`[ensure-deps] missing system packages; run as root: apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
}

function kafkaClientLoads() {
  try {
    createRequire(path.join(root, 'package.json'))('@confluentinc/kafka-javascript');
    return true;
  } catch {
    return false;
  }
}

const binsPresent = ['tsx', 'eslint'].every((bin) => existsSync(path.join(root, 'node_modules', '.bin', bin)));
if (!binsPresent || !kafkaClientLoads()) {
  say('installing npm dependencies (the Kafka client builds librdkafka: about 2 minutes)');
  const res = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: quiet ? 'ignore' : 'inherit',
    env: { ...process.env, CKJS_LINKING: 'dynamic' },
  });
  if (res.status !== 0 || !kafkaClientLoads()) {
    console.error('[ensure-deps] npm ci failed; see the output above.');
    process.exit(1);
  }
}
say('dependencies present');
