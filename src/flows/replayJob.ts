/**
 * Replay: a failed job from the poison queue goes back on the job queue under its own id, for
 * `teams-courier poison replay` and POST /api/notify/{id}/retry (docs/operate.md).
 *
 * Once per id still holds, because the steps run in this order:
 *
 *   1. the delivery record: `failed` -> `pending` with a conditional write (DeliveryStore.rearm);
 *      a `sent` record is never touched, and the job is not queued again;
 *   2. the job back on the queue, in teams-courier's envelope with its own id, caller and parent;
 *   3. the poison message deleted.
 *
 * A crash between two steps leaves the job replayable again, and a second replay of the same job
 * queues a second message at most, which the sender's claim turns into nothing (docs/delivery.md).
 *
 * A Teams batch job's poll message (its envelope's `poll`) that the host dead-lettered goes back as
 * it was, whatever the record says: it sends nothing, and the poll's own number keeps a stale one
 * from acting (src/outbound/batchPoll.ts).
 */
import { decodeQueueMessage } from '../core/job';
import type { PoisonEntry } from '../core/poison';
import type { DeliveryRecord, DeliveryStatus, DeliveryStore } from '../store/deliveryStore';
import type { JobQueue } from '../store/jobQueue';
import type { PoisonMessage, PoisonQueue } from '../store/poisonQueue';

export interface ReplayDeps {
  readonly deliveries: Pick<DeliveryStore, 'rearm'>;
  readonly queue: Pick<JobQueue, 'requeue'>;
  readonly poison: Pick<PoisonQueue, 'remove'>;
  readonly now: () => Date;
}

export type ReplayResult =
  /** Back on the queue; `was` is the record's status before (`failed`, or pending/retrying after an interrupted replay). */
  | { readonly kind: 'requeued'; readonly jobId: string; readonly was: DeliveryStatus | 'unknown' }
  /** Teams has it: never sent again. The stale poison message is deleted. */
  | { readonly kind: 'alreadySent'; readonly jobId: string }
  /** Left in the poison queue, with why. */
  | { readonly kind: 'refused'; readonly jobId?: string; readonly why: string };

export type ReplayPlan = ReplayResult['kind'];

/** What a replay of `entry` would do, given its delivery record (for --dry-run; no writes). */
export function planReplay(
  entry: PoisonEntry,
  record: DeliveryRecord | undefined,
): { readonly plan: ReplayPlan; readonly why?: string } {
  if (!entry.replay.ok) return { plan: 'refused', why: entry.replay.why };
  if (isBatchPoll(entry)) return { plan: 'requeued' };
  if (record?.status === 'sent') return { plan: 'alreadySent' };
  return { plan: 'requeued' };
}

/** Replays one received poison message (the caller releases what this leaves, on `refused`). */
export async function replayPoisoned(
  entry: PoisonEntry,
  message: PoisonMessage,
  deps: ReplayDeps,
): Promise<ReplayResult> {
  if (!entry.replay.ok || entry.jobId === undefined)
    return {
      kind: 'refused',
      ...(entry.jobId === undefined ? {} : { jobId: entry.jobId }),
      why: entry.replay.ok ? 'no job id' : entry.replay.why,
    };
  const { jobId } = entry;
  if (isBatchPoll(entry)) {
    await deps.queue.requeue(entry.replay.text, 0);
    await deps.poison.remove(message);
    return { kind: 'requeued', jobId, was: 'sent' };
  }
  const rearmed = await deps.deliveries.rearm(
    jobId,
    deps.now(),
    entry.parentId === undefined ? {} : { parentId: entry.parentId },
  );
  let was: DeliveryStatus | 'unknown' = 'failed';
  if (rearmed.kind === 'notFailed') {
    const status = rearmed.record?.status;
    if (status === 'sent') {
      await deps.poison.remove(message);
      return { kind: 'alreadySent', jobId };
    }
    // Still failed after several lost races: someone else is replaying it right now.
    if (status === 'failed')
      return { kind: 'refused', jobId, why: 'the record changed while it was being re-armed; try again' };
    // pending, sending or retrying (an interrupted replay, or a message the host moved while the job
    // was in flight), or no record yet: queueing it again is safe, the claim decides.
    was = status ?? 'unknown';
  }
  await deps.queue.requeue(entry.replay.text, 0);
  await deps.poison.remove(message);
  return { kind: 'requeued', jobId, was };
}

/** A Teams batch job's poll message: not a job, nothing to re-arm. */
function isBatchPoll(entry: PoisonEntry): boolean {
  if (!entry.replay.ok) return false;
  try {
    return decodeQueueMessage(entry.replay.text).envelope?.poll !== undefined;
  } catch {
    return false;
  }
}
