/**
 * One queue message -> at most one operation in Teams. Independent of the Functions runtime.
 *
 *   decode + validate -> (invalid: record, dead-letter, done)
 *   already handled? -> skip (and repair the parent's count)
 *   notBefore in the future -> put back until then (not an attempt)
 *   broadcast -> fan out one chunk of child jobs (fanOut.ts)
 *   message / update / delete:
 *     resolve the target from the store (read-only)
 *     rate limit: wait briefly in process, or put the job back for later (not an attempt)
 *     claim the job id (ETag + lease): a delivered or failed id is never acted on again
 *     [create the personal chat] -> POST / PUT / DELETE -> decide (deliveryDecision.ts)
 *     sent: record the activity id | transient: record, put back with Retry-After/backoff |
 *     permanent: record the reason, mark the reference undeliverable, dead-letter.
 *
 * Storage failures are thrown: the Functions host makes the message visible again and, after
 * maxDequeueCount, moves it to the poison queue itself.
 */
import type { BotTokenProvider } from '../auth/botTokenProvider';
import type { OutboundConfig } from '../config';
import type { ConnectorClient } from '../connector/connectorClient';
import { ConnectorNetworkError } from '../connector/networkError';
import { backoffMs, decide, decideFailure, type ConnectorAnswer, type Decision } from '../core/deliveryDecision';
import { isThreadConversationId, toChannelConversationId } from '../core/activity';
import { decodeQueueMessage, MAX_SCHEDULE_MS, parseJob, peekJobId, toEnvelope, type Envelope, type Job, type MessageContent } from '../core/job';
import { MAX_ACTIVITY_UTF16_BYTES, toOutgoingActivity, utf16Size } from '../core/outgoing';
import { mergeReference, type ConversationReference } from '../core/reference';
import { CourierError, JobValidationError, StorageUnavailableError } from '../errors';
import type { Logger } from '../log';
import type { ConversationPage, ListFilter } from '../store/conversationList';
import type { ConversationStore } from '../store/conversationStore';
import type { DeliveryRecord, DeliveryStore, KnownRecord } from '../store/deliveryStore';
import type { JobQueue } from '../store/jobQueue';
import { isReservedJobId, toInternalId } from '../core/admission';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes } from '../core/queueMessage';
import { fanOut } from './fanOut';
import type { SendBudget } from './sendBudget';

/**
 * Longest rate-limit wait spent in process; longer waits put the job back on the queue. It covers
 * an instance's wait when it joins a tenant others are sending to (sendBudget.ts JOIN_WAIT_MS).
 */
export const MAX_INLINE_WAIT_MS = 5_000;
/** A claim lasts three connector timeouts (connect, headers, body) and a margin. */
const leaseFor = (deps: SenderDeps): number => deps.config.connectorTimeoutMs * 3 + 15_000;

/** How soon a job whose id another worker holds is looked at again. */
export const BUSY_RECHECK_MS = 2_000;

export interface SenderDeps {
  readonly conversations: ConversationStore;
  readonly deliveries: DeliveryStore;
  readonly queue: JobQueue;
  readonly connector: ConnectorClient;
  readonly tokens: Pick<BotTokenProvider, 'invalidate'>;
  /** Teams' limits, shared with every instance (sendBudget.ts). */
  readonly budget: SendBudget;
  readonly listConversations: (filter: ListFilter, page: { pageSize: number; continuationToken?: string }) => Promise<ConversationPage>;
  readonly config: Pick<OutboundConfig, 'appId' | 'maxAttempts' | 'globalServiceUrl' | 'gccServiceUrl' | 'connectorTimeoutMs' | 'callerTenants' | 'tenantRatePerSecond'>;
  readonly now: () => Date;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: Logger;
  /** First retry delay (doubles per attempt, with jitter); default 2 s. */
  readonly backoffBaseMs?: number;
}

export interface QueueMessageMeta {
  /** The queue message id (the job id when the job has none). */
  readonly messageId: string;
  readonly dequeueCount: number;
}

export type JobResult =
  | { readonly status: 'sent'; readonly jobId: string; readonly activityId?: string; readonly conversationId: string; readonly ambiguous: boolean }
  | { readonly status: 'retrying'; readonly jobId: string; readonly code: string; readonly delayMs: number }
  | { readonly status: 'deferred'; readonly jobId: string; readonly delayMs: number; readonly why: string }
  | { readonly status: 'failed'; readonly jobId: string; readonly code: string; readonly reason: string }
  | { readonly status: 'skipped'; readonly jobId: string; readonly existing: DeliveryRecord['status'] }
  | { readonly status: 'fannedOut'; readonly jobId: string; readonly children: number; readonly complete: boolean };

/** A failure found before any Connector call: permanent, or (retry) worth trying again later. */
class TargetError extends CourierError {
  readonly teamsCode: string;
  readonly retry: boolean;
  constructor(teamsCode: string, message: string, retry = false) {
    super(retry ? 'TARGET_NOT_FOUND' : 'TARGET_UNINSTALLED', message);
    this.teamsCode = teamsCode;
    this.retry = retry;
  }
}

interface ResolvedTarget {
  /** Where to act (a thread reply adds `;messageid=`). */
  readonly conversationId: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly botId: string;
  readonly botName?: string;
  /** Set when the personal chat must be created first. */
  readonly create?: { readonly aadObjectId: string };
  /** Update and delete: Teams' id of the earlier job's message. */
  readonly activityId?: string;
}

/** Everything one invocation knows about the job it is working on. */
export interface JobContext {
  readonly job: Job;
  readonly body: unknown;
  readonly envelope?: Envelope;
  readonly started: Date;
  log: Logger;
  /** Puts the job back on the queue (plain JSON, with its resolved id). */
  putBack(delayMs: number, deferred: boolean, cursor?: string): Promise<void>;
}

function usable(reference: ConversationReference, what: string): void {
  if (!reference.installed) {
    throw new TargetError('BotUninstalled', `the bot was removed from ${what} at ${reference.installedChangedAt}; it can send again once it is installed there`);
  }
  if (reference.undeliverableReason !== undefined) {
    throw new TargetError('Undeliverable', `${what} refused delivery at ${reference.undeliverableAt ?? 'an earlier send'} (${reference.undeliverableReason}); it becomes deliverable again when the bot hears from it`);
  }
}

function fromReference(reference: ConversationReference, conversationId = reference.conversationId): ResolvedTarget {
  return {
    conversationId,
    tenantId: reference.tenantId,
    serviceUrl: reference.serviceUrl,
    botId: reference.botId,
    ...(reference.botName === undefined ? {} : { botName: reference.botName }),
  };
}

const channelOf = toChannelConversationId;
const isThread = isThreadConversationId;

async function resolveTarget(job: Exclude<Job, { kind: 'broadcast' }>, deps: SenderDeps): Promise<ResolvedTarget> {
  const { conversations, config } = deps;
  if (job.kind === 'update' || job.kind === 'delete') {
    const earlier = await deps.deliveries.get(job.target);
    if (earlier === undefined) throw new TargetError('TargetJobUnknown', `${job.kind}: no job "${job.target}" is known`);
    if (earlier.status === 'failed') throw new TargetError('TargetJobFailed', `${job.kind}: job "${job.target}" failed (${earlier.lastErrorCode ?? 'no code'}), so there is nothing to ${job.kind}`);
    if (earlier.kind === 'broadcast' || earlier.kind === 'batch') throw new TargetError('TargetJobIsParent', `${job.kind}: job "${job.target}" is a ${earlier.kind}; ${job.kind} its child jobs one by one`);
    if (earlier.status !== 'sent') throw new TargetError('TargetJobNotSent', `${job.kind}: job "${job.target}" is not delivered yet (${earlier.status})`, true);
    if (earlier.activityId === undefined || earlier.conversationId === undefined) {
      throw new TargetError('TargetJobNoActivityId', `${job.kind}: Teams returned no activity id for job "${job.target}", so its message cannot be changed`);
    }
    const reference = await conversations.get(channelOf(earlier.conversationId));
    if (reference === undefined) throw new TargetError('ConversationUnknown', `${job.kind}: the conversation of job "${job.target}" is no longer stored`);
    usable(reference, `conversation ${reference.conversationId}`);
    return { ...fromReference(reference, earlier.conversationId), activityId: earlier.activityId };
  }

  switch (job.to.kind) {
    case 'conversation': {
      const reference = await conversations.get(job.to.conversationId);
      if (reference === undefined) {
        throw new TargetError('ConversationUnknown', `no conversation reference is stored for to.conversationId "${job.to.conversationId}" (the bot learns conversations from the activities Teams sends it)`);
      }
      usable(reference, `conversation ${job.to.conversationId}`);
      return fromReference(reference);
    }
    case 'channel': {
      const reference = await conversations.get(job.to.channelId);
      if (reference === undefined || reference.conversationType !== 'channel') {
        throw new TargetError('ChannelUnknown', `no channel reference is stored for to.channelId "${job.to.channelId}" (install the bot in the team first)`);
      }
      usable(reference, `channel ${job.to.channelId}`);
      // Teams' id for a thread is the channel id with ;messageid=<root>; POSTing to
      // .../activities/<root> would start a new thread instead (bot-connector.md §6).
      return fromReference(reference, job.to.threadId === undefined ? reference.conversationId : `${reference.conversationId};messageid=${job.to.threadId}`);
    }
    case 'user': {
      const { aadObjectId, tenantId } = job.to;
      const lookup = await conversations.findPersonalChat(aadObjectId, tenantId);
      if (lookup.kind === 'found') {
        usable(lookup.reference, `the personal chat with ${aadObjectId}`);
        return fromReference(lookup.reference);
      }
      if (lookup.kind === 'ambiguous') {
        throw new TargetError('TenantRequired', `to.tenantId is required: user ${aadObjectId} is known in ${lookup.tenantIds.length} tenants (${lookup.tenantIds.join(', ')})`);
      }
      if (tenantId === undefined) {
        throw new TargetError('TenantRequired', `to.tenantId is required: no personal chat is stored for user ${aadObjectId}, and creating one needs the tenant`);
      }
      const known = await conversations.findServiceUrlForTenant(tenantId);
      return { conversationId: '', tenantId, serviceUrl: known ?? config.globalServiceUrl, botId: `28:${config.appId}`, create: { aadObjectId } };
    }
  }
}

/** A caller limited to tenants (FLOW_CALLERS) may not reach others, whatever the job says. */
function callerRefusal(caller: string | undefined, tenantId: string, deps: SenderDeps): { code: string; reason: string } | undefined {
  if (caller === undefined) return undefined;
  const tenants = deps.config.callerTenants.get(caller);
  if (tenants === undefined) return { code: 'CallerNotAllowed', reason: `caller "${caller}" is no longer in FLOW_CALLERS` };
  if (tenants !== null && !tenants.includes(tenantId)) return { code: 'TenantNotAllowed', reason: `caller "${caller}" may not message tenant ${tenantId}` };
  return undefined;
}

function scopeKey(target: ResolvedTarget): string {
  return target.create === undefined ? channelOf(target.conversationId) : `create:${target.tenantId}:${target.create.aadObjectId}`;
}

/**
 * The job a queue message carries. In our envelope, the envelope's id is the job's id (a caller's
 * namespaced id, a broadcast child's id) and a caller's update or delete names that caller's own
 * job. A message a flow wrote straight to the queue is admitted like a job from the HTTP API: its
 * own id or the message id, never one of ours.
 */
function toJob(decoded: ReturnType<typeof decodeQueueMessage>, messageId: string): Job {
  const { envelope } = decoded;
  if (envelope === undefined) {
    const job = parseJob(decoded.body, messageId);
    if (isReservedJobId(job.id)) throw new JobValidationError([{ path: 'id', message: 'is reserved for teams-courier\'s own jobs ("welcome-…", "…~<n>")' }]);
    return job;
  }
  const parsed = parseJob(decoded.body, envelope.jobId);
  const submitter = envelope.caller === undefined ? undefined : { name: envelope.caller };
  return parsed.kind === 'update' || parsed.kind === 'delete'
    ? { ...parsed, id: envelope.jobId, target: toInternalId(parsed.target, submitter) }
    : { ...parsed, id: envelope.jobId };
}

export async function processJobMessage(input: unknown, meta: QueueMessageMeta, deps: SenderDeps): Promise<JobResult> {
  const started = deps.now();
  const baseLog = deps.log.child({ queueMessageId: meta.messageId, dequeueCount: meta.dequeueCount });

  // 1. Decode and validate. An invalid job is never retried.
  let decoded: ReturnType<typeof decodeQueueMessage> | undefined;
  let job: Job;
  try {
    decoded = decodeQueueMessage(input);
    job = toJob(decoded, meta.messageId);
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    const jobId = decoded?.envelope?.jobId ?? peekJobId(decoded?.body ?? input) ?? meta.messageId;
    baseLog.warn('job.invalid', { jobId, reason: err.message });
    // A reserved id names one of our own jobs: never write over its record.
    if (!isReservedJobId(jobId) || decoded?.envelope !== undefined) await deps.deliveries.recordRejected(jobId, 'InvalidJob', err.message, started);
    await deps.queue.poison(decoded?.body ?? input, { jobId, code: 'InvalidJob', reason: err.message, attempts: 0, failedAt: started.toISOString() });
    if (decoded?.envelope?.parentId !== undefined) await deps.deliveries.setChildOutcome(decoded.envelope.parentId, jobId, 'failed');
    return { status: 'failed', jobId, code: 'InvalidJob', reason: err.message };
  }
  const { body, envelope } = decoded;
  const ctx: JobContext = {
    job,
    body,
    ...(envelope === undefined ? {} : { envelope }),
    started,
    log: baseLog.child({ jobId: job.id, jobKind: job.kind, parentId: envelope?.parentId }),
    putBack: async (delayMs, deferred, cursor) => {
      const next: Envelope = {
        jobId: job.id,
        deferrals: (envelope?.deferrals ?? 0) + (deferred ? 1 : 0),
        ...(envelope?.parentId === undefined ? {} : { parentId: envelope.parentId }),
        ...(cursor === undefined ? {} : { cursor }),
        ...(envelope?.caller === undefined ? {} : { caller: envelope.caller }),
      };
      await deps.queue.requeue(toEnvelope(body, next), delayMs);
    },
  };

  // A job that no longer fits a queue message inside the sender's envelope could never be retried,
  // deferred or scheduled: it would be lost on its first transient failure. Refuse it now.
  const envelopedBytes = queueMessageBytes(toEnvelope(body, { ...(envelope ?? { jobId: job.id }), deferrals: 0 }));
  if (envelopedBytes > MAX_ENVELOPED_JOB_BYTES) {
    return failJob(ctx, deps, 'JobTooLarge', `the job is ${envelopedBytes} bytes as a queue message; teams-courier can retry or schedule jobs up to ${MAX_ENVELOPED_JOB_BYTES} bytes, and Teams takes at most about 100 KB of UTF-16 anyway: send less`, 0);
  }

  // 2. Already handled? (cheap; the claim below is the real guard, and reuses this read)
  const known = await deps.deliveries.read(job.id);
  const existing = known?.record;
  if (existing?.status === 'sent' || existing?.status === 'failed') {
    if (job.kind !== 'broadcast' || existing.status === 'failed') {
      // A crash between the outcome and the parent's count is repaired by the redelivery.
      if (envelope?.parentId !== undefined) await deps.deliveries.setChildOutcome(envelope.parentId, job.id, existing.status);
      ctx.log.info('job.skipped', { existing: existing.status, reason: 'job id already handled' });
      return { status: 'skipped', jobId: job.id, existing: existing.status };
    }
  }

  // 3. Scheduled for later?
  if (job.notBefore !== undefined) {
    const waitMs = job.notBefore.getTime() - started.getTime();
    if (waitMs > MAX_SCHEDULE_MS) {
      return failJob(ctx, deps, 'ScheduleTooFar', `notBefore ${job.notBefore.toISOString()} is more than 7 days ahead; a queue cannot hold a message that long`, existing?.attempts ?? 0);
    }
    if (waitMs > 0) {
      await ctx.putBack(waitMs, true);
      ctx.log.info('job.scheduled', { notBefore: job.notBefore.toISOString(), delayMs: waitMs });
      return { status: 'deferred', jobId: job.id, delayMs: waitMs, why: 'notBefore' };
    }
  }

  if (job.kind === 'broadcast') return fanOut(job, ctx, deps, existing);
  return deliver(job, ctx, deps, known);
}

interface Claimed {
  readonly etag: string;
  readonly record: DeliveryRecord;
}

async function failJob(ctx: JobContext, deps: SenderDeps, code: string, reason: string, attempts: number, claimed?: Claimed, conversationId?: string): Promise<JobResult> {
  const { job } = ctx;
  ctx.log.warn('job.failed', { code, reason, attempts, conversationId });
  if (claimed === undefined) await deps.deliveries.recordRejected(job.id, code, reason, deps.now());
  else await deps.deliveries.finish(job.id, claimed.etag, { status: 'failed', code, reason, ...(conversationId === undefined ? {} : { conversationId }) }, deps.now(), claimed.record);
  await deps.queue.poison(ctx.body, { jobId: job.id, code, reason, attempts, failedAt: deps.now().toISOString() });
  if (ctx.envelope?.parentId !== undefined) await deps.deliveries.setChildOutcome(ctx.envelope.parentId, job.id, 'failed');
  return { status: 'failed', jobId: job.id, code, reason };
}

async function deliver(job: Exclude<Job, { kind: 'broadcast' }>, ctx: JobContext, deps: SenderDeps, known: KnownRecord): Promise<JobResult> {
  const existing = known?.record;
  // Resolve the target from the store.
  let target: ResolvedTarget | undefined;
  let notReady: TargetError | undefined;
  try {
    target = await resolveTarget(job, deps);
  } catch (err) {
    if (!(err instanceof TargetError)) throw err;
    if (!err.retry) return failJob(ctx, deps, err.teamsCode, err.message, existing?.attempts ?? 0);
    notReady = err;
  }
  if (target !== undefined) {
    ctx.log = ctx.log.child({ conversationId: target.create === undefined ? target.conversationId : undefined, tenantId: target.tenantId });
    const refusal = callerRefusal(ctx.envelope?.caller, target.tenantId, deps);
    if (refusal !== undefined) return failJob(ctx, deps, refusal.code, refusal.reason, existing?.attempts ?? 0);
    // A long rate-limit wait puts the job back before it is claimed (not an attempt). The slot
    // itself is taken after the claim, right before the request: Teams counts requests when they
    // arrive, so the time between counting and sending must not depend on storage latency.
    const wait = deps.budget.waitTime(scopeKey(target), target.tenantId);
    if (wait > MAX_INLINE_WAIT_MS) {
      await ctx.putBack(wait, true);
      ctx.log.info('job.deferred', { why: 'rate limit', delayMs: wait });
      return { status: 'deferred', jobId: job.id, delayMs: wait, why: 'rate limit' };
    }
  }

  // Claim the job id: at most once across redeliveries and instances. Joining the tenant's send
  // budget (a storage write the first time) runs alongside.
  if (target !== undefined) deps.budget.prepare(target.tenantId);
  const leaseMs = leaseFor(deps);
  const claim = await deps.deliveries.claim(job.id, { now: deps.now(), leaseMs, known });
  if (claim.kind === 'done') {
    ctx.log.info('job.skipped', { existing: claim.record.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: claim.record.status };
  }
  if (claim.kind === 'busy') {
    // The holder usually finishes within a request or two: look again soon, not at lease expiry.
    const delayMs = Math.min(claim.retryInMs, BUSY_RECHECK_MS);
    await ctx.putBack(delayMs, true);
    ctx.log.info('job.deferred', { why: 'another worker holds the job', delayMs });
    return { status: 'deferred', jobId: job.id, delayMs, why: 'lease held' };
  }
  const claimed: Claimed = { etag: claim.etag, record: claim.record };
  const attempts = claim.record.attempts;
  if (claim.ambiguous) ctx.log.warn('job.ambiguous', { reason: 'a previous attempt claimed the job but recorded no outcome; acting again' });
  if (attempts > deps.config.maxAttempts) {
    return failJob(ctx, deps, claim.record.lastErrorCode ?? 'TooManyAttempts', `gave up after ${attempts - 1} attempts: ${claim.record.lastErrorReason ?? 'no outcome recorded'}`, attempts - 1, claimed);
  }

  let decision: Decision;
  let httpStatus: number | undefined;
  let conversationId = target?.conversationId ?? '';
  const slotWait = target === undefined ? 0 : await acquireSlot(deps, target, ctx.log);
  if (slotWait > 0) {
    // Other workers on this instance took the slots meanwhile. Nothing was sent: give the claim
    // back (no attempt used) and come back when a slot is free.
    await deps.deliveries.release(job.id, claimed.etag, existing);
    await ctx.putBack(slotWait, true);
    ctx.log.info('job.deferred', { why: 'rate limit', delayMs: slotWait });
    return { status: 'deferred', jobId: job.id, delayMs: slotWait, why: 'rate limit' };
  }
  if (notReady !== undefined || target === undefined) {
    decision = { kind: 'retry', code: notReady?.teamsCode ?? 'NotReady', reason: notReady?.message ?? 'target not ready', throttled: false };
  } else {
    try {
      const acted = await act(job, target, ctx, deps);
      decision = acted.decision;
      httpStatus = acted.httpStatus;
      conversationId = acted.conversationId;
      target = acted.target;
    } catch (err) {
      if (err instanceof ConnectorNetworkError) decision = decideFailure(err.failure);
      else if (err instanceof CourierError && err.code === 'UNTRUSTED_SERVICE_URL') decision = { kind: 'fail', code: 'UntrustedServiceUrl', reason: err.message, undeliverable: true };
      else if (err instanceof CourierError && err.code === 'INVALID_CONNECTOR_PATH') decision = { kind: 'fail', code: 'InvalidConversationId', reason: err.message, undeliverable: false };
      else if (err instanceof CourierError && err.code === 'TOKEN_UNAVAILABLE') {
        ctx.log.error('token.unavailable', { reason: err.message });
        decision = { kind: 'retry', code: 'TokenUnavailable', reason: err.message, throttled: false };
      } else throw err;
    }
  }
  return record(job, ctx, deps, { decision, claimed, attempts, ambiguous: claim.ambiguous, ...(httpStatus === undefined ? {} : { httpStatus }), conversationId, ...(target === undefined ? {} : { target }) });
}

/**
 * Teams has the message: recording that is what keeps the job from being sent again. A storage
 * hiccup here would otherwise throw, the host would redeliver, and the job would be sent a second
 * time after its lease (the ambiguous window). Keep trying for up to half the lease first.
 */
async function persistDelivered(deps: SenderDeps, ctx: JobContext, write: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + leaseFor(deps) / 2;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4_000)) {
    try {
      await write();
      return;
    } catch (err) {
      if (!(err instanceof StorageUnavailableError) || Date.now() + delay > deadline) throw err;
      ctx.log.warn('job.sentRecordRetry', { reason: err.message, delayMs: delay });
      await deps.sleep(delay);
    }
  }
}

/** Takes a send slot, waiting in process up to about MAX_INLINE_WAIT_MS; returns 0 or the wait still needed. */
async function acquireSlot(deps: SenderDeps, target: ResolvedTarget, log: Logger): Promise<number> {
  const deadline = Date.now() + MAX_INLINE_WAIT_MS;
  const acquire = async (): Promise<number> => {
    try {
      return await deps.budget.acquire(scopeKey(target), target.tenantId);
    } catch (err) {
      // Without the roster no instance may assume its share: give the claim back and come back.
      if (!(err instanceof StorageUnavailableError)) throw err;
      log.warn('budget.unavailable', { reason: err.message });
      return BUDGET_UNAVAILABLE_RETRY_MS;
    }
  };
  let wait = await acquire();
  for (let i = 0; wait > 0 && i < 20 && Date.now() + wait <= deadline + 50; i += 1) {
    await deps.sleep(wait);
    wait = await acquire();
  }
  return wait;
}

/** How soon to look again when the shared budget's roster could not be read. */
const BUDGET_UNAVAILABLE_RETRY_MS = 5_000;

/** The Connector calls for one job: [create the chat +] POST, or PUT, or DELETE. */
async function act(
  job: Exclude<Job, { kind: 'broadcast' }>,
  target: ResolvedTarget,
  ctx: JobContext,
  deps: SenderDeps,
): Promise<{ decision: Decision; httpStatus?: number; conversationId: string; target: ResolvedTarget }> {
  if (job.kind === 'delete') {
    const deleted = await callWithRecovery(deps, target, (serviceUrl) => deps.connector.deleteActivity(serviceUrl, target.conversationId, target.activityId!));
    return { decision: keepActivityId(deleted.decision, target.activityId), httpStatus: deleted.answer.status, conversationId: target.conversationId, target };
  }

  let conversationId = target.conversationId;
  let current = target;
  if (target.create !== undefined) {
    const created = await callWithRecovery(deps, target, (serviceUrl) =>
      deps.connector.createConversation(serviceUrl, {
        bot: { id: target.botId },
        members: [{ id: target.create!.aadObjectId }],
        channelData: { tenant: { id: target.tenantId } },
        tenantId: target.tenantId,
        isGroup: false,
      }),
    );
    if (created.decision.kind !== 'sent') return { decision: created.decision, httpStatus: created.answer.status, conversationId: '', target };
    const body = created.answer.body as { id?: unknown; serviceUrl?: unknown } | undefined;
    if (typeof body?.id !== 'string') {
      return { decision: { kind: 'fail', code: 'CreateConversationNoId', reason: 'create conversation answered without an id', undeliverable: false }, httpStatus: created.answer.status, conversationId: '', target };
    }
    conversationId = body.id;
    const serviceUrl = typeof body.serviceUrl === 'string' && body.serviceUrl !== '' ? body.serviceUrl : created.serviceUrl;
    const reference = mergeReference(
      undefined,
      { conversationId, conversationType: 'personal', tenantId: target.tenantId, serviceUrl, botId: target.botId, userAadObjectId: target.create.aadObjectId, installed: true },
      deps.now(),
    )!;
    await deps.conversations.upsertCreated(reference);
    ctx.log = ctx.log.child({ conversationId });
    ctx.log.info('conversation.created', { serviceUrl });
    current = { ...target, conversationId, serviceUrl };
  }

  const content: MessageContent = job;
  const activity = toOutgoingActivity(content, { botId: current.botId, conversationId, tenantId: current.tenantId, ...(current.botName === undefined ? {} : { botName: current.botName }) });
  const size = utf16Size(activity);
  if (size > MAX_ACTIVITY_UTF16_BYTES) {
    return { decision: { kind: 'fail', code: 'MessageSizeTooBig', reason: `the message is ${size} bytes as UTF-16; Teams accepts at most ${MAX_ACTIVITY_UTF16_BYTES}`, undeliverable: false }, conversationId, target: current };
  }
  const sent =
    job.kind === 'update'
      ? await callWithRecovery(deps, current, (serviceUrl) => deps.connector.updateActivity(serviceUrl, conversationId, current.activityId!, { ...activity, id: current.activityId }))
      : await callWithRecovery(deps, current, (serviceUrl) => deps.connector.sendToConversation(serviceUrl, conversationId, activity));
  const decision = job.kind === 'update' ? keepActivityId(sent.decision, current.activityId) : sent.decision;
  return { decision, httpStatus: sent.answer.status, conversationId, target: current };
}

/** An update or delete keeps pointing at the original message, whatever Teams echoes back. */
function keepActivityId(decision: Decision, activityId: string | undefined): Decision {
  return decision.kind === 'sent' && activityId !== undefined ? { kind: 'sent', activityId } : decision;
}

async function record(
  job: Exclude<Job, { kind: 'broadcast' }>,
  ctx: JobContext,
  deps: SenderDeps,
  outcome: { decision: Decision; claimed: Claimed; attempts: number; ambiguous: boolean; httpStatus?: number; conversationId: string; target?: ResolvedTarget },
): Promise<JobResult> {
  const { decision, claimed, attempts, httpStatus } = outcome;
  const now = deps.now();
  const conversationId = outcome.conversationId === '' ? undefined : outcome.conversationId;
  switch (decision.kind) {
    case 'sent': {
      await persistDelivered(deps, ctx, () => deps.deliveries.finish(job.id, claimed.etag, { status: 'sent', ...(conversationId === undefined ? {} : { conversationId }), ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }), ...(httpStatus === undefined ? {} : { httpStatus }) }, now, claimed.record));
      if (ctx.envelope?.parentId !== undefined) await deps.deliveries.setChildOutcome(ctx.envelope.parentId, job.id, 'sent');
      ctx.log.info('job.sent', { activityId: decision.activityId, attempts, ambiguous: outcome.ambiguous || undefined, ms: now.getTime() - ctx.started.getTime() });
      return { status: 'sent', jobId: job.id, conversationId: conversationId ?? '', ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }), ambiguous: outcome.ambiguous };
    }
    case 'retry': {
      if (decision.throttled && conversationId !== undefined && outcome.target !== undefined) {
        // Every instance stops for what Teams asked (1 s when it did not say).
        await deps.budget.throttled(channelOf(conversationId), outcome.target.tenantId, now.getTime() + (decision.retryAfterMs ?? 1_000));
      }
      if (attempts >= deps.config.maxAttempts) {
        return failJob(ctx, deps, decision.code, `gave up after ${attempts} attempts: ${decision.reason}`, attempts, claimed, conversationId);
      }
      const delayMs = decision.retryAfterMs ?? backoffMs(attempts, { random: deps.random, ...(deps.backoffBaseMs === undefined ? {} : { baseMs: deps.backoffBaseMs }) });
      await deps.deliveries.finish(job.id, claimed.etag, { status: 'retrying', code: decision.code, reason: decision.reason, nextAttemptAt: new Date(now.getTime() + delayMs), ...(httpStatus === undefined ? {} : { httpStatus }), ...(conversationId === undefined ? {} : { conversationId }) }, now, claimed.record);
      await ctx.putBack(delayMs, false);
      ctx.log.warn('job.retrying', { code: decision.code, reason: decision.reason, attempts, delayMs });
      return { status: 'retrying', jobId: job.id, code: decision.code, delayMs };
    }
    default: {
      // 'fail' (the recovery kinds are resolved by callWithRecovery).
      const { code, reason } = decision;
      // A message refused for good marks the conversation; an update or delete of a message that
      // is gone says nothing about the conversation.
      // A thread reply refused is about that thread, not the channel.
      if (decision.kind === 'fail' && decision.undeliverable && job.kind === 'message' && conversationId !== undefined && !isThread(conversationId) && outcome.target?.create === undefined) {
        await deps.conversations.markUndeliverable(channelOf(conversationId), `${code}: ${reason}`.slice(0, 500), now);
      }
      // A 401 after a fresh token means the bot's identity is wrong: every job will fail the same way.
      if (httpStatus === 401) ctx.log.error('connector.unauthorized', { code, reason });
      return failJob(ctx, deps, code, reason, attempts, claimed, conversationId);
    }
  }
}

/**
 * One Connector call with the two in-place recoveries: a 401 refreshes the token once, and
 * InvalidBotApiHost retries once on the GCC host (bot-connector.md §7).
 */
async function callWithRecovery(
  deps: SenderDeps,
  target: ResolvedTarget,
  call: (serviceUrl: string) => Promise<ConnectorAnswer>,
): Promise<{ answer: ConnectorAnswer; decision: Decision; serviceUrl: string }> {
  let serviceUrl = target.serviceUrl;
  let tokenRefreshed = false;
  let onGccHost = false;
  for (;;) {
    const answer = await call(serviceUrl);
    // No GCC host in this cloud (US gov): InvalidBotApiHost is then a plain failure.
    const decision = decide(answer, { now: deps.now(), tokenRefreshed, onGccHost: onGccHost || deps.config.gccServiceUrl === undefined });
    if (decision.kind === 'refreshToken') {
      deps.tokens.invalidate();
      tokenRefreshed = true;
      continue;
    }
    if (decision.kind === 'retryOnGcc') {
      serviceUrl = deps.config.gccServiceUrl!;
      onGccHost = true;
      continue;
    }
    return { answer, decision, serviceUrl };
  }
}
