/**
 * Local stand-ins for the official service images compose.yaml names by default — `postgres`,
 * `apache/kafka`, `redis` — which a user pulls, and which no registry serves on this project's
 * machines. `npm run test:containers` (compose.containers.ts) builds them with podman from
 * test/containers/standins/<name>/Containerfile on the debootstrap'd Debian base (images.ts) and
 * hands them to compose.yaml through POSTGRES_IMAGE, KAFKA_IMAGE and REDIS_IMAGE. Each Containerfile's
 * header lists the contract of the official image it honours. They are test fixtures, not shipped.
 *
 * The Kafka stand-in runs Apache Kafka's own jars, the ones stack/pom.xml pins: Maven copies them
 * (`dependency:copy-dependencies`, from ~/.m2 or Maven Central) into a build context of its own.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DEBIAN_IMAGE, ROOT, WORK, ensureDebianImage, imageExists, podman } from './images.js';

const STANDINS = path.join(ROOT, 'test', 'containers', 'standins');

/** The stand-ins' image names; `standin` in each, so nobody takes them for the official images. */
export const STANDIN_IMAGES = {
  postgres: 'localhost/engage-standin-postgres:15-bookworm',
  kafka: 'localhost/engage-standin-kafka:4.1.1',
  redis: 'localhost/engage-standin-redis:7-bookworm',
} as const;

export type StandIn = keyof typeof STANDIN_IMAGES;

/** The Kafka build context: the stand-in's files and, in libs/, the jars of stack/pom.xml. */
function kafkaContext(log: (line: string) => void): string {
  const dir = path.join(WORK, 'kafka-context');
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(STANDINS, 'kafka'), dir, { recursive: true });
  const libs = path.join(dir, 'libs');
  mkdirSync(libs, { recursive: true });
  log('mvn dependency:copy-dependencies (stack/pom.xml) for the Kafka stand-in');
  execFileSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      path.join(ROOT, 'stack', 'pom.xml'),
      'dependency:copy-dependencies',
      `-DoutputDirectory=${libs}`,
      '-DincludeScope=runtime',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (!readdirSync(libs).some((f) => f.startsWith('kafka_2.13-'))) {
    throw new Error(`Maven copied no kafka_2.13 jar into ${libs}`);
  }
  return dir;
}

/**
 * Builds each stand-in missing (or every one with `rebuild`: podman reuses its cached layers when
 * nothing changed). Returns the image names.
 */
export function ensureStandIns(log: (line: string) => void, rebuild = false): typeof STANDIN_IMAGES {
  ensureDebianImage(log);
  for (const [name, image] of Object.entries(STANDIN_IMAGES) as Array<[StandIn, string]>) {
    if (!rebuild && imageExists(image)) continue;
    const context = name === 'kafka' ? kafkaContext(log) : path.join(STANDINS, name);
    const containerfile = path.join(context, 'Containerfile');
    if (!existsSync(containerfile)) throw new Error(`no ${containerfile}`);
    log(`podman build -t ${image} (${path.relative(ROOT, path.join(STANDINS, name))})`);
    podman(['build', '--build-arg', `BASE_IMAGE=${DEBIAN_IMAGE}`, '-f', containerfile, '-t', image, context], {
      inherit: true,
    });
  }
  return STANDIN_IMAGES;
}
