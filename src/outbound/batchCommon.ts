/**
 * What the two halves of a batch job (batchSend.ts: the requests; batchPoll.ts: following the
 * operations) share: conditional writes of the record by the worker that holds it, the poll
 * messages, and a failure for good.
 */
import type { FailureCode } from '../core/failureCodes';
import { toEnvelope, type Envelope, type TeamsBatchJob } from '../core/job';
import { POISON_FORMAT } from '../core/poison';
import type { Logger } from '../log';
import type { DeliveryRecord } from '../store/deliveryStore';
import { finishedRecord } from '../store/deliveryTransitions';
import type { JobResult, SenderDeps } from './senderTypes';

/** Another worker holds the record now (its lease or poll claim lapsed and was taken over). */
export class LostBatchClaim extends Error {
  override readonly name = 'LostBatchClaim';
}

export interface BatchWriter {
  /** The record as last written or read. */
  readonly record: DeliveryRecord;
  /**
   * Writes `change(record)` conditionally. After a lost race it reads the record again and, if this
   * worker still holds it (`owns`: someone else only set a flag, such as a cancel), applies
   * `change` to what it read and writes again. Throws LostBatchClaim otherwise.
   */
  update(change: (record: DeliveryRecord) => DeliveryRecord): Promise<DeliveryRecord>;
}

export function batchWriter(
  deps: Pick<SenderDeps, 'deliveries' | 'now'>,
  start: { readonly record: DeliveryRecord; readonly etag: string },
  owns: (fresh: DeliveryRecord, mine: DeliveryRecord) => boolean,
): BatchWriter {
  let record = start.record;
  let etag = start.etag;
  return {
    get record() {
      return record;
    },
    async update(change) {
      for (let round = 0; round < 6; round += 1) {
        const next = { ...change(record), updatedAt: deps.now().toISOString() };
        const written = await deps.deliveries.write(next, etag);
        if (written !== undefined) {
          record = next;
          etag = written;
          return next;
        }
        const fresh = await deps.deliveries.read(record.jobId);
        if (fresh === null || !owns(fresh.record, record))
          throw new LostBatchClaim(`batch job ${record.jobId} was taken over by another worker`);
        record = fresh.record;
        etag = fresh.etag;
      }
      throw new LostBatchClaim(`batch job ${record.jobId} kept changing under us`);
    },
  };
}

/** Puts poll `seq` of the job on the queue: a message with an empty job body, its id in the envelope. */
export async function enqueuePoll(
  deps: { readonly queue: Pick<SenderDeps['queue'], 'requeue'> },
  jobId: string,
  seq: number,
  delayMs: number,
  caller?: string,
  deferrals = 0,
): Promise<void> {
  const envelope: Envelope = { jobId, deferrals, poll: seq, ...(caller === undefined ? {} : { caller }) };
  await deps.queue.requeue(toEnvelope({}, envelope), delayMs);
}

export interface BatchFailure {
  readonly code: FailureCode;
  readonly reason: string;
  readonly attempts: number;
  /** The worker's hold on the record, when it claimed it. */
  readonly writer?: BatchWriter;
  readonly tenantId?: string;
}

/**
 * A batch job that reached nobody, for good: the record, the poison queue with the reason (unless
 * it was cancelled: nothing to replay), the parent's count, the stats.
 */
export async function failBatch(
  job: TeamsBatchJob,
  body: unknown,
  envelope: Envelope | undefined,
  deps: SenderDeps,
  log: Logger,
  failure: BatchFailure,
): Promise<JobResult> {
  const { code, reason, attempts, writer } = failure;
  const now = deps.now();
  log.warn('job.failed', { code, reason, attempts });
  if (writer === undefined) await deps.deliveries.recordRejected(job.id, code, reason, now);
  else await writer.update((r) => finishedRecord(r, { status: 'failed', code, reason }, now));
  const { caller } = envelope ?? {};
  const parentId = envelope?.parentId ?? writer?.record.parentId;
  if (code !== 'BatchCancelled')
    await deps.queue.poison(body, {
      jobId: job.id,
      code,
      reason,
      attempts,
      failedAt: now.toISOString(),
      format: POISON_FORMAT,
      ...(caller === undefined ? {} : { caller }),
      ...(parentId === undefined ? {} : { parentId }),
    });
  if (parentId !== undefined) await deps.deliveries.setChildOutcome(parentId, job.id, 'failed');
  const tenantId = failure.tenantId ?? (job.to as { tenantId?: string }).tenantId;
  deps.stats?.record({ kind: 'failed', at: now, code, ...(tenantId === undefined ? {} : { tenantId }) });
  return { status: 'failed', jobId: job.id, code, reason };
}

/** The record's last error, for a chunk's code (the words go to the record, once). */
export function withLastError(record: DeliveryRecord, code: string, reason: string): DeliveryRecord {
  return { ...record, lastErrorCode: code, lastErrorReason: reason.slice(0, 1000) };
}
