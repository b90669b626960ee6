/** The processor's transactional producer now lives in src/kafka/txn-producer.ts (shared with the CDC). */
export { TxnProducer, type PartitionOffset, type TxnError, type TxnProducerOptions } from '../kafka/txn-producer.js';
