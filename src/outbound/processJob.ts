/**
 * One queue message -> at most one operation in Teams. Independent of the Functions runtime.
 * The steps, in the order they run:
 *
 *   decode and admit (decodeJob.ts)        invalid: recorded, dead-lettered, never retried
 *   too large to put back?                  failed now rather than lost on its first retry
 *   already handled?                        skipped (and the parent's count repaired)
 *   scheduled for later?                    put back until notBefore (not an attempt)
 *   broadcast                               fan out a chunk of child jobs (fanOut.ts)
 *   message, update, delete                 deliver.ts: resolve -> claim -> slot -> Connector -> record
 *
 * A Teams batch job (`to.batch`) takes its own path: batchSend.ts sends its requests, and its poll
 * messages (envelope `poll`) follow the operations (batchPoll.ts).
 *
 * Storage failures are thrown: the Functions host makes the message visible again and, after
 * maxDequeueCount, moves it to the poison queue itself.
 */
import { MAX_SCHEDULE_MS, toEnvelope, type Envelope } from '../core/job';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes } from '../core/queueMessage';
import { processBatchPoll } from './batchPoll';
import { processBatchJob } from './batchSend';
import { decodeJob } from './decodeJob';
import { deliver } from './deliver';
import { fanOut } from './fanOut';
import { failJob } from './recordOutcome';
import type { JobContext, JobResult, QueueMessageMeta, SenderDeps } from './senderTypes';

export type { JobContext, JobResult, QueueMessageMeta, SenderDeps } from './senderTypes';
export { BUSY_RECHECK_MS, MAX_INLINE_WAIT_MS } from './senderTypes';

export async function processJobMessage(input: unknown, meta: QueueMessageMeta, deps: SenderDeps): Promise<JobResult> {
  const started = deps.now();
  const baseLog = deps.log.child({ queueMessageId: meta.messageId, dequeueCount: meta.dequeueCount });

  const admitted = await decodeJob(input, meta, deps, baseLog, started);
  if (!admitted.ok) return admitted.result;
  if (admitted.poll !== undefined) return processBatchPoll(admitted.poll, deps, baseLog);
  const { job, decoded } = admitted;
  if (job.kind === 'teamsBatch') return processBatchJob(job, decoded, deps, baseLog, started);
  const { body, envelope } = decoded;
  const ctx: JobContext = {
    job,
    body,
    ...(envelope === undefined ? {} : { envelope }),
    started,
    log: baseLog.child({ jobId: job.id, jobKind: job.kind, parentId: envelope?.parentId }),
    putBack: async (delayMs, { deferred, cursor }) => {
      const next: Envelope = {
        jobId: job.id,
        deferrals: (envelope?.deferrals ?? 0) + (deferred ? 1 : 0),
        ...(envelope?.parentId === undefined ? {} : { parentId: envelope.parentId }),
        ...(cursor === undefined ? {} : { cursor }),
        ...(envelope?.caller === undefined ? {} : { caller: envelope.caller }),
        // Once the sender has looked, a record exists or is about to: read it first next time.
        recorded: true,
      };
      await deps.queue.requeue(toEnvelope(body, next), delayMs);
    },
  };

  // A job that no longer fits a queue message inside the sender's envelope could never be retried,
  // deferred or scheduled: it would be lost on its first transient failure. Refuse it now.
  const envelopedBytes = queueMessageBytes(toEnvelope(body, { ...(envelope ?? { jobId: job.id }), deferrals: 0 }));
  if (envelopedBytes > MAX_ENVELOPED_JOB_BYTES) {
    const reason = `the job is ${envelopedBytes} bytes as a queue message; teams-courier can retry or schedule jobs up to ${MAX_ENVELOPED_JOB_BYTES} bytes, and Teams takes at most about 100 KB of UTF-16 anyway: send less`;
    return failJob(ctx, deps, { code: 'JobTooLarge', reason, attempts: 0 });
  }

  // Already handled? The claim is the real guard, and reuses this read. A job with no record yet
  // (queued by a flow or the CLI, a broadcast's child) skips it: the claim is then an insert, and
  // a conflict makes it read.
  const fresh = envelope?.recorded !== true && job.kind !== 'broadcast' && job.notBefore === undefined;
  const known = fresh ? undefined : await deps.deliveries.read(job.id);
  const existing = known?.record;
  if ((existing?.status === 'sent' && job.kind !== 'broadcast') || existing?.status === 'failed') {
    // A crash between the outcome and the parent's count is repaired by the redelivery.
    if (envelope?.parentId !== undefined)
      await deps.deliveries.setChildOutcome(envelope.parentId, job.id, existing.status, existing.installed);
    ctx.log.info('job.skipped', { existing: existing.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: existing.status };
  }

  // Scheduled for later?
  if (job.notBefore !== undefined) {
    const waitMs = job.notBefore.getTime() - started.getTime();
    if (waitMs > MAX_SCHEDULE_MS) {
      return failJob(ctx, deps, {
        code: 'ScheduleTooFar',
        reason: `notBefore ${job.notBefore.toISOString()} is more than 7 days ahead; a queue cannot hold a message that long`,
        attempts: existing?.attempts ?? 0,
      });
    }
    if (waitMs > 0) {
      await ctx.putBack(waitMs, { deferred: true });
      ctx.log.info('job.scheduled', { notBefore: job.notBefore.toISOString(), delayMs: waitMs });
      return { status: 'deferred', jobId: job.id, delayMs: waitMs, why: 'notBefore' };
    }
  }

  if (job.kind === 'broadcast') return fanOut(job, ctx, deps, existing);
  return deliver(job, ctx, deps, fresh ? null : (known ?? null));
}
