/**
 * One job to one conversation, in the order the steps run:
 *
 *   resolve the target (store, no Connector call) -> refuse what the caller may not reach
 *   -> a long rate-limit wait: put back before claiming (not an attempt)
 *   -> claim the job id (ETag + lease; the shared budget's roster write runs alongside)
 *   -> take a send slot (shared budget) -> call the Connector -> record the outcome
 */
import type { GrantedSlot } from '../core/rateLimiter';
import type { KnownRecord } from '../store/deliveryStore';
import { callConnector } from './connectorCalls';
import { failJob, recordOutcome } from './recordOutcome';
import { callerRefusal, resolveTarget, scopeKey, TargetError } from './resolveTarget';
import {
  BUSY_RECHECK_MS,
  leaseFor,
  MAX_INLINE_WAIT_MS,
  type JobContext,
  type JobResult,
  type ResolvedTarget,
  type SenderDeps,
  type SingleJob,
} from './senderTypes';
import { acquireSlot } from './sendSlot';

export async function deliver(
  job: SingleJob,
  ctx: JobContext,
  deps: SenderDeps,
  known: KnownRecord,
): Promise<JobResult> {
  const existing = known?.record;
  const attemptsSoFar = existing?.attempts ?? 0;

  // 1. Resolve the target. "Not ready" (an update of a job not sent yet) is a retry, after a claim.
  let target: ResolvedTarget | undefined;
  let notReady: TargetError | undefined;
  try {
    target = await resolveTarget(job, deps);
  } catch (err) {
    if (!(err instanceof TargetError)) throw err;
    if (!err.retry) return failJob(ctx, deps, { code: err.failureCode, reason: err.message, attempts: attemptsSoFar });
    notReady = err;
  }
  if (target !== undefined) {
    ctx.log = ctx.log.child({ conversationId: target.conversationId, tenantId: target.tenantId });
    const refusal = callerRefusal(ctx.envelope?.caller, target.tenantId, deps.config);
    if (refusal !== undefined)
      return failJob(ctx, deps, { code: refusal.failureCode, reason: refusal.message, attempts: attemptsSoFar });
    // 2. A long rate-limit wait puts the job back before it is claimed (not an attempt). The slot
    // itself is taken after the claim, right before the request: Teams counts requests when they
    // arrive, so the time between counting and sending must not depend on storage latency.
    const wait = deps.budget.waitTime(scopeKey(target), target.tenantId);
    if (wait > MAX_INLINE_WAIT_MS) return defer(ctx, wait, 'rate limit');
    deps.budget.prepare(target.tenantId);
  }

  // 3. Claim the job id: at most once across redeliveries and instances.
  const claim = await deps.deliveries.claim(job.id, { now: deps.now(), leaseMs: leaseFor(deps), known });
  if (claim.kind === 'done') {
    // A crash between the outcome and the parent's count is repaired by the redelivery.
    if (ctx.envelope?.parentId !== undefined && (claim.record.status === 'sent' || claim.record.status === 'failed')) {
      await deps.deliveries.setChildOutcome(ctx.envelope.parentId, job.id, claim.record.status, claim.record.installed);
    }
    ctx.log.info('job.skipped', { existing: claim.record.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: claim.record.status };
  }
  // The holder usually finishes within a request or two: look again soon, not at lease expiry.
  if (claim.kind === 'busy') return defer(ctx, Math.min(claim.retryInMs, BUSY_RECHECK_MS), 'lease held');
  const claimed = { etag: claim.etag, record: claim.record };
  const attempts = claim.record.attempts;
  if (claim.ambiguous)
    ctx.log.warn('job.ambiguous', {
      reason: 'a previous attempt claimed the job but recorded no outcome; acting again',
    });
  if (attempts > deps.config.maxAttempts) {
    return failJob(ctx, deps, {
      code: claim.record.lastErrorCode ?? 'TooManyAttempts',
      reason: `gave up after ${attempts - 1} attempts: ${claim.record.lastErrorReason ?? 'no outcome recorded'}`,
      attempts: attempts - 1,
      claimed,
    });
  }

  if (notReady !== undefined || target === undefined) {
    const decision = {
      kind: 'retry',
      code: notReady?.failureCode ?? 'NotReady',
      reason: notReady?.message ?? 'target not ready',
      throttled: false,
    } as const;
    return recordOutcome(job, ctx, deps, { decision, claimed, attempts, ambiguous: claim.ambiguous });
  }

  // 4. Take a send slot. Other jobs here took them meanwhile: nothing was sent, so the claim is
  // given back (no attempt used) and the job comes back when a slot is free.
  const scope = scopeKey(target);
  const slot: GrantedSlot = {};
  const slotWait = await acquireSlot(deps, scope, target.tenantId, ctx.log, slot);
  if (slotWait > 0) {
    await deps.deliveries.release(job.id, claimed.etag, existing);
    return defer(ctx, slotWait, 'rate limit');
  }

  // 5. Call the Connector, 6. record what came of it.
  // An earlier attempt's Graph installation counts: a retried job never installs twice.
  const installedBefore = claim.record.installed;
  const acted = await callConnector(job, target, ctx, deps, installedBefore === undefined ? {} : { installedBefore });
  // Answered: it reached Teams by now, so the budget need not keep its whole safety margin.
  if (acted.httpStatus !== undefined) deps.budget.settle(scope, target.tenantId, slot);
  return recordOutcome(job, ctx, deps, { ...acted, claimed, attempts, ambiguous: claim.ambiguous });
}

/** Puts the job back without an attempt. */
async function defer(ctx: JobContext, delayMs: number, why: string): Promise<JobResult> {
  await ctx.putBack(delayMs, { deferred: true });
  ctx.log.info('job.deferred', { why, delayMs });
  return { status: 'deferred', jobId: ctx.job.id, delayMs, why };
}
