/**
 * compose.yaml, validated by Debian's docker-compose (`docker-compose config` needs no daemon) and
 * held to the pipeline: every stage and every sink `engage run` runs by default is a service of the
 * engage image with a health check on HEALTH_PORT and waits for healthy services; the generator and
 * the receiver only under the `load` profile; state in named volumes; images from variables.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { defaultRunSinks } from '../../src/sinks/registry.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const COMPOSE = path.join(root, 'compose.yaml');

interface Service {
  image?: string;
  command?: string[];
  profiles?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  volumes?: Array<string | { source?: string; target?: string; type?: string }>;
}

/** The two variables compose.yaml requires (docs/security.md), as a .env would give them. */
const REQUIRED = { PII_KEYS: `k1:${'a'.repeat(64)}`, API_TOKEN: 'compose-test-token' };

function compose(file: string, args: string[], env: NodeJS.ProcessEnv = REQUIRED) {
  const res = spawnSync('docker-compose', ['-f', file, ...args], {
    encoding: 'utf8',
    cwd: path.dirname(file),
    env: { PATH: process.env.PATH, ...env },
  });
  if (res.error) throw new Error(`docker-compose: ${res.error.message} (Debian package docker-compose)`);
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

function services(args: string[] = [], env: NodeJS.ProcessEnv = {}): Record<string, Service> {
  env = { ...REQUIRED, ...env };
  const res = compose(COMPOSE, [...args, 'config'], env);
  assert.equal(res.code, 0, res.stderr);
  return (parse(res.stdout) as { services: Record<string, Service> }).services;
}

test('docker-compose validates it, and refuses a broken copy', () => {
  assert.equal(compose(COMPOSE, ['config', '--quiet']).code, 0);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-compose-'));
  try {
    const broken = path.join(dir, 'compose.yaml');
    writeFileSync(broken, readFileSync(COMPOSE, 'utf8').replace('command: ["cdc"]', 'comand: ["cdc"]'));
    const res = compose(broken, ['config', '--quiet']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /comand/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('the stages and the default sinks run from the engage image, healthy before their dependants', () => {
  const s = services();
  const sinks = defaultRunSinks(loadConfig({}, '/nonexistent'));
  const stages = ['cdc', 'processor', ...sinks.map((n) => `sink-${n}`), 'api'];
  // docker-compose 1.29's `config` lists every service, with its profiles.
  const always = Object.keys(s).filter((n) => s[n]!.profiles === undefined);
  assert.deepEqual(always.sort(), ['kafka', 'postgres', 'redis', ...stages].sort());
  assert.deepEqual(s.generator?.profiles, ['load']);
  assert.deepEqual(s.receiver?.profiles, ['load']);
  for (const name of stages) {
    const svc = s[name]!;
    assert.equal(svc.image, 'engagement-pipeline:latest', name);
    const probe = (svc.healthcheck?.test ?? []).join(' ');
    assert.match(probe, name === 'api' ? /8080\/health\/ready/ : /9464\/health\/ready/, name);
    assert.equal(svc.environment?.HEALTH_PORT, '9464', name);
    for (const dep of ['postgres', 'kafka', 'redis'])
      assert.equal(svc.depends_on?.[dep]?.condition, 'service_healthy', `${name} → ${dep}`);
  }
  for (const sink of sinks) assert.deepEqual(s[`sink-${sink}`]!.command, ['sink', sink]);
  assert.deepEqual(s.cdc!.command, ['cdc']);
  for (const svc of ['postgres', 'kafka', 'redis']) assert.ok(s[svc]!.healthcheck?.test, `${svc} has a health check`);
  assert.match((s.postgres!.command ?? []).join(' '), /wal_level=logical/);
  assert.ok(
    (s.postgres!.volumes ?? []).some((v) => JSON.stringify(v).includes('docker-entrypoint-initdb.d')),
    'the schema of sql/init.sql is applied',
  );
});

test('images and settings come from variables (.env beside compose.yaml or the environment)', () => {
  const s = services(['--profile', 'load'], {
    ENGAGE_IMAGE: 'local/engage:test',
    KAFKA_IMAGE: 'local/kafka:test',
    GENERATOR_RATE: '2500',
    API_PORT: '18080',
  });
  assert.equal(s.processor!.image, 'local/engage:test');
  assert.equal(s.kafka!.image, 'local/kafka:test');
  assert.deepEqual(s.generator!.command, ['generate', '--mode', 'continuous', '--rate', '2500']);
  assert.match(JSON.stringify(s.api), /18080/);
  assert.equal(services().kafka!.image, 'apache/kafka:4.1.1', 'the official image by default');
});

test('the pseudonym key and the API token are required: the API listens beyond loopback', () => {
  for (const missing of ['PII_KEYS', 'API_TOKEN'] as const) {
    const env: NodeJS.ProcessEnv = { ...REQUIRED };
    delete env[missing];
    const res = compose(COMPOSE, ['config', '--quiet'], env);
    assert.notEqual(res.code, 0, missing);
    assert.match(res.stderr, new RegExp(`set ${missing} in \\.env`), missing);
  }
  const s = services();
  assert.equal(s.api!.environment?.API_TOKEN, REQUIRED.API_TOKEN);
  assert.equal(s.cdc!.environment?.API_TOKEN, undefined, 'the token goes to the API only');
  for (const name of ['cdc', 'processor']) assert.equal(s[name]!.environment?.PII_KEYS, REQUIRED.PII_KEYS, name);
});
