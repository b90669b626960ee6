import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PgControl, SlotInfo } from './pg-control.js';
import type { CdcPosition } from './position-store.js';
import { waitSlotInactive } from './slot-guard.js';

/**
 * How a starting CDC session reconciles the replication slot with the position Kafka holds, before
 * it streams or snapshots. Called once per session, after the transactional producer fenced any
 * zombie and the committed position was read.
 *
 * Returns the position to resume from (null: none, a snapshot or a plain start follows) and the
 * slot (null: none, a new one is created). Guarantees that a slot is dropped only when a
 * `snapshot-pending` record says this CDC created it for a snapshot that never committed, or when
 * the operator asked (`resetPosition`); every other mismatch is refused with a non-retriable
 * SERVICE_MISCONFIGURED naming the way out, never silently re-snapshotted.
 */
export async function settleSlot(
  config: Config,
  control: PgControl,
  db: string,
  committed: CdcPosition | null,
  log: Logger,
  signal: AbortSignal,
  resetPosition: boolean,
): Promise<{ position: CdcPosition | null; info: SlotInfo | null }> {
  const slot = config.CDC_SLOT_NAME;
  const positionTopic = config.KAFKA_TOPIC_CDC_POSITION;
  let position = committed;
  const pendingSnapshot = position?.phase === 'snapshot-pending';
  if (pendingSnapshot) position = null;
  let info = await waitSlotInactive(control, slot, config.CDC_SLOT_WAIT_SECONDS, log, signal);
  if (info && (info.plugin !== 'pgoutput' || info.database !== db)) {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `replication slot ${slot} exists with plugin ${info.plugin} on database ${info.database}; engage cdc needs pgoutput on ${db}. Drop it or set CDC_SLOT_NAME.`,
    );
  }
  if (position && !info) {
    if (!resetPosition) {
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `replication slot ${slot} is gone but Kafka holds a position for it (LSN ${position.lsn}): changes since then are lost. ` +
          `To start over with a new slot and snapshot, run once: engage cdc --reset-position (or use another CDC_SLOT_NAME).`,
      );
    }
    log.warn(
      { position: position.lsn },
      "--reset-position: the slot is gone; ignoring Kafka's position and starting over with a new slot",
    );
    position = null;
  }
  if (!position && info && config.CDC_SNAPSHOT_MODE !== 'never') {
    if (pendingSnapshot) {
      log.warn(
        'the slot was created for a snapshot that never committed to Kafka (interrupted): dropping it and taking the snapshot again',
      );
    } else if (resetPosition) {
      log.warn(
        { confirmed_flush_lsn: info.confirmedFlushLsn },
        '--reset-position: Kafka holds no position for the slot; dropping it and taking a new snapshot',
      );
    } else {
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `CDC position missing: replication slot "${slot}" exists (confirmed up to ${info.confirmedFlushLsn ?? '?'}) but ${positionTopic} holds no position for it: ` +
          `the position topic was deleted or renamed, or KAFKA_BOOTSTRAP_SERVERS names another cluster. engage cdc does not drop the slot on its own. ` +
          `If the topic is elsewhere, point KAFKA_TOPIC_CDC_POSITION / KAFKA_BOOTSTRAP_SERVERS at it. To start over (drop the slot, take a new ` +
          `snapshot into the configured topics), run once: engage cdc --reset-position.`,
        {
          retriable: false,
          details: {
            reason: 'CDC_POSITION_MISSING',
            slot,
            topic: positionTopic,
            confirmed_flush_lsn: info.confirmedFlushLsn,
          },
        },
      );
    }
    await control.dropSlot(slot);
    info = null;
  }
  return { position, info };
}
