/**
 * Step "resolve the target": where a job goes, read from the store (no Connector call), and the
 * checks that can refuse it before anything is sent.
 */
import { toChannelConversationId } from '../core/activity';
import type { CourierFailureCode } from '../core/failureCodes';
import type { ConversationReference } from '../core/reference';
import { CourierError } from '../errors';
import type { ResolvedTarget, SenderDeps, SingleJob } from './senderTypes';

/** A failure found before any Connector call: permanent, or (retry) worth trying again later. */
export class TargetError extends CourierError {
  readonly failureCode: CourierFailureCode;
  readonly retry: boolean;
  constructor(failureCode: CourierFailureCode, message: string, options: { retry?: boolean } = {}) {
    super(options.retry === true ? 'TARGET_NOT_READY' : 'TARGET_REFUSED', message);
    this.failureCode = failureCode;
    this.retry = options.retry === true;
  }
}

function usable(reference: ConversationReference, what: string): void {
  if (!reference.installed) {
    throw new TargetError(
      'BotUninstalled',
      `the bot was removed from ${what} at ${reference.installedChangedAt}; it can send again once it is installed there`,
    );
  }
  if (reference.undeliverableReason !== undefined) {
    throw new TargetError(
      'Undeliverable',
      `${what} refused delivery at ${reference.undeliverableAt ?? 'an earlier send'} (${reference.undeliverableReason}); it becomes deliverable again when the bot hears from it`,
    );
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

export async function resolveTarget(
  job: SingleJob,
  deps: Pick<SenderDeps, 'conversations' | 'deliveries' | 'config'>,
): Promise<ResolvedTarget> {
  const { conversations, config } = deps;
  if (job.kind === 'update' || job.kind === 'delete') {
    const earlier = await deps.deliveries.get(job.target);
    if (earlier === undefined)
      throw new TargetError('TargetJobUnknown', `${job.kind}: no job "${job.target}" is known`);
    if (earlier.status === 'failed')
      throw new TargetError(
        'TargetJobFailed',
        `${job.kind}: job "${job.target}" failed (${earlier.lastErrorCode ?? 'no code'}), so there is nothing to ${job.kind}`,
      );
    if (earlier.kind === 'teamsBatch')
      throw new TargetError(
        'TargetJobIsParent',
        `${job.kind}: job "${job.target}" is a Teams batch; Teams returns no message ids for a batch, so it cannot be ${job.kind === 'update' ? 'updated' : 'deleted'}`,
      );
    if (earlier.kind === 'broadcast' || earlier.kind === 'batch')
      throw new TargetError(
        'TargetJobIsParent',
        `${job.kind}: job "${job.target}" is a ${earlier.kind}; ${job.kind} its child jobs one by one`,
      );
    if (earlier.status !== 'sent')
      throw new TargetError(
        'TargetJobNotSent',
        `${job.kind}: job "${job.target}" is not delivered yet (${earlier.status})`,
        { retry: true },
      );
    if (earlier.activityId === undefined || earlier.conversationId === undefined) {
      throw new TargetError(
        'TargetJobNoActivityId',
        `${job.kind}: Teams returned no activity id for job "${job.target}", so its message cannot be changed`,
      );
    }
    const reference = await conversations.get(toChannelConversationId(earlier.conversationId));
    if (reference === undefined)
      throw new TargetError(
        'ConversationUnknown',
        `${job.kind}: the conversation of job "${job.target}" is no longer stored`,
      );
    usable(reference, `conversation ${reference.conversationId}`);
    return { ...fromReference(reference, earlier.conversationId), activityId: earlier.activityId };
  }

  switch (job.to.kind) {
    case 'conversation': {
      const reference = await conversations.get(job.to.conversationId);
      if (reference === undefined) {
        throw new TargetError(
          'ConversationUnknown',
          `no conversation reference is stored for to.conversationId "${job.to.conversationId}" (the bot learns conversations from the activities Teams sends it)`,
        );
      }
      usable(reference, `conversation ${job.to.conversationId}`);
      return fromReference(reference);
    }
    case 'channel': {
      const reference = await conversations.get(job.to.channelId);
      if (reference === undefined || reference.conversationType !== 'channel') {
        throw new TargetError(
          'ChannelUnknown',
          `no channel reference is stored for to.channelId "${job.to.channelId}" (install the bot in the team first)`,
        );
      }
      usable(reference, `channel ${job.to.channelId}`);
      // Teams' id for a thread is the channel id with ;messageid=<root>; POSTing to
      // .../activities/<root> would start a new thread instead (bot-connector.md §6).
      return fromReference(
        reference,
        job.to.threadId === undefined
          ? reference.conversationId
          : `${reference.conversationId};messageid=${job.to.threadId}`,
      );
    }
    case 'user': {
      const { aadObjectId, tenantId } = job.to;
      const lookup = await conversations.findPersonalChat(aadObjectId, tenantId);
      if (lookup.kind === 'found') {
        usable(lookup.reference, `the personal chat with ${aadObjectId}`);
        return fromReference(lookup.reference);
      }
      if (lookup.kind === 'ambiguous') {
        throw new TargetError(
          'TenantRequired',
          `to.tenantId is required: user ${aadObjectId} is known in ${lookup.tenantIds.length} tenants (${lookup.tenantIds.join(', ')})`,
        );
      }
      if (tenantId === undefined) {
        throw new TargetError(
          'TenantRequired',
          `to.tenantId is required: no personal chat is stored for user ${aadObjectId}, and creating one needs the tenant`,
        );
      }
      // The chat is created after the claim (connectorCalls.ts); with TEAMS_APP_CATALOG_ID the app
      // is installed for the user through Graph first (docs/graph-install.md).
      const known = await conversations.findServiceUrlForTenant(tenantId);
      return {
        tenantId,
        serviceUrl: known ?? config.globalServiceUrl,
        botId: `28:${config.appId}`,
        create: { aadObjectId },
      };
    }
  }
}

/** A caller limited to tenants (FLOW_CALLERS) may not reach others, whatever the job says. */
export function callerRefusal(
  caller: string | undefined,
  tenantId: string,
  config: SenderDeps['config'],
): TargetError | undefined {
  if (caller === undefined) return undefined;
  const tenants = config.callerTenants.get(caller);
  if (tenants === undefined)
    return new TargetError('CallerNotAllowed', `caller "${caller}" is no longer in FLOW_CALLERS`);
  if (tenants !== null && !tenants.includes(tenantId))
    return new TargetError('TenantNotAllowed', `caller "${caller}" may not message tenant ${tenantId}`);
  return undefined;
}

/** The rate-limit scope of a target: its channel (threads share it), or the chat about to be made. */
export function scopeKey(target: ResolvedTarget): string {
  return target.conversationId === undefined
    ? `create:${target.tenantId}:${target.create?.aadObjectId ?? ''}`
    : toChannelConversationId(target.conversationId);
}
