/**
 * Step "call the Connector": [create the personal chat (personalChat.ts) +] POST, or PUT, or
 * DELETE, each with the two in-place recoveries (connectorStep.ts: a 401 refreshes the token once;
 * InvalidBotApiHost retries once on the GCC host), turned into one Decision (deliveryDecision.ts).
 * Network, trust and Graph failures become decisions too; anything else is thrown.
 */
import { ConnectorNetworkError } from '../connector/networkError';
import { decideFailure, type Decision } from '../core/deliveryDecision';
import type { MessageContent } from '../core/job';
import { MAX_ACTIVITY_UTF16_BYTES, toOutgoingActivity, utf16Size } from '../core/outgoing';
import { CourierError } from '../errors';
import { graphErrorDecision } from '../graph/graphDecision';
import { GraphError } from '../graph/graphResult';
import { callWithRecovery, type Acted, type CallOptions, type Progress } from './connectorStep';
import { createPersonalChat } from './personalChat';
import type { JobContext, ResolvedTarget, SenderDeps, SingleJob } from './senderTypes';

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

/** An update or delete keeps pointing at the original message, whatever Teams echoes back. */
function keepActivityId(decision: Decision, activityId: string | undefined): Decision {
  return decision.kind === 'sent' && activityId !== undefined ? { kind: 'sent', activityId } : decision;
}
