/**
 * How one instance's part of Teams' limits follows from the roster of instances sending to a
 * tenant (docs/scale.md). Pure.
 *
 * Every instance that sends to a tenant has a row in that tenant's roster. Each reads the roster and
 * allows itself a share of the tenant rate and of each per-conversation window, so that the shares
 * of every instance sending at once add up to no more than Teams allows:
 *
 * - tenant: floor(R / n) per second, and one more for the first R mod n instances (by id) when that
 *   is provably safe (R >= n(n+1): then an instance that still counts a member that left has a share
 *   at least one smaller, which covers any extra another instance took; or n > R: one each for the
 *   first R);
 * - conversation: floor(L / n) per window, at least 1 (exact while n <= 7; docs/scale.md says what
 *   happens beyond).
 *
 * An instance's view may count more instances than are sending (a member that left or died stays
 * counted until its row expires): that only lowers its share. It never counts fewer, because a
 * joining instance waits until every member has read the roster since it joined.
 */
import { CONVERSATION_WINDOWS, type Window } from './rateLimiter';

export { tenantWindows as tenantWindowsFor } from './rateLimiter';

/** Sends per second this instance may make to the tenant. */
export function tenantShare(ratePerSecond: number, members: readonly string[], self: string): number {
  const n = Math.max(1, members.length);
  const base = Math.floor(ratePerSecond / n);
  // More instances than sends per second: the first R (by id) send one each. A stale view only
  // pushes an instance's own rank up, so no more than R instances ever hold one.
  const extrasAreSafe = base === 0 || ratePerSecond >= n * (n + 1);
  if (!extrasAreSafe) return base;
  const rank = [...members].sort().indexOf(self);
  return base + (rank >= 0 && rank < ratePerSecond % n ? 1 : 0);
}

/** Each per-conversation window divided among the n instances sending to the tenant. */
export function conversationWindowsFor(memberCount: number): readonly Window[] {
  const n = Math.max(1, memberCount);
  return CONVERSATION_WINDOWS.map(({ limit, windowMs }) => ({ limit: Math.max(1, Math.floor(limit / n)), windowMs }));
}
