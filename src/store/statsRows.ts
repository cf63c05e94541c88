/**
 * The rows of table `stats` (statsRollup.ts explains the layout): their keys, and their counts to
 * and from a table entity.
 */
import { emptyCounts, LATENCY_BUCKETS_MS, type OutcomeCounts } from '../core/stats';
import { toTableKey } from '../core/tableKeys';

/** The tenant of outcomes whose tenant is not known (a job refused before its target was resolved). */
export const UNKNOWN_TENANT = '(unknown)';

export const ALL = 'all|';
export const TENANT = 't|';
/** The character after `|`: `prefix` ≤ RowKey < `prefix` with `|` replaced by it selects a prefix. */
export const after = (prefix: string): string => `${prefix.slice(0, -1)}}`;

/** One instance's counts for one hour, for all tenants or one. */
export interface Row {
  readonly hour: string;
  /** undefined: the all-tenants row. */
  readonly tenantId: string | undefined;
  counts: OutcomeCounts;
  /** Bumped on every change; the flush marks a row clean only if nothing changed meanwhile. */
  version: number;
  flushedVersion: number;
}

export function rowKeyOf(tenantId: string | undefined, instanceId: string): string {
  return tenantId === undefined ? `${ALL}${instanceId}` : `${TENANT}${toTableKey(tenantId)}|${instanceId}`;
}

export function toEntity(
  row: Row,
  instanceId: string,
  now: Date,
): Record<string, unknown> & { partitionKey: string; rowKey: string } {
  const { counts } = row;
  return {
    partitionKey: row.hour,
    rowKey: rowKeyOf(row.tenantId, instanceId),
    instance: instanceId,
    ...(row.tenantId === undefined ? {} : { tenantId: row.tenantId }),
    sent: counts.sent,
    failed: counts.failed,
    retried: counts.retried,
    throttled: counts.throttled,
    failedByCode: JSON.stringify(counts.failedByCode),
    latency: JSON.stringify(counts.latency),
    latencyMaxMs: counts.latencyMaxMs,
    updatedAt: now.toISOString(),
  };
}

export function fromEntity(entity: Record<string, unknown>): OutcomeCounts {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const json = <T>(v: unknown, fallback: T): T => {
    try {
      return typeof v === 'string' ? (JSON.parse(v) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  const counts = emptyCounts();
  counts.sent = num(entity.sent);
  counts.failed = num(entity.failed);
  counts.retried = num(entity.retried);
  counts.throttled = num(entity.throttled);
  const byCode = json<Record<string, unknown>>(entity.failedByCode, {});
  for (const [code, n] of Object.entries(byCode)) counts.failedByCode[code] = num(n);
  // A row written with other buckets (a later version of this file) still adds up in its total count.
  const latency = json<unknown[]>(entity.latency, []);
  if (Array.isArray(latency) && latency.length === LATENCY_BUCKETS_MS.length + 1) counts.latency = latency.map(num);
  counts.latencyMaxMs = num(entity.latencyMaxMs);
  return counts;
}
