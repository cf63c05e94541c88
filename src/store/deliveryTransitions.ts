/**
 * The delivery record's state changes, as pure functions from the record read to the record to
 * write: the store (deliveryStore.ts) writes each one conditionally on the ETag it read, so two
 * workers can never both make the same change. docs/delivery.md draws the states.
 */
import { MAX_HISTORY, type AttemptRecord, type DeliveryRecord, type JobKind, type Outcome } from './deliveryRecord';

/** What a claim finds: done (sent or failed), busy (another worker's live lease), or free to claim. */
export type ClaimCheck =
  | { readonly kind: 'done' }
  | { readonly kind: 'busy'; readonly retryInMs: number }
  | { readonly kind: 'free'; readonly ambiguous: boolean };

export function checkClaim(existing: DeliveryRecord | undefined, now: Date): ClaimCheck {
  if (existing?.status === 'sent' || existing?.status === 'failed') return { kind: 'done' };
  if (existing?.status === 'sending' && existing.leaseUntil !== undefined) {
    const remaining = Date.parse(existing.leaseUntil) - now.getTime();
    if (remaining > 0) return { kind: 'busy', retryInMs: remaining };
    // The previous worker claimed, maybe sent, and never recorded an outcome.
    return { kind: 'free', ambiguous: true };
  }
  return { kind: 'free', ambiguous: false };
}

/** `sending` under a lease, one attempt more. */
export function claimedRecord(
  jobId: string,
  existing: DeliveryRecord | undefined,
  now: Date,
  leaseMs: number,
  ambiguous: boolean,
): DeliveryRecord {
  const nowIso = now.toISOString();
  return {
    ...(existing ?? { jobId, createdAt: nowIso, ambiguousResends: 0, history: [] }),
    jobId,
    status: 'sending',
    attempts: (existing?.attempts ?? 0) + 1,
    updatedAt: nowIso,
    leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
    ambiguousResends: (existing?.ambiguousResends ?? 0) + (ambiguous ? 1 : 0),
    nextAttemptAt: undefined,
  } as DeliveryRecord;
}

/** The attempt's outcome, added to the history; the lease ends. */
export function finishedRecord(existing: DeliveryRecord, outcome: Outcome, now: Date): DeliveryRecord {
  const nowIso = now.toISOString();
  const history: AttemptRecord[] = [
    ...existing.history,
    {
      attempt: existing.attempts,
      at: nowIso,
      outcome: (outcome.status === 'retrying' ? 'retry' : outcome.status) as AttemptRecord['outcome'],
      ...(outcome.code === undefined ? {} : { code: outcome.code }),
      ...(outcome.httpStatus === undefined ? {} : { status: outcome.httpStatus }),
    },
  ].slice(-MAX_HISTORY);
  return {
    ...existing,
    status: outcome.status,
    updatedAt: nowIso,
    leaseUntil: undefined,
    history,
    ...(outcome.conversationId === undefined ? {} : { conversationId: outcome.conversationId }),
    ...(outcome.activityId === undefined ? {} : { activityId: outcome.activityId }),
    ...(outcome.installed === undefined ? {} : { installed: outcome.installed }),
    ...(outcome.status === 'sent' ? { sentAt: nowIso } : {}),
    ...(outcome.status === 'failed' ? { failedAt: nowIso } : {}),
    ...(outcome.code === undefined ? {} : { lastErrorCode: outcome.code }),
    ...(outcome.reason === undefined ? {} : { lastErrorReason: outcome.reason.slice(0, 1000) }),
    nextAttemptAt: outcome.nextAttemptAt?.toISOString(),
  } as DeliveryRecord;
}

/** A job that can never be sent: `failed` with the reason, whatever was there (never over `sent`). */
export function rejectedRecord(
  jobId: string,
  existing: DeliveryRecord | undefined,
  code: string,
  reason: string,
  now: Date,
): DeliveryRecord {
  const nowIso = now.toISOString();
  return {
    ...(existing ?? { jobId, createdAt: nowIso, attempts: 0, ambiguousResends: 0, history: [] }),
    status: 'failed',
    updatedAt: nowIso,
    failedAt: nowIso,
    lastErrorCode: code,
    lastErrorReason: reason.slice(0, 1000),
    leaseUntil: undefined,
  } as DeliveryRecord;
}

/**
 * Replay: a failed job back to `pending`, the attempts starting over, a `replayed` history entry. A
 * batch job starts its plan over (it failed before any operation started).
 */
export function rearmedRecord(existing: DeliveryRecord, now: Date): DeliveryRecord {
  const nowIso = now.toISOString();
  return {
    ...existing,
    status: 'pending',
    attempts: 0,
    updatedAt: nowIso,
    history: [
      ...existing.history,
      {
        attempt: existing.attempts,
        at: nowIso,
        outcome: 'replayed',
        ...(existing.lastErrorCode === undefined ? {} : { code: existing.lastErrorCode }),
      },
    ].slice(-MAX_HISTORY),
    failedAt: undefined,
    lastErrorCode: undefined,
    lastErrorReason: undefined,
    nextAttemptAt: undefined,
    leaseUntil: undefined,
    batch: undefined,
    cancelRequestedAt: undefined,
  } as DeliveryRecord;
}

/**
 * A Teams batch job cancelled: the flag, which stops new requests and makes the next poll cancel
 * the running operations. A job no worker holds and no operation of which started is over at once.
 */
export function cancelledRecord(existing: DeliveryRecord, now: Date): DeliveryRecord {
  const nowIso = now.toISOString();
  const flagged: DeliveryRecord = { ...existing, cancelRequestedAt: nowIso, updatedAt: nowIso };
  const started = existing.batch?.chunks.some((c) => c.operationId !== undefined || c.status === 'posting') === true;
  if (started || (existing.status !== 'pending' && existing.status !== 'retrying')) return flagged;
  return {
    ...flagged,
    status: 'failed',
    failedAt: nowIso,
    lastErrorCode: 'BatchCancelled',
    lastErrorReason: 'cancelled before any request reached Teams',
    nextAttemptAt: undefined,
  } as DeliveryRecord;
}

export interface PendingFields {
  readonly kind: JobKind;
  readonly parentId?: string;
  readonly notBefore?: Date;
  readonly total?: number;
  readonly fanOutComplete?: boolean;
}

/** An accepted job before it is queued (HTTP API). */
export function pendingRecord(jobId: string, fields: PendingFields, now: Date): DeliveryRecord {
  const nowIso = now.toISOString();
  return {
    jobId,
    status: 'pending',
    kind: fields.kind,
    attempts: 0,
    createdAt: nowIso,
    updatedAt: nowIso,
    ambiguousResends: 0,
    history: [],
    ...(fields.parentId === undefined ? {} : { parentId: fields.parentId }),
    ...(fields.notBefore === undefined ? {} : { notBefore: fields.notBefore.toISOString() }),
    ...(fields.total === undefined ? {} : { total: fields.total }),
    ...(fields.fanOutComplete === undefined ? {} : { fanOutComplete: fields.fanOutComplete }),
  };
}
