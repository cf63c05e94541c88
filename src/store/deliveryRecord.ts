/**
 * The delivery record of one job (table `deliveries`, PartitionKey = toTableKey(job id), RowKey
 * "job"): its fields, and how they map to and from a table entity. docs/storage.md lists them.
 */
import { toTableKey } from '../core/tableKeys';
import { parseBatchState, serializeBatchState, type BatchState } from './batchRecord';
import type { Entity, NewEntity } from './tableClients';

export type DeliveryStatus = 'pending' | 'sending' | 'retrying' | 'sent' | 'failed';

export interface AttemptRecord {
  readonly attempt: number;
  readonly at: string;
  /** `replayed`: not an attempt; a failed job was put back by a replay (`attempt` = the attempts before it). */
  readonly outcome: 'sent' | 'retry' | 'failed' | 'replayed';
  readonly code?: string;
  readonly status?: number;
}

/**
 * `batch`: an array of jobs submitted together to POST /api/notify (its children are jobs);
 * `teamsBatch`: a job sent through Teams' batch operations (`to.batch`; its state is `batch`).
 */
export type JobKind = 'message' | 'update' | 'delete' | 'broadcast' | 'batch' | 'teamsBatch';

export interface DeliveryRecord {
  readonly jobId: string;
  readonly status: DeliveryStatus;
  /** Set when known (records created by the HTTP API or the sender). */
  readonly kind?: JobKind;
  /** The broadcast or batch this job belongs to. */
  readonly parentId?: string;
  /** Broadcasts and batches: the number of child jobs, once fan-out is complete. */
  readonly total?: number;
  readonly fanOutComplete?: boolean;
  readonly notBefore?: string;
  readonly attempts: number;
  readonly conversationId?: string;
  readonly activityId?: string;
  readonly lastErrorCode?: string;
  readonly lastErrorReason?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly sentAt?: string;
  readonly failedAt?: string;
  readonly nextAttemptAt?: string;
  readonly leaseUntil?: string;
  readonly ambiguousResends: number;
  /**
   * Proactive installation (docs/graph-install.md): `new` when teams-courier installed the app for
   * the user to deliver this job, `already` when Graph found it installed.
   */
  readonly installed?: 'new' | 'already';
  /** The last attempts, newest last (at most MAX_HISTORY). */
  readonly history: readonly AttemptRecord[];
  /** A Teams batch job: its requests and operations (batchRecord.ts). */
  readonly batch?: BatchState;
  /** A Teams batch job was cancelled then (DELETE /api/notify/{id}, teams-courier cancel). */
  readonly cancelRequestedAt?: string;
}

export const MAX_HISTORY = 20;

export type ClaimResult =
  | { readonly kind: 'claimed'; readonly record: DeliveryRecord; readonly etag: string; readonly ambiguous: boolean }
  | { readonly kind: 'busy'; readonly record: DeliveryRecord; readonly retryInMs: number }
  | { readonly kind: 'done'; readonly record: DeliveryRecord };

export interface Outcome {
  readonly status: 'sent' | 'retrying' | 'failed';
  readonly conversationId?: string;
  readonly activityId?: string;
  readonly code?: string;
  readonly reason?: string;
  readonly httpStatus?: number;
  readonly nextAttemptAt?: Date;
  /** The app was installed for the user through Graph on the way (DeliveryRecord.installed). */
  readonly installed?: 'new' | 'already';
}

export interface ChildCounts {
  readonly total: number;
  readonly pending: number;
  readonly sent: number;
  readonly failed: number;
  /** Children whose user teams-courier installed the app for (DeliveryRecord.installed `new`). */
  readonly installedByUs?: number;
}

/** What `rearm` did: put a failed job back to pending, or found it not failed (sent, in flight, unknown). */
export type RearmResult =
  | { readonly kind: 'rearmed'; readonly record: DeliveryRecord }
  | { readonly kind: 'notFailed'; readonly record?: DeliveryRecord };

/** A record with the ETag it was read at; `null` says the caller read it and it did not exist. */
export type KnownRecord = { readonly record: DeliveryRecord; readonly etag: string } | null;

/** The RowKey of a job's own record; its children's rows share the partition (deliveryChildren.ts). */
export const ROW = 'job';

export function fromEntity(jobId: string, e: Entity): DeliveryRecord {
  const str = (k: string): string | undefined =>
    typeof e[k] === 'string' && e[k] !== '' ? (e[k] as string) : undefined;
  let history: AttemptRecord[] = [];
  try {
    const parsed = JSON.parse(str('history') ?? '[]') as unknown;
    if (Array.isArray(parsed)) history = parsed as AttemptRecord[];
  } catch {
    // A history that does not parse reads as none (it is only ever shown).
  }
  const record: Record<string, unknown> = {
    jobId,
    status: str('status') as DeliveryStatus,
    attempts: Number(e.attempts ?? 0),
    createdAt: str('createdAt') ?? '',
    updatedAt: str('updatedAt') ?? '',
    ambiguousResends: Number(e.ambiguousResends ?? 0),
    history,
  };
  for (const k of [
    'conversationId',
    'activityId',
    'lastErrorCode',
    'lastErrorReason',
    'sentAt',
    'failedAt',
    'nextAttemptAt',
    'leaseUntil',
    'kind',
    'parentId',
    'notBefore',
    'installed',
    'cancelRequestedAt',
  ]) {
    const v = str(k);
    if (v !== undefined) record[k] = v;
  }
  if (typeof e.total === 'number') record.total = e.total;
  if (typeof e.fanOutComplete === 'boolean') record.fanOutComplete = e.fanOutComplete;
  const batch = parseBatchState(e.batch);
  if (batch !== undefined) record.batch = batch;
  return record as unknown as DeliveryRecord;
}

export function toEntity(record: DeliveryRecord): NewEntity {
  const { history, jobId, batch, ...rest } = record;
  const entity: NewEntity = {
    partitionKey: toTableKey(jobId),
    rowKey: ROW,
    jobId,
    history: JSON.stringify(history.slice(-MAX_HISTORY)),
    ...(batch === undefined ? {} : { batch: serializeBatchState(batch) }),
  };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) entity[k] = v;
  return entity;
}
