import { pino, destination, type Logger } from 'pino';
import type { KafkaJS } from '@confluentinc/kafka-javascript';

/**
 * Structured logging (pino, JSON lines to stderr so stdout stays for command output).
 * `ENGAGE_LOG_LEVEL`/`LOG_LEVEL` is validated by the config schema; this module only reads the
 * already-validated value passed to `createLogger`.
 */
export type { Logger };

let root: Logger | undefined;

/**
 * stderr through sonic-boom (synchronous: each line is written before `log.x()` returns), made
 * safe against a reader that went away (a supervisor killed, a closed pipe). sonic-boom's
 * `flushSync` — called by pino at exit — retries a failed write forever, which hung the exit of
 * components orphaned by `engage run`; with every line already written it has nothing to do, so it
 * is a no-op here. After the first write error, logging is switched off.
 */
function stderrDestination(): ReturnType<typeof destination> {
  const dest = destination({ fd: 2, sync: true });
  dest.flushSync = () => undefined;
  dest.on('error', () => {
    dest.write = () => true;
  });
  return dest;
}

/**
 * Secrets by name, censored wherever a logged object carries them at its top level or one level
 * down (`{ config }`, `{ headers }`, `{ err }`): a second line of defence — nothing should log them
 * (docs/security.md, "Secrets in logs"; test/core/secrets-in-logs.test.ts).
 */
const SECRET_KEYS = [
  'password',
  'secret',
  'authorization',
  'token',
  'databaseUrl',
  'redisUrl',
  'piiKeys',
  'DATABASE_URL',
  'REDIS_URL',
  'API_TOKEN',
  'PII_KEYS',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SSL_KEY_PASSWORD',
  'EXTERNAL_API_AUTH_HEADER',
  'EXTERNAL_PSEUDONYMIZE_KEY',
  'SCHEMA_REGISTRY_BASIC_AUTH',
  'connectionString',
];
export const REDACTED_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`]),
  // librdkafka's settings object (config/load.ts kafkaProps)
  '["sasl.password"]',
  '*["sasl.password"]',
  '["ssl.key.password"]',
  '*["ssl.key.password"]',
];

export function createLogger(level = 'info', name = 'engage'): Logger {
  root = pino(
    { name, level, base: { pid: process.pid }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    stderrDestination(),
  );
  return root;
}

export function logger(): Logger {
  return root ?? createLogger(process.env.LOG_LEVEL === undefined ? 'info' : process.env.LOG_LEVEL);
}

/** Adapts pino to the KafkaJS-style logger interface, so librdkafka's messages are structured too. */
export function kafkaLogger(base: Logger = logger()): KafkaJS.Logger {
  const make = (log: Logger): KafkaJS.Logger => ({
    info: (message, extra) => log.debug(extra ?? {}, message),
    warn: (message, extra) => log.warn(extra ?? {}, message),
    error: (message, extra) => log.warn(extra ?? {}, message),
    debug: (message, extra) => log.trace(extra ?? {}, message),
    namespace: (ns) => make(log.child({ kafka: ns })),
    setLogLevel: () => undefined,
  });
  return make(base.child({ component: 'kafka' }));
}
