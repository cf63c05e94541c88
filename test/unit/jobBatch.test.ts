/**
 * Batch jobs (`to.batch`), the pure parts: the contract, the poll envelope, admission, the plan and
 * the schedule, the state kept in the record and its counts, and a cancel's state change.
 */
import { describe, expect, it } from 'vitest';
import { admitJob } from '../../src/core/admission';
import { decodeQueueMessage, parseJob, toEnvelope, type TeamsBatchJob } from '../../src/core/job';
import { parsePoisonMessage } from '../../src/core/poison';
import { JobValidationError } from '../../src/errors';
import { planReplay, replayPoisoned } from '../../src/flows/replayJob';
import {
  batchActivity,
  MAX_POLL_INTERVAL_MS,
  planBatch,
  pollDelayMs,
  requestBody,
  withChunk,
} from '../../src/outbound/batchPlan';
import {
  chunkFinished,
  parseBatchState,
  serializeBatchState,
  summarizeBatch,
  type BatchState,
} from '../../src/store/batchRecord';
import type { DeliveryRecord } from '../../src/store/deliveryStore';
import { fromEntity, toEntity } from '../../src/store/deliveryRecord';
import { cancelledRecord, rearmedRecord } from '../../src/store/deliveryTransitions';

const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
const GUID = '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1';
const users = (n: number): string[] => Array.from({ length: n }, (_, i) => `29:user-${i}`);
const now = new Date('2026-11-25T10:00:00.000Z');

describe('parseJob: batch targets', () => {
  it('reads each form into a teamsBatch job, folding repeated users', () => {
    const job = parseJob(
      {
        id: 'b1',
        to: { batch: 'users', users: [GUID, GUID.toUpperCase(), ...users(4), ' 29:user-0 '], tenantId: TENANT },
        text: 'x',
      },
      'm',
    );
    expect(job).toMatchObject({
      kind: 'teamsBatch',
      id: 'b1',
      to: { kind: 'batch', batch: 'users', tenantId: TENANT },
    });
    expect((job as TeamsBatchJob).to).toMatchObject({ users: [GUID, ...users(4)] });
    const toOf = (body: unknown): unknown => (parseJob(body, 'm') as TeamsBatchJob).to;
    expect(toOf({ to: { batch: 'tenant', tenantId: TENANT }, text: 'x' })).toStrictEqual({
      kind: 'batch',
      batch: 'tenant',
      tenantId: TENANT,
    });
    expect(toOf({ to: { batch: 'team', teamId: '19:t', tenantId: null }, text: 'x' })).toStrictEqual({
      kind: 'batch',
      batch: 'team',
      teamId: '19:t',
    });
    expect(
      parseJob({ to: { batch: 'channels', channelIds: users(5).map((u) => `19:${u}`) }, text: 'x' }, 'm'),
    ).toMatchObject({
      kind: 'teamsBatch',
      to: { batch: 'channels', channelIds: users(5).map((u) => `19:${u}`) },
    });
  });

  it('keeps an empty mention list, refuses mentions', () => {
    expect(parseJob({ to: { batch: 'tenant', tenantId: 't' }, text: 'x', mentions: [] }, 'm').kind).toBe('teamsBatch');
    expect(() =>
      parseJob(
        { to: { batch: 'tenant', tenantId: 't' }, text: '<at>A</at>', mentions: [{ id: '29:a', name: 'A' }] },
        'm',
      ),
    ).toThrow(/mentions: is not possible in a batch job/);
  });

  it('admission checks a tenant-limited caller against the tenant a batch names', () => {
    const submitter = { name: 'hr', tenants: ['t-hr'] };
    const job = { id: 'b', to: { batch: 'tenant', tenantId: 't-other' }, text: 'x' };
    expect(() => admitJob(job, { now, newId: () => 'n', submitter })).toThrow(JobValidationError);
    const ok = admitJob({ ...job, to: { batch: 'tenant', tenantId: 't-hr' } }, { now, newId: () => 'n', submitter });
    expect(ok).toMatchObject({
      id: 'b',
      job: { id: 'hr:b', kind: 'teamsBatch' },
      envelope: { jobId: 'hr:b', caller: 'hr' },
    });
  });
});

describe('the poll envelope', () => {
  it('carries the poll number; the body of a poll is not a job', () => {
    const text = toEnvelope({}, { jobId: 'b1', deferrals: 0, poll: 3 });
    expect(decodeQueueMessage(text)).toStrictEqual({ body: {}, envelope: { jobId: 'b1', deferrals: 0, poll: 3 } });
  });

  it.each([[-1], [1.5], ['2'], [null]])('refuses a poll number of %j', (poll) => {
    expect(() => decodeQueueMessage({ teamsCourier: { jobId: 'b1', deferrals: 0, poll }, job: {} })).toThrow(
      /teamsCourier\.poll: must be a whole number/,
    );
  });
});

const usersJob = (n: number): TeamsBatchJob =>
  parseJob(
    { id: 'b', to: { batch: 'users', users: users(n), tenantId: TENANT }, text: 'Hello **all**' },
    'm',
  ) as TeamsBatchJob;
const where = { tenantId: TENANT, serviceUrl: 'https://smba.trafficmanager.net/amer/' };

describe('the plan and the schedule', () => {
  it('splits a list into balanced requests and builds each request from the plan', () => {
    const job = usersJob(205);
    const plan = planBatch(job, where, 100, now);
    expect(plan).toMatchObject({ target: 'users', perRequest: 100, startedAt: now.toISOString(), ...where });
    expect(plan.chunks).toStrictEqual([
      { members: 69, status: 'new' },
      { members: 68, status: 'new' },
      { members: 68, status: 'new' },
    ]);
    const activity = batchActivity(job);
    expect(activity).toStrictEqual({ type: 'message', text: 'Hello **all**', textFormat: 'markdown' });
    const second = requestBody(job, plan, 1, activity);
    expect(second).toMatchObject({ tenantId: TENANT, activity });
    expect(second.members?.map((m) => m.id)).toEqual(users(205).slice(69, 137));
    expect(() => requestBody(job, plan, 3, activity)).toThrow(RangeError);
  });

  it('plans one request for a tenant or a team, with the team id', () => {
    const team = parseJob({ to: { batch: 'team', teamId: '19:t' }, text: 'x' }, 'm') as TeamsBatchJob;
    const plan = planBatch(team, where, 100, now);
    expect(plan.chunks).toStrictEqual([{ status: 'new' }]);
    expect(requestBody(team, plan, 0, { type: 'message' })).toStrictEqual({
      activity: { type: 'message' },
      tenantId: TENANT,
      teamId: '19:t',
    });
  });

  it('waits the interval, then 1.5 times longer each poll, at most 5 minutes, never less than Teams asks', () => {
    expect([0, 1, 2, 3].map((k) => pollDelayMs(k, 10_000))).toEqual([10_000, 15_000, 22_500, 33_750]);
    expect(pollDelayMs(40, 10_000)).toBe(MAX_POLL_INTERVAL_MS);
    expect(pollDelayMs(1, 10_000, 60_000)).toBe(60_000);
    expect(pollDelayMs(1, 10_000, 1_000)).toBe(15_000);
  });
});

const state = (chunks: BatchState['chunks'], extra: Partial<BatchState> = {}): BatchState => ({
  target: 'users',
  ...where,
  perRequest: 100,
  chunks,
  startedAt: now.toISOString(),
  ...extra,
});

describe('the state in the record', () => {
  it('round-trips through the table entity, and is dropped when it cannot be read', () => {
    const batch = state([{ members: 5, status: 'running', operationId: 'op-1', counts: [5, 2, 1, 0, 2, 0] }], {
      pollSeq: 2,
      polls: 1,
    });
    const record: DeliveryRecord = {
      jobId: 'b',
      status: 'sent',
      kind: 'teamsBatch',
      attempts: 1,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      ambiguousResends: 0,
      history: [],
      batch,
      cancelRequestedAt: now.toISOString(),
    };
    const entity = toEntity(record);
    expect(typeof entity.batch).toBe('string');
    expect(fromEntity('b', { ...entity, etag: '*' } as never)).toStrictEqual(record);
    expect(parseBatchState(serializeBatchState(batch))).toStrictEqual(batch);
    expect(parseBatchState('{not json')).toBeUndefined();
    expect(parseBatchState(JSON.stringify({ ...batch, target: 'everyone' }))).toBeUndefined();
    expect(parseBatchState(JSON.stringify({ ...batch, chunks: [{ status: 'lost' }] }))).toBeUndefined();
    // Unknown fields and bad values in a chunk are left out, not trusted.
    expect(
      parseBatchState(JSON.stringify({ ...batch, chunks: [{ status: 'new', members: -1, counts: [1], extra: 1 }] }))
        ?.chunks,
    ).toStrictEqual([{ status: 'new' }]);
  });

  it('sums the requests: polled counts, requests not sent yet as pending, failed ones as failed, cancelled as skipped', () => {
    const summary = summarizeBatch(
      state([
        {
          members: 10,
          status: 'done',
          operationId: 'a',
          state: 'Completed',
          counts: [10, 8, 2, 0, 0, 0],
          failedStored: true,
        },
        { members: 10, status: 'running', operationId: 'b', counts: [10, 3, 0, 1, 6, 0] },
        { members: 10, status: 'failed', code: 'BatchAmbiguous' },
        { members: 10, status: 'new' },
        { members: 10, status: 'cancelled' },
        {
          members: 10,
          status: 'failed',
          operationId: 'c',
          code: 'BatchOperationNotFound',
          counts: [10, 4, 0, 0, 6, 0],
        },
      ]),
    );
    expect(summary).toMatchObject({
      total: 60,
      sent: 15,
      failed: 12,
      throttled: 1,
      pending: 16,
      skipped: 16,
      notSent: 10,
      finished: false,
    });
    expect(summary.operations.map((o) => o.operationId)).toEqual(['a', 'b', undefined, undefined, undefined, 'c']);
    expect(summary.operations[2]).toMatchObject({ status: 'failed', code: 'BatchAmbiguous', failed: 10 });
  });

  it('a request is finished once nothing will happen to it any more', () => {
    expect(chunkFinished({ status: 'done', counts: [3, 3, 0, 0, 0, 0] })).toBe(true);
    expect(chunkFinished({ status: 'done', counts: [3, 2, 1, 0, 0, 0] })).toBe(false);
    expect(chunkFinished({ status: 'done', counts: [3, 2, 1, 0, 0, 0], failedStored: true })).toBe(true);
    expect(chunkFinished({ status: 'running' })).toBe(false);
    expect(chunkFinished({ status: 'cancelled' })).toBe(true);
    expect(withChunk(state([{ status: 'new' }, { status: 'new' }]), 1, { status: 'posting' }).chunks).toStrictEqual([
      { status: 'new' },
      { status: 'posting' },
    ]);
  });
});

describe('cancel and replay', () => {
  const base: DeliveryRecord = {
    jobId: 'b',
    status: 'pending',
    kind: 'teamsBatch',
    attempts: 0,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    ambiguousResends: 0,
    history: [],
  };
  const later = new Date(now.getTime() + 1_000);

  it('ends a batch job at once when no worker holds it and nothing was sent', () => {
    expect(cancelledRecord(base, later)).toMatchObject({
      status: 'failed',
      lastErrorCode: 'BatchCancelled',
      cancelRequestedAt: later.toISOString(),
      failedAt: later.toISOString(),
    });
    const retrying = { ...base, status: 'retrying' as const, batch: state([{ status: 'new' }]) };
    expect(cancelledRecord(retrying, later)).toMatchObject({ status: 'failed', lastErrorCode: 'BatchCancelled' });
  });

  it('only flags it while a worker holds it, or once a request went out', () => {
    const sending = { ...base, status: 'sending' as const };
    expect(cancelledRecord(sending, later)).toMatchObject({
      status: 'sending',
      cancelRequestedAt: later.toISOString(),
    });
    const running = {
      ...base,
      status: 'retrying' as const,
      batch: state([{ status: 'running', operationId: 'op' }, { status: 'new' }]),
    };
    expect(cancelledRecord(running, later)).toMatchObject({
      status: 'retrying',
      cancelRequestedAt: later.toISOString(),
    });
    expect(cancelledRecord(running, later).lastErrorCode).toBeUndefined();
  });

  it('a replayed batch job plans again', () => {
    const failed = {
      ...base,
      status: 'failed' as const,
      batch: state([{ status: 'failed', code: 'BotDisabledByAdmin' }]),
      lastErrorCode: 'BotDisabledByAdmin',
    };
    const rearmed = rearmedRecord(failed, later);
    expect(rearmed).toMatchObject({ status: 'pending', attempts: 0 });
    expect(rearmed.batch).toBeUndefined();
  });
});

describe('a poll message the host dead-lettered', () => {
  it('is replayed as it was, even though the job is sent: it sends nothing itself', async () => {
    const entry = parsePoisonMessage(toEnvelope({}, { jobId: 'b', deferrals: 4, poll: 7 }));
    expect(entry).toMatchObject({ jobId: 'b', source: 'host', replay: { ok: true } });
    const sent = { status: 'sent' } as DeliveryRecord;
    expect(planReplay(entry, sent)).toStrictEqual({ plan: 'requeued' });
    const requeued: string[] = [];
    const result = await replayPoisoned(entry, {} as never, {
      deliveries: { rearm: async () => ({ kind: 'notFailed', record: sent }) },
      queue: { requeue: async (text) => void requeued.push(text) },
      poison: { remove: async () => undefined },
      now: () => now,
    });
    expect(result).toMatchObject({ kind: 'requeued', jobId: 'b' });
    expect(requeued.map((t) => decodeQueueMessage(t).envelope)).toStrictEqual([{ jobId: 'b', deferrals: 0, poll: 7 }]);
  });
});
