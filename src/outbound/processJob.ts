/**
 * One queue message -> at most one message in Teams. Independent of the Functions runtime.
 *
 *   decode + validate -> (invalid: record, dead-letter, done)
 *   resolve the target from the store (read-only)
 *   rate limit: wait briefly in process, or put the job back for later (not an attempt)
 *   claim the job id (ETag + lease): a delivered or failed id is never sent again
 *   [create the personal chat] -> POST the activity -> decide (deliveryDecision.ts)
 *   sent: record the activity id | transient: record, put back with Retry-After/backoff |
 *   permanent: record the reason, mark the reference undeliverable, dead-letter.
 *
 * Storage failures are thrown: the Functions host makes the message visible again and, after
 * maxDequeueCount, moves it to the poison queue itself.
 */
import type { ConversationType } from '../core/activity';
import { backoffMs, decide, decideFailure, type ConnectorAnswer, type Decision } from '../core/deliveryDecision';
import { decodeQueueMessage, parseJob, peekJobId, toEnvelope, type Job } from '../core/job';
import { toOutgoingActivity, utf16Size, MAX_ACTIVITY_UTF16_BYTES } from '../core/outgoing';
import type { RateLimiter } from '../core/rateLimiter';
import { mergeReference, type ConversationReference } from '../core/reference';
import type { OutboundConfig } from '../config';
import { ConnectorNetworkError, type ConnectorClient } from '../connector/connectorClient';
import type { BotTokenProvider } from '../auth/botTokenProvider';
import { CourierError, JobValidationError } from '../errors';
import type { Logger } from '../log';
import type { ConversationStore } from '../store/conversationStore';
import type { DeliveryRecord, DeliveryStore } from '../store/deliveryStore';
import type { JobQueue } from '../store/jobQueue';

/** Longest rate-limit wait spent in process; longer waits put the job back on the queue. */
export const MAX_INLINE_WAIT_MS = 2_000;
/** How soon a job whose id another worker holds is looked at again. */
export const BUSY_RECHECK_MS = 2_000;

export interface SenderDeps {
  readonly conversations: ConversationStore;
  readonly deliveries: DeliveryStore;
  readonly queue: JobQueue;
  readonly connector: ConnectorClient;
  readonly tokens: Pick<BotTokenProvider, 'invalidate'>;
  readonly limiter: RateLimiter;
  readonly config: Pick<OutboundConfig, 'appId' | 'maxAttempts' | 'globalServiceUrl' | 'gccServiceUrl' | 'connectorTimeoutMs'>;
  /** First retry delay (doubles per attempt, with jitter); default 2 s. */
  readonly backoffBaseMs?: number;
  readonly now: () => Date;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: Logger;
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
  | { readonly status: 'skipped'; readonly jobId: string; readonly existing: DeliveryRecord['status'] };

/** A permanent failure found before any Connector call (target unknown, uninstalled...). */
class TargetError extends CourierError {
  readonly teamsCode: string;
  constructor(code: 'TARGET_NOT_FOUND' | 'TARGET_UNINSTALLED' | 'JOB_INVALID', teamsCode: string, message: string) {
    super(code, message);
    this.teamsCode = teamsCode;
  }
}

interface ResolvedTarget {
  /** Where to POST (a thread reply adds `;messageid=`). */
  readonly conversationId: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly botId: string;
  readonly botName?: string;
  /** Set when the personal chat must be created first. */
  readonly create?: { readonly aadObjectId: string };
}

function usable(reference: ConversationReference, what: string): void {
  if (!reference.installed) {
    throw new TargetError('TARGET_UNINSTALLED', 'BotUninstalled', `the bot was removed from ${what} at ${reference.installedChangedAt}; it can send again once it is installed there`);
  }
  if (reference.undeliverableReason !== undefined) {
    throw new TargetError('TARGET_UNINSTALLED', 'Undeliverable', `${what} refused delivery at ${reference.undeliverableAt ?? 'an earlier send'} (${reference.undeliverableReason}); it becomes deliverable again when the bot hears from it`);
  }
}

async function resolveTarget(job: Job, deps: SenderDeps): Promise<ResolvedTarget> {
  const { conversations, config } = deps;
  const fromReference = (reference: ConversationReference, conversationId = reference.conversationId): ResolvedTarget => ({
    conversationId,
    tenantId: reference.tenantId,
    serviceUrl: reference.serviceUrl,
    botId: reference.botId,
    ...(reference.botName === undefined ? {} : { botName: reference.botName }),
  });

  switch (job.to.kind) {
    case 'conversation': {
      const reference = await conversations.get(job.to.conversationId);
      if (reference === undefined) {
        throw new TargetError('TARGET_NOT_FOUND', 'ConversationUnknown', `no conversation reference is stored for to.conversationId "${job.to.conversationId}" (the bot learns conversations from the activities Teams sends it)`);
      }
      usable(reference, `conversation ${job.to.conversationId}`);
      return fromReference(reference);
    }
    case 'channel': {
      const reference = await conversations.get(job.to.channelId);
      if (reference === undefined || reference.conversationType !== 'channel') {
        throw new TargetError('TARGET_NOT_FOUND', 'ChannelUnknown', `no channel reference is stored for to.channelId "${job.to.channelId}" (install the bot in the team first)`);
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
        throw new TargetError('JOB_INVALID', 'TenantRequired', `to.tenantId is required: user ${aadObjectId} is known in ${lookup.tenantIds.length} tenants (${lookup.tenantIds.join(', ')})`);
      }
      if (tenantId === undefined) {
        throw new TargetError('JOB_INVALID', 'TenantRequired', `to.tenantId is required: no personal chat is stored for user ${aadObjectId}, and creating one needs the tenant`);
      }
      const known = await conversations.findServiceUrlForTenant(tenantId);
      return {
        conversationId: '',
        tenantId,
        serviceUrl: known ?? config.globalServiceUrl,
        botId: `28:${config.appId}`,
        create: { aadObjectId },
      };
    }
  }
}

function scopeKey(target: ResolvedTarget, job: Job): string {
  return target.create === undefined ? target.conversationId : `create:${target.tenantId}:${job.to.kind === 'user' ? job.to.aadObjectId : ''}`;
}

export async function processJobMessage(input: unknown, meta: QueueMessageMeta, deps: SenderDeps): Promise<JobResult> {
  const started = deps.now();
  let log = deps.log.child({ queueMessageId: meta.messageId, dequeueCount: meta.dequeueCount });

  // 1. Decode and validate. An invalid job is never retried.
  let decoded: ReturnType<typeof decodeQueueMessage>;
  let job: Job;
  try {
    decoded = decodeQueueMessage(input);
    job = parseJob(decoded.body, decoded.envelope?.jobId ?? meta.messageId);
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    const jobId = peekJobId(typeof input === 'object' ? input : undefined) ?? meta.messageId;
    log.warn('job.invalid', { jobId, reason: err.message });
    await deps.deliveries.recordRejected(jobId, 'InvalidJob', err.message, started);
    await deps.queue.poison(input, { jobId, code: 'InvalidJob', reason: err.message, attempts: 0, failedAt: started.toISOString() });
    return { status: 'failed', jobId, code: 'InvalidJob', reason: err.message };
  }
  log = log.child({ jobId: job.id });

  const putBack = async (delayMs: number, deferred: boolean): Promise<void> => {
    const deferrals = (decoded.envelope?.deferrals ?? 0) + (deferred ? 1 : 0);
    await deps.queue.requeue(toEnvelope(decoded.body, { jobId: job.id, deferrals }), delayMs);
  };

  const failJob = async (code: string, reason: string, attempts: number, etag?: string, conversationId?: string): Promise<JobResult> => {
    log.warn('job.failed', { code, reason, attempts, conversationId });
    if (etag === undefined) await deps.deliveries.recordRejected(job.id, code, reason, deps.now());
    else await deps.deliveries.finish(job.id, etag, { status: 'failed', code, reason, ...(conversationId === undefined ? {} : { conversationId }) }, deps.now());
    await deps.queue.poison(decoded.body, { jobId: job.id, code, reason, attempts, failedAt: deps.now().toISOString() });
    return { status: 'failed', jobId: job.id, code, reason };
  };

  // 2. Already handled? (cheap check before any other work; the claim below is the real guard)
  const existing = await deps.deliveries.get(job.id);
  if (existing?.status === 'sent' || existing?.status === 'failed') {
    log.info('job.skipped', { existing: existing.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: existing.status };
  }

  // 3. Resolve the target from the store.
  let target: ResolvedTarget;
  try {
    target = await resolveTarget(job, deps);
  } catch (err) {
    if (err instanceof TargetError) return failJob(err.teamsCode, err.message, existing?.attempts ?? 0);
    throw err;
  }
  log = log.child({ conversationId: target.create === undefined ? target.conversationId : undefined, tenantId: target.tenantId });

  // 4. Stay under Teams' limits: short waits in process, long ones back on the queue.
  let wait = deps.limiter.tryAcquire(scopeKey(target, job), target.tenantId);
  for (let i = 0; wait > 0 && wait <= MAX_INLINE_WAIT_MS && i < 5; i += 1) {
    await deps.sleep(wait);
    wait = deps.limiter.tryAcquire(scopeKey(target, job), target.tenantId);
  }
  if (wait > 0) {
    await putBack(wait, true);
    log.info('job.deferred', { why: 'rate limit', delayMs: wait });
    return { status: 'deferred', jobId: job.id, delayMs: wait, why: 'rate limit' };
  }

  // 5. Claim the job id: at most once across redeliveries and instances.
  const leaseMs = deps.config.connectorTimeoutMs * 3 + 15_000;
  const claim = await deps.deliveries.claim(job.id, { now: deps.now(), leaseMs });
  if (claim.kind === 'done') {
    log.info('job.skipped', { existing: claim.record.status, reason: 'job id already handled' });
    return { status: 'skipped', jobId: job.id, existing: claim.record.status };
  }
  if (claim.kind === 'busy') {
    // The holder usually finishes within a request or two: look again soon, not at lease expiry.
    const delayMs = Math.min(claim.retryInMs, BUSY_RECHECK_MS);
    await putBack(delayMs, true);
    log.info('job.deferred', { why: 'another worker holds the job', delayMs });
    return { status: 'deferred', jobId: job.id, delayMs, why: 'lease held' };
  }
  const { etag } = claim;
  const attempts = claim.record.attempts;
  if (claim.ambiguous) log.warn('job.ambiguous', { reason: 'a previous attempt claimed the job but recorded no outcome; sending again' });
  if (attempts > deps.config.maxAttempts) {
    return failJob(claim.record.lastErrorCode ?? 'TooManyAttempts', `gave up after ${attempts - 1} attempts: ${claim.record.lastErrorReason ?? 'no outcome recorded'}`, attempts - 1, etag);
  }

  // 6. Create the personal chat if needed, then send.
  let conversationId = target.conversationId;
  let decision: Decision;
  let httpStatus: number | undefined;
  try {
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
      httpStatus = created.answer.status;
      decision = created.decision;
      const body = created.answer.body as { id?: unknown; serviceUrl?: unknown } | undefined;
      if (decision.kind === 'sent') {
        if (typeof body?.id !== 'string') {
          decision = { kind: 'fail', code: 'CreateConversationNoId', reason: 'create conversation answered without an id', undeliverable: false };
        } else {
          conversationId = body.id;
          const serviceUrl = typeof body.serviceUrl === 'string' && body.serviceUrl !== '' ? body.serviceUrl : created.serviceUrl;
          const reference = mergeReference(
            undefined,
            { conversationId, conversationType: 'personal' as ConversationType, tenantId: target.tenantId, serviceUrl, botId: target.botId, userAadObjectId: target.create.aadObjectId, installed: true },
            deps.now(),
          )!;
          await deps.conversations.upsertCreated(reference);
          log = log.child({ conversationId });
          log.info('conversation.created', { serviceUrl });
          target = { ...target, conversationId, serviceUrl };
        }
      }
    } else {
      decision = { kind: 'sent' };
    }
    if (decision.kind === 'sent') {
      const activity = toOutgoingActivity(job, { botId: target.botId, conversationId, tenantId: target.tenantId, ...(target.botName === undefined ? {} : { botName: target.botName }) });
      const size = utf16Size(activity);
      if (size > MAX_ACTIVITY_UTF16_BYTES) {
        decision = { kind: 'fail', code: 'MessageSizeTooBig', reason: `the message is ${size} bytes as UTF-16; Teams accepts at most ${MAX_ACTIVITY_UTF16_BYTES}`, undeliverable: false };
      } else {
        const sent = await callWithRecovery(deps, target, (serviceUrl) => deps.connector.sendToConversation(serviceUrl, conversationId, activity));
        decision = sent.decision;
        httpStatus = sent.answer.status;
      }
    }
  } catch (err) {
    if (err instanceof ConnectorNetworkError) decision = decideFailure(err.failure);
    else if (err instanceof CourierError && err.code === 'UNTRUSTED_SERVICE_URL') decision = { kind: 'fail', code: 'UntrustedServiceUrl', reason: err.message, undeliverable: true };
    else if (err instanceof CourierError && err.code === 'TOKEN_UNAVAILABLE') {
      log.error('token.unavailable', { reason: err.message });
      decision = { kind: 'retry', code: 'TokenUnavailable', reason: err.message, throttled: false };
    } else throw err;
  }

  // 7. Record the outcome.
  const now = deps.now();
  const recordConversation = conversationId === '' ? undefined : conversationId;
  switch (decision.kind) {
    case 'sent': {
      await deps.deliveries.finish(job.id, etag, { status: 'sent', conversationId, ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }), ...(httpStatus === undefined ? {} : { httpStatus }) }, now);
      log.info('job.sent', { activityId: decision.activityId, attempts, ambiguous: claim.ambiguous || undefined, ms: now.getTime() - started.getTime() });
      return { status: 'sent', jobId: job.id, conversationId, ...(decision.activityId === undefined ? {} : { activityId: decision.activityId }), ambiguous: claim.ambiguous };
    }
    case 'retry': {
      if (decision.throttled && decision.retryAfterMs !== undefined && recordConversation !== undefined) {
        deps.limiter.pause({ conversationId: recordConversation }, now.getTime() + decision.retryAfterMs);
      }
      if (attempts >= deps.config.maxAttempts) {
        return failJob(decision.code, `gave up after ${attempts} attempts: ${decision.reason}`, attempts, etag, recordConversation);
      }
      const delayMs = decision.retryAfterMs ?? backoffMs(attempts, { random: deps.random, ...(deps.backoffBaseMs === undefined ? {} : { baseMs: deps.backoffBaseMs }) });
      await deps.deliveries.finish(job.id, etag, { status: 'retrying', code: decision.code, reason: decision.reason, nextAttemptAt: new Date(now.getTime() + delayMs), ...(httpStatus === undefined ? {} : { httpStatus }), ...(recordConversation === undefined ? {} : { conversationId: recordConversation }) }, now);
      await putBack(delayMs, false);
      log.warn('job.retrying', { code: decision.code, reason: decision.reason, attempts, delayMs });
      return { status: 'retrying', jobId: job.id, code: decision.code, delayMs };
    }
    default: {
      // 'fail' (and the recovery kinds, which callWithRecovery has already resolved).
      const code = decision.code;
      const reason = decision.reason;
      if (decision.kind === 'fail' && decision.undeliverable && recordConversation !== undefined && target.create === undefined) {
        await deps.conversations.markUndeliverable(target.conversationId.replace(/;messageid=.*$/, ''), `${code}: ${reason}`.slice(0, 500), now);
      }
      // A 401 after a fresh token means the bot's identity is wrong: every job will fail the same way.
      if (httpStatus === 401) log.error('connector.unauthorized', { code, reason });
      return failJob(code, reason, attempts, etag, recordConversation);
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
  for (let i = 0; i < 3; i += 1) {
    const answer = await call(serviceUrl);
    const decision = decide(answer, { now: deps.now(), tokenRefreshed, onGccHost });
    if (decision.kind === 'refreshToken') {
      deps.tokens.invalidate();
      tokenRefreshed = true;
      continue;
    }
    if (decision.kind === 'retryOnGcc') {
      serviceUrl = deps.config.gccServiceUrl;
      onGccHost = true;
      continue;
    }
    return { answer, decision, serviceUrl };
  }
  const answer = await call(serviceUrl);
  return { answer, decision: decide(answer, { now: deps.now(), tokenRefreshed: true, onGccHost: true }), serviceUrl };
}
