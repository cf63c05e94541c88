/**
 * Delivery records: table `deliveries`, PartitionKey = toTableKey(job id), RowKey = "job".
 *
 * At most once per job id: before any call to the Bot Connector a worker claims the job by writing
 * `status: sending` with a lease, conditional on the ETag it read. Another worker (a redelivery, a
 * second instance) that reads `sending` with a live lease backs off; one that reads `sent` or
 * `failed` does nothing. The only way to send twice is the ambiguous window: the Connector accepted
 * the POST but the worker died (or timed out) before writing `sent`; when its lease expires the job
 * is sent again and the record says `ambiguousResends`.
 */
import { odata, type TableEntityResult } from '@azure/data-tables';
import { toTableKey } from '../core/tableKeys';
import { ensureTable, guardStorage, statusOf, type TableClient } from './tableClients';

export type DeliveryStatus = 'pending' | 'sending' | 'retrying' | 'sent' | 'failed';

export interface AttemptRecord {
  readonly attempt: number;
  readonly at: string;
  /** `replayed`: not an attempt; a failed job was put back by a replay (`attempt` = the attempts before it). */
  readonly outcome: 'sent' | 'retry' | 'failed' | 'replayed';
  readonly code?: string;
  readonly status?: number;
}

export type JobKind = 'message' | 'update' | 'delete' | 'broadcast' | 'batch';

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
  /** The last attempts, newest last (at most MAX_HISTORY). */
  readonly history: readonly AttemptRecord[];
}

export const MAX_HISTORY = 20;
const ROW = 'job';

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
}

export interface ChildCounts {
  readonly total: number;
  readonly pending: number;
  readonly sent: number;
  readonly failed: number;
}

/** What `rearm` did: put a failed job back to pending, or found it not failed (sent, in flight, unknown). */
export type RearmResult =
  | { readonly kind: 'rearmed'; readonly record: DeliveryRecord }
  | { readonly kind: 'notFailed'; readonly record?: DeliveryRecord };

/** A record with the ETag it was read at; `null` says the caller read it and it did not exist. */
export type KnownRecord = { readonly record: DeliveryRecord; readonly etag: string } | null;

export interface DeliveryStore {
  get(jobId: string): Promise<DeliveryRecord | undefined>;
  /** `get` with the ETag, to pass to `claim` and save it a read. */
  read(jobId: string): Promise<KnownRecord>;
  /**
   * Records an accepted job before it is queued (HTTP API): `pending`, so a status poll finds it at
   * once. Returns false when the id exists already (a repeated submission; nothing is changed).
   */
  createPending(
    jobId: string,
    fields: { kind: JobKind; parentId?: string; notBefore?: Date; total?: number; fanOutComplete?: boolean },
    now: Date,
  ): Promise<boolean>;
  /** Sets fields of a broadcast or batch record (fan-out progress). */
  updateParent(
    jobId: string,
    fields: { total?: number; fanOutComplete?: boolean; status?: DeliveryStatus },
    now: Date,
  ): Promise<void>;
  /** Registers children of a broadcast or batch (idempotent: existing outcomes are kept). */
  addChildren(parentId: string, childIds: readonly string[]): Promise<void>;
  /** Records a child's final outcome on its parent (idempotent). */
  setChildOutcome(parentId: string, childId: string, status: 'sent' | 'failed'): Promise<void>;
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
}

type Entity = TableEntityResult<Record<string, unknown>>;

function fromEntity(jobId: string, e: Entity): DeliveryRecord {
  const str = (k: string): string | undefined =>
    typeof e[k] === 'string' && e[k] !== '' ? (e[k] as string) : undefined;
  let history: AttemptRecord[] = [];
  try {
    const parsed = JSON.parse(str('history') ?? '[]') as unknown;
    if (Array.isArray(parsed)) history = parsed as AttemptRecord[];
  } catch {
    history = [];
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
  ]) {
    const v = str(k);
    if (v !== undefined) record[k] = v;
  }
  if (typeof e.total === 'number') record.total = e.total;
  if (typeof e.fanOutComplete === 'boolean') record.fanOutComplete = e.fanOutComplete;
  return record as unknown as DeliveryRecord;
}

function toEntity(record: DeliveryRecord): Record<string, unknown> & { partitionKey: string; rowKey: string } {
  const { history, jobId, ...rest } = record;
  const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
    partitionKey: toTableKey(jobId),
    rowKey: ROW,
    jobId,
    history: JSON.stringify(history.slice(-MAX_HISTORY)),
  };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) entity[k] = v;
  return entity;
}

export function createDeliveryStore(table: TableClient): DeliveryStore {
  let ready: Promise<void> | undefined;
  const ensureReady = (): Promise<void> => {
    ready ??= ensureTable(table).catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };

  async function read(jobId: string): Promise<Entity | undefined> {
    try {
      return await guardStorage('getEntity', () => table.getEntity<Record<string, unknown>>(toTableKey(jobId), ROW));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Create (no etag) or conditional replace. Returns the new etag, or undefined on a lost race. */
  async function write(record: DeliveryRecord, etag: string | undefined): Promise<string | undefined> {
    const entity = toEntity(record);
    try {
      const response =
        etag === undefined
          ? await guardStorage('createEntity', () => table.createEntity(entity))
          : await guardStorage('updateEntity', () => table.updateEntity(entity, 'Replace', { etag }));
      return response.etag ?? '*';
    } catch (err) {
      const status = statusOf(err);
      if (status === 409 || status === 412) return undefined;
      throw err;
    }
  }

  // Children live in the parent's partition (RowKey `child:<escaped id>`), so counting them is one
  // single-partition query and registering them uses batch transactions of 100.
  const CHILD_PREFIX = 'child:';
  const childRow = (childId: string): string => `${CHILD_PREFIX}${toTableKey(childId)}`;

  return {
    async get(jobId) {
      await ensureReady();
      const entity = await read(jobId);
      return entity === undefined ? undefined : fromEntity(jobId, entity);
    },

    async read(jobId) {
      await ensureReady();
      const entity = await read(jobId);
      return entity === undefined ? null : { record: fromEntity(jobId, entity), etag: entity.etag };
    },

    async release(jobId, etag, before) {
      await ensureReady();
      try {
        if (before === undefined)
          await guardStorage('deleteEntity', () => table.deleteEntity(toTableKey(jobId), ROW, { etag }));
        else await write({ ...before, leaseUntil: undefined } as DeliveryRecord, etag);
      } catch (err) {
        // Someone else took the job meanwhile: nothing of ours to give back.
        if (statusOf(err) !== 412 && statusOf(err) !== 404) throw err;
      }
    },

    async createPending(jobId, fields, now) {
      await ensureReady();
      const nowIso = now.toISOString();
      const record: DeliveryRecord = {
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
      return (await write(record, undefined)) !== undefined;
    },

    async updateParent(jobId, fields, now) {
      await ensureReady();
      const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
        partitionKey: toTableKey(jobId),
        rowKey: ROW,
        updatedAt: now.toISOString(),
      };
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) entity[k] = v;
      await guardStorage('upsertEntity', () => table.upsertEntity(entity, 'Merge'));
    },

    async addChildren(parentId, childIds) {
      await ensureReady();
      const partitionKey = toTableKey(parentId);
      for (let i = 0; i < childIds.length; i += 100) {
        // Merge without a status: a child that already finished keeps its outcome.
        const actions = childIds
          .slice(i, i + 100)
          .map((id) => ['upsert', { partitionKey, rowKey: childRow(id), childId: id }, 'Merge'] as const);
        await guardStorage('submitTransaction', () => table.submitTransaction(actions as never));
      }
    },

    async setChildOutcome(parentId, childId, status) {
      await ensureReady();
      await guardStorage('upsertEntity', () =>
        table.upsertEntity({ partitionKey: toTableKey(parentId), rowKey: childRow(childId), childId, status }, 'Merge'),
      );
    },

    async countChildren(parentId) {
      await ensureReady();
      const partitionKey = toTableKey(parentId);
      let total = 0;
      let sent = 0;
      let failed = 0;
      const rows = table.listEntities<Record<string, unknown>>({
        queryOptions: {
          filter: odata`PartitionKey eq ${partitionKey} and RowKey ge ${CHILD_PREFIX} and RowKey lt ${'child;'}`,
          select: ['status'],
        },
      });
      await guardStorage('listEntities', async () => {
        for await (const row of rows) {
          total += 1;
          if (row.status === 'sent') sent += 1;
          else if (row.status === 'failed') failed += 1;
        }
      });
      return { total, pending: total - sent - failed, sent, failed };
    },

    async claim(jobId, { now, leaseMs, known }) {
      await ensureReady();
      for (let attempt = 0; attempt < 4; attempt += 1) {
        // The first round may use what the caller just read; a lost race always reads again.
        let existing: DeliveryRecord | undefined;
        let etag: string | undefined;
        if (attempt === 0 && known !== undefined) {
          existing = known?.record;
          etag = known?.etag;
        } else {
          const entity = await read(jobId);
          existing = entity === undefined ? undefined : fromEntity(jobId, entity);
          etag = entity?.etag;
        }
        if (existing?.status === 'sent' || existing?.status === 'failed') return { kind: 'done', record: existing };
        let ambiguous = false;
        if (existing?.status === 'sending' && existing.leaseUntil !== undefined) {
          const remaining = Date.parse(existing.leaseUntil) - now.getTime();
          if (remaining > 0) return { kind: 'busy', record: existing, retryInMs: remaining };
          // The previous worker claimed, maybe sent, and never recorded an outcome.
          ambiguous = true;
        }
        const nowIso = now.toISOString();
        const next: DeliveryRecord = {
          ...(existing ?? { jobId, createdAt: nowIso, ambiguousResends: 0, history: [] }),
          jobId,
          status: 'sending',
          attempts: (existing?.attempts ?? 0) + 1,
          updatedAt: nowIso,
          leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
          ambiguousResends: (existing?.ambiguousResends ?? 0) + (ambiguous ? 1 : 0),
          nextAttemptAt: undefined,
        } as DeliveryRecord;
        const written = await write(next, etag);
        if (written !== undefined) return { kind: 'claimed', record: next, etag: written, ambiguous };
      }
      const latest = await this.get(jobId);
      return { kind: 'busy', record: latest!, retryInMs: leaseMs };
    },

    async finish(jobId, etag, outcome, now, claimed) {
      await ensureReady();
      for (let attempt = 0; attempt < 4; attempt += 1) {
        // The first round writes on top of what the claim wrote, without reading it back.
        let existing: DeliveryRecord;
        let currentEtag: string;
        if (attempt === 0 && claimed !== undefined) {
          existing = claimed;
          currentEtag = etag;
        } else {
          const entity = await read(jobId);
          if (entity === undefined) return undefined;
          existing = fromEntity(jobId, entity);
          currentEtag = entity.etag;
        }
        // Someone else took over after our lease expired: only a delivery is worth overwriting with.
        if (currentEtag !== etag && outcome.status !== 'sent') return undefined;
        if (existing.status === 'sent') return existing;
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
        const next: DeliveryRecord = {
          ...existing,
          status: outcome.status,
          updatedAt: nowIso,
          leaseUntil: undefined,
          history,
          ...(outcome.conversationId === undefined ? {} : { conversationId: outcome.conversationId }),
          ...(outcome.activityId === undefined ? {} : { activityId: outcome.activityId }),
          ...(outcome.status === 'sent' ? { sentAt: nowIso } : {}),
          ...(outcome.status === 'failed' ? { failedAt: nowIso } : {}),
          ...(outcome.code === undefined ? {} : { lastErrorCode: outcome.code }),
          ...(outcome.reason === undefined ? {} : { lastErrorReason: outcome.reason.slice(0, 1000) }),
          nextAttemptAt: outcome.nextAttemptAt?.toISOString(),
        } as DeliveryRecord;
        if ((await write(next, currentEtag)) !== undefined) return next;
      }
      return undefined;
    },

    async recordRejected(jobId, code, reason, now) {
      await ensureReady();
      const nowIso = now.toISOString();
      for (let attempt = 0; attempt < 4; attempt += 1) {
        const entity = await read(jobId);
        const existing = entity === undefined ? undefined : fromEntity(jobId, entity);
        if (existing?.status === 'sent') return;
        const next: DeliveryRecord = {
          ...(existing ?? { jobId, createdAt: nowIso, attempts: 0, ambiguousResends: 0, history: [] }),
          status: 'failed',
          updatedAt: nowIso,
          failedAt: nowIso,
          lastErrorCode: code,
          lastErrorReason: reason.slice(0, 1000),
          leaseUntil: undefined,
        } as DeliveryRecord;
        if ((await write(next, entity?.etag)) !== undefined) return;
      }
    },

    async rearm(jobId, now, options = {}) {
      await ensureReady();
      const nowIso = now.toISOString();
      for (let attempt = 0; attempt < 4; attempt += 1) {
        const entity = await read(jobId);
        const existing = entity === undefined ? undefined : fromEntity(jobId, entity);
        if (existing?.status !== 'failed')
          return { kind: 'notFailed', ...(existing === undefined ? {} : { record: existing }) };
        const next: DeliveryRecord = {
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
        } as DeliveryRecord;
        // Conditional on the failed record read: a job that anything else changed meanwhile is read again.
        if ((await write(next, entity!.etag)) === undefined) continue;
        // Only after the record: a failed child re-armed here is pending on its parent until the sender finishes it.
        if (options.parentId !== undefined) {
          await guardStorage('upsertEntity', () =>
            table.upsertEntity(
              {
                partitionKey: toTableKey(options.parentId!),
                rowKey: childRow(jobId),
                childId: jobId,
                status: 'pending',
              },
              'Merge',
            ),
          );
        }
        return { kind: 'rearmed', record: next };
      }
      const latest = await read(jobId);
      return { kind: 'notFailed', ...(latest === undefined ? {} : { record: fromEntity(jobId, latest) }) };
    },
  };
}
