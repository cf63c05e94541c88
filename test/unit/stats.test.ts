import { describe, expect, it } from 'vitest';
import {
  addOutcome,
  emptyCounts,
  enqueueTime,
  hourKey,
  hourKeys,
  LATENCY_BUCKETS_MS,
  latencyBucket,
  mergeCounts,
  parseSince,
  percentileMs,
  type StatsOutcome,
} from '../../src/core/stats';

const at = new Date('2026-11-25T10:20:00Z');

describe('outcome counts', () => {
  it('counts each kind, failures by code, and sent latencies in fixed buckets', () => {
    const c = emptyCounts();
    const outcomes: StatsOutcome[] = [
      { kind: 'sent', at, latencyMs: 80 },
      { kind: 'sent', at, latencyMs: 1_000 },
      { kind: 'sent', at, latencyMs: 1_001 },
      { kind: 'sent', at },
      { kind: 'retry', at, code: 'Throttled' },
      { kind: 'throttled', at },
      { kind: 'failed', at, code: 'Unauthorized' },
      { kind: 'failed', at, code: 'Unauthorized' },
      { kind: 'failed', at, code: 'InvalidJob' },
    ];
    for (const o of outcomes) addOutcome(c, o);
    expect(c).toMatchObject({
      sent: 4,
      failed: 3,
      retried: 1,
      throttled: 1,
      failedByCode: { Unauthorized: 2, InvalidJob: 1 },
      latencyMaxMs: 1_001,
    });
    expect(c.latency).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(c.latency[latencyBucket(80)]).toBe(1);
    // A bound belongs to its bucket; one millisecond more is the next one.
    expect(c.latency[LATENCY_BUCKETS_MS.indexOf(1_000)]).toBe(1);
    expect(c.latency[LATENCY_BUCKETS_MS.indexOf(1_000) + 1]).toBe(1);
    // A sent job without a known enqueue time is counted, not timed.
    expect(c.latency.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('puts what is slower than the last bound in the open bucket', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(LATENCY_BUCKETS_MS.at(-1)! + 1)).toBe(LATENCY_BUCKETS_MS.length);
  });

  it('adds counts from several instances exactly', () => {
    const a = emptyCounts();
    const b = emptyCounts();
    addOutcome(a, { kind: 'failed', at, code: 'X' });
    addOutcome(b, { kind: 'failed', at, code: 'X' });
    addOutcome(b, { kind: 'failed', at, code: 'Y' });
    addOutcome(a, { kind: 'sent', at, latencyMs: 3_000 });
    addOutcome(b, { kind: 'sent', at, latencyMs: 40_000 });
    const sum = mergeCounts(a, b);
    expect(sum).toMatchObject({ sent: 2, failed: 3, failedByCode: { X: 2, Y: 1 }, latencyMaxMs: 40_000 });
    expect(sum.latency.reduce((x, y) => x + y, 0)).toBe(2);
    // The inputs are left alone.
    expect(a.failed).toBe(1);
  });
});

describe('percentiles from the histogram', () => {
  it('are the upper bound of the bucket holding the nearest rank', () => {
    const c = emptyCounts();
    // 98 fast, 2 slow: p50 is fast, p99 is slow.
    for (let i = 0; i < 98; i += 1) addOutcome(c, { kind: 'sent', at, latencyMs: 400 });
    addOutcome(c, { kind: 'sent', at, latencyMs: 8_000 });
    addOutcome(c, { kind: 'sent', at, latencyMs: 9_000 });
    expect(percentileMs(c.latency, 50)).toBe(500);
    expect(percentileMs(c.latency, 98)).toBe(500);
    expect(percentileMs(c.latency, 99)).toBe(10_000);
    expect(percentileMs(c.latency, 100)).toBe(10_000);
  });

  it('are undefined without any sent job, and infinite in the open bucket', () => {
    expect(percentileMs(emptyCounts().latency, 50)).toBeUndefined();
    const c = emptyCounts();
    addOutcome(c, { kind: 'sent', at, latencyMs: 2 * 86_400_000 });
    expect(percentileMs(c.latency, 50)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('hours and windows', () => {
  it('keys an hour as sortable UTC text, and lists the hours of a window', () => {
    expect(hourKey(at)).toBe('2026-11-25T10');
    expect(hourKeys(new Date('2026-11-25T08:59:59Z'), at)).toEqual(['2026-11-25T08', '2026-11-25T09', '2026-11-25T10']);
    expect(hourKeys(at, at)).toEqual(['2026-11-25T10']);
    expect(hourKeys(new Date('2026-11-30T23:10:00Z'), new Date('2026-12-01T00:05:00Z'))).toEqual([
      '2026-11-30T23',
      '2026-12-01T00',
    ]);
  });

  it('parses --since as a duration or an ISO time, and refuses the rest', () => {
    expect(parseSince('90m', at).toISOString()).toBe('2026-11-25T08:50:00.000Z');
    expect(parseSince('1h', at).toISOString()).toBe('2026-11-25T09:20:00.000Z');
    expect(parseSince('1.5h', at).toISOString()).toBe('2026-11-25T08:50:00.000Z');
    expect(parseSince('7d', at).toISOString()).toBe('2026-11-18T10:20:00.000Z');
    expect(parseSince('2026-11-25T06:00:00+01:00', at).toISOString()).toBe('2026-11-25T05:00:00.000Z');
    expect(() => parseSince('yesterday', at)).toThrow(/duration/);
    expect(() => parseSince('2026-11-25T06:00:00', at)).toThrow(/time zone/);
    expect(() => parseSince('2026-11-26T06:00:00Z', at)).toThrow(/future/);
    expect(() => parseSince('40d', at)).toThrow(/31 days/);
  });
});

describe('when a job was enqueued', () => {
  const createdAt = '2026-11-25T10:00:10.000Z';

  it("is the earlier of the record and the queue message (a flow's job has no record before its claim)", () => {
    expect(enqueueTime({ createdAt, history: [] }, new Date('2026-11-25T10:00:00Z'), undefined)?.toISOString()).toBe(
      '2026-11-25T10:00:00.000Z',
    );
    // A retry's message is newer than the record.
    expect(enqueueTime({ createdAt, history: [] }, new Date('2026-11-25T10:05:00Z'), undefined)?.toISOString()).toBe(
      createdAt,
    );
    expect(enqueueTime({ createdAt, history: [] }, undefined, undefined)?.toISOString()).toBe(createdAt);
  });

  it('restarts at the last replay, and waits for notBefore', () => {
    const history = [
      { outcome: 'failed', at: '2026-11-25T10:00:11.000Z' },
      { outcome: 'replayed', at: '2026-11-25T11:00:00.000Z' },
    ];
    expect(enqueueTime({ createdAt, history }, new Date('2026-11-25T11:00:01Z'), undefined)?.toISOString()).toBe(
      '2026-11-25T11:00:00.000Z',
    );
    expect(enqueueTime({ createdAt, history: [] }, undefined, new Date('2026-11-25T12:00:00Z'))?.toISOString()).toBe(
      '2026-11-25T12:00:00.000Z',
    );
  });

  it('is unknown without any time', () => {
    expect(enqueueTime({ createdAt: '', history: [] }, undefined, undefined)).toBeUndefined();
  });
});
