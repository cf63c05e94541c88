/**
 * Broadcasts: one job to many conversations becomes one child job per recipient, queued in chunks.
 *
 * Each invocation queues at most FAN_OUT_CHUNK children, then puts the broadcast back with a cursor,
 * so thousands of recipients never come near a function timeout. Child ids are deterministic
 * (`<broadcast id>~<n>`): a chunk that runs twice (a crash between queueing and the cursor write)
 * queues the same ids again, and the sender's once-per-id rule keeps every recipient at one
 * message. Children are registered in the broadcast's partition of `deliveries`, so its counts
 * (pending, sent, failed) are exact and cost one query. The children then go through the normal
 * sender, rate limits included: that is what keeps a big broadcast within Teams' limits.
 *
 * Paced: child k becomes visible on the queue at t0 + k / BOT_TENANT_RATE_PER_SECOND, about when
 * the shared budget can send it, so instances never grab thousands of children they can only put
 * back, and the next chunk is queued shortly before its first child is due (docs/scale.md).
 */
import type { BroadcastJob } from '../core/job';
import { toEnvelope } from '../core/job';
import type { DeliveryRecord } from '../store/deliveryStore';
import type { JobContext, JobResult, SenderDeps } from './senderTypes';

export const FAN_OUT_CHUNK = 250;
const ENQUEUE_CONCURRENCY = 16;
const CONTENT_KEYS = ['text', 'textFormat', 'adaptiveCard', 'summary', 'mentions', 'activity'] as const;

interface Cursor {
  /** Children queued so far (the next child's number). */
  readonly index: number;
  /** allInstalled: the table query's continuation token. */
  readonly token?: string;
  /** When child 0 became visible (ms): the origin of the pacing. */
  readonly t0?: number;
}

/** The next chunk is queued this long before its first child is due. */
export const FAN_OUT_LEAD_MS = 2_000;

function parseCursor(raw: string | undefined): Cursor {
  if (raw === undefined) return { index: 0 };
  try {
    const parsed = JSON.parse(raw) as { index?: unknown; token?: unknown; t0?: unknown };
    if (typeof parsed.index === 'number' && Number.isInteger(parsed.index) && parsed.index >= 0) {
      return {
        index: parsed.index,
        ...(typeof parsed.token === 'string' ? { token: parsed.token } : {}),
        ...(typeof parsed.t0 === 'number' && Number.isFinite(parsed.t0) ? { t0: parsed.t0 } : {}),
      };
    }
  } catch {
    // fall through: start over; child ids are deterministic, so nobody gets two messages
  }
  return { index: 0 };
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next]!;
      next += 1;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

export async function fanOut(
  job: BroadcastJob,
  ctx: JobContext,
  deps: SenderDeps,
  existing: DeliveryRecord | undefined,
): Promise<JobResult> {
  if (existing?.fanOutComplete === true) {
    ctx.log.info('job.skipped', { reason: 'broadcast already fanned out' });
    return { status: 'skipped', jobId: job.id, existing: existing.status };
  }
  if (existing === undefined) {
    await deps.deliveries.createPending(
      job.id,
      { kind: 'broadcast', ...(job.notBefore === undefined ? {} : { notBefore: job.notBefore }) },
      deps.now(),
    );
  }
  const cursor = parseCursor(ctx.envelope?.cursor);
  const now = deps.now().getTime();
  const t0 = cursor.t0 ?? now;
  /** When child k is due, as a delay from now. */
  const dueIn = (k: number): number => Math.max(0, t0 + Math.floor((k * 1000) / deps.config.tenantRatePerSecond) - now);

  let targets: Record<string, unknown>[];
  let more: Cursor | undefined;
  if (job.to.kind === 'users') {
    const slice = job.to.aadObjectIds.slice(cursor.index, cursor.index + FAN_OUT_CHUNK);
    const tenantId = job.to.tenantId;
    targets = slice.map((aadObjectId) => ({ aadObjectId, ...(tenantId === undefined ? {} : { tenantId }) }));
    if (cursor.index + slice.length < job.to.aadObjectIds.length) more = { index: cursor.index + slice.length, t0 };
  } else {
    const page = await deps.listConversations(
      {
        installedOnly: true,
        ...(job.to.tenantId === undefined ? {} : { tenantId: job.to.tenantId }),
        ...(job.to.conversationType === undefined ? {} : { conversationType: job.to.conversationType }),
      },
      { pageSize: FAN_OUT_CHUNK, ...(cursor.token === undefined ? {} : { continuationToken: cursor.token }) },
    );
    targets = page.conversations.map((c) => ({ conversationId: c.conversationId }));
    if (page.continuationToken !== undefined)
      more = { index: cursor.index + targets.length, token: page.continuationToken, t0 };
  }

  const body = ctx.body as Record<string, unknown>;
  const content: Record<string, unknown> = {};
  for (const key of CONTENT_KEYS) if (body[key] !== undefined) content[key] = body[key];
  // The child's id lives in the envelope only: it is ours (reserved), and a caller's long id plus
  // `~<n>` may be longer than a job's own `id` field may be.
  const children = targets.map((to, i) => ({
    id: `${job.id}~${cursor.index + i}`,
    body: { to, ...content },
    delayMs: dueIn(cursor.index + i),
  }));
  const caller = ctx.envelope?.caller;

  // Register first, then queue: a child can never finish before its parent counts it.
  await deps.deliveries.addChildren(
    job.id,
    children.map((c) => c.id),
  );
  await forEachLimited(children, ENQUEUE_CONCURRENCY, (child) =>
    deps.queue.requeue(
      toEnvelope(child.body, {
        jobId: child.id,
        deferrals: 0,
        parentId: job.id,
        ...(caller === undefined ? {} : { caller }),
      }),
      child.delayMs,
    ),
  );

  if (more !== undefined) {
    await ctx.putBack(Math.max(0, dueIn(more.index) - FAN_OUT_LEAD_MS), {
      deferred: false,
      cursor: JSON.stringify(more),
    });
    ctx.log.info('broadcast.progress', { queued: more.index });
    return { status: 'fannedOut', jobId: job.id, children: children.length, complete: false };
  }
  const total = cursor.index + children.length;
  await deps.deliveries.updateParent(job.id, { total, fanOutComplete: true, status: 'sent' }, deps.now());
  ctx.log.info('broadcast.queued', { total });
  return { status: 'fannedOut', jobId: job.id, children: children.length, complete: true };
}
