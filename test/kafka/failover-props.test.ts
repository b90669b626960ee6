import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaJS, RdKafka } from '@confluentinc/kafka-javascript';
import { FAILOVER_PROPS, connectionProps, createKafka, isTransientKafkaError } from '../../src/kafka/client.js';

/**
 * The settings that carry every client through a broker's loss (FAILOVER_PROPS) reach both kinds
 * of client, and librdkafka accepts them (it refuses an unknown property or a bad value when the
 * client is created); the errors a broker's loss returns are told apart from the rest. No broker
 * is needed: nothing connects.
 */

const connection = { kafkaBrokers: ['127.0.0.1:1'] };

test('plain clients get the failover settings, and librdkafka takes them', () => {
  const props = connectionProps(connection);
  for (const [k, v] of Object.entries(FAILOVER_PROPS)) assert.equal(props[k], v, k);
  assert.equal(props['enable.sparse.connections'], undefined, "librdkafka's default for plain clients");
  const producer = new RdKafka.Producer(props);
  const consumer = new RdKafka.KafkaConsumer({ ...props, 'group.id': 'failover-props-test' }, {});
  assert.ok(producer && consumer);
});

test('the KafkaJS-style clients get them too', () => {
  const kafka = createKafka(connection, 'failover-props-test');
  assert.ok(kafka.producer() && kafka.admin());
});

test('transient Kafka errors: timeouts, lost brokers, moving leaders and coordinators', () => {
  const codes = KafkaJS.ErrorCodes;
  const err = (code: number) => Object.assign(new Error('x'), { code });
  for (const code of [codes.ERR__TIMED_OUT, codes.ERR__TRANSPORT, codes.ERR__ALL_BROKERS_DOWN, 5, 6, 7, 14, 15, 16])
    assert.ok(isTransientKafkaError(err(code)), String(code));
  for (const code of [codes.ERR_UNKNOWN_TOPIC_OR_PART, codes.ERR_TOPIC_AUTHORIZATION_FAILED, -1])
    assert.ok(!isTransientKafkaError(err(code)), String(code));
  assert.ok(!isTransientKafkaError(new Error('no code')));
  assert.ok(!isTransientKafkaError(Object.assign(new Error('string code'), { code: 'ECONNREFUSED' })));
});
