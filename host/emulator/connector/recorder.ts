/**
 * What the Connector stub saw: every request (method, path, decoded ids, headers, body, token claims,
 * answer, fault, throttling) and every message that reached a conversation, with counters, a log
 * line per delivery, and waits for a request or a delivery to come.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { JWTPayload } from 'jose';
import type { Activity } from '../types';
import type { ConnectorOperation } from './route';
import type { ThrottleScope } from './rateLimits';

export type RequestOutcome = 'pending' | 'responded' | 'dropped' | 'droppedAfterAccept';

export interface ConnectorRequestRecord {
  readonly seq: number;
  readonly time: number;
  readonly method: string;
  /** Raw request target, query included. */
  readonly url: string;
  /** Raw (still percent-encoded) path. */
  readonly path: string;
  /** Path before `/v3/`: `/`, `/amer/`, `/amer/<tenantId>/` ... */
  readonly servicePrefix: string;
  /** `origin + servicePrefix`: the serviceUrl the client used. */
  readonly serviceUrl: string;
  readonly operation: ConnectorOperation;
  /** Percent-decoded conversation id. */
  readonly conversationId?: string;
  /** Percent-decoded activity id (reply / update / delete). */
  readonly activityId?: string;
  readonly memberId?: string;
  /** A batch operation's id (batch.ts): the one a POST started, or the one in the path. */
  operationId?: string;
  readonly headers: IncomingHttpHeaders;
  readonly authorization?: string;
  /** Parsed JSON body (the raw text if it was not JSON; undefined if empty). */
  body: unknown;
  /** Claims of the verified bearer token. */
  tokenClaims?: JWTPayload;
  appId?: string;
  tenantId?: string;
  /** HTTP status sent; null when the connection was dropped instead. */
  status: number | null;
  outcome: RequestOutcome;
  /** The message reached the conversation (also true for dropAfterAccept). */
  delivered: boolean;
  /** Activity id assigned (send/reply/create with activity). */
  assignedActivityId?: string;
  /** Conversation id created (create conversation). */
  createdConversationId?: string;
  response?: unknown;
  responseHeaders?: Record<string, string>;
  fault?: string;
  throttled?: ThrottleScope;
  authError?: string;
  finishedAt?: number;
}

export interface DeliveredActivity {
  readonly seq: number;
  readonly time: number;
  readonly operation: Exclude<ConnectorOperation, 'getMember' | 'unknown'>;
  readonly conversationId: string;
  readonly activityId: string;
  /** Absent for deletes. */
  readonly activity?: Activity;
  readonly serviceUrl: string;
  readonly appId?: string;
  readonly tenantId?: string;
}

export interface ConnectorStats {
  requests: number;
  delivered: number;
  throttled: number;
  faults: number;
  unauthorized: number;
  dropped: number;
}

function summarise(activity: Activity): string {
  const parts: string[] = [];
  if (typeof activity.text === 'string' && activity.text !== '')
    parts.push(activity.text.length > 200 ? `${activity.text.slice(0, 200)}…` : activity.text);
  for (const attachment of activity.attachments ?? []) parts.push(`[${attachment.contentType}]`);
  return parts.join(' ') || `(${activity.type})`;
}

export class RequestRecorder {
  readonly requests: ConnectorRequestRecord[] = [];
  readonly delivered: DeliveredActivity[] = [];
  readonly stats: ConnectorStats = { requests: 0, delivered: 0, throttled: 0, faults: 0, unauthorized: 0, dropped: 0 };
  readonly #events = new EventEmitter();
  readonly #now: () => number;
  readonly #log: ((line: string) => void) | undefined;
  #seq = 0;

  constructor(now: () => number, log: ((line: string) => void) | undefined) {
    this.#now = now;
    this.#log = log;
    this.#events.setMaxListeners(0);
  }

  /** Numbers and keeps a new request's record. */
  open(
    fields: Omit<ConnectorRequestRecord, 'seq' | 'time' | 'body' | 'status' | 'outcome' | 'delivered'>,
  ): ConnectorRequestRecord {
    this.#seq += 1;
    this.stats.requests += 1;
    const record: ConnectorRequestRecord = {
      seq: this.#seq,
      time: this.#now(),
      ...fields,
      body: undefined,
      status: null,
      outcome: 'pending',
      delivered: false,
    };
    this.requests.push(record);
    return record;
  }

  /** The message reached the conversation. */
  deliver(
    record: ConnectorRequestRecord,
    delivery: Omit<DeliveredActivity, 'seq' | 'time' | 'serviceUrl' | 'appId' | 'tenantId'>,
  ): void {
    const entry: DeliveredActivity = {
      ...delivery,
      seq: record.seq,
      time: this.#now(),
      serviceUrl: record.serviceUrl,
      ...(record.appId !== undefined ? { appId: record.appId } : {}),
      ...(record.tenantId !== undefined ? { tenantId: record.tenantId } : {}),
    };
    this.delivered.push(entry);
    record.delivered = true;
    this.stats.delivered += 1;
    const { activity } = delivery;
    switch (delivery.operation) {
      case 'deleteActivity':
        this.#log?.(`[emulator] delete ${delivery.conversationId} #${delivery.activityId}`);
        break;
      case 'updateActivity':
        this.#log?.(
          `[emulator] update ${delivery.conversationId} #${delivery.activityId} : ${activity ? summarise(activity) : ''}`,
        );
        break;
      case 'replyToActivity':
        this.#log?.(
          `[emulator] reply to #${record.activityId ?? '?'} in ${delivery.conversationId} : ${activity ? summarise(activity) : ''}`,
        );
        break;
      default:
        this.#log?.(
          `[emulator] ${activity?.type ?? 'message'} to ${delivery.conversationId} : ${activity ? summarise(activity) : ''}`,
        );
    }
    this.#events.emit('delivered', entry);
  }

  finish(record: ConnectorRequestRecord, outcome: RequestOutcome): void {
    record.outcome = outcome;
    record.finishedAt = this.#now();
    if (outcome === 'dropped' || outcome === 'droppedAfterAccept') this.stats.dropped += 1;
    this.#events.emit('finished', record);
  }

  /** The first finished request (existing or future) matching; rejects after `timeoutMs`. */
  waitFor(
    predicate: (record: ConnectorRequestRecord, all: readonly ConnectorRequestRecord[]) => boolean,
    timeoutMs: number,
  ): Promise<ConnectorRequestRecord> {
    return this.#waitOn('finished', this.requests, predicate, timeoutMs, (r) => r.outcome !== 'pending');
  }

  /** The first delivery (existing or future) matching; rejects after `timeoutMs`. */
  waitForDelivery(
    predicate: (delivery: DeliveredActivity, all: readonly DeliveredActivity[]) => boolean,
    timeoutMs: number,
  ): Promise<DeliveredActivity> {
    return this.#waitOn('delivered', this.delivered, predicate, timeoutMs, () => true);
  }

  /** Forgets records, deliveries and counts. */
  reset(): void {
    this.requests.length = 0;
    this.delivered.length = 0;
    for (const key of Object.keys(this.stats) as (keyof ConnectorStats)[]) this.stats[key] = 0;
  }

  #waitOn<T>(
    eventName: string,
    list: readonly T[],
    predicate: (item: T, all: readonly T[]) => boolean,
    timeoutMs: number,
    done: (item: T) => boolean,
  ): Promise<T> {
    const found = list.find((item) => done(item) && predicate(item, list));
    if (found) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const onEvent = (item: T): void => {
        if (!predicate(item, list)) return;
        cleanup();
        resolve(item);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `connector stub: nothing matched within ${timeoutMs} ms (${this.requests.length} requests, ${this.delivered.length} deliveries recorded)`,
          ),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#events.off(eventName, onEvent);
      };
      this.#events.on(eventName, onEvent);
    });
  }
}
