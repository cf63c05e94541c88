import { RestError } from '@azure/data-tables';
import { describe, expect, it } from 'vitest';
import { toTableKey } from '../../src/core/tableKeys';
import { StorageUnavailableError } from '../../src/errors';
import { createDeliveryStore, MAX_HISTORY, type ClaimResult, type DeliveryStore } from '../../src/store/deliveryStore';
import type { TableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { storesFor, useAzurite } from '../helpers/storage';

const storage = useAzurite();
const t0 = new Date('2026-11-25T10:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const LEASE_MS = 60_000;

const claimed = (results: readonly ClaimResult[]) => results.filter((r) => r.kind === 'claimed');

type TableMethod =
  | 'getEntity'
  | 'createEntity'
  | 'updateEntity'
  | 'upsertEntity'
  | 'deleteEntity'
  | 'submitTransaction'
  | 'listEntities'
  | 'createTable';

/**
 * The real table client with a storage fault or a competing writer injected into some calls (the
 * store under test and Azurite are real), and a count of the calls the store made.
 */
function tableWith(
  table: TableClient,
  inject: Partial<Record<TableMethod, (real: TableClient, ...args: never[]) => unknown>> = {},
) {
  const calls: Record<string, number> = {};
  const client = new Proxy(table, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const name = String(property);
      const override = inject[name as TableMethod];
      return (...args: never[]) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return override === undefined
          ? (value as (...a: never[]) => unknown).apply(target, args)
          : override(target, ...args);
      };
    },
  });
  return { client, calls };
}

const unavailable = (): never => {
  throw new RestError('injected: the service is unavailable', { statusCode: 503 });
};

/** Brings a record to `state` the way the sender does, and returns what a worker would read next. */
async function recordIn(
  deliveries: DeliveryStore,
  jobId: string,
  state: 'pending' | 'retrying' | 'sending, lease expired',
): Promise<void> {
  if (state === 'pending') {
    // What POST /api/notify writes before it queues the job.
    expect(await deliveries.createPending(jobId, { kind: 'message' }, t0)).toBe(true);
    return;
  }
  const first = await deliveries.claim(jobId, { now: t0, leaseMs: 10_000 });
  if (first.kind !== 'claimed') throw new Error('expected a claim');
  // 'sending, lease expired': the worker died after its claim; the lease ran out at t0 + 10 s.
  if (state === 'retrying')
    await deliveries.finish(jobId, first.etag, { status: 'retrying', code: 'HTTP503', reason: 'HTTP 503' }, at(1));
}

describe('delivery store against Azurite', () => {
  it('claims, records an attempt history and refuses to claim a delivered job again', async () => {
    const { deliveries } = storesFor(storage());
    const claim = await deliveries.claim('job-1', { now: t0, leaseMs: 60_000 });
    expect(claim).toMatchObject({ kind: 'claimed', ambiguous: false, record: { status: 'sending', attempts: 1 } });
    if (claim.kind !== 'claimed') return;
    await deliveries.finish(
      'job-1',
      claim.etag,
      { status: 'sent', conversationId: 'a:1', activityId: '1:act', httpStatus: 201 },
      at(100),
    );
    expect(await deliveries.get('job-1')).toMatchObject({
      status: 'sent',
      activityId: '1:act',
      conversationId: 'a:1',
      sentAt: at(100).toISOString(),
      history: [{ attempt: 1, outcome: 'sent', status: 201 }],
    });
    expect(await deliveries.claim('job-1', { now: at(200), leaseMs: 60_000 })).toMatchObject({ kind: 'done' });
  });

  it('of many concurrent claims exactly one wins', async () => {
    const { deliveries } = storesFor(storage());
    const results = await Promise.all(
      Array.from({ length: 8 }, () => deliveries.claim('job-race', { now: t0, leaseMs: 60_000 })),
    );
    expect(results.filter((r) => r.kind === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'busy')).toHaveLength(7);
  });

  it('a live lease makes others wait; an expired one is taken over and counted as ambiguous', async () => {
    const { deliveries } = storesFor(storage());
    const first = await deliveries.claim('job-lease', { now: t0, leaseMs: 10_000 });
    expect(first.kind).toBe('claimed');
    expect(await deliveries.claim('job-lease', { now: at(5_000), leaseMs: 10_000 })).toMatchObject({
      kind: 'busy',
      retryInMs: 5_000,
    });
    const takeover = await deliveries.claim('job-lease', { now: at(10_001), leaseMs: 10_000 });
    expect(takeover).toMatchObject({ kind: 'claimed', ambiguous: true, record: { attempts: 2, ambiguousResends: 1 } });
    // The first worker finishing late cannot overwrite the new owner's attempt with a failure.
    if (first.kind === 'claimed')
      expect(
        await deliveries.finish('job-lease', first.etag, { status: 'failed', code: 'X' }, at(10_002)),
      ).toBeUndefined();
  });

  it('retrying keeps the job claimable; rejected jobs never overwrite a delivery', async () => {
    const { deliveries } = storesFor(storage());
    const claim = await deliveries.claim('job-retry', { now: t0, leaseMs: 60_000 });
    if (claim.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.finish(
      'job-retry',
      claim.etag,
      { status: 'retrying', code: 'Throttled', reason: 'HTTP 429', nextAttemptAt: at(2000), httpStatus: 429 },
      at(10),
    );
    expect(await deliveries.get('job-retry')).toMatchObject({
      status: 'retrying',
      lastErrorCode: 'Throttled',
      nextAttemptAt: at(2000).toISOString(),
    });
    const again = await deliveries.claim('job-retry', { now: at(2000), leaseMs: 60_000 });
    expect(again).toMatchObject({ kind: 'claimed', record: { attempts: 2 } });
    if (again.kind !== 'claimed') return;
    await deliveries.finish('job-retry', again.etag, { status: 'sent', activityId: 'x' }, at(2100));
    await deliveries.recordRejected('job-retry', 'InvalidJob', 'bad', at(3000));
    expect(await deliveries.get('job-retry')).toMatchObject({ status: 'sent' });
    await deliveries.recordRejected('job-bad', 'InvalidJob', 'to: is required', at(3000));
    expect(await deliveries.get('job-bad')).toMatchObject({
      status: 'failed',
      lastErrorCode: 'InvalidJob',
      lastErrorReason: 'to: is required',
      attempts: 0,
    });
  });

  it('a claim can reuse what the caller just read, and a stale read loses to a concurrent claim', async () => {
    const { deliveries } = storesFor(storage());
    expect(await deliveries.read('job-known')).toBeNull();
    const claim = await deliveries.claim('job-known', { now: t0, leaseMs: 60_000, known: null });
    expect(claim).toMatchObject({ kind: 'claimed', record: { attempts: 1 } });
    // Another worker read "nothing" at the same time: its claim must not win.
    expect(await deliveries.claim('job-known', { now: t0, leaseMs: 60_000, known: null })).toMatchObject({
      kind: 'busy',
    });
    if (claim.kind !== 'claimed') return;
    // finish writes on top of the claim without reading it back.
    expect(
      await deliveries.finish('job-known', claim.etag, { status: 'sent', activityId: 'a1' }, at(10), claim.record),
    ).toMatchObject({ status: 'sent', activityId: 'a1' });
  });

  it('release gives a claim back without using an attempt', async () => {
    const { deliveries } = storesFor(storage());
    const fresh = await deliveries.claim('job-release-new', { now: t0, leaseMs: 60_000 });
    if (fresh.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.release('job-release-new', fresh.etag, undefined);
    expect(await deliveries.get('job-release-new')).toBeUndefined();

    await deliveries.createPending('job-release-pending', { kind: 'message' }, t0);
    const before = await deliveries.read('job-release-pending');
    const claim = await deliveries.claim('job-release-pending', { now: t0, leaseMs: 60_000, known: before });
    if (claim.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.release('job-release-pending', claim.etag, before?.record);
    expect(await deliveries.get('job-release-pending')).toMatchObject({ status: 'pending', attempts: 0 });
  });
});

// Only the first claim of a job creates its record (409 on a conflict). Every later claim replaces
// an existing record, and only its ETag condition stops two workers from both claiming it: a job
// that POST /api/notify made `pending`, a `retrying` job, and a job whose worker died.
describe('claims on an existing record: exactly one of several wins', () => {
  it.each(['pending', 'retrying', 'sending, lease expired'] as const)(
    'a record that is %s, claimed by workers that all read it at the same ETag',
    async (state) => {
      const { deliveries } = storesFor(storage());
      const jobId = `job-stale-${state.split(',')[0]}`;
      await recordIn(deliveries, jobId, state);
      const known = await deliveries.read(jobId);
      const now = at(20_000);
      const results = await Promise.all(
        Array.from({ length: 6 }, () => deliveries.claim(jobId, { now, leaseMs: LEASE_MS, known })),
      );
      expect(claimed(results), results.map((r) => r.kind).join(', ')).toHaveLength(1);
      // The losers read again and find the winner's live lease.
      expect(results.filter((r) => r.kind === 'busy')).toHaveLength(5);
      for (const r of results) if (r.kind === 'busy') expect(r.retryInMs).toBe(LEASE_MS);
      const record = await deliveries.get(jobId);
      const before = state === 'pending' ? 0 : 1;
      expect(record).toMatchObject({
        status: 'sending',
        attempts: before + 1,
        leaseUntil: new Date(now.getTime() + LEASE_MS).toISOString(),
        ambiguousResends: state === 'sending, lease expired' ? 1 : 0,
      });
    },
  );

  it.each(['pending', 'retrying', 'sending, lease expired'] as const)(
    'a record that is %s, claimed by workers that each read it themselves',
    async (state) => {
      const { deliveries } = storesFor(storage());
      const jobId = `job-fresh-${state.split(',')[0]}`;
      await recordIn(deliveries, jobId, state);
      const results = await Promise.all(
        Array.from({ length: 6 }, () => deliveries.claim(jobId, { now: at(20_000), leaseMs: LEASE_MS })),
      );
      expect(claimed(results), results.map((r) => r.kind).join(', ')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'busy')).toHaveLength(5);
    },
  );

  it('the winner keeps the job: a loser that read before the win cannot finish it, and its late claim is busy', async () => {
    const { deliveries } = storesFor(storage());
    await recordIn(deliveries, 'job-winner', 'retrying');
    const known = await deliveries.read('job-winner');
    const win = await deliveries.claim('job-winner', { now: at(20_000), leaseMs: LEASE_MS, known });
    if (win.kind !== 'claimed') throw new Error('expected a claim');
    expect(await deliveries.claim('job-winner', { now: at(20_001), leaseMs: LEASE_MS, known })).toMatchObject({
      kind: 'busy',
      retryInMs: LEASE_MS - 1,
    });
    // A retry or failure written with the old ETag is refused; the record stays the winner's.
    expect(
      await deliveries.finish(
        'job-winner',
        known!.etag,
        { status: 'failed', code: 'Stale' },
        at(20_002),
        known!.record,
      ),
    ).toBeUndefined();
    expect(await deliveries.get('job-winner')).toMatchObject({ status: 'sending', attempts: 2 });
    expect(
      await deliveries.finish('job-winner', win.etag, { status: 'sent', activityId: 'w' }, at(20_003), win.record),
    ).toMatchObject({ status: 'sent', activityId: 'w', attempts: 2 });
  });

  it('a claim that keeps losing races gives up after four rounds and says busy', async () => {
    const table = storage().table(TABLES.deliveries);
    await createDeliveryStore(table).createPending('job-always-lost', { kind: 'message' }, t0);
    // Another writer replaces the record between every read and write of this worker.
    const competing = {
      partitionKey: toTableKey('job-always-lost'),
      rowKey: 'job',
      jobId: 'job-always-lost',
      status: 'pending',
      attempts: 0,
      history: '[]',
    };
    const { client, calls } = tableWith(table, {
      updateEntity: async (real, ...args: Parameters<TableClient['updateEntity']>) => {
        await real.upsertEntity(competing, 'Replace');
        return real.updateEntity(...args);
      },
    });
    const result = await createDeliveryStore(client).claim('job-always-lost', { now: t0, leaseMs: LEASE_MS });
    expect(calls.updateEntity).toBe(4);
    expect(result).toMatchObject({
      kind: 'busy',
      retryInMs: LEASE_MS,
      record: { jobId: 'job-always-lost', status: 'pending' },
    });
  });

  it("a loser waits for the winner's lease, not its own", async () => {
    const { deliveries } = storesFor(storage());
    await recordIn(deliveries, 'job-lease-of-winner', 'retrying');
    const known = await deliveries.read('job-lease-of-winner');
    // Each worker asks for another lease length: a loser must report the lease the winner holds.
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        deliveries.claim('job-lease-of-winner', { now: at(20_000), leaseMs: LEASE_MS + i * 1_000, known }),
      ),
    );
    const [winner] = claimed(results);
    if (winner?.kind !== 'claimed') throw new Error('expected one claim');
    const winnerLease = Date.parse(winner.record.leaseUntil!) - at(20_000).getTime();
    for (const r of results) if (r.kind === 'busy') expect(r.retryInMs).toBe(winnerLease);
  });

  it('uses what the caller read instead of reading again, and reads again only after losing', async () => {
    const table = storage().table(TABLES.deliveries);
    const deliveries = createDeliveryStore(table);
    await recordIn(deliveries, 'job-saves-a-read', 'retrying');
    const known = await deliveries.read('job-saves-a-read');
    const { client, calls } = tableWith(table);
    const store = createDeliveryStore(client);
    const win = await store.claim('job-saves-a-read', { now: at(20_000), leaseMs: LEASE_MS, known });
    expect(win.kind).toBe('claimed');
    expect(calls.getEntity ?? 0).toBe(0);
    // The same stale read again: the write loses, and only then does the store read.
    expect(await store.claim('job-saves-a-read', { now: at(20_000), leaseMs: LEASE_MS, known })).toMatchObject({
      kind: 'busy',
    });
    expect(calls.getEntity).toBe(1);
    // finish writes on top of the claim's own record without reading it.
    if (win.kind !== 'claimed') return;
    expect(
      await store.finish('job-saves-a-read', win.etag, { status: 'sent', activityId: 'r' }, at(20_001), win.record),
    ).toMatchObject({ status: 'sent' });
    expect(calls.getEntity).toBe(1);
  });

  it('a record in `sending` without a lease (written by hand) can be claimed, and is not counted as ambiguous', async () => {
    const table = storage().table(TABLES.deliveries);
    const deliveries = createDeliveryStore(table);
    await deliveries.createPending('job-no-lease', { kind: 'message' }, t0);
    await table.upsertEntity(
      {
        partitionKey: toTableKey('job-no-lease'),
        rowKey: 'job',
        jobId: 'job-no-lease',
        status: 'sending',
        attempts: 1,
        history: '[]',
      },
      'Replace',
    );
    expect(await deliveries.claim('job-no-lease', { now: t0, leaseMs: LEASE_MS })).toMatchObject({
      kind: 'claimed',
      ambiguous: false,
      record: { attempts: 2, ambiguousResends: 0 },
    });
  });
});

describe('claim details', () => {
  it('a claim takes a lease from now, counts the attempt, clears nextAttemptAt and keeps the rest', async () => {
    const { deliveries } = storesFor(storage());
    const first = await deliveries.claim('job-detail', { now: t0, leaseMs: 7_000 });
    expect(first).toEqual({
      kind: 'claimed',
      etag: expect.any(String),
      ambiguous: false,
      record: {
        jobId: 'job-detail',
        status: 'sending',
        attempts: 1,
        createdAt: t0.toISOString(),
        updatedAt: t0.toISOString(),
        leaseUntil: at(7_000).toISOString(),
        ambiguousResends: 0,
        history: [],
        nextAttemptAt: undefined,
      },
    });
    expect(await deliveries.get('job-detail')).toStrictEqual({
      jobId: 'job-detail',
      status: 'sending',
      attempts: 1,
      createdAt: t0.toISOString(),
      updatedAt: t0.toISOString(),
      leaseUntil: at(7_000).toISOString(),
      ambiguousResends: 0,
      history: [],
    });
    if (first.kind !== 'claimed') return;
    await deliveries.finish(
      'job-detail',
      first.etag,
      {
        status: 'retrying',
        code: 'Throttled',
        reason: 'HTTP 429',
        conversationId: 'a:d',
        nextAttemptAt: at(9_000),
        httpStatus: 429,
      },
      at(100),
      first.record,
    );
    // A claim before nextAttemptAt is allowed (the queue decides when); it clears the plan.
    const second = await deliveries.claim('job-detail', { now: at(5_000), leaseMs: 7_000 });
    expect(second).toMatchObject({
      kind: 'claimed',
      ambiguous: false,
      record: {
        attempts: 2,
        updatedAt: at(5_000).toISOString(),
        leaseUntil: at(12_000).toISOString(),
        createdAt: t0.toISOString(),
        conversationId: 'a:d',
        lastErrorCode: 'Throttled',
      },
    });
    const stored = await deliveries.get('job-detail');
    expect(stored).not.toHaveProperty('nextAttemptAt');
    expect(stored).toMatchObject({
      status: 'sending',
      attempts: 2,
      conversationId: 'a:d',
      history: [{ attempt: 1, outcome: 'retry', code: 'Throttled', status: 429 }],
    });
  });

  it('a live lease is busy for exactly the time left; the lease end itself is free and ambiguous', async () => {
    const { deliveries } = storesFor(storage());
    await deliveries.claim('job-edge', { now: t0, leaseMs: 10_000 });
    expect(await deliveries.claim('job-edge', { now: at(1), leaseMs: 10_000 })).toMatchObject({
      kind: 'busy',
      retryInMs: 9_999,
    });
    expect(await deliveries.claim('job-edge', { now: at(9_999), leaseMs: 10_000 })).toMatchObject({
      kind: 'busy',
      retryInMs: 1,
      record: { status: 'sending', attempts: 1 },
    });
    const takeover = await deliveries.claim('job-edge', { now: at(10_000), leaseMs: 10_000 });
    expect(takeover).toMatchObject({
      kind: 'claimed',
      ambiguous: true,
      record: { attempts: 2, ambiguousResends: 1, leaseUntil: at(20_000).toISOString() },
    });
    // A second takeover counts again.
    expect(await deliveries.claim('job-edge', { now: at(20_000), leaseMs: 10_000 })).toMatchObject({
      kind: 'claimed',
      ambiguous: true,
      record: { attempts: 3, ambiguousResends: 2 },
    });
  });

  it('only an expired `sending` lease is ambiguous: pending and retrying records are not', async () => {
    const { deliveries } = storesFor(storage());
    await recordIn(deliveries, 'job-amb-pending', 'pending');
    await recordIn(deliveries, 'job-amb-retrying', 'retrying');
    expect(await deliveries.claim('job-amb-pending', { now: at(20_000), leaseMs: LEASE_MS })).toMatchObject({
      kind: 'claimed',
      ambiguous: false,
      record: { attempts: 1, ambiguousResends: 0 },
    });
    expect(await deliveries.claim('job-amb-retrying', { now: at(20_000), leaseMs: LEASE_MS })).toMatchObject({
      kind: 'claimed',
      ambiguous: false,
      record: { attempts: 2, ambiguousResends: 0 },
    });
  });

  it('a sent or failed record is done, also when the caller read it', async () => {
    const { deliveries } = storesFor(storage());
    await deliveries.recordRejected('job-done-failed', 'InvalidJob', 'x', t0);
    const known = await deliveries.read('job-done-failed');
    expect(await deliveries.claim('job-done-failed', { now: t0, leaseMs: LEASE_MS, known })).toMatchObject({
      kind: 'done',
      record: { status: 'failed' },
    });
    expect(await deliveries.claim('job-done-failed', { now: t0, leaseMs: LEASE_MS })).toMatchObject({
      kind: 'done',
      record: { status: 'failed' },
    });
  });
});

describe('finish', () => {
  it('appends the attempt to the history and sets the fields of each outcome', async () => {
    const { deliveries } = storesFor(storage());
    const c1 = await deliveries.claim('job-finish', { now: t0, leaseMs: LEASE_MS });
    if (c1.kind !== 'claimed') throw new Error('expected a claim');
    const retrying = await deliveries.finish(
      'job-finish',
      c1.etag,
      {
        status: 'retrying',
        code: 'HTTP503',
        reason: 'HTTP 503',
        httpStatus: 503,
        nextAttemptAt: at(4_000),
        conversationId: 'a:f',
      },
      at(10),
    );
    expect(retrying).toMatchObject({
      status: 'retrying',
      lastErrorCode: 'HTTP503',
      lastErrorReason: 'HTTP 503',
      nextAttemptAt: at(4_000).toISOString(),
      updatedAt: at(10).toISOString(),
      conversationId: 'a:f',
    });
    expect(retrying).not.toHaveProperty('sentAt');
    expect(retrying).not.toHaveProperty('failedAt');
    expect(retrying?.leaseUntil).toBeUndefined();
    expect(await deliveries.get('job-finish')).not.toHaveProperty('leaseUntil');

    const c2 = await deliveries.claim('job-finish', { now: at(4_000), leaseMs: LEASE_MS });
    if (c2.kind !== 'claimed') throw new Error('expected a claim');
    // No code this time: the last one stays; no nextAttemptAt: it is cleared.
    const failed = await deliveries.finish(
      'job-finish',
      c2.etag,
      { status: 'failed', reason: 'r'.repeat(1_500) },
      at(4_100),
      c2.record,
    );
    expect(failed).toMatchObject({
      status: 'failed',
      failedAt: at(4_100).toISOString(),
      lastErrorCode: 'HTTP503',
      conversationId: 'a:f',
    });
    expect(failed).not.toHaveProperty('sentAt');
    expect(failed?.lastErrorReason).toBe('r'.repeat(1_000));
    // The record finish returns is the one it wrote: no code or status in this attempt's entry.
    expect(failed?.history.at(-1)).toStrictEqual({ attempt: 2, at: at(4_100).toISOString(), outcome: 'failed' });
    const stored = await deliveries.get('job-finish');
    expect(stored).not.toHaveProperty('nextAttemptAt');
    expect(stored).not.toHaveProperty('activityId');
    expect(stored?.history).toEqual([
      { attempt: 1, at: at(10).toISOString(), outcome: 'retry', code: 'HTTP503', status: 503 },
      { attempt: 2, at: at(4_100).toISOString(), outcome: 'failed' },
    ]);
    expect(stored?.lastErrorReason).toHaveLength(1_000);
  });

  it('keeps the last 20 attempts', async () => {
    const { deliveries } = storesFor(storage());
    for (let i = 1; i <= MAX_HISTORY + 3; i += 1) {
      const c = await deliveries.claim('job-history', { now: at(i * 1_000), leaseMs: 500 });
      if (c.kind !== 'claimed') throw new Error(`expected claim ${i}`);
      await deliveries.finish(
        'job-history',
        c.etag,
        { status: 'retrying', code: `C${i}` },
        at(i * 1_000 + 1),
        c.record,
      );
    }
    const c = await deliveries.claim('job-history', { now: at(100_000), leaseMs: 500 });
    if (c.kind !== 'claimed') throw new Error('expected a claim');
    const finished = await deliveries.finish(
      'job-history',
      c.etag,
      { status: 'retrying', code: 'C24' },
      at(100_001),
      c.record,
    );
    expect(finished?.history).toHaveLength(20);
    expect(finished?.history[0]).toMatchObject({ attempt: 5, code: 'C5' });
    const history = (await deliveries.get('job-history'))!.history;
    expect(MAX_HISTORY).toBe(20);
    expect(history).toHaveLength(20);
    expect(history[0]).toMatchObject({ attempt: 5, code: 'C5' });
    expect(history.at(-1)).toMatchObject({ attempt: 24, code: 'C24' });
  });

  it('a record with a longer history (written by an older version) is cut to the last 20 on its next write', async () => {
    const table = storage().table(TABLES.deliveries);
    const deliveries = createDeliveryStore(table);
    await deliveries.createPending('job-long-history', { kind: 'message' }, t0);
    const history = Array.from({ length: 25 }, (_, i) => ({ attempt: i + 1, at: t0.toISOString(), outcome: 'retry' }));
    await table.upsertEntity(
      {
        partitionKey: toTableKey('job-long-history'),
        rowKey: 'job',
        jobId: 'job-long-history',
        status: 'retrying',
        attempts: 25,
        history: JSON.stringify(history),
      },
      'Replace',
    );
    expect((await deliveries.get('job-long-history'))?.history).toHaveLength(25);
    await deliveries.claim('job-long-history', { now: t0, leaseMs: LEASE_MS });
    const stored = (await deliveries.get('job-long-history'))!.history;
    expect(stored).toHaveLength(20);
    expect(stored[0]).toMatchObject({ attempt: 6 });
  });

  it('a finish that keeps losing to another writer gives up after four rounds', async () => {
    const table = storage().table(TABLES.deliveries);
    const deliveries = createDeliveryStore(table);
    const c = await deliveries.claim('job-finish-lost', { now: t0, leaseMs: LEASE_MS });
    if (c.kind !== 'claimed') throw new Error('expected a claim');
    const competing = {
      partitionKey: toTableKey('job-finish-lost'),
      rowKey: 'job',
      jobId: 'job-finish-lost',
      status: 'sending',
      attempts: 1,
      history: '[]',
    };
    const { client, calls } = tableWith(table, {
      updateEntity: async (real, ...args: Parameters<TableClient['updateEntity']>) => {
        await real.upsertEntity(competing, 'Replace');
        return real.updateEntity(...args);
      },
    });
    // A delivery is worth writing over another worker's record, so it keeps trying: four rounds.
    expect(
      await createDeliveryStore(client).finish(
        'job-finish-lost',
        c.etag,
        { status: 'sent', activityId: 'x' },
        at(1),
        c.record,
      ),
    ).toBeUndefined();
    expect(calls.updateEntity).toBe(4);
  });

  it('a delivery is written even after the lease was lost, once; nothing overwrites it', async () => {
    const { deliveries } = storesFor(storage());
    const first = await deliveries.claim('job-late-sent', { now: t0, leaseMs: 1_000 });
    const second = await deliveries.claim('job-late-sent', { now: at(2_000), leaseMs: 1_000 });
    if (first.kind !== 'claimed' || second.kind !== 'claimed') throw new Error('expected two claims');
    // The first worker's message did arrive: that is worth recording, lease or not.
    const sent = await deliveries.finish(
      'job-late-sent',
      first.etag,
      { status: 'sent', activityId: 'first', conversationId: 'a:l', httpStatus: 201 },
      at(2_100),
      first.record,
    );
    expect(sent).toMatchObject({ status: 'sent', activityId: 'first', sentAt: at(2_100).toISOString(), attempts: 2 });
    // The second worker's outcome changes nothing now, whatever it is.
    expect(
      await deliveries.finish(
        'job-late-sent',
        second.etag,
        { status: 'sent', activityId: 'second' },
        at(2_200),
        second.record,
      ),
    ).toMatchObject({ status: 'sent', activityId: 'first' });
    expect(
      await deliveries.finish('job-late-sent', second.etag, { status: 'failed', code: 'X' }, at(2_300)),
    ).toBeUndefined();
    expect(await deliveries.get('job-late-sent')).toMatchObject({
      status: 'sent',
      activityId: 'first',
      sentAt: at(2_100).toISOString(),
    });
  });

  it('a finish for a record that is gone writes nothing', async () => {
    const { deliveries } = storesFor(storage());
    const c = await deliveries.claim('job-gone', { now: t0, leaseMs: LEASE_MS });
    if (c.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.release('job-gone', c.etag, undefined);
    expect(await deliveries.finish('job-gone', c.etag, { status: 'sent', activityId: 'a' }, at(1))).toBeUndefined();
    expect(await deliveries.get('job-gone')).toBeUndefined();
  });
});

describe('release', () => {
  it('gives back only its own claim: after a takeover it changes nothing', async () => {
    const { deliveries } = storesFor(storage());
    await deliveries.createPending('job-release-lost', { kind: 'message' }, t0);
    const before = await deliveries.read('job-release-lost');
    const mine = await deliveries.claim('job-release-lost', { now: t0, leaseMs: 1_000, known: before });
    const theirs = await deliveries.claim('job-release-lost', { now: at(2_000), leaseMs: LEASE_MS });
    if (mine.kind !== 'claimed' || theirs.kind !== 'claimed') throw new Error('expected two claims');
    await deliveries.release('job-release-lost', mine.etag, before?.record);
    expect(await deliveries.get('job-release-lost')).toMatchObject({
      status: 'sending',
      attempts: 2,
      leaseUntil: at(2_000 + LEASE_MS).toISOString(),
    });

    const fresh = await deliveries.claim('job-release-lost-new', { now: t0, leaseMs: 1_000 });
    const taken = await deliveries.claim('job-release-lost-new', { now: at(2_000), leaseMs: LEASE_MS });
    if (fresh.kind !== 'claimed' || taken.kind !== 'claimed') throw new Error('expected two claims');
    await deliveries.release('job-release-lost-new', fresh.etag, undefined);
    expect(await deliveries.get('job-release-lost-new')).toMatchObject({ status: 'sending', attempts: 2 });
    // And a record already removed is no error.
    await deliveries.release('job-never-there', fresh.etag, undefined);
  });

  it('restores the record as it was, without a lease', async () => {
    const { deliveries } = storesFor(storage());
    await recordIn(deliveries, 'job-release-retrying', 'retrying');
    const before = await deliveries.read('job-release-retrying');
    const claim = await deliveries.claim('job-release-retrying', { now: at(20_000), leaseMs: LEASE_MS, known: before });
    if (claim.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.release('job-release-retrying', claim.etag, before!.record);
    const after = await deliveries.get('job-release-retrying');
    expect(after).toStrictEqual(before!.record);
    expect(after).not.toHaveProperty('leaseUntil');
    // It can be claimed again at once.
    expect(await deliveries.claim('job-release-retrying', { now: at(20_001), leaseMs: LEASE_MS })).toMatchObject({
      kind: 'claimed',
      record: { attempts: 2 },
    });
  });
});

describe('records written before a send', () => {
  it('createPending records the job once, with its fields; a repeat changes nothing', async () => {
    const { deliveries } = storesFor(storage());
    expect(
      await deliveries.createPending(
        'job-pending',
        { kind: 'update', parentId: 'batch-1', notBefore: at(60_000), total: 3, fanOutComplete: false },
        t0,
      ),
    ).toBe(true);
    expect(await deliveries.get('job-pending')).toStrictEqual({
      jobId: 'job-pending',
      status: 'pending',
      kind: 'update',
      parentId: 'batch-1',
      notBefore: at(60_000).toISOString(),
      total: 3,
      fanOutComplete: false,
      attempts: 0,
      createdAt: t0.toISOString(),
      updatedAt: t0.toISOString(),
      ambiguousResends: 0,
      history: [],
    });
    expect(await deliveries.createPending('job-pending', { kind: 'message' }, at(1))).toBe(false);
    expect(await deliveries.get('job-pending')).toMatchObject({ kind: 'update', createdAt: t0.toISOString() });
    expect(await deliveries.createPending('job-pending-plain', { kind: 'message' }, t0)).toBe(true);
    expect(await deliveries.get('job-pending-plain')).toStrictEqual({
      jobId: 'job-pending-plain',
      status: 'pending',
      kind: 'message',
      attempts: 0,
      createdAt: t0.toISOString(),
      updatedAt: t0.toISOString(),
      ambiguousResends: 0,
      history: [],
    });
  });

  it('recordRejected fails a pending or retrying record with the reason, and leaves a delivery alone', async () => {
    const { deliveries } = storesFor(storage());
    await recordIn(deliveries, 'job-reject-pending', 'pending');
    await deliveries.recordRejected('job-reject-pending', 'ScheduleTooFar', 'x'.repeat(1_200), at(5));
    const rejected = await deliveries.get('job-reject-pending');
    expect(rejected).toMatchObject({
      status: 'failed',
      kind: 'message',
      failedAt: at(5).toISOString(),
      updatedAt: at(5).toISOString(),
      lastErrorCode: 'ScheduleTooFar',
      createdAt: t0.toISOString(),
      attempts: 0,
    });
    expect(rejected?.lastErrorReason).toBe('x'.repeat(1_000));
    expect(rejected).not.toHaveProperty('leaseUntil');

    await recordIn(deliveries, 'job-reject-leased', 'sending, lease expired');
    await deliveries.recordRejected('job-reject-leased', 'InvalidJob', 'bad', at(5));
    expect(await deliveries.get('job-reject-leased')).toMatchObject({
      status: 'failed',
      attempts: 1,
      lastErrorCode: 'InvalidJob',
    });
    expect(await deliveries.get('job-reject-leased')).not.toHaveProperty('leaseUntil');

    await deliveries.recordRejected('job-reject-new', 'InvalidJob', 'bad', at(5));
    expect(await deliveries.get('job-reject-new')).toStrictEqual({
      jobId: 'job-reject-new',
      status: 'failed',
      attempts: 0,
      createdAt: at(5).toISOString(),
      updatedAt: at(5).toISOString(),
      failedAt: at(5).toISOString(),
      lastErrorCode: 'InvalidJob',
      lastErrorReason: 'bad',
      ambiguousResends: 0,
      history: [],
    });
  });

  it('recordRejected writes once, and gives up after four lost rounds', async () => {
    const table = storage().table(TABLES.deliveries);
    await createDeliveryStore(table).createPending('job-reject-once', { kind: 'message' }, t0);
    const once = tableWith(table);
    await createDeliveryStore(once.client).recordRejected('job-reject-once', 'InvalidJob', 'x', at(1));
    expect((once.calls.updateEntity ?? 0) + (once.calls.createEntity ?? 0)).toBe(1);

    const competing = {
      partitionKey: toTableKey('job-reject-once'),
      rowKey: 'job',
      jobId: 'job-reject-once',
      status: 'pending',
      attempts: 0,
      history: '[]',
    };
    const lost = tableWith(table, {
      updateEntity: async (real, ...args: Parameters<TableClient['updateEntity']>) => {
        await real.upsertEntity(competing, 'Replace');
        return real.updateEntity(...args);
      },
    });
    await createDeliveryStore(lost.client).recordRejected('job-reject-once', 'InvalidJob', 'y', at(2));
    expect(lost.calls.updateEntity).toBe(4);
  });

  it('reads a record whatever odd values its row holds', async () => {
    const s = storage();
    const table = s.table(TABLES.deliveries);
    const { deliveries } = storesFor(s);
    await deliveries.createPending('job-odd-0', { kind: 'message' }, t0); // creates the table
    const row = (jobId: string, extra: Record<string, unknown>) =>
      table.upsertEntity({ partitionKey: toTableKey(jobId), rowKey: 'job', jobId, ...extra }, 'Replace');
    await row('job-odd-1', {
      status: 'sent',
      history: 'not json',
      attempts: 2,
      activityId: '',
      conversationId: 42,
      lastErrorCode: true,
      total: '3',
      fanOutComplete: 'yes',
    });
    await row('job-odd-2', { status: 'sent', history: '{"attempt":1}' });
    await row('job-odd-3', {
      status: 'retrying',
      history: JSON.stringify([{ attempt: 1, at: 'x', outcome: 'retry' }]),
      total: 0,
      fanOutComplete: true,
      lastErrorCode: 'C',
    });
    expect(await deliveries.get('job-odd-1')).toStrictEqual({
      jobId: 'job-odd-1',
      status: 'sent',
      attempts: 2,
      createdAt: '',
      updatedAt: '',
      ambiguousResends: 0,
      history: [],
    });
    expect((await deliveries.get('job-odd-2'))?.history).toEqual([]);
    expect(await deliveries.get('job-odd-3')).toMatchObject({
      total: 0,
      fanOutComplete: true,
      lastErrorCode: 'C',
      history: [{ attempt: 1, outcome: 'retry' }],
    });
    expect(await deliveries.read('job-odd-3')).toMatchObject({
      etag: expect.stringMatching(/./),
      record: { status: 'retrying' },
    });
  });

  it('keeps ids with characters Table Storage forbids in keys apart', async () => {
    const { deliveries } = storesFor(storage());
    const ids = ['a/b', 'a\\b', 'a#b', 'a?b', 'a%2Fb', 'a\u0001b'];
    for (const id of ids) await deliveries.recordRejected(id, 'InvalidJob', `reason ${id}`, t0);
    for (const id of ids)
      expect(await deliveries.get(id)).toMatchObject({ jobId: id, lastErrorReason: `reason ${id}` });
  });
});

describe('storage failures', () => {
  // A failed read or write is an outage (the host retries the message later), never "no record"
  // nor "another worker won": either would let a second worker act on the job.
  it.each<[string, TableMethod, (store: DeliveryStore) => Promise<unknown>]>([
    ['a read for a claim', 'getEntity', (store) => store.claim('job-outage-read', { now: t0, leaseMs: LEASE_MS })],
    [
      'the write of a first claim',
      'createEntity',
      (store) => store.claim('job-outage-create', { now: t0, leaseMs: LEASE_MS }),
    ],
    [
      'the write of a claim on a record',
      'updateEntity',
      (store) => store.claim('job-outage-pending', { now: t0, leaseMs: LEASE_MS }),
    ],
    ['a release of a new record', 'deleteEntity', (store) => store.release('job-outage-pending', '*', undefined)],
    [
      'a release of an earlier record',
      'updateEntity',
      (store) =>
        store.release('job-outage-pending', '*', {
          jobId: 'job-outage-pending',
          status: 'pending',
          attempts: 0,
          createdAt: '',
          updatedAt: '',
          ambiguousResends: 0,
          history: [],
        }),
    ],
    ['a parent update', 'upsertEntity', (store) => store.updateParent('job-outage-pending', { total: 1 }, t0)],
    ['registering children', 'submitTransaction', (store) => store.addChildren('job-outage-pending', ['c~0'])],
    ['a child outcome', 'upsertEntity', (store) => store.setChildOutcome('job-outage-pending', 'c~0', 'sent')],
    ['counting children', 'listEntities', (store) => store.countChildren('job-outage-pending')],
  ])('%s fails with StorageUnavailableError naming the operation', async (_label, method, act) => {
    const table = storage().table(TABLES.deliveries);
    await createDeliveryStore(table).createPending('job-outage-pending', { kind: 'message' }, t0);
    const failing =
      method === 'listEntities'
        ? tableWith(table, { listEntities: () => ({ [Symbol.asyncIterator]: () => ({ next: unavailable }) }) })
        : tableWith(table, { [method]: unavailable });
    const error = await act(createDeliveryStore(failing.client)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as Error).message).toBe(`Table Storage unavailable during ${method} (HTTP 503)`);
  });

  it('a table that could not be created is tried again on the next call', async () => {
    const table = storage().table('deliveriesRetryCreate');
    let failures = 1;
    const { client, calls } = tableWith(table, {
      createTable: (real) => {
        if (failures-- > 0) unavailable();
        return real.createTable();
      },
    });
    const store = createDeliveryStore(client);
    await expect(store.get('job-x')).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(await store.get('job-x')).toBeUndefined();
    expect(await store.createPending('job-x', { kind: 'message' }, t0)).toBe(true);
    expect(calls.createTable).toBe(2);
  });

  it('a write answered without an ETag claims with "*"', async () => {
    const table = storage().table(TABLES.deliveries);
    const { client } = tableWith(table, {
      createEntity: async (real, ...args: Parameters<TableClient['createEntity']>) => {
        await real.createEntity(...args);
        return {};
      },
    });
    expect(await createDeliveryStore(client).claim('job-no-etag', { now: t0, leaseMs: LEASE_MS })).toMatchObject({
      kind: 'claimed',
      etag: '*',
    });
  });
});

describe('a parent and its children', () => {
  it('counts children exactly: registered once, outcomes kept, other parents apart', async () => {
    const { deliveries } = storesFor(storage());
    await deliveries.createPending('bc-parent', { kind: 'broadcast' }, t0);
    await deliveries.createPending('bc-parent-2', { kind: 'broadcast' }, t0);
    const children = Array.from({ length: 150 }, (_, i) => `bc-parent~${i}`);
    await deliveries.addChildren('bc-parent', children);
    await deliveries.addChildren('bc-parent-2', ['other~0']);
    expect(await deliveries.countChildren('bc-parent')).toEqual({ total: 150, pending: 150, sent: 0, failed: 0 });
    await deliveries.setChildOutcome('bc-parent', 'bc-parent~0', 'sent');
    await deliveries.setChildOutcome('bc-parent', 'bc-parent~149', 'failed');
    await deliveries.setChildOutcome('bc-parent', 'bc-parent~7', 'sent');
    // Registering again (a fan-out chunk that ran twice) keeps the outcomes.
    await deliveries.addChildren('bc-parent', children.slice(0, 10));
    expect(await deliveries.countChildren('bc-parent')).toEqual({ total: 150, pending: 147, sent: 2, failed: 1 });
    expect(await deliveries.countChildren('bc-parent-2')).toEqual({ total: 1, pending: 1, sent: 0, failed: 0 });
    expect(await deliveries.countChildren('bc-nobody')).toEqual({ total: 0, pending: 0, sent: 0, failed: 0 });
    // Exactly a hundred (one full transaction), and none at all.
    await deliveries.addChildren(
      'bc-hundred',
      Array.from({ length: 100 }, (_, i) => `bc-hundred~${i}`),
    );
    await deliveries.addChildren('bc-none', []);
    expect(await deliveries.countChildren('bc-hundred')).toEqual({ total: 100, pending: 100, sent: 0, failed: 0 });
    expect(await deliveries.countChildren('bc-none')).toEqual({ total: 0, pending: 0, sent: 0, failed: 0 });
    // The parent's own record is not a child.
    expect(await deliveries.get('bc-parent')).toMatchObject({ status: 'pending', kind: 'broadcast' });
  });

  it('updateParent merges progress into the record and leaves the rest', async () => {
    const { deliveries } = storesFor(storage());
    await deliveries.createPending('bc-progress', { kind: 'broadcast' }, t0);
    await deliveries.updateParent('bc-progress', { total: 12 }, at(1));
    expect(await deliveries.get('bc-progress')).toMatchObject({
      status: 'pending',
      kind: 'broadcast',
      total: 12,
      updatedAt: at(1).toISOString(),
      createdAt: t0.toISOString(),
    });
    expect(await deliveries.get('bc-progress')).not.toHaveProperty('fanOutComplete');
    await deliveries.updateParent('bc-progress', { fanOutComplete: true, status: 'sent', total: undefined }, at(2));
    expect(await deliveries.get('bc-progress')).toMatchObject({
      status: 'sent',
      total: 12,
      fanOutComplete: true,
      updatedAt: at(2).toISOString(),
    });
  });
});
