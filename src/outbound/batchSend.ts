/**
 * A batch job's first half: one POST per request of its plan (batchPlan.ts), each sent at most
 * once, then the first poll (batchPoll.ts). In the order the steps run:
 *
 *   handled already? scheduled? -> resolve (store only; batchResolve.ts) -> claim (ETag + lease)
 *   -> the plan, written once -> per request: a send slot, `posting` written, POST, the
 *      operation id written -> the first poll queued -> `sent`
 *
 * Once only: a request is written `posting` before its POST. A later attempt that finds it so
 * cannot know whether Teams started it (no idempotency key), and a second POST could message
 * up to BATCH_MEMBERS_PER_REQUEST people twice: it fails that request with BatchAmbiguous
 * instead. The same goes for a POST whose answer was lost (timeout, reset, 502-504).
 */
import type { FailureCode } from '../core/failureCodes';
import { MAX_SCHEDULE_MS, toEnvelope, type DecodedMessage, type TeamsBatchJob } from '../core/job';
import { MAX_ACTIVITY_UTF16_BYTES, utf16Size } from '../core/outgoing';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes } from '../core/queueMessage';
import type { Logger } from '../log';
import { finishedRecord } from '../store/deliveryTransitions';
import { batchWriter, enqueuePoll, failBatch, LostBatchClaim, type BatchWriter } from './batchCommon';
import { batchActivity, planBatch, type BatchDestination } from './batchPlan';
import { postChunks } from './batchPost';
import { resolveBatch } from './batchResolve';
import { BUSY_RECHECK_MS, leaseFor, MAX_INLINE_WAIT_MS, type JobResult, type SenderDeps } from './senderTypes';

export interface BatchJobContext {
  readonly job: TeamsBatchJob;
  readonly decoded: DecodedMessage;
  readonly log: Logger;
  readonly started: Date;
  /** Puts the job back on the queue in teams-courier's envelope (not an attempt when `deferred`). */
  putBack(delayMs: number, deferred: boolean): Promise<void>;
}

export async function processBatchJob(
  job: TeamsBatchJob,
  decoded: DecodedMessage,
  deps: SenderDeps,
  baseLog: Logger,
  started: Date,
): Promise<JobResult> {
  const { body, envelope } = decoded;
  const log = baseLog.child({ jobId: job.id, jobKind: job.kind, parentId: envelope?.parentId });
  const ctx: BatchJobContext = {
    job,
    decoded,
    log,
    started,
    putBack: (delayMs, deferred) =>
      deps.queue.requeue(
        toEnvelope(body, {
          jobId: job.id,
          deferrals: (envelope?.deferrals ?? 0) + (deferred ? 1 : 0),
          ...(envelope?.parentId === undefined ? {} : { parentId: envelope.parentId }),
          ...(envelope?.caller === undefined ? {} : { caller: envelope.caller }),
          recorded: true,
        }),
        delayMs,
      ),
  };
  const fail = (code: FailureCode, reason: string, attempts: number, writer?: BatchWriter): Promise<JobResult> =>
    failBatch(job, body, envelope, deps, log, { code, reason, attempts, ...(writer === undefined ? {} : { writer }) });

  const envelopedBytes = queueMessageBytes(toEnvelope(body, { ...(envelope ?? { jobId: job.id }), deferrals: 0 }));
  if (envelopedBytes > MAX_ENVELOPED_JOB_BYTES)
    return fail(
      'JobTooLarge',
      `the job is ${envelopedBytes} bytes as a queue message; teams-courier can retry or schedule jobs up to ${MAX_ENVELOPED_JOB_BYTES} bytes: split the list`,
      0,
    );

  const known = await deps.deliveries.read(job.id);
  const existing = known?.record;
  if (existing?.status === 'sent' || existing?.status === 'failed') {
    log.info('job.skipped', { existing: existing.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: existing.status };
  }
  if (job.notBefore !== undefined) {
    const waitMs = job.notBefore.getTime() - started.getTime();
    if (waitMs > MAX_SCHEDULE_MS)
      return fail(
        'ScheduleTooFar',
        `notBefore ${job.notBefore.toISOString()} is more than 7 days ahead; a queue cannot hold a message that long`,
        existing?.attempts ?? 0,
      );
    if (waitMs > 0) return defer(ctx, waitMs, 'notBefore');
  }

  // Where it goes: decided once, kept with the plan.
  let where: BatchDestination;
  if (existing?.batch !== undefined) where = existing.batch;
  else {
    const resolved = await resolveBatch(job, deps, envelope?.caller);
    if (!resolved.ok) return fail(resolved.code, resolved.reason, existing?.attempts ?? 0);
    where = resolved.where;
  }
  const activity = batchActivity(job);
  const size = utf16Size(activity);
  if (size > MAX_ACTIVITY_UTF16_BYTES)
    return fail(
      'MessageSizeTooBig',
      `the message is ${size} bytes as UTF-16; Teams accepts at most ${MAX_ACTIVITY_UTF16_BYTES}`,
      existing?.attempts ?? 0,
    );

  // A long rate-limit wait puts the job back before it is claimed (not an attempt).
  const scope = `batch:${where.tenantId}`;
  const wait = deps.budget.waitTime(scope, where.tenantId);
  if (wait > MAX_INLINE_WAIT_MS) return defer(ctx, wait, 'rate limit');
  deps.budget.prepare(where.tenantId);

  const claim = await deps.deliveries.claim(job.id, { now: deps.now(), leaseMs: leaseFor(deps), known });
  if (claim.kind === 'done') {
    log.info('job.skipped', { existing: claim.record.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: claim.record.status };
  }
  if (claim.kind === 'busy') return defer(ctx, Math.min(claim.retryInMs, BUSY_RECHECK_MS), 'lease held');
  if (claim.ambiguous)
    log.warn('job.ambiguous', { reason: 'a previous attempt claimed the batch job and recorded no outcome' });
  const attempts = claim.record.attempts;
  // The worker holds the record while it is `sending` under the lease it last wrote; a cancel only sets a flag.
  const writer = batchWriter(
    deps,
    claim,
    (fresh, mine) => fresh.status === 'sending' && fresh.leaseUntil === mine.leaseUntil,
  );

  try {
    if (writer.record.batch === undefined) {
      const plan = planBatch(job, where, deps.config.batch.membersPerRequest, deps.now());
      await writer.update((r) => ({ ...r, kind: 'teamsBatch', batch: plan }));
    }
    const posted = await postChunks(job, writer, deps, log, { scope, activity, attempts });
    const batch = writer.record.batch!;
    const running = batch.chunks.filter((c) => c.operationId !== undefined).length;
    const open = batch.chunks.some((c) => c.status === 'new');

    if (posted.retry !== undefined && open) {
      const { delayMs, code, reason } = posted.retry;
      const next = new Date(deps.now().getTime() + delayMs);
      await writer.update((r) =>
        finishedRecord(
          r,
          { status: 'retrying', nextAttemptAt: next, ...(code === undefined ? {} : { code, reason }) },
          deps.now(),
        ),
      );
      // A send slot not free yet is not an attempt of Teams' (no request went out).
      await ctx.putBack(delayMs, code === undefined);
      if (code === undefined) {
        log.info('job.deferred', { why: 'rate limit', delayMs });
        return { status: 'deferred', jobId: job.id, delayMs, why: 'rate limit' };
      }
      log.warn('job.retrying', { code, reason, attempts, delayMs, throttled: posted.retry.throttled || undefined });
      return { status: 'retrying', jobId: job.id, code, delayMs };
    }
    if (running === 0) {
      const cancelled = writer.record.cancelRequestedAt !== undefined;
      return fail(
        cancelled ? 'BatchCancelled' : (writer.record.lastErrorCode ?? 'BatchNoOperationId'),
        cancelled
          ? 'cancelled before any request reached Teams'
          : (writer.record.lastErrorReason ?? 'no request started'),
        attempts,
        writer,
      );
    }

    // Handed to Teams: follow the operations. The poll is queued before the record names it, so
    // a crash in between leaves a message that waits for the record (batchPoll.ts), never none.
    const delayMs = writer.record.cancelRequestedAt === undefined ? deps.config.batch.pollIntervalMs : 0;
    await enqueuePoll(deps, job.id, 1, delayMs, envelope?.caller);
    const now = deps.now();
    await writer.update((r) => ({
      ...finishedRecord(r, { status: 'sent' }, now),
      batch: { ...r.batch!, pollSeq: 1, polls: 0, nextPollAt: new Date(now.getTime() + delayMs).toISOString() },
    }));
    deps.stats?.record({ kind: 'sent', at: now, tenantId: where.tenantId });
    log.info('batch.started', { operations: running, requests: batch.chunks.length, tenantId: where.tenantId });
    return { status: 'fannedOut', jobId: job.id, children: running, complete: true };
  } catch (err) {
    if (!(err instanceof LostBatchClaim)) throw err;
    log.warn('batch.lostClaim', { reason: err.message });
    return { status: 'skipped', jobId: job.id, existing: 'sending' };
  }
}

async function defer(ctx: BatchJobContext, delayMs: number, why: string): Promise<JobResult> {
  await ctx.putBack(delayMs, true);
  ctx.log.info('job.deferred', { why, delayMs });
  return { status: 'deferred', jobId: ctx.job.id, delayMs, why };
}
