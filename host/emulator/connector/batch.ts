/**
 * Teams' batch operations in the Connector stub (`v3/batch/conversation/...`, see src/core/batch.ts
 * for the sources): what each operation is, how it progresses (a few entries per state poll), which
 * entries fail or are throttled, the state and failed-entries answers in each shape the SDKs
 * disagree on, paging with a continuation token, and cancel. The requests themselves are handled by
 * ./batchRequests.ts.
 */
import { randomUUID } from 'node:crypto';
import { TEAMS_ERRORS, mulberry32 } from '../faults';
import { SlidingWindowLimiter } from '../rateLimiter';
import type { Activity } from '../types';
import type { ConnectorRequestRecord } from './recorder';
import type { BatchRouteKind } from './route';
import { type BatchSettings, toBatchSettings } from './settings';

export type { BatchSettings, BatchShapes } from './settings';
export { toBatchSettings } from './settings';

export type BatchEntryStatus = 'pending' | 'sent' | 'failed' | 'throttled';

export interface BatchEntry {
  /** As the request named it: a user (`29:` or Entra object id) or a channel id. */
  readonly id: string;
  status: BatchEntryStatus;
  /** A TEAMS_ERRORS name (or any code) when failed. */
  error?: string;
  /** Where it was delivered. */
  conversationId?: string;
  throttledOnce?: boolean;
}

export type BatchOperationState = 'Ongoing' | 'Completed' | 'Failed' | 'Cancelled';

export interface BatchOperation {
  readonly id: string;
  readonly kind: BatchRouteKind;
  readonly appId?: string;
  readonly tenantId: string;
  readonly activity: Activity;
  readonly entries: BatchEntry[];
  state: BatchOperationState;
  polls: number;
  readonly createdAt: number;
  /** The POST that started it: deliveries are recorded against it. */
  readonly record: ConnectorRequestRecord;
}

/** Delivers one entry; returns the TEAMS_ERRORS name it failed with, or undefined when delivered. */
export type DeliverEntry = (operation: BatchOperation, entry: BatchEntry) => string | undefined;

const failStatus = (error: string | undefined): number =>
  (TEAMS_ERRORS as Record<string, { status: number } | undefined>)[error ?? '']?.status ?? 400;

export class BatchBook {
  settings: BatchSettings;
  readonly #operations = new Map<string, BatchOperation>();
  readonly #now: () => number;
  #random: () => number;
  #limiter: SlidingWindowLimiter | undefined;

  constructor(settings: BatchSettings, now: () => number) {
    this.settings = settings;
    this.#now = now;
    this.#random = mulberry32(settings.seed);
    this.#limiter = settings.rateLimit === false ? undefined : new SlidingWindowLimiter(settings.rateLimit, now);
  }

  configure(patch: Partial<BatchSettings>): void {
    this.settings = toBatchSettings(patch, this.settings);
    if (patch.seed !== undefined) this.#random = mulberry32(this.settings.seed);
    if (patch.rateLimit !== undefined) this.reset(false);
  }

  /** Forgets every operation (and the rate-limit history). */
  reset(operations = true): void {
    if (operations) this.#operations.clear();
    const { rateLimit } = this.settings;
    this.#limiter = rateLimit === false ? undefined : new SlidingWindowLimiter(rateLimit, this.#now);
  }

  list(): BatchOperation[] {
    return [...this.#operations.values()];
  }

  /** An operation of this bot (another bot's is as unknown as a made-up id). */
  find(id: string, appId: string | undefined): BatchOperation | undefined {
    const op = this.#operations.get(id);
    return op !== undefined && (op.appId === undefined || appId === undefined || op.appId === appId) ? op : undefined;
  }

  start(
    fields: Omit<BatchOperation, 'id' | 'state' | 'polls' | 'createdAt' | 'entries'>,
    ids: string[],
  ): BatchOperation {
    const op: BatchOperation = {
      ...fields,
      id: `op-${randomUUID()}`,
      entries: ids.map((id) => ({ id, status: 'pending' })),
      state: 'Ongoing',
      polls: 0,
      createdAt: this.#now(),
    };
    this.#operations.set(op.id, op);
    this.#settle(op);
    return op;
  }

  /** One more request of this bot in this tenant, or the seconds to wait (Retry-After). */
  admit(appId: string | undefined, tenantId: string): number | undefined {
    if (this.#limiter === undefined) return undefined;
    const key = `${appId ?? 'anonymous'}|${tenantId}`;
    const decision = this.#limiter.check(key);
    if (!decision.allowed) return Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    this.#limiter.record(key);
    return undefined;
  }

  /** A state poll: the next few pending (or earlier throttled) entries are processed. True when this poll ended it. */
  advance(op: BatchOperation, deliver: DeliverEntry): boolean {
    op.polls += 1;
    if (op.state !== 'Ongoing') return false;
    const { throttleMarker, failMarker, failureRate } = this.settings;
    let budget = this.settings.entriesPerPoll;
    for (const entry of op.entries) {
      if (budget <= 0) break;
      if (entry.status !== 'pending' && entry.status !== 'throttled') continue;
      budget -= 1;
      const id = entry.id.toLowerCase();
      if (throttleMarker !== '' && id.includes(throttleMarker.toLowerCase()) && entry.throttledOnce !== true) {
        entry.status = 'throttled';
        entry.throttledOnce = true;
        continue;
      }
      const marked =
        (failMarker !== '' && id.includes(failMarker.toLowerCase())) ||
        (failureRate > 0 && this.#random() < failureRate);
      const error = marked ? 'BotNotInConversationRoster' : deliver(op, entry);
      entry.status = error === undefined ? 'sent' : 'failed';
      if (error !== undefined) entry.error = error;
    }
    this.#settle(op);
    return op.state !== 'Ongoing';
  }

  cancel(op: BatchOperation): void {
    if (op.state === 'Ongoing') op.state = 'Cancelled';
  }

  /** `{state, statusMap|stateMap, totalEntriesCount, retryAfter?}` in the configured shape. */
  stateBody(op: BatchOperation): Record<string, unknown> {
    const { shapes, retryAfterMs } = this.settings;
    const count = (status: BatchEntryStatus): number => op.entries.filter((e) => e.status === status).length;
    let map: Record<string, number>;
    if (shapes.statusMap === 'named') {
      map = {
        success: count('sent'),
        failed: count('failed'),
        throttled: count('throttled'),
        pending: count('pending'),
      };
    } else {
      map = {};
      const add = (key: string, n: number): void => {
        if (n > 0) map[key] = (map[key] ?? 0) + n;
      };
      add('201', count('sent'));
      add('429', count('throttled'));
      for (const e of op.entries) if (e.status === 'failed') add(String(failStatus(e.error)), 1);
    }
    return {
      state: op.state,
      [shapes.statusMapKey]: map,
      totalEntriesCount: op.entries.length,
      ...(op.state === 'Ongoing' && retryAfterMs !== null
        ? { retryAfter: new Date(this.#now() + retryAfterMs).toISOString() }
        : {}),
    };
  }

  /** One page of failed entries from the token's offset; undefined for a token this operation did not issue. */
  failedPage(op: BatchOperation, token: string | undefined): Record<string, unknown> | undefined {
    const failed = op.entries.filter((e) => e.status === 'failed');
    let offset = 0;
    if (token !== undefined) {
      const [opId, at] = Buffer.from(token, 'base64url').toString('utf8').split('|');
      offset = Number(at);
      if (opId !== op.id || !Number.isSafeInteger(offset) || offset < 0 || offset > failed.length) return undefined;
    }
    const end = offset + Math.max(1, this.settings.pageSize);
    const next = end < failed.length ? Buffer.from(`${op.id}|${end}`).toString('base64url') : undefined;
    return {
      [this.settings.shapes.failedEntriesKey]: failed.slice(offset, end).map((e) => ({ id: e.id, error: e.error })),
      ...(next === undefined ? {} : { continuationToken: next }),
    };
  }

  /** The 201 body: `{operationId}` or the bare id. */
  sendBody(op: BatchOperation): unknown {
    return this.settings.shapes.sendResponse === 'string' ? op.id : { operationId: op.id };
  }

  /** Ends an operation with nothing left to process: Failed when every entry failed, else Completed. */
  #settle(op: BatchOperation): void {
    if (op.state !== 'Ongoing') return;
    if (op.entries.some((e) => e.status === 'pending' || e.status === 'throttled')) return;
    op.state = op.entries.length > 0 && op.entries.every((e) => e.status === 'failed') ? 'Failed' : 'Completed';
  }
}
