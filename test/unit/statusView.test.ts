import { describe, expect, it } from 'vitest';
import { toStatusView } from '../../src/flows/statusView';
import type { DeliveryRecord } from '../../src/store/deliveryStore';

const now = new Date('2026-11-25T10:00:00.000Z');
const base: DeliveryRecord = {
  jobId: 'j1',
  status: 'pending',
  kind: 'message',
  attempts: 0,
  createdAt: now.toISOString(),
  updatedAt: now.toISOString(),
  ambiguousResends: 0,
  history: [],
};

describe('toStatusView', () => {
  it('pending and retrying poll again (202 + Retry-After), sent and failed are done (200)', () => {
    expect(toStatusView(base, undefined, now)).toMatchObject({
      done: false,
      retryAfterSeconds: 2,
      body: { id: 'j1', status: 'pending', attempts: 0 },
    });
    const retrying = {
      ...base,
      status: 'retrying' as const,
      attempts: 1,
      nextAttemptAt: new Date(now.getTime() + 7_500).toISOString(),
      lastErrorCode: 'Throttled',
      lastErrorReason: 'HTTP 429',
    };
    expect(toStatusView(retrying, undefined, now)).toMatchObject({
      done: false,
      retryAfterSeconds: 8,
      body: { status: 'retrying', error: { code: 'Throttled', reason: 'HTTP 429' } },
    });
    const sent = {
      ...base,
      status: 'sent' as const,
      attempts: 1,
      activityId: '1:x',
      conversationId: 'a:1',
      sentAt: now.toISOString(),
    };
    expect(toStatusView(sent, undefined, now)).toMatchObject({
      done: true,
      body: { status: 'sent', activityId: '1:x', conversationId: 'a:1' },
    });
    expect(toStatusView(sent, undefined, now).retryAfterSeconds).toBeUndefined();
  });

  it('a scheduled job says when to look again', () => {
    const scheduled = { ...base, notBefore: new Date(now.getTime() + 3_600_000).toISOString() };
    expect(toStatusView(scheduled, undefined, now)).toMatchObject({
      done: false,
      retryAfterSeconds: 300,
      body: { notBefore: scheduled.notBefore },
    });
  });

  it('a broadcast counts its children and is done when none is pending', () => {
    const parent: DeliveryRecord = { ...base, kind: 'broadcast' };
    expect(toStatusView(parent, { total: 250, pending: 250, sent: 0, failed: 0 }, now)).toMatchObject({
      done: false,
      body: { status: 'pending', queued: 250, total: undefined },
    });
    const fanned = { ...parent, status: 'sent' as const, fanOutComplete: true, total: 500 };
    expect(toStatusView(fanned, { total: 500, pending: 3, sent: 497, failed: 0 }, now)).toMatchObject({
      done: false,
      body: { status: 'pending', total: 500, pending: 3 },
    });
    expect(toStatusView(fanned, { total: 500, pending: 0, sent: 500, failed: 0 }, now)).toMatchObject({
      done: true,
      body: { status: 'sent', sent: 500 },
    });
    expect(toStatusView(fanned, { total: 500, pending: 0, sent: 490, failed: 10 }, now)).toMatchObject({
      done: true,
      body: { status: 'partial', failed: 10 },
    });
    expect(toStatusView(fanned, { total: 2, pending: 0, sent: 0, failed: 2 }, now)).toMatchObject({
      done: true,
      body: { status: 'failed' },
    });
  });
});

describe('toStatusView of a Teams batch job', () => {
  const batchBase: DeliveryRecord = { ...base, kind: 'teamsBatch' };
  const batch = (chunks: NonNullable<DeliveryRecord['batch']>['chunks'], extra = {}) => ({
    target: 'users' as const,
    tenantId: 't',
    serviceUrl: 'https://smba.trafficmanager.net/amer/',
    perRequest: 100,
    startedAt: now.toISOString(),
    chunks,
    ...extra,
  });

  it('counts its operations and polls again until every one finished', () => {
    const running: DeliveryRecord = {
      ...batchBase,
      status: 'sent',
      batch: batch(
        [
          { members: 100, status: 'running', operationId: 'op-1', state: 'Ongoing', counts: [100, 40, 1, 2, 57, 0] },
          { members: 100, status: 'new' },
        ],
        { nextPollAt: new Date(now.getTime() + 15_000).toISOString() },
      ),
    };
    expect(toStatusView(running, undefined, now)).toMatchObject({
      done: false,
      retryAfterSeconds: 15,
      body: {
        kind: 'teamsBatch',
        status: 'pending',
        target: 'users',
        total: 200,
        sent: 40,
        failed: 1,
        throttled: 2,
        pending: 157,
        operations: [
          { operationId: 'op-1', status: 'running', state: 'Ongoing', total: 100, sent: 40 },
          { status: 'new', total: 100, pending: 100 },
        ],
        nextPollAt: running.batch!.nextPollAt,
      },
    });
    // Not picked up yet: zero counts, look again soon.
    expect(toStatusView(batchBase, undefined, now)).toMatchObject({
      done: false,
      retryAfterSeconds: 5,
      body: { status: 'pending', total: 0, operations: [] },
    });
  });

  it('is done once every operation finished: sent, partial, failed or cancelled', () => {
    const finished = (chunks: NonNullable<DeliveryRecord['batch']>['chunks'], extra: Partial<DeliveryRecord> = {}) =>
      toStatusView(
        { ...batchBase, status: 'sent', batch: batch(chunks, { finishedAt: now.toISOString() }), ...extra },
        undefined,
        now,
      );
    const all = { members: 10, status: 'done' as const, operationId: 'a', counts: [10, 10, 0, 0, 0, 0] as const };
    expect(finished([all])).toMatchObject({
      done: true,
      body: { status: 'sent', sent: 10, finishedAt: now.toISOString() },
    });
    expect(finished([all]).retryAfterSeconds).toBeUndefined();
    expect(finished([all, { members: 10, status: 'failed', code: 'BatchAmbiguous' }]).body).toMatchObject({
      status: 'partial',
      failed: 10,
      notSent: 10,
    });
    expect(finished([{ ...all, counts: [10, 0, 10, 0, 0, 0], failedStored: true }]).body).toMatchObject({
      status: 'failed',
    });
    expect(
      finished([{ ...all, counts: [10, 4, 0, 0, 0, 6], cancelSent: true }], { cancelRequestedAt: now.toISOString() })
        .body,
    ).toMatchObject({ status: 'cancelled', sent: 4, skipped: 6, cancelRequestedAt: now.toISOString() });
    const cancelledEarly: DeliveryRecord = {
      ...batchBase,
      status: 'failed',
      lastErrorCode: 'BatchCancelled',
      lastErrorReason: 'r',
    };
    expect(toStatusView(cancelledEarly, undefined, now)).toMatchObject({ done: true, body: { status: 'cancelled' } });
    const refused: DeliveryRecord = {
      ...batchBase,
      status: 'failed',
      lastErrorCode: 'BatchServiceUrlUnknown',
      lastErrorReason: 'r',
    };
    expect(toStatusView(refused, undefined, now)).toMatchObject({
      done: true,
      body: { status: 'failed', error: { code: 'BatchServiceUrlUnknown' } },
    });
  });
});
