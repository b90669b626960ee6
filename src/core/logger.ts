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

export function createLogger(level = 'info', name = 'engage'): Logger {
  root = pino({ name, level, base: { pid: process.pid } }, stderrDestination());
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
