/**
 * Step "record": what an attempt's decision leaves behind. Sent: the activity id (kept trying, as
 * that write is what stops a second send). Retry: the record, a shared pause after a 429, and the
 * job back on the queue after Retry-After or backoff. Fail: the reason, the conversation marked
 * when Teams refused the conversation itself, and the job dead-lettered.
 */
import { isThreadConversationId, toChannelConversationId } from '../core/activity';
import { backoffMs, type Decision } from '../core/deliveryDecision';
import type { FailureCode } from '../core/failureCodes';
import type { Job } from '../core/job';
import { POISON_FORMAT } from '../core/poison';
import { enqueueTime } from '../core/stats';
import { StorageUnavailableError } from '../errors';
import {
  leaseFor,
  type Claimed,
  type JobContext,
  type JobResult,
  type ResolvedTarget,
  type SenderDeps,
  type SingleJob,
} from './senderTypes';

export interface Failure {
  readonly code: FailureCode;
  readonly reason: string;
  /** Attempts made so far (0 when nothing was sent). */
  readonly attempts: number;
  /** The claim, when the job had one: the outcome is written with its ETag. */
  readonly claimed?: Claimed;
  readonly conversationId?: string;
  /** The conversation's tenant, when the target was resolved (for the stats). */
  readonly tenantId?: string;
  /** The app was installed for the user through Graph on the way (DeliveryRecord.installed). */
  readonly installed?: 'new' | 'already';
}

/** The tenant a job names itself, for counting a failure that came before its target was resolved. */
function namedTenant(job: Job): string | undefined {
  return job.kind === 'message' && job.to.kind === 'user'
    ? job.to.tenantId
    : job.kind === 'broadcast'
      ? job.to.tenantId
      : undefined;
}

/** Records a failure for good: the record, the poison queue with the reason, the parent's count. */
export async function failJob(ctx: JobContext, deps: SenderDeps, failure: Failure): Promise<JobResult> {
  const { job } = ctx;
  const { code, reason, attempts, claimed, conversationId, installed } = failure;
  ctx.log.warn('job.failed', { code, reason, attempts, conversationId });
  if (claimed === undefined) await deps.deliveries.recordRejected(job.id, code, reason, deps.now());
  else
    await deps.deliveries.finish(
      job.id,
      claimed.etag,
      {
        status: 'failed',
        code,
        reason,
        ...(conversationId === undefined ? {} : { conversationId }),
        ...(installed === undefined ? {} : { installed }),
      },
      deps.now(),
      claimed.record,
    );
  // The caller and the parent go with the job, so that a replay (teams-courier poison replay,
  // POST /api/notify/{id}/retry) queues it in its own namespace and counts it in its broadcast.
  const { caller, parentId } = ctx.envelope ?? {};
  await deps.queue.poison(ctx.body, {
    jobId: job.id,
    code,
    reason,
    attempts,
    failedAt: deps.now().toISOString(),
    format: POISON_FORMAT,
    ...(caller === undefined ? {} : { caller }),
    ...(parentId === undefined ? {} : { parentId }),
  });
  if (parentId !== undefined) await deps.deliveries.setChildOutcome(parentId, job.id, 'failed', installed);
  const tenantId = failure.tenantId ?? namedTenant(job);
  deps.stats?.record({ kind: 'failed', at: deps.now(), code, ...(tenantId === undefined ? {} : { tenantId }) });
  return { status: 'failed', jobId: job.id, code, reason };
}

export interface Attempt {
  readonly decision: Decision;
  readonly claimed: Claimed;
  readonly attempts: number;
  /** A previous attempt claimed the job and recorded nothing: Teams may have it already. */
  readonly ambiguous: boolean;
  readonly httpStatus?: number;
  readonly target?: ResolvedTarget;
  /** The app was installed for the user through Graph on the way (connectorCalls.ts). */
  readonly installed?: 'new' | 'already';
}

export async function recordOutcome(
  job: SingleJob,
  ctx: JobContext,
  deps: SenderDeps,
  attempt: Attempt,
): Promise<JobResult> {
  const { decision, claimed, attempts, httpStatus } = attempt;
  const now = deps.now();
  const conversationId = attempt.target?.conversationId;
  const status = httpStatus === undefined ? {} : { httpStatus };
  const where = conversationId === undefined ? {} : { conversationId };
  const tenantId = attempt.target?.tenantId;
  const tenant = tenantId === undefined ? {} : { tenantId };
  const installed = attempt.installed === undefined ? {} : { installed: attempt.installed };
  switch (decision.kind) {
    case 'sent': {
      await persistDelivered(deps, ctx, () =>
        deps.deliveries.finish(
          job.id,
          claimed.etag,
          {
            status: 'sent',
            ...where,
            ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }),
            ...status,
            ...installed,
          },
          now,
          claimed.record,
        ),
      );
      if (ctx.envelope?.parentId !== undefined)
        await deps.deliveries.setChildOutcome(ctx.envelope.parentId, job.id, 'sent', attempt.installed);
      // From enqueue (or notBefore, or a replay) to sent: what the stats and the alerts call queuedMs.
      const enqueuedAt = enqueueTime(claimed.record, deps.stats?.queuedAt, job.notBefore);
      const queuedMs = enqueuedAt === undefined ? undefined : Math.max(0, now.getTime() - enqueuedAt.getTime());
      deps.stats?.record({
        kind: 'sent',
        at: now,
        ...tenant,
        ...(queuedMs === undefined ? {} : { latencyMs: queuedMs }),
      });
      ctx.log.info('job.sent', {
        activityId: decision.activityId,
        attempts,
        ambiguous: attempt.ambiguous || undefined,
        installed: attempt.installed,
        ms: now.getTime() - ctx.started.getTime(),
        queuedMs,
      });
      return {
        status: 'sent',
        jobId: job.id,
        conversationId: conversationId ?? '',
        ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }),
        ambiguous: attempt.ambiguous,
      };
    }
    case 'retry': {
      if (decision.throttled && conversationId !== undefined && attempt.target !== undefined) {
        // Every instance stops for what Teams asked (1 s when it did not say).
        await deps.budget.throttled(
          toChannelConversationId(conversationId),
          attempt.target.tenantId,
          now.getTime() + (decision.retryAfterMs ?? 1_000),
        );
      }
      if (decision.throttled) deps.stats?.record({ kind: 'throttled', at: now, ...tenant });
      if (attempts >= deps.config.maxAttempts) {
        return failJob(ctx, deps, {
          code: decision.code,
          reason: `gave up after ${attempts} attempts: ${decision.reason}`,
          attempts,
          claimed,
          ...where,
          ...tenant,
          ...installed,
        });
      }
      const delayMs =
        decision.retryAfterMs ??
        backoffMs(attempts, {
          random: deps.random,
          ...(deps.backoffBaseMs === undefined ? {} : { baseMs: deps.backoffBaseMs }),
        });
      await deps.deliveries.finish(
        job.id,
        claimed.etag,
        {
          status: 'retrying',
          code: decision.code,
          reason: decision.reason,
          nextAttemptAt: new Date(now.getTime() + delayMs),
          ...status,
          ...where,
          ...installed,
        },
        now,
        claimed.record,
      );
      await ctx.putBack(delayMs, { deferred: false });
      deps.stats?.record({ kind: 'retry', at: now, code: decision.code, ...tenant });
      // `throttled` and `httpStatus` feed the 429-share alert (infra/monitoring/alerts).
      ctx.log.warn('job.retrying', {
        code: decision.code,
        reason: decision.reason,
        attempts,
        delayMs,
        throttled: decision.throttled || undefined,
        httpStatus,
      });
      return { status: 'retrying', jobId: job.id, code: decision.code, delayMs };
    }
    case 'fail': {
      const { code, reason } = decision;
      // Teams refused the conversation itself: remember it on the reference. Not for a reply in a
      // thread (about that thread), an update or delete (about one message), or a chat we created.
      if (
        decision.undeliverable &&
        job.kind === 'message' &&
        conversationId !== undefined &&
        !isThreadConversationId(conversationId) &&
        attempt.target?.create === undefined
      ) {
        await deps.conversations.markUndeliverable(
          toChannelConversationId(conversationId),
          `${code}: ${reason}`.slice(0, 500),
          now,
        );
      }
      // A 401 after a fresh token means the bot's identity is wrong: every job will fail the same way.
      if (httpStatus === 401) ctx.log.error('connector.unauthorized', { code, reason });
      return failJob(ctx, deps, { code, reason, attempts, claimed, ...where, ...tenant, ...installed });
    }
    default:
      // refreshToken and retryOnGcc are resolved by the Connector step.
      throw new Error(`unexpected decision ${decision.kind}`);
  }
}

/**
 * Teams has the message: recording that is what keeps the job from being sent again. A storage
 * hiccup here would otherwise throw, the host would redeliver, and the job would be sent a second
 * time after its lease (the ambiguous window). Keep trying for up to half the lease first.
 */
const MAX_RECORD_TRIES = 30;

async function persistDelivered(deps: SenderDeps, ctx: JobContext, write: () => Promise<unknown>): Promise<void> {
  const deadline = deps.now().getTime() + leaseFor(deps) / 2;
  for (let tries = 1, delay = 250; ; tries += 1, delay = Math.min(delay * 2, 4_000)) {
    try {
      await write();
      return;
    } catch (err) {
      if (
        !(err instanceof StorageUnavailableError) ||
        deps.now().getTime() + delay > deadline ||
        tries >= MAX_RECORD_TRIES
      )
        throw err;
      ctx.log.warn('job.sentRecordRetry', { reason: err.message, delayMs: delay });
      await deps.sleep(delay);
    }
  }
}
