/**
 * Stay under Teams' limits instead of discovering them (bot-connector.md §4):
 * - per bot per conversation: 7 per 1 s, 8 per 2 s, 60 per 30 s, 1800 per hour;
 * - per bot per tenant: 50 per second (configurable; older docs say 30).
 * Sliding windows over exact send times; a 429 pauses its scope for the Retry-After.
 *
 * This limiter counts one process's sends. With several instances, each gets windows that are its
 * share of Teams' limits (`windowsFor`, from the roster in src/outbound/sendBudget.ts and the math
 * in budgetShare.ts), so the sum over instances stays within them. Pure apart from the clock.
 */

export interface Window {
  readonly limit: number;
  readonly windowMs: number;
  /**
   * Added to the window for arrival jitter (default: the scope's safety margin). 0 for windows of
   * our own that only smooth sending (Teams does not count them).
   */
  readonly marginMs?: number;
}

export const CONVERSATION_WINDOWS: readonly Window[] = Object.freeze([
  { limit: 7, windowMs: 1_000 },
  { limit: 8, windowMs: 2_000 },
  { limit: 60, windowMs: 30_000 },
  { limit: 1800, windowMs: 3_600_000 },
]);

/**
 * A tenant's windows for a rate: one second, as Teams counts, and a tenth of it for smoothness. A
 * burst of a whole second's sends that arrives late (CPU, network) can land in the next second Teams
 * counts, together with other instances' sends; sends spread over the second cannot.
 */
export function tenantWindows(perSecond: number): readonly Window[] {
  return [
    { limit: perSecond, windowMs: 1_000 },
    { limit: Math.max(1, Math.ceil(perSecond / 10)), windowMs: 100, marginMs: 0 },
  ];
}

interface Scope {
  /** Send times (when the slot was granted), oldest first, kept for the longest window. */
  times: number[];
  /** For each send time, when the request was answered (Infinity until then): it had arrived by then. */
  answered: number[];
  pausedUntil: number;
  lastUsed: number;
}

/** Filled in by `tryAcquire` when it grants a slot: the grant to name in `settle`. */
export interface GrantedSlot {
  grantedAt?: number;
}

export interface ScopeWindows {
  readonly tenant: readonly Window[];
  readonly conversation: readonly Window[];
}

export interface RateLimiterOptions {
  readonly conversationWindows?: readonly Window[];
  readonly tenantWindows: readonly Window[];
  /** This instance's windows for a tenant (its share); default: the two options above. */
  readonly windowsFor?: (tenantId: string) => ScopeWindows;
  readonly now?: () => number;
  /** Idle scopes are forgotten after this long; default: the longest window. */
  readonly idleMs?: number;
  /** Upper bound on remembered scopes (memory bound); default 50,000. */
  readonly maxScopes?: number;
}

export interface RateLimiter {
  /**
   * Reserves a send to `conversationId` in `tenantId` if both scopes allow it now (returns 0 and
   * records it), else returns how many ms to wait before asking again (records nothing).
   */
  tryAcquire(conversationId: string, tenantId: string, slot?: GrantedSlot): number;
  /**
   * The request of the slot granted at `grantedAt` was answered now, so it reached Teams by now:
   * from here on it counts from the earlier of now and its grant plus the safety margin.
   */
  settle(conversationId: string, tenantId: string, grantedAt: number): void;
  /** How long `tryAcquire` would ask to wait right now; records nothing. */
  waitTime(conversationId: string, tenantId: string): number;
  /** A 429: stop sending to this scope until `untilMs`. */
  pause(scope: { conversationId?: string; tenantId?: string }, untilMs: number): void;
  /** Sends this process made to the conversation in the last `windowMs`. */
  recentSends(conversationId: string, windowMs: number): number;
  /** Remembered scopes (for tests and diagnostics). */
  readonly size: number;
}

/**
 * Teams counts requests when they arrive, we count them when they leave: jitter on the way can put
 * one more request into Teams' window than into ours. Each window is treated as this much longer:
 * more for a conversation (7 per second leaves no slack, and a 429 there stalls one chat) than for
 * a tenant (50 per second, where the margin costs throughput). A request answered sooner than its
 * margin needs no more of it: it arrived before its answer (`settle`).
 */
// Measured (npm run bench, broadcast): slot-to-arrival p99 55-67 ms on a busy 2-core machine.
export const WINDOW_SAFETY_MS = 75;
export const CONVERSATION_WINDOW_SAFETY_MS = 150;

function waitFor(scope: Scope | undefined, windows: readonly Window[], now: number, safetyMs: number): number {
  // A share of nothing (more instances than sends allowed): ask again after a window.
  const none = windows.find((w) => w.limit <= 0);
  if (none !== undefined) return none.windowMs;
  if (scope === undefined) return 0;
  let wait = Math.max(0, scope.pausedUntil - now);
  const { times, answered } = scope;
  for (const { limit, windowMs, marginMs } of windows) {
    const margin = marginMs ?? safetyMs;
    // A send counts until its window has passed since it surely arrived: its grant plus the margin,
    // or its answer if that came first. Times are sorted, so the scan stops at the first send that
    // counts no more even with the whole margin.
    // Most calls end at this count, without allocating: fewer sends in the window than the limit.
    let counted = 0;
    let first = times.length;
    // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator: equivalent, the scan only bounds the work; sends before it count no more
    for (let i = times.length - 1; i >= 0 && times[i]! + margin + windowMs > now; i -= 1) {
      first = i;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,MethodExpression: equivalent, a prefilter; the ends below decide
      if (Math.min(times[i]! + margin, answered[i]!) + windowMs > now) counted += 1;
    }
    if (counted < limit) continue;
    // At the limit: wait until the limit-th latest end has passed (ends already past change nothing;
    // there are at least `counted` of them).
    const ends: number[] = [];
    for (let i = first; i < times.length; i += 1) ends.push(Math.min(times[i]! + margin, answered[i]!) + windowMs);
    ends.sort((a, b) => a - b);
    wait = Math.max(wait, ends[ends.length - limit]! - now);
  }
  return wait;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const conversationWindows = options.conversationWindows ?? CONVERSATION_WINDOWS;
  const longest = (windows: readonly Window[]): number => Math.max(...windows.map((w) => w.windowMs));
  const idleMs = options.idleMs ?? Math.max(longest(conversationWindows), longest(options.tenantWindows));
  const windowsFor =
    options.windowsFor ?? ((): ScopeWindows => ({ tenant: options.tenantWindows, conversation: conversationWindows }));
  const maxScopes = options.maxScopes ?? 50_000;
  const conversations = new Map<string, Scope>();
  const tenants = new Map<string, Scope>();
  let lastSweep = now();

  function sweep(t: number): void {
    if (t - lastSweep < 60_000 && conversations.size + tenants.size <= maxScopes) return;
    lastSweep = t;
    for (const map of [conversations, tenants]) {
      for (const [key, scope] of map) if (t - scope.lastUsed > idleMs && scope.pausedUntil <= t) map.delete(key);
    }
    // Still too many: forget the least recently used (Map iteration order is insertion order).
    for (const map of [conversations, tenants]) {
      while (conversations.size + tenants.size > maxScopes && map.size > 0) map.delete(map.keys().next().value!);
    }
  }

  function record(map: Map<string, Scope>, key: string, t: number, windows: readonly Window[]): void {
    let scope = map.get(key);
    if (scope === undefined) {
      scope = { times: [], answered: [], pausedUntil: 0, lastUsed: t };
      map.set(key, scope);
    }
    scope.times.push(t);
    scope.answered.push(Infinity);
    scope.lastUsed = t;
    const keepMs = longest(windows) + CONVERSATION_WINDOW_SAFETY_MS;
    // Twice the largest limit: an older send answered late can count longer than newer ones.
    const maxKeep = 2 * Math.max(...windows.map((w) => w.limit));
    let drop = 0;
    while (drop < scope.times.length && (scope.times[drop]! <= t - keepMs || scope.times.length - drop > maxKeep))
      drop += 1;
    if (drop > 0) {
      scope.times.splice(0, drop);
      scope.answered.splice(0, drop);
    }
    // Refresh recency for the LRU bound.
    map.delete(key);
    map.set(key, scope);
  }

  return {
    get size() {
      return conversations.size + tenants.size;
    },
    waitTime(conversationId, tenantId) {
      const t = now();
      const windows = windowsFor(tenantId);
      return Math.max(
        waitFor(conversations.get(conversationId), windows.conversation, t, CONVERSATION_WINDOW_SAFETY_MS),
        waitFor(tenants.get(tenantId), windows.tenant, t, WINDOW_SAFETY_MS),
      );
    },
    tryAcquire(conversationId, tenantId, slot) {
      const t = now();
      sweep(t);
      const wait = this.waitTime(conversationId, tenantId);
      if (wait > 0) return wait;
      // Keep as many times as the full (unshared) windows need: a share may grow later.
      record(conversations, conversationId, t, conversationWindows);
      record(tenants, tenantId, t, options.tenantWindows);
      if (slot !== undefined) slot.grantedAt = t;
      return 0;
    },
    settle(conversationId, tenantId, grantedAt) {
      const t = now();
      for (const scope of [conversations.get(conversationId), tenants.get(tenantId)]) {
        if (scope === undefined) continue;
        // Sends granted in the same millisecond are alike: any one of them not answered yet.
        for (let i = scope.times.length - 1; i >= 0 && scope.times[i]! >= grantedAt; i -= 1) {
          if (scope.times[i] === grantedAt && scope.answered[i] === Infinity) {
            scope.answered[i] = Math.max(t, grantedAt);
            break;
          }
        }
      }
    },
    recentSends(conversationId, windowMs) {
      const times = conversations.get(conversationId)?.times ?? [];
      const since = now() - windowMs;
      let count = 0;
      for (let i = times.length - 1; i >= 0 && times[i]! > since; i -= 1) count += 1;
      return count;
    },
    pause(scope, untilMs) {
      const t = now();
      for (const [map, key] of [
        [conversations, scope.conversationId],
        [tenants, scope.tenantId],
      ] as const) {
        if (key === undefined) continue;
        const existing = map.get(key) ?? { times: [], answered: [], pausedUntil: 0, lastUsed: t };
        existing.pausedUntil = Math.max(existing.pausedUntil, untilMs);
        existing.lastUsed = t;
        map.set(key, existing);
      }
    },
  };
}
