/**
 * A batch job's plan and schedule (docs/flows.md, "Batch jobs"). Pure.
 *
 * The plan: one request per part of the list (users, channels), split by core/batch.ts into
 * balanced parts of at most BATCH_MEMBERS_PER_REQUEST, or one request for a tenant or a team. The
 * split is recorded with the job (`perRequest`), so a redelivery sends exactly the parts it did not.
 * The schedule: the first poll after BATCH_POLL_INTERVAL_MS, each later one 1.5 times longer (at
 * most 5 minutes), never sooner than Teams' `retryAfter` or a 429's Retry-After.
 */
import { batchRequestBody, chunkMembers, type BatchRequestBody } from '../core/batch';
import type { MessageContent, TeamsBatchJob } from '../core/job';
import { toOutgoingActivity } from '../core/outgoing';
import type { BatchChunk, BatchState } from '../store/batchRecord';

export const MAX_POLL_INTERVAL_MS = 5 * 60_000;
export const POLL_BACKOFF = 1.5;
/** An operation still running this long after the job started fails with BatchPollTimeout. */
export const MAX_POLLING_MS = 24 * 60 * 60_000;
/** Failed-entry pages read per poll, over all operations; the rest wait for the next poll. */
export const MAX_FAILED_PAGES_PER_POLL = 20;

/** Where a batch goes, read from the store (batchResolve.ts). */
export interface BatchDestination {
  readonly tenantId: string;
  readonly serviceUrl: string;
}

/** The activity every recipient gets: the job's content, with no conversation and no sender (Teams adds both). */
export function batchActivity(content: MessageContent): Record<string, unknown> {
  const {
    from: _from,
    conversation: _conversation,
    ...activity
  } = toOutgoingActivity(content, {
    botId: '',
    conversationId: '',
  });
  return activity;
}

/** The ids a users or channels job lists (deduplicated when it was parsed). */
function listOf(job: TeamsBatchJob): readonly string[] | undefined {
  return job.to.batch === 'users' ? job.to.users : job.to.batch === 'channels' ? job.to.channelIds : undefined;
}

export function planBatch(job: TeamsBatchJob, where: BatchDestination, perRequest: number, now: Date): BatchState {
  const list = listOf(job);
  const chunks: BatchChunk[] =
    list === undefined
      ? [{ status: 'new' }]
      : chunkMembers(list, { maxPerRequest: perRequest }).map((members) => ({
          members: members.length,
          status: 'new',
        }));
  return {
    target: job.to.batch,
    tenantId: where.tenantId,
    serviceUrl: where.serviceUrl,
    perRequest,
    chunks,
    startedAt: now.toISOString(),
  };
}

/** The body of request `index` of the plan. */
export function requestBody(
  job: TeamsBatchJob,
  state: BatchState,
  index: number,
  activity: Record<string, unknown>,
): BatchRequestBody {
  const list = listOf(job);
  const members = list === undefined ? undefined : chunkMembers(list, { maxPerRequest: state.perRequest })[index];
  if (list !== undefined && members === undefined) throw new RangeError(`the plan has no request ${index}`);
  return batchRequestBody({
    kind: state.target,
    tenantId: state.tenantId,
    activity,
    ...(members === undefined ? {} : { members }),
    ...(job.to.batch === 'team' ? { teamId: job.to.teamId } : {}),
  });
}

/** The wait before the next poll, after `polls` polls: the backoff, or Teams' wait if longer. */
export function pollDelayMs(polls: number, intervalMs: number, retryAfterMs?: number): number {
  const backoff = Math.min(MAX_POLL_INTERVAL_MS, Math.round(intervalMs * POLL_BACKOFF ** Math.max(0, polls)));
  return Math.max(backoff, retryAfterMs ?? 0);
}

/** The chunk with one change. */
export function withChunk(state: BatchState, index: number, change: Partial<BatchChunk>): BatchState {
  return { ...state, chunks: state.chunks.map((c, i) => (i === index ? ({ ...c, ...change } as BatchChunk) : c)) };
}
