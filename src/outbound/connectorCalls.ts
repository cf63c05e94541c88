/**
 * Step "call the Connector": [install the app for the user through Graph + create the personal
 * chat +] POST, or PUT, or DELETE, each with the two in-place recoveries (a 401 refreshes the token
 * once; InvalidBotApiHost retries once on the GCC host), turned into one Decision
 * (deliveryDecision.ts). Network, trust and Graph failures become decisions too; anything else is
 * thrown.
 */
import { ConnectorNetworkError } from '../connector/networkError';
import { decide, decideFailure, type ConnectorAnswer, type Decision } from '../core/deliveryDecision';
import type { MessageContent } from '../core/job';
import { MAX_ACTIVITY_UTF16_BYTES, toOutgoingActivity, utf16Size } from '../core/outgoing';
import { mergeReference } from '../core/reference';
import { CourierError } from '../errors';
import { graphErrorDecision, graphFailureDecision, installationPending, isRosterRefusal } from '../graph/graphDecision';
import { GraphError, type GraphFailureCode } from '../graph/graphResult';
import type { JobContext, ResolvedTarget, SenderDeps, SingleJob } from './senderTypes';

export type Installed = 'new' | 'already';

export interface Acted {
  readonly decision: Decision;
  readonly httpStatus?: number;
  /** The target as it ended up (with the chat's id and serviceUrl once created). */
  readonly target: ResolvedTarget;
  /** The app was installed for the user through Graph on the way, by this attempt or an earlier one. */
  readonly installed?: Installed;
}

export interface CallOptions {
  /**
   * What an earlier attempt of this job recorded (DeliveryRecord.installed): Graph is not asked
   * again, so a retried job installs at most once.
   */
  readonly installedBefore?: Installed;
}

/** What this attempt learnt before it stopped, whichever way it stopped. */
interface Progress {
  installed?: Installed;
}

/** Graph refusals that every job to the tenant will meet too: an admin must act. */
const CONFIGURATION_FAILURES = new Set<GraphFailureCode>([
  'GraphConsentMissing',
  'GraphAppNotManageable',
  'GraphAppUnknown',
  'GraphUnauthorized',
  'GraphTenantNotAllowed',
]);

/** The Connector calls for one job, never throwing for what Teams, Graph or the network answered. */
export async function callConnector(
  job: SingleJob,
  target: ResolvedTarget,
  ctx: JobContext,
  deps: SenderDeps,
  options: CallOptions = {},
): Promise<Acted> {
  const progress: Progress = options.installedBefore === undefined ? {} : { installed: options.installedBefore };
  const acted = await callOnce(job, target, ctx, deps, progress);
  return progress.installed === undefined ? acted : { ...acted, installed: progress.installed };
}

async function callOnce(
  job: SingleJob,
  target: ResolvedTarget,
  ctx: JobContext,
  deps: SenderDeps,
  progress: Progress,
): Promise<Acted> {
  try {
    return await act(job, target, ctx, deps, progress);
  } catch (err) {
    if (err instanceof ConnectorNetworkError) return { decision: decideFailure(err.failure), target };
    if (err instanceof GraphError) {
      // A wiring fault (a URL off the Graph base, the bot's token offered to Graph): nothing left.
      ctx.log.error('graph.refused', { code: err.code, reason: err.message });
      return { decision: graphErrorDecision(err), target };
    }
    if (!(err instanceof CourierError)) throw err;
    switch (err.code) {
      case 'UNTRUSTED_SERVICE_URL':
        return {
          decision: { kind: 'fail', code: 'UntrustedServiceUrl', reason: err.message, undeliverable: true },
          target,
        };
      case 'INVALID_CONNECTOR_PATH':
        return {
          decision: { kind: 'fail', code: 'InvalidConversationId', reason: err.message, undeliverable: false },
          target,
        };
      case 'TOKEN_UNAVAILABLE':
        ctx.log.error('token.unavailable', { reason: err.message });
        return { decision: { kind: 'retry', code: 'TokenUnavailable', reason: err.message, throttled: false }, target };
      default:
        throw err;
    }
  }
}

async function act(
  job: SingleJob,
  target: ResolvedTarget,
  ctx: JobContext,
  deps: SenderDeps,
  progress: Progress,
): Promise<Acted> {
  if (job.kind === 'delete') {
    const deleted = await callWithRecovery(deps, target, (serviceUrl) =>
      deps.connector.deleteActivity(serviceUrl, target.conversationId!, target.activityId!),
    );
    return { decision: keepActivityId(deleted.decision, target.activityId), httpStatus: deleted.answer.status, target };
  }

  let current = target;
  if (target.create !== undefined) {
    const created = await createPersonalChat(target, target.create.aadObjectId, ctx, deps, progress);
    if (created.decision !== undefined) return created.decision;
    current = created.target;
  }
  const conversationId = current.conversationId!;
  const content: MessageContent = job;
  const activity = toOutgoingActivity(content, {
    botId: current.botId,
    conversationId,
    tenantId: current.tenantId,
    ...(current.botName === undefined ? {} : { botName: current.botName }),
  });
  const size = utf16Size(activity);
  if (size > MAX_ACTIVITY_UTF16_BYTES) {
    return {
      decision: {
        kind: 'fail',
        code: 'MessageSizeTooBig',
        reason: `the message is ${size} bytes as UTF-16; Teams accepts at most ${MAX_ACTIVITY_UTF16_BYTES}`,
        undeliverable: false,
      },
      target: current,
    };
  }
  const sent =
    job.kind === 'update'
      ? await callWithRecovery(deps, current, (serviceUrl) =>
          deps.connector.updateActivity(serviceUrl, conversationId, current.activityId!, {
            ...activity,
            id: current.activityId,
          }),
        )
      : await callWithRecovery(deps, current, (serviceUrl) =>
          deps.connector.sendToConversation(serviceUrl, conversationId, activity),
        );
  const decision = job.kind === 'update' ? keepActivityId(sent.decision, current.activityId) : sent.decision;
  return { decision, httpStatus: sent.answer.status, target: current };
}

/**
 * Installs the app for the user through Graph when TEAMS_APP_CATALOG_ID is set (docs/graph-install.md);
 * `undefined` when the chat may be created now, else what stops this attempt. Runs after the claim,
 * once per attempt at most, and not at all once an attempt of this job got Graph's yes.
 */
async function installForUser(
  target: ResolvedTarget,
  aadObjectId: string,
  ctx: JobContext,
  deps: SenderDeps,
  progress: Progress,
): Promise<Acted | undefined> {
  if (deps.graph === undefined || progress.installed !== undefined) return undefined;
  const { client, catalogId } = deps.graph;
  const result = await client.installAppForUser(target.tenantId, aadObjectId, catalogId);
  if (!result.ok) {
    const { failure } = result;
    if (CONFIGURATION_FAILURES.has(failure.code))
      ctx.log.error('graph.install.refused', {
        code: failure.code,
        reason: failure.reason,
        graphStatus: failure.status,
      });
    // Not `httpStatus`: that is the Bot Connector's answer (a 401 there means the bot's identity is wrong).
    return { decision: graphFailureDecision(failure), target };
  }
  progress.installed = result.value.installed;
  ctx.log.info('graph.installed', { installed: result.value.installed, catalogId });
  return undefined;
}

/** Creates the personal chat (the app must be installed for the user) and stores its reference. */
async function createPersonalChat(
  target: ResolvedTarget,
  aadObjectId: string,
  ctx: JobContext,
  deps: SenderDeps,
  progress: Progress,
): Promise<{ target: ResolvedTarget; decision?: undefined } | { decision: Acted }> {
  const refused = await installForUser(target, aadObjectId, ctx, deps, progress);
  if (refused !== undefined) return { decision: refused };
  const created = await callWithRecovery(deps, target, (serviceUrl) =>
    deps.connector.createConversation(serviceUrl, {
      bot: { id: target.botId },
      members: [{ id: aadObjectId }],
      channelData: { tenant: { id: target.tenantId } },
      tenantId: target.tenantId,
      isGroup: false,
    }),
  );
  if (created.decision.kind !== 'sent') {
    // Right after our installation Teams may not list the bot in the user's roster yet: wait, not fail.
    const decision =
      progress.installed === 'new' && created.decision.kind === 'fail' && isRosterRefusal(created.answer)
        ? installationPending(created.decision.reason)
        : created.decision;
    return { decision: { decision, httpStatus: created.answer.status, target } };
  }
  const body = created.answer.body as { id?: unknown; serviceUrl?: unknown } | undefined;
  if (typeof body?.id !== 'string') {
    return {
      decision: {
        decision: {
          kind: 'fail',
          code: 'CreateConversationNoId',
          reason: 'create conversation answered without an id',
          undeliverable: false,
        },
        httpStatus: created.answer.status,
        target,
      },
    };
  }
  const conversationId = body.id;
  const serviceUrl =
    typeof body.serviceUrl === 'string' && body.serviceUrl !== '' ? body.serviceUrl : created.serviceUrl;
  const reference = mergeReference(
    undefined,
    {
      conversationId,
      conversationType: 'personal',
      tenantId: target.tenantId,
      serviceUrl,
      botId: target.botId,
      userAadObjectId: aadObjectId,
      installed: true,
    },
    deps.now(),
  )!;
  await deps.conversations.upsertCreated(reference);
  ctx.log = ctx.log.child({ conversationId });
  ctx.log.info('conversation.created', { serviceUrl });
  return { target: { ...target, conversationId, serviceUrl } };
}

/** An update or delete keeps pointing at the original message, whatever Teams echoes back. */
function keepActivityId(decision: Decision, activityId: string | undefined): Decision {
  return decision.kind === 'sent' && activityId !== undefined ? { kind: 'sent', activityId } : decision;
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
    const decision = decide(answer, {
      now: deps.now(),
      tokenRefreshed,
      onGccHost: onGccHost || deps.config.gccServiceUrl === undefined,
    });
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
