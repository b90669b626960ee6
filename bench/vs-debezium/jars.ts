import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runCheckedAsync } from '../../src/stack/process.js';

/**
 * The peer's jars, resolved by Maven from bench/vs-debezium/pom.xml once and kept in a cache folder
 * (`<repo>/.stack/bench-cache/vs-debezium-<hash of the pom>`, or BENCH_CACHE_DIR): the Kafka Connect
 * worker's classpath (a file of paths into ~/.m2) and Debezium's plugin folder for `plugin.path`.
 *
 * Contract: `debeziumJars(repoRoot)` returns both, running Maven only when the cache for this pom is
 * missing (an edit of the pom makes a new one); a failed resolution leaves no half-made cache.
 * The plugin folder leaves out what the worker provides (Kafka's own jars, SLF4J, the compression
 * codecs, the JAX-RS API), as Connect's plugin isolation expects.
 */

export interface DebeziumJars {
  /** The Connect worker's classpath, ':'-separated. */
  classpath: string;
  /** The folder to give as `plugin.path` (holds `debezium-connector-postgres/`). */
  pluginPath: string;
  /** Versions as found in the jar names, for the report. */
  versions: { connect: string; debezium: string };
}

const PROVIDED_BY_WORKER = [
  'org.apache.kafka',
  'org.slf4j',
  'com.github.luben',
  'at.yawk.lz4',
  'org.xerial.snappy',
  'jakarta.ws.rs',
].join(',');

export async function debeziumJars(repoRoot: string): Promise<DebeziumJars> {
  const pom = path.join(repoRoot, 'bench', 'vs-debezium', 'pom.xml');
  const hash = createHash('sha1').update(readFileSync(pom)).digest('hex').slice(0, 12);
  const cacheRoot = process.env.BENCH_CACHE_DIR ?? path.join(repoRoot, '.stack', 'bench-cache');
  const cache = path.join(cacheRoot, `vs-debezium-${hash}`);
  const classpathFile = path.join(cache, 'connect-classpath.txt');
  const pluginPath = path.join(cache, 'plugins');
  if (!existsSync(classpathFile)) {
    const tmp = `${cache}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await runCheckedAsync(
      'mvn',
      ['-q', '-B', '-f', pom, '-P', 'debezium-plugin', 'dependency:copy-dependencies', '-DincludeScope=runtime'].concat(
        [`-DexcludeGroupIds=${PROVIDED_BY_WORKER}`, `-DoutputDirectory=${tmp}/plugins/debezium-connector-postgres`],
      ),
      "Resolving Debezium's PostgreSQL connector with Maven (needs Maven Central)",
    );
    await runCheckedAsync(
      'mvn',
      ['-q', '-B', '-f', pom, '-P', 'connect-worker', 'dependency:build-classpath'].concat([
        `-Dmdep.outputFile=${tmp}/connect-classpath.txt`,
      ]),
      'Resolving the Kafka Connect worker with Maven (needs Maven Central)',
    );
    rmSync(cache, { recursive: true, force: true });
    renameSync(tmp, cache);
  }
  const classpath = readFileSync(classpathFile, 'utf8').trim();
  const connect = /connect-runtime-([^/:]+)\.jar/.exec(classpath)?.[1] ?? '?';
  const debezium =
    readdirSync(path.join(pluginPath, 'debezium-connector-postgres'))
      .map((f) => /^debezium-connector-postgres-(.+)\.jar$/.exec(f)?.[1])
      .find((v) => v !== undefined) ?? '?';
  return { classpath, pluginPath, versions: { connect, debezium } };
}
