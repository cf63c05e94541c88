/**
 * The send budget's view of one tenant's roster (sendBudget.ts explains the rules): the timings,
 * the state kept per tenant, and the pure steps that turn a roster read into who counts when.
 */
import type { RosterSnapshot } from '../store/budgetRoster';

/** Read the roster again when the view is this old (in the background). */
export const REFRESH_AFTER_MS = 1_200;
/**
 * Never send on a view older than this (from when its read started). It is also how long a joining
 * instance waits while others send: shorter joins, more roster reads (1.3 per second per instance).
 */
export const VIEW_MAX_AGE_MS = 1_500;
/**
 * A member that gives up part of its share must have sent within its new share for a whole window
 * before the newcomer sends: its sends of the last second still count in Teams' window. Tenant:
 * 1 s plus its margin; conversations: the 2 s window plus its margin.
 */
export const TENANT_DRAIN_MS = 1_100;
export const CONVERSATION_DRAIN_MS = 2_200;
/**
 * A joining instance waits this long (from its row write) while others send: every member has read
 * the roster since (VIEW_MAX_AGE_MS) and then drained to its smaller share.
 */
export const JOIN_WAIT_MS = VIEW_MAX_AGE_MS + CONVERSATION_DRAIN_MS + 250;
/** How long a row says its instance is there; renewed when half of it is left. */
export const ROW_TTL_MS = 4_000;
/** Clocks may differ by this much: others count a row this much longer than it says. */
export const SKEW_MS = 3_000;
/** A tenant the instance has not sent to for this long is left (its row removed). */
export const IDLE_MS = 10_000;
/** Rows expired this long ago are removed by whoever reads them (a few per read). */
export const STALE_ROW_MS = 60_000;

export interface TenantState {
  /** Members in the last view, sorted, this instance included. */
  members: readonly string[];
  /**
   * When each other member starts counting (local clock), for the tenant and for conversations. A
   * member first seen in a read that followed one without it wrote its row after that earlier read
   * started, so it sends no sooner than JOIN_WAIT_MS after it: this instance keeps its larger share
   * until a drain's length before that.
   */
  countFrom: Map<string, { tenant: number; conversation: number }>;
  /** Local time the last roster read started (0: none yet). */
  viewReadAt: number;
  remote: RosterSnapshot | undefined;
  /** Our row: local time it expires (0: not written). */
  rowExpiresAt: number;
  /** No sending before this (joining). */
  mayStartAt: number;
  /** Local time our last row write that (re)joined the roster completed. */
  joinedAt: number | undefined;
  lastUsed: number;
  /** The roster read (and row write) under way. */
  refreshing: Promise<void> | undefined;
  joining: Promise<void> | undefined;
}

export function newTenantState(now: number): TenantState {
  return {
    members: [],
    countFrom: new Map(),
    viewReadAt: 0,
    remote: undefined,
    rowExpiresAt: 0,
    mayStartAt: 0,
    joinedAt: undefined,
    lastUsed: now,
    refreshing: undefined,
    joining: undefined,
  };
}

/**
 * Takes a roster read into the tenant's state: who counts from when, and, on the first read after a
 * join, when this instance may start. Pure: the read and the stale-row removal are the caller's.
 */
export function applySnapshot(state: TenantState, snapshot: RosterSnapshot, readAt: number, instanceId: string): void {
  const live = snapshot.members
    .filter((m) => m.instanceId !== instanceId && m.expiresAt + SKEW_MS > readAt)
    .map((m) => m.instanceId);
  const previousReadAt = state.viewReadAt;
  const countFrom = new Map<string, { tenant: number; conversation: number }>();
  for (const m of live) {
    // Known before: counted as it was. New: it wrote its row after the previous read started.
    const known = state.members.includes(m) ? state.countFrom.get(m) : undefined;
    const starts = previousReadAt + JOIN_WAIT_MS;
    countFrom.set(
      m,
      known ??
        (previousReadAt === 0
          ? { tenant: readAt, conversation: readAt }
          : { tenant: starts - TENANT_DRAIN_MS, conversation: starts - CONVERSATION_DRAIN_MS }),
    );
  }
  state.countFrom = countFrom;
  state.members = [...live, instanceId].sort();
  state.viewReadAt = readAt;
  state.remote = snapshot;
  // The first read after a join: alone, send at once; with others, wait until they all count us.
  if (state.joinedAt !== undefined) {
    if (live.length > 0) state.mayStartAt = Math.max(state.mayStartAt, state.joinedAt + JOIN_WAIT_MS);
    state.joinedAt = undefined;
  }
}

/** Rows expired STALE_ROW_MS ago or more, a few per read: whoever reads them removes them. */
export function staleMembers(snapshot: RosterSnapshot, instanceId: string, readAt: number): string[] {
  return snapshot.members
    .filter((m) => m.instanceId !== instanceId && m.expiresAt + STALE_ROW_MS < readAt)
    .slice(0, 5)
    .map((m) => m.instanceId);
}

/**
 * A pause another instance wrote, as it wrote it. A reader whose clock is behind resumes that much
 * early; the worst that does is draw another 429, which pauses again (the shares, not the pauses,
 * are what keep the limit).
 */
export function remoteWait(state: TenantState, conversationId: string, t: number): number {
  const remote = state.remote;
  if (remote === undefined) return 0;
  const until = Math.max(remote.tenantPausedUntil ?? 0, remote.conversationPauses.get(conversationId) ?? 0);
  return Math.max(0, until - t);
}
