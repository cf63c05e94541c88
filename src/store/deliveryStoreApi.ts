/**
 * What the delivery records offer the sender, the HTTP API and the CLI: one record per job id, its
 * conditional state changes, and a parent's children and failed entries. deliveryStore.ts is the
 * Table Storage implementation.
 */
import type { FailedEntry } from '../core/batchState';
import type { StoredFailure } from './batchFailures';
import type {
  ChildCounts,
  ClaimResult,
  DeliveryRecord,
  DeliveryStatus,
  KnownRecord,
  Outcome,
  RearmResult,
} from './deliveryRecord';
import type { PendingFields } from './deliveryTransitions';

export interface DeliveryStore {
  get(jobId: string): Promise<DeliveryRecord | undefined>;
  /** `get` with the ETag, to pass to `claim` and save it a read. */
  read(jobId: string): Promise<KnownRecord>;
  /**
   * Records an accepted job before it is queued (HTTP API): `pending`, so a status poll finds it at
   * once. Returns false when the id exists already (a repeated submission; nothing is changed).
   */
  createPending(jobId: string, fields: PendingFields, now: Date): Promise<boolean>;
  /** Sets fields of a broadcast or batch record (fan-out progress). */
  updateParent(
    jobId: string,
    fields: { total?: number; fanOutComplete?: boolean; status?: DeliveryStatus },
    now: Date,
  ): Promise<void>;
  /** Registers children of a broadcast or batch (idempotent: existing outcomes are kept). */
  addChildren(parentId: string, childIds: readonly string[]): Promise<void>;
  /** Records a child's final outcome on its parent (idempotent). */
  setChildOutcome(
    parentId: string,
    childId: string,
    status: 'sent' | 'failed',
    installed?: 'new' | 'already',
  ): Promise<void>;
  /** Exact counts over the registered children: one single-partition query. */
  countChildren(parentId: string): Promise<ChildCounts>;
  /** Claims the job for one attempt, or says why not. `known`: what the caller read just before. */
  claim(jobId: string, options: { now: Date; leaseMs: number; known?: KnownRecord }): Promise<ClaimResult>;
  /**
   * Records the attempt's outcome. `claimed` is the record the claim wrote (saves a read). A `sent`
   * outcome is written even if the lease was lost.
   */
  finish(
    jobId: string,
    etag: string,
    outcome: Outcome,
    now: Date,
    claimed?: DeliveryRecord,
  ): Promise<DeliveryRecord | undefined>;
  /** Gives a claim back without an attempt (nothing was sent): restores `before`, or removes a new record. */
  release(jobId: string, etag: string, before: DeliveryRecord | undefined): Promise<void>;
  /** Records a job that can never be sent (invalid), unless that id was already delivered. */
  recordRejected(jobId: string, code: string, reason: string, now: Date): Promise<void>;
  /**
   * Replay (docs/operate.md): a `failed` record goes back to `pending` with a conditional write, so
   * the sender claims the job again; a `sent` record is never touched. The attempts start over, and
   * the history keeps the earlier ones with a `replayed` entry. With `parentId`, the job counts as
   * pending on its broadcast or batch again.
   */
  rearm(jobId: string, now: Date, options?: { parentId?: string }): Promise<RearmResult>;
  /**
   * Writes a whole record: created when `etag` is undefined, else replaced if it is still at that
   * ETag. The new ETag, or undefined when another writer came first (read again).
   */
  write(record: DeliveryRecord, etag: string | undefined): Promise<string | undefined>;
  /**
   * Read, change, write conditionally, again on a lost race (a few rounds). `change` returns the
   * record to write, or undefined to leave it. The record as it is afterwards (undefined: none).
   */
  modify(
    jobId: string,
    change: (existing: DeliveryRecord | undefined) => DeliveryRecord | undefined,
  ): Promise<DeliveryRecord | undefined>;
  /** Stores a batch job's failed entries (rows in its partition; idempotent). */
  saveFailures(jobId: string, chunk: number, entries: readonly FailedEntry[]): Promise<void>;
  /** A batch job's stored failed entries, at most `limit`. */
  listFailures(jobId: string, limit: number): Promise<StoredFailure[]>;
}
