/**
 * What GET /api/notify/{id} (and the CLI's `status`) shows for a delivery record. Pure.
 *
 * The answer follows the asynchronous request-reply pattern Logic Apps' HTTP action uses: 202 with
 * Retry-After while the job is on its way, 200 once it is done (sent, failed, or every child of a
 * broadcast done). A Teams batch job's view is batchStatusView.ts's.
 */
import type { ChildCounts, DeliveryRecord } from '../store/deliveryStore';
import { toBatchStatusView } from './batchStatusView';

/** `cancelled`: a Teams batch job that was cancelled (batchStatusView.ts). */
export type PublicStatus = 'pending' | 'retrying' | 'sent' | 'failed' | 'partial' | 'cancelled';

export interface StatusView {
  readonly done: boolean;
  readonly retryAfterSeconds?: number;
  readonly body: Record<string, unknown>;
}

const isParent = (record: DeliveryRecord): boolean => record.kind === 'broadcast' || record.kind === 'batch';

export function toStatusView(record: DeliveryRecord, counts: ChildCounts | undefined, now: Date): StatusView {
  if (record.kind === 'teamsBatch') return toBatchStatusView(record, now);
  const times = {
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.notBefore === undefined ? {} : { notBefore: record.notBefore }),
  };
  if (isParent(record)) {
    const c = counts ?? { total: 0, pending: 0, sent: 0, failed: 0 };
    const fannedOut = record.fanOutComplete === true;
    let status: PublicStatus;
    if (record.status === 'failed' && !fannedOut) status = 'failed';
    else if (!fannedOut || c.pending > 0) status = 'pending';
    else if (c.total > 0 && c.failed === c.total) status = 'failed';
    else if (c.failed > 0) status = 'partial';
    else status = 'sent';
    const done = status !== 'pending';
    return {
      done,
      ...(done ? {} : { retryAfterSeconds: 5 }),
      body: {
        id: record.jobId,
        kind: record.kind,
        status,
        total: fannedOut ? c.total : undefined,
        queued: c.total,
        pending: c.pending,
        sent: c.sent,
        failed: c.failed,
        ...(c.installedByUs === undefined || c.installedByUs === 0 ? {} : { installedByUs: c.installedByUs }),
        ...(record.lastErrorCode === undefined
          ? {}
          : { error: { code: record.lastErrorCode, reason: record.lastErrorReason } }),
        ...times,
      },
    };
  }

  const status: PublicStatus =
    record.status === 'sent'
      ? 'sent'
      : record.status === 'failed'
        ? 'failed'
        : record.status === 'retrying'
          ? 'retrying'
          : 'pending';
  const done = status === 'sent' || status === 'failed';
  let retryAfterSeconds: number | undefined;
  if (!done) {
    const next = Date.parse(record.nextAttemptAt ?? record.notBefore ?? '');
    retryAfterSeconds = Number.isNaN(next) ? 2 : Math.min(300, Math.max(1, Math.ceil((next - now.getTime()) / 1000)));
  }
  return {
    done,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    body: {
      id: record.jobId,
      kind: record.kind ?? 'message',
      status,
      attempts: record.attempts,
      ...(record.conversationId === undefined ? {} : { conversationId: record.conversationId }),
      ...(record.activityId === undefined ? {} : { activityId: record.activityId }),
      ...(record.installed === undefined ? {} : { installed: record.installed }),
      ...(record.lastErrorCode === undefined
        ? {}
        : { error: { code: record.lastErrorCode, reason: record.lastErrorReason } }),
      ...(record.parentId === undefined ? {} : { parentId: record.parentId }),
      ...times,
      ...(record.sentAt === undefined ? {} : { sentAt: record.sentAt }),
      ...(record.failedAt === undefined ? {} : { failedAt: record.failedAt }),
      ...(record.nextAttemptAt === undefined ? {} : { nextAttemptAt: record.nextAttemptAt }),
      history: record.history,
    },
  };
}
