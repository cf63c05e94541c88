/** The arithmetic of a broadcast's pace: share of the tenant's cap, and deliveries per second. */

/** (n - 1) deliveries per span, over the cap; middle 80 % likewise. Times ascending. */
export function shareOfCap(
  times: readonly number[],
  capPerSecond: number,
): { spanMs: number; share: number; steadyShare: number; steadyRate: number } {
  const n = times.length;
  if (n < 2) return { spanMs: 0, share: NaN, steadyShare: NaN, steadyRate: NaN };
  const spanMs = times[n - 1]! - times[0]!;
  const share = spanMs > 0 ? (n - 1) / (spanMs / 1000) / capPerSecond : NaN;
  const lo = Math.floor(n * 0.1);
  const hi = Math.max(lo + 1, Math.ceil(n * 0.9) - 1);
  const steadyMs = times[hi]! - times[lo]!;
  const steadyRate = steadyMs > 0 ? (hi - lo) / (steadyMs / 1000) : NaN;
  return { spanMs, share, steadyShare: steadyRate / capPerSecond, steadyRate };
}

/** Counts of `times` in each 1-second bucket from `from` (at most `maxSeconds` buckets). */
export function perSecond(times: readonly number[], from: number, maxSeconds = 300): number[] {
  const buckets: number[] = [];
  for (const t of times) {
    const k = Math.floor((t - from) / 1000);
    if (k < 0 || k >= maxSeconds) continue;
    while (buckets.length <= k) buckets.push(0);
    buckets[k]! += 1;
  }
  return buckets;
}
