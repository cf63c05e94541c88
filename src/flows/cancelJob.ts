/**
 * Cancelling a Teams batch job (DELETE /api/notify/{id}, `teams-courier cancel`): one conditional
 * write of the flag on its record (deliveryTransitions.ts cancelledRecord), so no request starts
 * after it, and, when operations are being followed, a poll queued at once, which cancels them in
 * Teams (batchPoll.ts). Neither caller can reach Teams itself: the sender does.
 */
import type { DeliveryRecord, DeliveryStore } from '../store/deliveryStore';
import { cancelledRecord } from '../store/deliveryTransitions';
import type { JobQueue } from '../store/jobQueue';
import { enqueuePoll } from '../outbound/batchCommon';

export type CancelOutcome =
  | { readonly kind: 'unknown' }
  /** Not a batch job: only those can be cancelled. */
  | { readonly kind: 'notBatch'; readonly record: DeliveryRecord }
  /** Finished or failed already: nothing to cancel. */
  | { readonly kind: 'done'; readonly record: DeliveryRecord }
  /** Recorded now, or earlier (`again`). */
  | { readonly kind: 'cancelling'; readonly record: DeliveryRecord; readonly again: boolean };

export interface CancelDeps {
  readonly deliveries: Pick<DeliveryStore, 'modify'>;
  readonly queue: Pick<JobQueue, 'requeue'>;
}

export async function cancelBatchJob(deps: CancelDeps, jobId: string, now: Date): Promise<CancelOutcome> {
  let wrote = false;
  const record = await deps.deliveries.modify(jobId, (existing) => {
    wrote = false;
    if (existing?.kind !== 'teamsBatch' || existing.cancelRequestedAt !== undefined || isOver(existing))
      return undefined;
    wrote = true;
    return cancelledRecord(existing, now);
  });
  if (record === undefined) return { kind: 'unknown' };
  if (record.kind !== 'teamsBatch') return { kind: 'notBatch', record };
  if (!wrote && (record.cancelRequestedAt === undefined || isOver(record))) return { kind: 'done', record };
  const batch = record.batch;
  // Operations are being followed: poll now (the poll the record names), which cancels them.
  if (batch?.pollSeq !== undefined && batch.finishedAt === undefined) await enqueuePoll(deps, jobId, batch.pollSeq, 0);
  return { kind: 'cancelling', record, again: !wrote };
}

/** Nothing more will happen to it. */
function isOver(record: DeliveryRecord): boolean {
  return record.status === 'failed' || record.batch?.finishedAt !== undefined;
}
