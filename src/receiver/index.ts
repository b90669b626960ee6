/** The reference external system: in-process start for tests and `engage external-receiver`. */
export { startReceiver, buildReceiverApp, type ReceiverOptions, type RunningReceiver } from './server.js';
export { HEALTHY, type FaultControl, type FaultPatch } from './fault-injection.js';
export type { ReceiverStats, EventView, BatchOutcome } from './receiver-store.js';
