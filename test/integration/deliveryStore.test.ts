import { describe, expect, it } from 'vitest';
import { storesFor, useAzurite } from '../helpers/storage';

const storage = useAzurite();
const t0 = new Date('2026-11-25T10:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('delivery store against Azurite', () => {
  it('claims, records an attempt history and refuses to claim a delivered job again', async () => {
    const { deliveries } = storesFor(storage());
    const claim = await deliveries.claim('job-1', { now: t0, leaseMs: 60_000 });
    expect(claim).toMatchObject({ kind: 'claimed', ambiguous: false, record: { status: 'sending', attempts: 1 } });
    if (claim.kind !== 'claimed') return;
    await deliveries.finish('job-1', claim.etag, { status: 'sent', conversationId: 'a:1', activityId: '1:act', httpStatus: 201 }, at(100));
    expect(await deliveries.get('job-1')).toMatchObject({ status: 'sent', activityId: '1:act', conversationId: 'a:1', sentAt: at(100).toISOString(), history: [{ attempt: 1, outcome: 'sent', status: 201 }] });
    expect(await deliveries.claim('job-1', { now: at(200), leaseMs: 60_000 })).toMatchObject({ kind: 'done' });
  });

  it('of many concurrent claims exactly one wins', async () => {
    const { deliveries } = storesFor(storage());
    const results = await Promise.all(Array.from({ length: 8 }, () => deliveries.claim('job-race', { now: t0, leaseMs: 60_000 })));
    expect(results.filter((r) => r.kind === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'busy')).toHaveLength(7);
  });

  it('a live lease makes others wait; an expired one is taken over and counted as ambiguous', async () => {
    const { deliveries } = storesFor(storage());
    const first = await deliveries.claim('job-lease', { now: t0, leaseMs: 10_000 });
    expect(first.kind).toBe('claimed');
    expect(await deliveries.claim('job-lease', { now: at(5_000), leaseMs: 10_000 })).toMatchObject({ kind: 'busy', retryInMs: 5_000 });
    const takeover = await deliveries.claim('job-lease', { now: at(10_001), leaseMs: 10_000 });
    expect(takeover).toMatchObject({ kind: 'claimed', ambiguous: true, record: { attempts: 2, ambiguousResends: 1 } });
    // The first worker finishing late cannot overwrite the new owner's attempt with a failure.
    if (first.kind === 'claimed') expect(await deliveries.finish('job-lease', first.etag, { status: 'failed', code: 'X' }, at(10_002))).toBeUndefined();
  });

  it('retrying keeps the job claimable; rejected jobs never overwrite a delivery', async () => {
    const { deliveries } = storesFor(storage());
    const claim = await deliveries.claim('job-retry', { now: t0, leaseMs: 60_000 });
    if (claim.kind !== 'claimed') throw new Error('expected a claim');
    await deliveries.finish('job-retry', claim.etag, { status: 'retrying', code: 'Throttled', reason: 'HTTP 429', nextAttemptAt: at(2000), httpStatus: 429 }, at(10));
    expect(await deliveries.get('job-retry')).toMatchObject({ status: 'retrying', lastErrorCode: 'Throttled', nextAttemptAt: at(2000).toISOString() });
    const again = await deliveries.claim('job-retry', { now: at(2000), leaseMs: 60_000 });
    expect(again).toMatchObject({ kind: 'claimed', record: { attempts: 2 } });
    if (again.kind !== 'claimed') return;
    await deliveries.finish('job-retry', again.etag, { status: 'sent', activityId: 'x' }, at(2100));
    await deliveries.recordRejected('job-retry', 'InvalidJob', 'bad', at(3000));
    expect(await deliveries.get('job-retry')).toMatchObject({ status: 'sent' });
    await deliveries.recordRejected('job-bad', 'InvalidJob', 'to: is required', at(3000));
    expect(await deliveries.get('job-bad')).toMatchObject({ status: 'failed', lastErrorCode: 'InvalidJob', lastErrorReason: 'to: is required', attempts: 0 });
  });

  it('a claim can reuse what the caller just read, and a stale read loses to a concurrent claim', async () => {
    const { deliveries } = storesFor(storage());
    expect(await deliveries.read('job-known')).toBeNull();
    const claim = await deliveries.claim('job-known', { now: t0, leaseMs: 60_000, known: null });
    expect(claim).toMatchObject({ kind: 'claimed', record: { attempts: 1 } });
    // Another worker read "nothing" at the same time: its claim must not win.
    expect(await deliveries.claim('job-known', { now: t0, leaseMs: 60_000, known: null })).toMatchObject({ kind: 'busy' });
    if (claim.kind !== 'claimed') return;
    // finish writes on top of the claim without reading it back.
    expect(await deliveries.finish('job-known', claim.etag, { status: 'sent', activityId: 'a1' }, at(10), claim.record)).toMatchObject({ status: 'sent', activityId: 'a1' });
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

