/**
 * Teams' limits as one budget for every instance (docs/scale.md).
 *
 * Per tenant, each instance that sends there keeps a row in the tenant's roster (budgetRoster.ts)
 * and reads the roster about every 1.2 s while it sends. From what it reads it takes its share
 * (budgetShare.ts) and enforces it with the in-process limiter. No storage work per message, none
 * while idle; a 429 is written to the roster so every instance pauses.
 *
 * The rules that keep the sum within the limit, without trusting clocks to agree:
 * - a view of the roster may be used for VIEW_MAX_AGE_MS after its read started; older, sending
 *   waits for a new read;
 * - an instance that joins a roster with other members waits VIEW_MAX_AGE_MS (+ a margin) after its
 *   row was written before it sends: by then every member has read the roster since, and counts it;
 * - an instance sends only while its own row is unexpired by its own clock, and others count a row
 *   for SKEW_MS longer than it says: a member that stops renewing is counted until it has stopped.
 * These compare durations on one clock, never one instance's time with another's, except the last,
 * which tolerates clocks SKEW_MS apart.
 */
import { randomUUID } from 'node:crypto';
import { conversationWindowsFor, tenantShare, tenantWindowsFor } from '../core/budgetShare';
import { createRateLimiter, type GrantedSlot, type ScopeWindows } from '../core/rateLimiter';
import type { Logger } from '../log';
import type { BudgetRoster } from '../store/budgetRoster';
import {
  applySnapshot,
  IDLE_MS,
  newTenantState,
  REFRESH_AFTER_MS,
  remoteWait,
  ROW_TTL_MS,
  staleMembers,
  VIEW_MAX_AGE_MS,
  type TenantState,
} from './budgetView';

export {
  CONVERSATION_DRAIN_MS,
  IDLE_MS,
  JOIN_WAIT_MS,
  REFRESH_AFTER_MS,
  ROW_TTL_MS,
  SKEW_MS,
  TENANT_DRAIN_MS,
  VIEW_MAX_AGE_MS,
} from './budgetView';

export interface SendBudget {
  /** Starts joining the tenant's roster (no wait); call before the claim so the two overlap. */
  prepare(tenantId: string): void;
  /** A local estimate of the wait for a slot; no I/O. */
  waitTime(conversationId: string, tenantId: string): number;
  /**
   * Takes a send slot (0), or says how many ms to wait. May wait for the roster (one read). A slot
   * granted is described in `slot`, for `settle`.
   */
  acquire(conversationId: string, tenantId: string, slot?: GrantedSlot): Promise<number>;
  /** Teams answered the request of that slot: it arrived by now (rateLimiter.ts `settle`). */
  settle(conversationId: string, tenantId: string, slot: GrantedSlot): void;
  /** Teams answered 429: pause the conversation, or the whole tenant, here and on every instance. */
  throttled(conversationId: string, tenantId: string, untilMs: number): Promise<void>;
  /** Leaves every roster (best effort) and stops the timers. */
  close(): Promise<void>;
  readonly instanceId: string;
}

export interface SendBudgetOptions {
  readonly roster: BudgetRoster;
  readonly ratePerSecond: number;
  readonly now?: () => number;
  readonly log?: Logger;
  readonly instanceId?: string;
}

/** Two sends in 2 s to the conversation cannot be its limit: a 429 then is the tenant's. */
const TENANT_THROTTLE_SIGN = { sends: 2, windowMs: 2_000 };

export function createSendBudget(options: SendBudgetOptions): SendBudget {
  const now = options.now ?? Date.now;
  const { roster, ratePerSecond, log } = options;
  const instanceId = options.instanceId ?? randomUUID();
  const tenants = new Map<string, TenantState>();

  const windowsFor = (tenantId: string): ScopeWindows => {
    const state = tenants.get(tenantId);
    const t = now();
    const counted = (scope: 'tenant' | 'conversation'): string[] => {
      const members =
        state?.members.filter((m) => m === instanceId || (state.countFrom.get(m)?.[scope] ?? 0) <= t) ?? [];
      return members.length === 0 ? [instanceId] : members;
    };
    return {
      tenant: tenantWindowsFor(tenantShare(ratePerSecond, counted('tenant'), instanceId)),
      conversation: conversationWindowsFor(counted('conversation').length),
    };
  };
  const limiter = createRateLimiter({ tenantWindows: tenantWindowsFor(ratePerSecond), windowsFor, now });

  function stateOf(tenantId: string): TenantState {
    let state = tenants.get(tenantId);
    if (state === undefined) {
      state = newTenantState(now());
      tenants.set(tenantId, state);
    }
    return state;
  }

  /**
   * Writes our row. A row that had lapsed (or never was) makes this a join: the wait counts from
   * when the write completed, because only reads that start after it are sure to see the row.
   */
  async function writeRow(tenantId: string, state: TenantState): Promise<void> {
    const started = now();
    const rejoining = state.rowExpiresAt <= started;
    await roster.renew(tenantId, instanceId, started + ROW_TTL_MS);
    state.rowExpiresAt = started + ROW_TTL_MS;
    if (rejoining) state.joinedAt = now();
  }

  async function readView(tenantId: string, state: TenantState): Promise<void> {
    const readAt = now();
    const snapshot = await roster.read(tenantId);
    applySnapshot(state, snapshot, readAt, instanceId);
    for (const stale of staleMembers(snapshot, instanceId, readAt))
      void roster.remove(tenantId, stale).catch(() => undefined);
  }

  /** Renew our row if due (a lapsed row is a join), then read the roster. One at a time per tenant. */
  function refresh(tenantId: string, state: TenantState): Promise<void> {
    state.refreshing ??= (async () => {
      try {
        if (state.joining !== undefined) {
          await state.joining;
          state.joining = undefined;
        } else if (state.rowExpiresAt - now() < ROW_TTL_MS / 2) {
          await writeRow(tenantId, state);
        }
        await readView(tenantId, state);
      } finally {
        state.refreshing = undefined;
      }
    })();
    return state.refreshing;
  }

  /**
   * Keeps the row and the view of every tenant in use fresh, even while every job here is waiting
   * (a joiner's jobs sleep through its join: its row must not lapse meanwhile), and leaves tenants
   * not used for IDLE_MS: no storage work while idle.
   */
  const keeper = setInterval(() => {
    const t = now();
    for (const [tenantId, state] of tenants) {
      if (t - state.lastUsed >= IDLE_MS && state.refreshing === undefined) {
        tenants.delete(tenantId);
        if (state.rowExpiresAt > t) void roster.remove(tenantId, instanceId).catch(() => undefined);
        continue;
      }
      if (
        state.viewReadAt !== 0 &&
        (t - state.viewReadAt >= REFRESH_AFTER_MS || state.rowExpiresAt - t < ROW_TTL_MS / 2)
      ) {
        void refresh(tenantId, state).catch((err: unknown) =>
          log?.warn('budget.refreshFailed', { tenantId, error: err }),
        );
      }
    }
  }, REFRESH_AFTER_MS / 3);
  keeper.unref();

  return {
    instanceId,

    prepare(tenantId) {
      const state = stateOf(tenantId);
      state.lastUsed = now();
      if (state.rowExpiresAt <= now() && state.joining === undefined && state.refreshing === undefined) {
        const joining = writeRow(tenantId, state);
        state.joining = joining;
        // A failed write is retried by the next refresh; nobody waits on this promise but refresh.
        joining.catch(() => {
          if (state.joining === joining) state.joining = undefined;
        });
      }
    },

    waitTime(conversationId, tenantId) {
      const state = tenants.get(tenantId);
      const t = now();
      const joining = state === undefined ? 0 : Math.max(0, state.mayStartAt - t);
      return Math.max(
        joining,
        state === undefined ? 0 : remoteWait(state, conversationId, t),
        limiter.waitTime(conversationId, tenantId),
      );
    },

    async acquire(conversationId, tenantId, slot) {
      const state = stateOf(tenantId);
      state.lastUsed = now();
      const age = now() - state.viewReadAt;
      const rowLeft = state.rowExpiresAt - now();
      if (state.viewReadAt === 0 || age >= VIEW_MAX_AGE_MS || rowLeft < ROW_TTL_MS / 4 || state.joining !== undefined) {
        await refresh(tenantId, state);
      } else if (age >= REFRESH_AFTER_MS || rowLeft < ROW_TTL_MS / 2) {
        void refresh(tenantId, state).catch((err: unknown) =>
          log?.warn('budget.refreshFailed', { tenantId, error: err }),
        );
      }
      const t = now();
      const wait = Math.max(state.mayStartAt - t, remoteWait(state, conversationId, t));
      if (wait > 0) return wait;
      return limiter.tryAcquire(conversationId, tenantId, slot);
    },

    settle(conversationId, tenantId, slot) {
      if (slot.grantedAt === undefined) return;
      limiter.settle(conversationId, tenantId, slot.grantedAt);
      // Once per slot: a second answer for it must not settle another send of the same millisecond.
      delete slot.grantedAt;
    },

    async throttled(conversationId, tenantId, untilMs) {
      const tenantWide =
        limiter.recentSends(conversationId, TENANT_THROTTLE_SIGN.windowMs) < TENANT_THROTTLE_SIGN.sends;
      limiter.pause(tenantWide ? { tenantId } : { conversationId }, untilMs);
      log?.warn('budget.throttled', {
        tenantId,
        conversationId,
        scope: tenantWide ? 'tenant' : 'conversation',
        pauseMs: untilMs - now(),
      });
      try {
        await roster.pause(tenantId, tenantWide ? {} : { conversationId }, untilMs);
      } catch (err) {
        // The local pause holds; the other instances learn of it from their own 429s.
        log?.warn('budget.pauseNotShared', { tenantId, error: err });
      }
    },

    async close() {
      clearInterval(keeper);
      const t = now();
      await Promise.all(
        [...tenants]
          .filter(([, s]) => s.rowExpiresAt > t)
          .map(([tenantId]) => roster.remove(tenantId, instanceId).catch(() => undefined)),
      );
      tenants.clear();
    },
  };
}
