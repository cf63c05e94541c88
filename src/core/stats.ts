/**
 * Delivery statistics for `teams-courier stats`: what one outcome adds to the counts, how counts
 * from several instances add up, latency percentiles from a fixed histogram, and the hourly keys
 * the rollup is stored under (src/store/statsRollup.ts, docs/storage.md). Pure.
 *
 * The latency histogram has fixed buckets so that counts from any number of instances and hours
 * add up exactly (a percentile cannot be averaged; bucket counts can be summed). A percentile is
 * reported as the upper bound of the bucket it falls in: "p99 ≤ 5 s".
 */

/** Upper bounds of the latency buckets, in ms; one more bucket holds everything slower. */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000,
  90_000, 120_000, 180_000, 300_000, 600_000, 900_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000,
  28_800_000, 86_400_000,
]);

/** What one outcome of the sender is, for the counts. */
export type StatsOutcome =
  /** Teams accepted the job; `latencyMs` is from enqueue (or notBefore, or a replay) to sent. */
  | { readonly kind: 'sent'; readonly tenantId?: string; readonly at: Date; readonly latencyMs?: number }
  /** An attempt that will be retried (429s are counted again as `throttled`). */
  | { readonly kind: 'retry'; readonly tenantId?: string; readonly at: Date; readonly code: string }
  /** Teams answered 429 (whether the job is retried or has run out of attempts). */
  | { readonly kind: 'throttled'; readonly tenantId?: string; readonly at: Date }
  /** The job failed for good (dead-lettered) with this code. */
  | { readonly kind: 'failed'; readonly tenantId?: string; readonly at: Date; readonly code: string };

export interface OutcomeCounts {
  sent: number;
  failed: number;
  retried: number;
  throttled: number;
  /** Failures by code (docs/delivery.md, "Failure reasons"). */
  failedByCode: Record<string, number>;
  /** Sent jobs per latency bucket: LATENCY_BUCKETS_MS.length + 1 entries. */
  latency: number[];
  /** The slowest sent job, in ms (0 when none). */
  latencyMaxMs: number;
}

export function emptyCounts(): OutcomeCounts {
  return {
    sent: 0,
    failed: 0,
    retried: 0,
    throttled: 0,
    failedByCode: {},
    latency: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
    latencyMaxMs: 0,
  };
}

/** The bucket a latency falls in: the first whose upper bound it does not exceed. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}

/** Adds one outcome to `counts` (in place). */
export function addOutcome(counts: OutcomeCounts, outcome: StatsOutcome): void {
  switch (outcome.kind) {
    case 'sent':
      counts.sent += 1;
      if (outcome.latencyMs !== undefined && Number.isFinite(outcome.latencyMs)) {
        const ms = Math.max(0, Math.round(outcome.latencyMs));
        counts.latency[latencyBucket(ms)]! += 1;
        counts.latencyMaxMs = Math.max(counts.latencyMaxMs, ms);
      }
      return;
    case 'retry':
      counts.retried += 1;
      return;
    case 'throttled':
      counts.throttled += 1;
      return;
    case 'failed':
      counts.failed += 1;
      counts.failedByCode[outcome.code] = (counts.failedByCode[outcome.code] ?? 0) + 1;
      return;
  }
}

/** The sum of two sets of counts (a new object). */
export function mergeCounts(a: OutcomeCounts, b: OutcomeCounts): OutcomeCounts {
  const failedByCode: Record<string, number> = { ...a.failedByCode };
  for (const [code, n] of Object.entries(b.failedByCode)) failedByCode[code] = (failedByCode[code] ?? 0) + n;
  return {
    sent: a.sent + b.sent,
    failed: a.failed + b.failed,
    retried: a.retried + b.retried,
    throttled: a.throttled + b.throttled,
    failedByCode,
    latency: a.latency.map((n, i) => n + (b.latency[i] ?? 0)),
    latencyMaxMs: Math.max(a.latencyMaxMs, b.latencyMaxMs),
  };
}

/**
 * The p-th percentile (0 < p ≤ 100) of the histogram, as the upper bound of its bucket in ms, or
 * `Infinity` when it falls in the last, open bucket; undefined without any sent job.
 */
export function percentileMs(latency: readonly number[], p: number): number | undefined {
  const total = latency.reduce((sum, n) => sum + n, 0);
  if (total === 0) return undefined;
  // The rank of the p-th percentile (nearest-rank method): the smallest value with at least p% at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (let i = 0; i < latency.length; i += 1) {
    seen += latency[i] ?? 0;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

/** The hour an outcome is counted in, UTC, sortable as text: `2026-11-25T10`. */
export function hourKey(at: Date): string {
  return at.toISOString().slice(0, 13);
}

const HOUR_MS = 3_600_000;

/** Every hour key from the hour of `from` to the hour of `to`, oldest first. */
export function hourKeys(from: Date, to: Date): string[] {
  const keys: string[] = [];
  const start = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS;
  for (let t = start; t <= to.getTime(); t += HOUR_MS) keys.push(hourKey(new Date(t)));
  return keys;
}

/** The start of the hour of `at`. */
export function startOfHour(at: Date): Date {
  return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
}

/** The longest window `stats` reads (each hour is one small partition). */
export const MAX_STATS_WINDOW_MS = 31 * 24 * HOUR_MS;

const DURATION = /^(\d+(?:\.\d+)?)(m|h|d)$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: HOUR_MS, d: 24 * HOUR_MS };

/**
 * When `--since` starts: a duration back from `now` (`90m`, `1h`, `24h`, `7d`) or an ISO 8601 time
 * with a time zone. Throws a RangeError that says what is accepted.
 */
export function parseSince(raw: string, now: Date): Date {
  const text = raw.trim();
  const duration = DURATION.exec(text);
  let from: Date;
  if (duration !== null) {
    from = new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2]!]!);
  } else if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/i.test(text) && !Number.isNaN(Date.parse(text))) {
    from = new Date(Date.parse(text));
  } else {
    throw new RangeError(`"${raw}" is neither a duration (30m, 1h, 24h, 7d) nor an ISO 8601 time with a time zone`);
  }
  if (from.getTime() > now.getTime()) throw new RangeError(`"${raw}" is in the future`);
  if (now.getTime() - from.getTime() > MAX_STATS_WINDOW_MS) throw new RangeError(`"${raw}" is more than 31 days back`);
  return from;
}

/** What of a delivery record tells when its job was enqueued (a structural subset of DeliveryRecord). */
export interface EnqueueFacts {
  readonly createdAt: string;
  readonly history: readonly { readonly outcome: string; readonly at: string }[];
}

/**
 * When the job that is being sent was put on the queue, for the time from enqueue to sent: the
 * earlier of the record's creation (the HTTP API writes it when it queues the job; the sender's
 * first claim otherwise) and the queue message's insertion time (a job a flow queued has no record
 * before the sender picks it up). After a replay, the replay is the new enqueue. A job scheduled
 * with notBefore counts from notBefore: waiting for its time is not delay.
 */
export function enqueueTime(
  record: EnqueueFacts,
  queuedAt: Date | undefined,
  notBefore: Date | undefined,
): Date | undefined {
  const replayed = [...record.history].reverse().find((h) => h.outcome === 'replayed');
  const base = Date.parse(replayed?.at ?? record.createdAt);
  const candidates = [Number.isNaN(base) ? undefined : base, queuedAt?.getTime()].filter(
    (t): t is number => t !== undefined && Number.isFinite(t),
  );
  if (candidates.length === 0) return undefined;
  const at = Math.min(...candidates);
  return new Date(notBefore !== undefined && notBefore.getTime() > at ? notBefore.getTime() : at);
}
