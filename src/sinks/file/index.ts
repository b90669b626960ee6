import path from 'node:path';
import type { Config } from '../../config/load.js';
import type { RegisteredSinkFactory } from '../../core/sink-contract.js';
import { FileSink } from './file-sink.js';

/**
 * Registration of the file sink (`engage sink file`): the enriched events as JSON lines in
 * FILE_SINK_DIR, rotated at FILE_SINK_MAX_BYTES, exactly once through offsets stored with what was
 * appended (file-sink.ts). Optional: `engage run` runs it, and /health expects it, only once
 * FILE_SINK_DIR is set. Batches of up to BATCH_SIZE records or PROCESSING_INTERVAL_SECONDS (the
 * runtime's defaults), written one at a time (one state file), so the default retry policy.
 */
export const fileSinkFactory: RegisteredSinkFactory = {
  name: 'file',
  operations: {
    order: 40,
    /** A batch waits PROCESSING_INTERVAL_SECONDS (1 s by default) and one fsync pair: 5 s holds with margin. */
    freshnessTargetSeconds: 5,
    runByDefault: (config: Config) => config.FILE_SINK_DIR !== undefined,
    destination: (config: Config) =>
      config.FILE_SINK_DIR === undefined ? 'FILE_SINK_DIR unset' : path.resolve(config.FILE_SINK_DIR),
  },
  writeConcurrency: () => 1,
  create: (ctx) => new FileSink(ctx),
};

export { FileSink } from './file-sink.js';
export { readState, segmentFile, listSegments, STATE_FILE, type FileSinkState } from './state-file.js';
