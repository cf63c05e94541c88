/**
 * What GET /api/notify/{id} (and the CLI's `status`) shows for a Teams batch job: the counts over
 * its operations (total, sent, failed, throttled, pending), each operation with its id, and whether
 * it is done: every operation finished and every failed entry stored. Pure.
 */
import { summarizeBatch } from '../store/batchRecord';
import type { DeliveryRecord } from '../store/deliveryStore';
import type { PublicStatus, StatusView } from './statusView';

function publicStatus(record: DeliveryRecord): PublicStatus {
  if (record.status === 'failed') return record.lastErrorCode === 'BatchCancelled' ? 'cancelled' : 'failed';
  const summary = record.batch === undefined ? undefined : summarizeBatch(record.batch);
  if (summary?.finished !== true) return record.status === 'retrying' ? 'retrying' : 'pending';
  if (record.cancelRequestedAt !== undefined) return 'cancelled';
  if (summary.total > 0 && summary.sent === 0) return 'failed';
  return summary.failed > 0 || summary.skipped > 0 ? 'partial' : 'sent';
}

/** Seconds until the next poll (or attempt) is due, within 2 to 60. */
function retryAfter(record: DeliveryRecord, now: Date): number {
  const next = Date.parse(record.batch?.nextPollAt ?? record.nextAttemptAt ?? record.notBefore ?? '');
  return Number.isNaN(next) ? 5 : Math.min(60, Math.max(2, Math.ceil((next - now.getTime()) / 1000)));
}

export function toBatchStatusView(record: DeliveryRecord, now: Date): StatusView {
  const status = publicStatus(record);
  const done = status !== 'pending' && status !== 'retrying';
  const summary = record.batch === undefined ? undefined : summarizeBatch(record.batch);
  const optional = (key: string, value: unknown): Record<string, unknown> =>
    value === undefined || value === 0 ? {} : { [key]: value };
  return {
    done,
    ...(done ? {} : { retryAfterSeconds: retryAfter(record, now) }),
    body: {
      id: record.jobId,
      kind: 'teamsBatch',
      status,
      ...optional('target', record.batch?.target),
      total: summary?.total ?? 0,
      sent: summary?.sent ?? 0,
      failed: summary?.failed ?? 0,
      throttled: summary?.throttled ?? 0,
      pending: summary?.pending ?? 0,
      ...optional('skipped', summary?.skipped),
      ...optional('notSent', summary?.notSent),
      operations: summary?.operations ?? [],
      attempts: record.attempts,
      ...optional('cancelRequestedAt', record.cancelRequestedAt),
      ...(record.lastErrorCode === undefined
        ? {}
        : { error: { code: record.lastErrorCode, reason: record.lastErrorReason } }),
      ...optional('parentId', record.parentId),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      ...optional('notBefore', record.notBefore),
      ...optional('sentAt', record.sentAt),
      ...optional('failedAt', record.failedAt),
      ...optional('finishedAt', record.batch?.finishedAt),
      ...(done ? {} : optional('nextPollAt', record.batch?.nextPollAt)),
      history: record.history,
    },
  };
}
