/**
 * The Kafka Connect worker and Debezium connector settings of the vs-debezium bench, as
 * `key=value` maps (written as .properties files or sent as the REST API's JSON).
 *
 * Contract: both modes read the same publication and table as `engage cdc` (CDC_PUBLICATION_NAME,
 * `public.engagement_events`) from a slot the bench created before the rows, with no snapshot;
 * JSON without schemas, so a record's value is the bare envelope with `source.ts_ms` like engage's.
 * The producer is set as close to engage's as Connect allows (lz4, 1 MiB batches, acks=all,
 * idempotent; up to 5 requests in flight where Connect defaults to 1). Exactly-once is KIP-618 on
 * a one-worker distributed cluster, one transaction per 100 ms like CDC_COMMIT_INTERVAL_MS.
 * `message.prefix.exclude.list` keeps engage cdc's heartbeat messages (pg_logical_emit_message,
 * prefix `engage-cdc-heartbeat`) out: Debezium would make records for `<prefix>.message` of them,
 * a topic nobody created (the private broker does not auto-create), and its producer would block.
 */

export type DebeziumMode = 'at-least-once' | 'exactly-once';
export type Props = Record<string, string>;

export interface ConnectTarget {
  kafka: string;
  pgHost: string;
  pgPort: number;
  pgDatabase: string;
  publication: string;
  pluginPath: string;
  restPort: number;
}

/** Connect's name for the topic Debezium writes `public.engagement_events` to. */
export function debeziumTopic(prefix: string): string {
  return `${prefix}.public.engagement_events`;
}

function producerProps(lingerMs: number): Props {
  return {
    'producer.compression.type': 'lz4',
    'producer.batch.size': String(1024 * 1024),
    'producer.linger.ms': String(lingerMs),
    'producer.acks': 'all',
    'producer.enable.idempotence': 'true',
    'producer.max.in.flight.requests.per.connection': '5',
    'producer.buffer.memory': String(64 * 1024 * 1024),
  };
}

export function workerProps(t: ConnectTarget, mode: DebeziumMode, name: string, lingerMs: number, dir: string): Props {
  const common: Props = {
    'bootstrap.servers': t.kafka,
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': 'false',
    'value.converter.schemas.enable': 'false',
    'offset.flush.interval.ms': '10000',
    'plugin.path': t.pluginPath,
    listeners: `http://127.0.0.1:${t.restPort}`,
    ...producerProps(lingerMs),
  };
  if (mode === 'at-least-once') return { ...common, 'offset.storage.file.filename': `${dir}/offsets.dat` };
  return {
    ...common,
    'group.id': `${name}-cluster`,
    'config.storage.topic': `${name}-configs`,
    'offset.storage.topic': `${name}-offsets`,
    'status.storage.topic': `${name}-status`,
    'config.storage.replication.factor': '1',
    'offset.storage.replication.factor': '1',
    'offset.storage.partitions': '1',
    'status.storage.replication.factor': '1',
    'status.storage.partitions': '1',
    'exactly.once.source.support': 'enabled',
  };
}

export function connectorProps(t: ConnectTarget, mode: DebeziumMode, name: string, slot: string): Props {
  const props: Props = {
    name,
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'plugin.name': 'pgoutput',
    'database.hostname': t.pgHost,
    'database.port': String(t.pgPort),
    'database.user': 'postgres',
    'database.password': 'postgres',
    'database.dbname': t.pgDatabase,
    'topic.prefix': name,
    'slot.name': slot,
    'publication.name': t.publication,
    'publication.autocreate.mode': 'disabled',
    'table.include.list': 'public.engagement_events',
    'snapshot.mode': 'no_data',
    'max.batch.size': '20480',
    'max.queue.size': '81920',
    'poll.interval.ms': '10',
    'message.prefix.exclude.list': 'engage-cdc-heartbeat',
  };
  if (mode === 'at-least-once') return props;
  return {
    ...props,
    'exactly.once.support': 'required',
    'transaction.boundary': 'interval',
    'transaction.boundary.interval.ms': '100',
  };
}

export function propertiesText(p: Props): string {
  return `${Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** Connect's log: INFO for Connect and Debezium, WARN for the Kafka clients (log4j2). */
export const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.common.name = org.apache.kafka.common
logger.common.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
`;
