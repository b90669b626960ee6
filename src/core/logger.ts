import { pino, destination, type Logger } from 'pino';
import type { KafkaJS } from '@confluentinc/kafka-javascript';

/**
 * Structured logging (pino, JSON lines to stderr so stdout stays for command output).
 * `ENGAGE_LOG_LEVEL`/`LOG_LEVEL` is validated by the config schema; this module only reads the
 * already-validated value passed to `createLogger`.
 */
export type { Logger };

let root: Logger | undefined;

export function createLogger(level = 'info', name = 'engage'): Logger {
  root = pino({ name, level, base: { pid: process.pid } }, destination(2));
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
