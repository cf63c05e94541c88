/**
 * Delivery records: table `deliveries`, PartitionKey = toTableKey(job id), RowKey = "job".
 *
 * At most once per job id: before any call to the Bot Connector a worker claims the job by writing
 * `status: sending` with a lease, conditional on the ETag it read. Another worker (a redelivery, a
 * second instance) that reads `sending` with a live lease backs off; one that reads `sent` or
 * `failed` does nothing. The only way to send twice is the ambiguous window: the Connector accepted
 * the POST but the worker died (or timed out) before writing `sent`; when its lease expires the job
 * is sent again and the record says `ambiguousResends`.
 *
 * The record's fields: deliveryRecord.ts; each state change: deliveryTransitions.ts; the children
 * of a broadcast or batch: deliveryChildren.ts; a Teams batch job's state: batchRecord.ts, and its
 * failed entries: batchFailures.ts. This file reads and writes, conditionally.
 */
import { toTableKey } from '../core/tableKeys';
import { listFailures, saveFailures } from './batchFailures';
import { addChildren, countChildren, setChildStatus } from './deliveryChildren';
import type { DeliveryStore } from './deliveryStoreApi';
import { fromEntity, ROW, toEntity, type DeliveryRecord } from './deliveryRecord';
import {
  checkClaim,
  claimedRecord,
  finishedRecord,
  pendingRecord,
  rearmedRecord,
  rejectedRecord,
} from './deliveryTransitions';
import {
  ensureTable,
  guardStorage,
  readEntity,
  statusOf,
  writeConditional,
  type Entity,
  type TableClient,
} from './tableClients';

export type {
  AttemptRecord,
  ChildCounts,
  ClaimResult,
  DeliveryRecord,
  DeliveryStatus,
  JobKind,
  KnownRecord,
  Outcome,
  RearmResult,
} from './deliveryRecord';
export { MAX_HISTORY } from './deliveryRecord';
export type { PendingFields } from './deliveryTransitions';
export type { StoredFailure } from './batchFailures';
export type { DeliveryStore } from './deliveryStoreApi';

/** How many times a conditional write is tried again after losing a race, reading afresh each time. */
const RACE_ROUNDS = 4;

export function createDeliveryStore(table: TableClient): DeliveryStore {
  let ready: Promise<void> | undefined;
  const ensureReady = (): Promise<void> => {
    ready ??= ensureTable(table).catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };

  const read = (jobId: string): Promise<Entity | undefined> => readEntity(table, toTableKey(jobId), ROW);
  const write = (record: DeliveryRecord, etag: string | undefined): Promise<string | undefined> =>
    writeConditional(table, toEntity(record), etag);

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
      return (await write(pendingRecord(jobId, fields, now), undefined)) !== undefined;
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
      await addChildren(table, parentId, childIds);
    },

    async setChildOutcome(parentId, childId, status, installed) {
      await ensureReady();
      await setChildStatus(table, parentId, childId, status, installed);
    },

    async countChildren(parentId) {
      await ensureReady();
      return countChildren(table, parentId);
    },

    async claim(jobId, { now, leaseMs, known }) {
      await ensureReady();
      for (let attempt = 0; attempt < RACE_ROUNDS; attempt += 1) {
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
        const check = checkClaim(existing, now);
        if (check.kind === 'done') return { kind: 'done', record: existing! };
        if (check.kind === 'busy') return { kind: 'busy', record: existing!, retryInMs: check.retryInMs };
        const next = claimedRecord(jobId, existing, now, leaseMs, check.ambiguous);
        const written = await write(next, etag);
        if (written !== undefined) return { kind: 'claimed', record: next, etag: written, ambiguous: check.ambiguous };
      }
      const latest = await this.get(jobId);
      return { kind: 'busy', record: latest!, retryInMs: leaseMs };
    },

    async finish(jobId, etag, outcome, now, claimed) {
      await ensureReady();
      for (let attempt = 0; attempt < RACE_ROUNDS; attempt += 1) {
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
        const next = finishedRecord(existing, outcome, now);
        if ((await write(next, currentEtag)) !== undefined) return next;
      }
      return undefined;
    },

    async recordRejected(jobId, code, reason, now) {
      await ensureReady();
      for (let attempt = 0; attempt < RACE_ROUNDS; attempt += 1) {
        const entity = await read(jobId);
        const existing = entity === undefined ? undefined : fromEntity(jobId, entity);
        if (existing?.status === 'sent') return;
        if ((await write(rejectedRecord(jobId, existing, code, reason, now), entity?.etag)) !== undefined) return;
      }
    },

    async write(record, etag) {
      await ensureReady();
      return write(record, etag);
    },

    async modify(jobId, change) {
      await ensureReady();
      for (let attempt = 0; attempt < RACE_ROUNDS; attempt += 1) {
        const entity = await read(jobId);
        const existing = entity === undefined ? undefined : fromEntity(jobId, entity);
        const next = change(existing);
        if (next === undefined) return existing;
        if ((await write(next, entity?.etag)) !== undefined) return next;
      }
      throw new Error(`delivery record ${jobId} kept changing under us (${RACE_ROUNDS} attempts)`);
    },

    async saveFailures(jobId, chunk, entries) {
      await ensureReady();
      if (entries.length > 0) await saveFailures(table, jobId, chunk, entries);
    },

    async listFailures(jobId, limit) {
      await ensureReady();
      return listFailures(table, jobId, limit);
    },

    async rearm(jobId, now, options = {}) {
      await ensureReady();
      for (let attempt = 0; attempt < RACE_ROUNDS; attempt += 1) {
        const entity = await read(jobId);
        const existing = entity === undefined ? undefined : fromEntity(jobId, entity);
        if (existing?.status !== 'failed')
          return { kind: 'notFailed', ...(existing === undefined ? {} : { record: existing }) };
        const next = rearmedRecord(existing, now);
        // Conditional on the failed record read: a job that anything else changed meanwhile is read again.
        if ((await write(next, entity!.etag)) === undefined) continue;
        // Only after the record: a failed child re-armed here is pending on its parent until the sender finishes it.
        if (options.parentId !== undefined) await setChildStatus(table, options.parentId, jobId, 'pending');
        return { kind: 'rearmed', record: next };
      }
      const latest = await read(jobId);
      return { kind: 'notFailed', ...(latest === undefined ? {} : { record: fromEntity(jobId, latest) }) };
    },
  };
}
