/**
 * Creating a personal chat for a user with none stored: [install the app for the user through
 * Graph (docs/graph-install.md) +] create the conversation, and store its reference.
 */
import { mergeReference } from '../core/reference';
import { graphFailureDecision, installationPending, isRosterRefusal } from '../graph/graphDecision';
import type { GraphFailureCode } from '../graph/graphResult';
import { callWithRecovery, type Acted, type Progress } from './connectorStep';
import type { JobContext, ResolvedTarget, SenderDeps } from './senderTypes';

/** Graph refusals that every job to the tenant will meet too: an admin must act. */
const CONFIGURATION_FAILURES = new Set<GraphFailureCode>([
  'GraphConsentMissing',
  'GraphAppNotManageable',
  'GraphAppUnknown',
  'GraphUnauthorized',
  'GraphTenantNotAllowed',
]);

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
export async function createPersonalChat(
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
