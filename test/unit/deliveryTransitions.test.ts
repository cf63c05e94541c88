import { describe, expect, it } from 'vitest';
import { fromEntity, MAX_HISTORY, toEntity, type DeliveryRecord } from '../../src/store/deliveryRecord';
import {
  checkClaim,
  claimedRecord,
  finishedRecord,
  pendingRecord,
  rearmedRecord,
  rejectedRecord,
} from '../../src/store/deliveryTransitions';

const NOW = new Date('2026-12-07T10:00:00.000Z');
const LATER = '2026-12-07T10:00:30.000Z';
const EARLIER = '2026-12-07T09:59:30.000Z';

function record(fields: Partial<DeliveryRecord>): DeliveryRecord {
  return {
    jobId: 'j1',
    status: 'pending',
    attempts: 0,
    createdAt: EARLIER,
    updatedAt: EARLIER,
    ambiguousResends: 0,
    history: [],
    ...fields,
  };
}

describe('checkClaim', () => {
  it('a new job is free, not ambiguous', () => {
    expect(checkClaim(undefined, NOW)).toEqual({ kind: 'free', ambiguous: false });
  });
  it.each(['sent', 'failed'] as const)('a %s job is done', (status) => {
    expect(checkClaim(record({ status }), NOW)).toEqual({ kind: 'done' });
  });
  it.each(['pending', 'retrying'] as const)('a %s job is free', (status) => {
    expect(checkClaim(record({ status }), NOW)).toEqual({ kind: 'free', ambiguous: false });
  });
  it('a live lease is busy for exactly the time it has left', () => {
    expect(checkClaim(record({ status: 'sending', leaseUntil: LATER }), NOW)).toEqual({
      kind: 'busy',
      retryInMs: 30_000,
    });
  });
  it('a lease that ends now or ended is free and ambiguous (the worker may have sent)', () => {
    expect(checkClaim(record({ status: 'sending', leaseUntil: NOW.toISOString() }), NOW)).toEqual({
      kind: 'free',
      ambiguous: true,
    });
    expect(checkClaim(record({ status: 'sending', leaseUntil: EARLIER }), NOW)).toEqual({
      kind: 'free',
      ambiguous: true,
    });
  });
  it('sending without a lease is free and not ambiguous', () => {
    expect(checkClaim(record({ status: 'sending' }), NOW)).toEqual({ kind: 'free', ambiguous: false });
  });
});

describe('claimedRecord', () => {
  it('a new record: sending, attempt 1, the lease from now, created now', () => {
    expect(claimedRecord('j1', undefined, NOW, 30_000, false)).toEqual({
      jobId: 'j1',
      status: 'sending',
      attempts: 1,
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      leaseUntil: LATER,
      ambiguousResends: 0,
      history: [],
      nextAttemptAt: undefined,
    });
  });
  it('an existing record keeps its fields, counts one attempt more and one ambiguous resend when told', () => {
    const before = record({
      status: 'retrying',
      attempts: 2,
      ambiguousResends: 1,
      nextAttemptAt: EARLIER,
      kind: 'message',
    });
    const next = claimedRecord('j1', before, NOW, 30_000, true);
    expect(next).toMatchObject({
      status: 'sending',
      attempts: 3,
      ambiguousResends: 2,
      kind: 'message',
      createdAt: EARLIER,
    });
    expect(next.nextAttemptAt).toBeUndefined();
    expect(claimedRecord('j1', before, NOW, 30_000, false).ambiguousResends).toBe(1);
  });
});

describe('finishedRecord', () => {
  const claimed = record({ status: 'sending', attempts: 2, leaseUntil: LATER });
  it('sent: the activity, sentAt, no lease, one history entry', () => {
    const next = finishedRecord(
      claimed,
      { status: 'sent', conversationId: 'c1', activityId: 'a1', installed: 'new' },
      NOW,
    );
    expect(next).toMatchObject({
      status: 'sent',
      conversationId: 'c1',
      activityId: 'a1',
      installed: 'new',
      sentAt: NOW.toISOString(),
    });
    expect(next.leaseUntil).toBeUndefined();
    expect(next.failedAt).toBeUndefined();
    expect(next.history).toEqual([{ attempt: 2, at: NOW.toISOString(), outcome: 'sent' }]);
  });
  it('retrying: the code, status and next attempt; history says retry', () => {
    const at = new Date(LATER);
    const next = finishedRecord(
      claimed,
      { status: 'retrying', code: 'Throttled', reason: 'r', httpStatus: 429, nextAttemptAt: at },
      NOW,
    );
    expect(next).toMatchObject({
      status: 'retrying',
      lastErrorCode: 'Throttled',
      lastErrorReason: 'r',
      nextAttemptAt: LATER,
    });
    expect(next.sentAt).toBeUndefined();
    expect(next.history.at(-1)).toEqual({
      attempt: 2,
      at: NOW.toISOString(),
      outcome: 'retry',
      code: 'Throttled',
      status: 429,
    });
  });
  it('failed: failedAt, the reason cut to 1000 characters', () => {
    const next = finishedRecord(claimed, { status: 'failed', code: 'X', reason: 'y'.repeat(1500) }, NOW);
    expect(next.failedAt).toBe(NOW.toISOString());
    expect(next.lastErrorReason).toHaveLength(1000);
  });
  it('keeps at most MAX_HISTORY entries, the newest last', () => {
    const history = Array.from({ length: MAX_HISTORY }, (_, i) => ({
      attempt: i + 1,
      at: EARLIER,
      outcome: 'retry' as const,
    }));
    const next = finishedRecord({ ...claimed, history, attempts: MAX_HISTORY + 1 }, { status: 'sent' }, NOW);
    expect(next.history).toHaveLength(MAX_HISTORY);
    expect(next.history[0]!.attempt).toBe(2);
    expect(next.history.at(-1)).toMatchObject({ attempt: MAX_HISTORY + 1, outcome: 'sent' });
  });
});

describe('rejectedRecord, rearmedRecord, pendingRecord', () => {
  it('a rejected new job is failed with no attempts', () => {
    expect(rejectedRecord('j1', undefined, 'InvalidJob', 'bad', NOW)).toMatchObject({
      jobId: 'j1',
      status: 'failed',
      attempts: 0,
      lastErrorCode: 'InvalidJob',
      lastErrorReason: 'bad',
      failedAt: NOW.toISOString(),
    });
  });
  it('a rejected existing job keeps its attempts and loses its lease', () => {
    const next = rejectedRecord('j1', record({ status: 'sending', attempts: 3, leaseUntil: LATER }), 'C', 'r', NOW);
    expect(next).toMatchObject({ status: 'failed', attempts: 3 });
    expect(next.leaseUntil).toBeUndefined();
  });
  it('a re-armed job is pending with its attempts starting over and a replayed entry', () => {
    const failed = record({
      status: 'failed',
      attempts: 4,
      lastErrorCode: 'BotBlocked',
      failedAt: EARLIER,
      lastErrorReason: 'r',
    });
    const next = rearmedRecord(failed, NOW);
    expect(next).toMatchObject({ status: 'pending', attempts: 0 });
    expect(next.failedAt).toBeUndefined();
    expect(next.lastErrorCode).toBeUndefined();
    expect(next.lastErrorReason).toBeUndefined();
    expect(next.history.at(-1)).toEqual({ attempt: 4, at: NOW.toISOString(), outcome: 'replayed', code: 'BotBlocked' });
  });
  it('a pending record carries only the fields given', () => {
    // toStrictEqual: a field not given must be absent, not present as undefined.
    expect(pendingRecord('j1', { kind: 'broadcast', total: 3, fanOutComplete: false }, NOW)).toStrictEqual({
      jobId: 'j1',
      status: 'pending',
      kind: 'broadcast',
      attempts: 0,
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      ambiguousResends: 0,
      history: [],
      total: 3,
      fanOutComplete: false,
    });
    const child = pendingRecord('c1', { kind: 'message', parentId: 'b1', notBefore: NOW }, NOW);
    expect(child).toMatchObject({ parentId: 'b1', notBefore: NOW.toISOString() });
    expect(Object.keys(child)).not.toContain('total');
    expect(Object.keys(child)).not.toContain('fanOutComplete');
    expect(Object.keys(pendingRecord('j2', { kind: 'message' }, NOW))).not.toContain('parentId');
  });
});

describe('entity mapping', () => {
  it('round-trips a record through a table entity', () => {
    const full = record({
      status: 'sent',
      kind: 'message',
      attempts: 2,
      conversationId: 'c/1',
      activityId: 'a1',
      sentAt: NOW.toISOString(),
      total: 5,
      fanOutComplete: true,
      installed: 'already',
      history: [{ attempt: 1, at: EARLIER, outcome: 'retry', code: 'Throttled', status: 429 }],
    });
    const entity = toEntity(full);
    expect(entity.partitionKey).toBe('j1');
    expect(entity.rowKey).toBe('job');
    expect(fromEntity('j1', { ...entity, etag: 'e' } as never)).toEqual(full);
  });
  it('a broken history reads as empty; empty strings as absent', () => {
    const back = fromEntity('j1', { etag: 'e', status: 'pending', history: '{not json', lastErrorCode: '' } as never);
    expect(back.history).toEqual([]);
    expect(back.lastErrorCode).toBeUndefined();
  });
});
