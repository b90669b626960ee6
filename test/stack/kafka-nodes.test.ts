import assert from 'node:assert/strict';
import { test } from 'node:test';
import { privatePorts } from '../../src/config/load.js';
import { topicReplication } from '../../src/kafka/cluster.js';
import {
  clusterReplication,
  clusterUrl,
  kafkaNodes,
  nodePorts,
  serverProperties,
} from '../../src/stack/kafka-nodes.js';

/**
 * The private Kafka's nodes (`engage stack up --kafka-brokers N`): node 1 keeps the one-node
 * stack's ports and folder, the others get ports of their own from STACK_PORT_OFFSET, every node
 * names the same quorum, and the replication of internal and pipeline topics follows the count.
 */

const tls = { keystore: '/k.p12', truststore: '/t.p12', password: 'pw', caPem: '/ca.pem' };

function props(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

test("node 1 is the one-node stack's; nodes 2 and 3 have ports of their own, shifted by the offset", () => {
  const ports = privatePorts(800);
  assert.deepEqual(nodePorts(ports, 1), { kafka: 29892, controller: 29893, sasl: 29894, tls: 29895, saslTls: 29896 });
  assert.deepEqual(nodePorts(ports, 2), { kafka: 27892, controller: 27893, sasl: 27894, tls: 27895, saslTls: 27896 });
  assert.equal(nodePorts(ports, 3).kafka, 27902);
  assert.equal(clusterUrl(ports, 3), '127.0.0.1:29892,127.0.0.1:27892,127.0.0.1:27902');
  assert.equal(clusterUrl(ports, 1), '127.0.0.1:29892');
  const all = [1, 2, 3, 4, 5].flatMap((id) => Object.values(nodePorts(ports, id)));
  assert.equal(new Set(all).size, all.length, 'no port shared by two nodes');
  const others = [ports.postgres, ports.redis];
  assert.ok(!all.some((p) => others.includes(p)), 'no node port is PostgreSQL or Redis');
});

test('three nodes: one quorum of the three, each its own node id, listeners and folder; internal topics RF 3, min ISR 2', () => {
  const nodes = kafkaNodes('/s', privatePorts(0), 3);
  assert.deepEqual(
    nodes.map((n) => n.dir),
    ['/s/kafka', '/s/kafka/node-2', '/s/kafka/node-3'],
  );
  const each = nodes.map((n) => props(serverProperties(n, nodes, tls)));
  const voters = '1@127.0.0.1:29093,2@127.0.0.1:27093,3@127.0.0.1:27103';
  each.forEach((p, i) => {
    assert.equal(p.get('node.id'), String(i + 1));
    assert.equal(p.get('controller.quorum.voters'), voters);
    assert.match(p.get('listeners') ?? '', new RegExp(`PLAINTEXT://127.0.0.1:${nodes[i]?.ports.kafka},`));
    assert.equal(p.get('log.dirs'), nodes[i]?.dataDir);
    assert.equal(p.get('offsets.topic.replication.factor'), '3');
    assert.equal(p.get('transaction.state.log.replication.factor'), '3');
    assert.equal(p.get('transaction.state.log.min.isr'), '2');
    assert.equal(p.get('min.insync.replicas'), '2');
    assert.equal(p.get('default.replication.factor'), '3');
    assert.equal(p.get('unclean.leader.election.enable'), 'false');
  });
});

test('one node: as before, every replication factor 1', () => {
  const [node] = kafkaNodes('/s', privatePorts(0), 1);
  assert.ok(node);
  const p = props(serverProperties(node, [node], tls));
  assert.equal(p.get('controller.quorum.voters'), '1@127.0.0.1:29093');
  assert.equal(p.get('offsets.topic.replication.factor'), '1');
  assert.equal(p.get('transaction.state.log.min.isr'), '1');
  assert.equal(p.get('min.insync.replicas'), '1');
});

test('replication: min(3, brokers) or KAFKA_REPLICATION_FACTOR; min ISR a majority but never all', () => {
  assert.deepEqual(topicReplication(1), { factor: 1, minInsync: 1 });
  assert.deepEqual(topicReplication(2), { factor: 2, minInsync: 1 });
  assert.deepEqual(topicReplication(3), { factor: 3, minInsync: 2 });
  assert.deepEqual(topicReplication(6), { factor: 3, minInsync: 2 });
  assert.deepEqual(topicReplication(6, 5), { factor: 5, minInsync: 3 });
  assert.deepEqual(topicReplication(3, 1), { factor: 1, minInsync: 1 });
  for (const n of [1, 2, 3, 4, 5]) assert.deepEqual(clusterReplication(n), topicReplication(n));
});
