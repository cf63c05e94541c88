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
