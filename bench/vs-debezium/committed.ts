import { RdKafka } from '@confluentinc/kafka-javascript';
import { connectionProps, type KafkaConnection } from '../../src/kafka/client.js';
import { TopicReader } from './reader.js';

/**
 * When a tool's records became readable under read_committed, without reading them while the tool
 * runs: a reader of every record costs this process about as much CPU per row as a fast tool spends
 * (the binding's per-message objects, 5–11 µs), which on two cores would slow the tool it measures.
 *
 * `CommittedWatch` asks the broker for each partition's last stable offset (one ListOffsets request,
 * read_committed) as often as it is polled and keeps every change with its time. Once the tool is
 * done, `readBack` reads the topic once (the tool idle by then) for the row count, the first
 * record's LogAppendTime and each partition's last row offset; `readableAt` is the first poll at
 * which every partition's last stable offset had passed its last row: the moment the last row became
 * readable, to one poll interval (offsets alone cannot say it: a transactional producer's commit
 * markers take offsets too).
 */

type Admin = ReturnType<typeof RdKafka.AdminClient.create>;

export interface Sample {
  t: number;
  lso: number[];
}

export class CommittedWatch {
  readonly samples: Sample[] = [];
  private last = '';

  private constructor(
    private readonly admin: Admin,
    private readonly topic: string,
    private readonly partitions: number,
  ) {}

  static create(conn: KafkaConnection, topic: string, partitions: number): CommittedWatch {
    const admin = RdKafka.AdminClient.create({ ...connectionProps(conn), 'client.id': 'bench-vs-debezium-lso' });
    return new CommittedWatch(admin, topic, partitions);
  }

  /** One request; returns the sum of the last stable offsets and whether it changed since the last poll. */
  async poll(): Promise<{ sum: number; changed: boolean }> {
    const specs = Array.from({ length: this.partitions }, (_, partition) => ({
      topic: this.topic,
      partition,
      offset: RdKafka.OffsetSpec.LATEST,
    }));
    const res = await new Promise<RdKafka.ListOffsetsResult[]>((resolve, reject) =>
      this.admin.listOffsets(specs, { timeout: 5000, isolationLevel: 1 as RdKafka.IsolationLevel }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    const t = Date.now();
    const lso = Array.from({ length: this.partitions }, (_, p) => res.find((r) => r.partition === p)?.offset ?? 0);
    const key = lso.join(',');
    const changed = key !== this.last;
    if (changed) {
      this.last = key;
      this.samples.push({ t, lso });
    }
    return { sum: lso.reduce((a, b) => a + b, 0), changed };
  }

  close(): void {
    this.admin.disconnect();
  }
}

export interface ReadBack {
  rows: number;
  firstAppend: number;
  /** Per partition, the offset of its last row (-1: none). */
  lastRowOffset: number[];
}

/** Reads every record of the topic (up to `expected`, or until none came for `quietMs`). */
export async function readBack(
  conn: KafkaConnection,
  topic: string,
  partitions: number,
  expected: number,
  quietMs = 3000,
): Promise<ReadBack> {
  const out: ReadBack = { rows: 0, firstAppend: Number.POSITIVE_INFINITY, lastRowOffset: Array(partitions).fill(-1) };
  let lastAt = Date.now();
  const reader = await TopicReader.start(conn, topic, partitions, (_v, ts, _now, partition, offset) => {
    out.rows++;
    out.firstAppend = Math.min(out.firstAppend, ts);
    out.lastRowOffset[partition] = Math.max(out.lastRowOffset[partition] ?? -1, offset);
    lastAt = Date.now();
  });
  try {
    while (out.rows < expected && Date.now() - lastAt < quietMs) await new Promise((r) => setTimeout(r, 50));
  } finally {
    await reader.stop();
  }
  return out;
}

/** The first sample at which every partition's last stable offset is past its last row; NaN if none. */
export function readableAt(samples: Sample[], lastRowOffset: number[]): number {
  const s = samples.find((x) => lastRowOffset.every((o, p) => (x.lso[p] ?? 0) > o));
  return s?.t ?? Number.NaN;
}
