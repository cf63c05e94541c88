/**
 * Teams' batch messaging over HTTP (bot-connector.md §6 conventions; paths from botbuilder-js
 * `teams/operations/teams.ts`): send to users / a tenant / a team / channels, read an operation's
 * state, page its failed entries (passing the continuation token, which botbuilder-js and Agents-for-js
 * cannot), cancel it.
 *
 * The same rules as ./connectorClient.ts: the serviceUrl is checked against the trusted hosts before
 * the token is fetched and attached, every path segment is encoded, timeouts are explicit. Every
 * answer becomes an outcome (core/deliveryDecision.ts's rules): nothing Teams or the network says
 * throws. A 401 refreshes the token once and InvalidBotApiHost moves to the GCC host once, in place.
 */
import { decide, decideFailure, type ConnectorAnswer, type Decision } from '../core/deliveryDecision';
import type { BatchKind, BatchRequestBody } from '../core/batch';
import {
  parseFailedEntriesPage,
  parseOperationState,
  parseSendResponse,
  type FailedEntriesPage,
  type OperationState,
} from '../core/batchState';
import { CourierError } from '../errors';
import { assertTrustedServiceUrl, connectorUrl, type ConnectorClientOptions } from './connectorClient';
import { classifyNetworkError, clientDispatcher, requestWithToken } from './answerReader';
import { ConnectorNetworkError } from './networkError';

export interface BatchClientOptions extends ConnectorClientOptions {
  /** Drops the cached token before the one retry after a 401 (BotTokenProvider.invalidate). */
  readonly invalidateToken?: () => void;
  /** Where InvalidBotApiHost retries once (OutboundConfig.gccServiceUrl); absent in the US gov clouds. */
  readonly gccServiceUrl?: string;
  readonly now?: () => Date;
}

type Retry = Extract<Decision, { kind: 'retry' }>;

export type BatchOutcome<T> =
  /** `serviceUrl`: where it was answered (the GCC host after InvalidBotApiHost): poll there. */
  | { readonly kind: 'ok'; readonly value: T; readonly status: number; readonly serviceUrl: string }
  | (Omit<Retry, 'kind'> & {
      readonly kind: 'retry';
      readonly status?: number;
      /** A send that may have started an operation anyway (timeout, reset, 502-504): retrying may send twice. */
      readonly ambiguous?: boolean;
    })
  | { readonly kind: 'fail'; readonly code: string; readonly reason: string; readonly status?: number };

export interface BatchClient {
  /** POST `v3/batch/conversation/{kind}`: the new operation's id. */
  sendBatch(kind: BatchKind, serviceUrl: string, body: BatchRequestBody): Promise<BatchOutcome<string>>;
  /** GET `v3/batch/conversation/{operationId}`. */
  getOperation(serviceUrl: string, operationId: string): Promise<BatchOutcome<OperationState>>;
  /** GET `v3/batch/conversation/failedentries/{operationId}[?continuationToken=…]`: one page. */
  getFailedEntries(
    serviceUrl: string,
    operationId: string,
    continuationToken?: string,
  ): Promise<BatchOutcome<FailedEntriesPage>>;
  /** DELETE `v3/batch/conversation/{operationId}`. */
  cancelOperation(serviceUrl: string, operationId: string): Promise<BatchOutcome<true>>;
  close(): Promise<void>;
}

/** A failed-entries page can be long; an answer cut short would not parse. */
const MAX_ANSWER_BYTES = 256 * 1024;

type Method = 'GET' | 'POST' | 'DELETE';

interface Call<T> {
  readonly method: Method;
  readonly segments: readonly string[];
  readonly query?: Record<string, string>;
  readonly body?: unknown;
  /** The value of a 2xx, or undefined when its body says nothing usable. */
  readonly read: (answer: ConnectorAnswer, now: Date) => T | undefined;
}

/** How an answer that passed decide() as 2xx but could not be read ends. A send must not be repeated. */
function unreadable(method: Method, status: number): BatchOutcome<never> {
  return method === 'POST'
    ? {
        kind: 'fail',
        code: 'BatchNoOperationId',
        reason: `HTTP ${status} without an operation id: the batch may be running, so it is not sent again`,
        status,
      }
    : {
        kind: 'retry',
        code: 'BatchAnswerUnreadable',
        reason: `HTTP ${status} with an unreadable body`,
        throttled: false,
        status,
      };
}

/**
 * decide()'s outcome for a batch call. Reads and cancels are idempotent, so every 5xx retries; a
 * send keeps the message rules (500 fails: Teams documents it as not retryable), and its retries
 * are marked ambiguous. A codeless 404 on an operation names the operation, not a conversation.
 */
function toOutcome<T>(decision: Exclude<Decision, { kind: 'sent' }>, method: Method, status: number): BatchOutcome<T> {
  if (decision.kind === 'retry') {
    const { kind: _kind, ...rest } = decision;
    return { kind: 'retry', ...rest, status, ...(method === 'POST' && status >= 500 ? { ambiguous: true } : {}) };
  }
  if (decision.kind !== 'fail') return { kind: 'fail', code: decision.code, reason: decision.reason, status };
  if (method !== 'POST' && status >= 500)
    return { kind: 'retry', code: decision.code, reason: decision.reason, throttled: false, status };
  const code =
    method !== 'POST' && status === 404 && decision.code === 'HTTP404' ? 'BatchOperationNotFound' : decision.code;
  return { kind: 'fail', code, reason: decision.reason, status };
}

function fromError<T>(err: unknown, method: Method): BatchOutcome<T> {
  if (err instanceof ConnectorNetworkError) {
    const { kind: _kind, ...rest } = decideFailure(err.failure) as Retry;
    return {
      kind: 'retry',
      ...rest,
      ...(method === 'POST' && err.failure.kind !== 'connect' ? { ambiguous: true } : {}),
    };
  }
  if (!(err instanceof CourierError)) throw err;
  switch (err.code) {
    case 'UNTRUSTED_SERVICE_URL':
      return { kind: 'fail', code: 'UntrustedServiceUrl', reason: err.message };
    case 'INVALID_CONNECTOR_PATH':
      return { kind: 'fail', code: 'InvalidOperationId', reason: err.message };
    case 'TOKEN_UNAVAILABLE':
      return { kind: 'retry', code: 'TokenUnavailable', reason: err.message, throttled: false };
    default:
      throw err;
  }
}

export function createBatchClient(options: BatchClientOptions): BatchClient {
  const now = options.now ?? (() => new Date());
  const { dispatcher, close } = clientDispatcher(options, 16);

  async function send(method: Method, serviceUrl: string, call: Call<unknown>): Promise<ConnectorAnswer> {
    const url = connectorUrl(assertTrustedServiceUrl(serviceUrl, options.trust), ...call.segments);
    for (const [key, value] of Object.entries(call.query ?? {})) url.searchParams.set(key, value);
    const token = await options.getToken();
    try {
      return await requestWithToken(url, dispatcher, {
        method,
        token,
        body: call.body,
        contentType: 'application/json; charset=utf-8',
        // A batch send must not be replayed by the client: it would message everyone again.
        idempotent: method !== 'POST',
        maxBytes: MAX_ANSWER_BYTES,
      });
    } catch (err) {
      throw new ConnectorNetworkError(classifyNetworkError(err), { cause: err });
    }
  }

  async function run<T>(firstServiceUrl: string, call: Call<T>): Promise<BatchOutcome<T>> {
    let serviceUrl = firstServiceUrl;
    let tokenRefreshed = false;
    let onGccHost = options.gccServiceUrl === undefined;
    try {
      for (;;) {
        const answer = await send(call.method, serviceUrl, call as Call<unknown>);
        const decision = decide(answer, { now: now(), tokenRefreshed, onGccHost });
        if (decision.kind === 'refreshToken' && options.invalidateToken !== undefined) {
          options.invalidateToken();
          tokenRefreshed = true;
          continue;
        }
        if (decision.kind === 'retryOnGcc') {
          serviceUrl = options.gccServiceUrl!;
          onGccHost = true;
          continue;
        }
        if (decision.kind !== 'sent') return toOutcome(decision, call.method, answer.status);
        const value = call.read(answer, now());
        if (value === undefined) return unreadable(call.method, answer.status);
        return { kind: 'ok', value, status: answer.status, serviceUrl };
      }
    } catch (err) {
      return fromError(err, call.method);
    }
  }

  const operation = (id: string): string[] => ['batch', 'conversation', id];
  return {
    sendBatch: (kind, serviceUrl, body) =>
      run(serviceUrl, {
        method: 'POST',
        segments: ['batch', 'conversation', kind],
        body,
        read: (answer) => parseSendResponse(answer.body),
      }),
    getOperation: (serviceUrl, operationId) =>
      run(serviceUrl, {
        method: 'GET',
        segments: operation(operationId),
        read: (answer, at) => parseOperationState(answer.body, at),
      }),
    getFailedEntries: (serviceUrl, operationId, continuationToken) =>
      run(serviceUrl, {
        method: 'GET',
        segments: ['batch', 'conversation', 'failedentries', operationId],
        ...(continuationToken === undefined ? {} : { query: { continuationToken } }),
        read: (answer) => parseFailedEntriesPage(answer.body),
      }),
    cancelOperation: (serviceUrl, operationId) =>
      run(serviceUrl, { method: 'DELETE', segments: operation(operationId), read: () => true as const }),
    close,
  };
}
