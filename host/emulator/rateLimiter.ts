/**
 * Sliding-window rate limits shaped like Teams' (bot-connector.md §4).
 *
 * Each key keeps a log of accepted operations; a request is allowed when every window has room.
 * Only accepted requests are logged, so a client that honours Retry-After gets through on its next try.
 */

export interface RateWindow {
  readonly windowMs: number;
  readonly max: number;
}

/** "Per bot per thread" limit for send / create conversation (§4 first table). */
export const TEAMS_PER_BOT_PER_THREAD: readonly RateWindow[] = Object.freeze([
  { windowMs: 1_000, max: 7 },
  { windowMs: 2_000, max: 8 },
  { windowMs: 30_000, max: 60 },
  { windowMs: 3_600_000, max: 1_800 },
]);

/** "Per thread limit for all bots" (§4 second table). */
export const TEAMS_PER_THREAD_ALL_BOTS: readonly RateWindow[] = Object.freeze([
  { windowMs: 1_000, max: 14 },
  { windowMs: 2_000, max: 16 },
]);

/** "Global per app per tenant: 50 RPS" (§4; older docs say 30). */
export const TEAMS_PER_APP_PER_TENANT_RPS = 50;

export type RateDecision =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number; readonly window: RateWindow };

export class SlidingWindowLimiter {
  private readonly windows: readonly RateWindow[];
  private readonly longestMs: number;
  private readonly logs = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(windows: readonly RateWindow[], now: () => number = Date.now) {
    this.windows = windows;
    this.longestMs = Math.max(0, ...windows.map((w) => w.windowMs));
    this.now = now;
  }

  /** Would one more operation on `key` be allowed now? Does not record it. */
  check(key: string): RateDecision {
    const now = this.now();
    const log = this.prune(key, now);
    let worst: { retryAfterMs: number; window: RateWindow } | undefined;
    for (const window of this.windows) {
      const since = now - window.windowMs;
      // Entries inside this window: timestamps are ascending, so find the first inside.
      let first = log.length;
      for (let i = log.length - 1; i >= 0; i -= 1) {
        if ((log[i] ?? 0) > since) first = i;
        else break;
      }
      const inWindow = log.length - first;
      if (inWindow >= window.max) {
        // The window has room again once the entry that makes it full slides out.
        const blocking = log[first + (inWindow - window.max)] ?? now;
        const retryAfterMs = Math.max(1, blocking + window.windowMs - now);
        if (!worst || retryAfterMs > worst.retryAfterMs) worst = { retryAfterMs, window };
      }
    }
    return worst ? { allowed: false, ...worst } : { allowed: true };
  }

  record(key: string): void {
    const now = this.now();
    const log = this.prune(key, now);
    log.push(now);
  }

  /** Number of logged operations for `key` within the last `windowMs`. */
  count(key: string, windowMs: number): number {
    const now = this.now();
    return (this.logs.get(key) ?? []).filter((t) => t > now - windowMs).length;
  }

  reset(): void {
    this.logs.clear();
  }

  private prune(key: string, now: number): number[] {
    let log = this.logs.get(key);
    if (!log) {
      log = [];
      this.logs.set(key, log);
    }
    let drop = 0;
    while (drop < log.length && (log[drop] ?? 0) <= now - this.longestMs) drop += 1;
    if (drop > 0) log.splice(0, drop);
    return log;
  }
}
