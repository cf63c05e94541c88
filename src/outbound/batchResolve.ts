/**
 * Where a batch job goes, read from the store before anything is sent (no Connector call), and the
 * checks that can refuse it: the tenant's serviceUrl for users and a tenant, the stored team or
 * channels otherwise, and the caller's tenants.
 */
import type { FailureCode } from '../core/failureCodes';
import type { TeamsBatchJob } from '../core/job';
import type { ConversationReference } from '../core/reference';
import type { BatchDestination } from './batchPlan';
import { callerRefusal } from './resolveTarget';
import type { SenderDeps } from './senderTypes';

export type BatchResolution =
  | { readonly ok: true; readonly where: BatchDestination }
  | { readonly ok: false; readonly code: FailureCode; readonly reason: string };

const refuse = (code: FailureCode, reason: string): BatchResolution => ({ ok: false, code, reason });

/** A few ids, and how many more: for reasons that must stay short. */
function some(ids: readonly string[]): string {
  return ids.length <= 5 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more`;
}

/** A stored reference, or undefined (also for an id that cannot be a table key). */
async function reference(
  deps: Pick<SenderDeps, 'conversations'>,
  id: string,
): Promise<ConversationReference | undefined> {
  try {
    return await deps.conversations.get(id);
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next;
        next += 1;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

async function resolveWhere(job: TeamsBatchJob, deps: Pick<SenderDeps, 'conversations'>): Promise<BatchResolution> {
  const to = job.to;
  switch (to.batch) {
    case 'users':
    case 'tenant': {
      const serviceUrl = await deps.conversations.findServiceUrlForTenant(to.tenantId);
      if (serviceUrl === undefined)
        return refuse(
          'BatchServiceUrlUnknown',
          `no serviceUrl is known for tenant ${to.tenantId}: the bot learns it from any activity in that tenant (install the app there, or message the bot once)`,
        );
      return { ok: true, where: { tenantId: to.tenantId, serviceUrl } };
    }
    case 'team': {
      // The General channel's id is the team's id: installing the bot in a team stores it.
      const ref = await reference(deps, to.teamId);
      if (ref === undefined || ref.conversationType !== 'channel' || (ref.teamId ?? ref.conversationId) !== to.teamId)
        return refuse(
          'TeamUnknown',
          `no reference is stored for team ${to.teamId} (the bot learns a team when it is installed there)`,
        );
      if (to.tenantId !== undefined && ref.tenantId !== to.tenantId)
        return refuse('TeamUnknown', `team ${to.teamId} is not stored in tenant ${to.tenantId}`);
      if (!ref.installed)
        return refuse(
          'BotUninstalled',
          `the bot was removed from team ${to.teamId} at ${ref.installedChangedAt}; it can send again once it is installed there`,
        );
      return { ok: true, where: { tenantId: ref.tenantId, serviceUrl: ref.serviceUrl } };
    }
    case 'channels': {
      const refs = await mapLimited(to.channelIds, 16, (id) => reference(deps, id));
      const unknown = to.channelIds.filter(
        (id, i) =>
          refs[i]?.conversationType !== 'channel' || (to.tenantId !== undefined && refs[i]?.tenantId !== to.tenantId),
      );
      if (unknown.length > 0)
        return refuse(
          'ChannelUnknown',
          `no channel reference is stored for ${some(unknown)}${to.tenantId === undefined ? '' : ` in tenant ${to.tenantId}`} (install the bot in the team first); nothing was sent`,
        );
      const known = refs as ConversationReference[];
      const removed = to.channelIds.filter((_, i) => !known[i]!.installed);
      if (removed.length > 0)
        return refuse('BotUninstalled', `the bot was removed from ${some(removed)}; nothing was sent`);
      const tenants = [...new Set(known.map((r) => r.tenantId))];
      if (tenants.length > 1)
        return refuse(
          'InvalidJob',
          `the channels are in ${tenants.length} tenants (${some(tenants)}); a batch request reaches one tenant: send one job per tenant`,
        );
      // The serviceUrl Teams used most recently in that tenant's channels.
      const latest = [...known].sort((a, b) => b.lastSeenAt.localeCompare(a.lastSeenAt))[0]!;
      return { ok: true, where: { tenantId: latest.tenantId, serviceUrl: latest.serviceUrl } };
    }
  }
}

/** Where the job goes, or why it cannot go anywhere (a failure for good: nothing was sent). */
export async function resolveBatch(
  job: TeamsBatchJob,
  deps: Pick<SenderDeps, 'conversations' | 'config'>,
  caller: string | undefined,
): Promise<BatchResolution> {
  const resolved = await resolveWhere(job, deps);
  if (!resolved.ok) return resolved;
  const refusal = callerRefusal(caller, resolved.where.tenantId, deps.config);
  return refusal === undefined ? resolved : refuse(refusal.failureCode, refusal.message);
}
