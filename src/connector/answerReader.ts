/**
 * The HTTP plumbing every outbound REST client shares (the Bot Connector's message and batch
 * clients, and src/graph/graphClient.ts): one keep-alive undici Agent with explicit timeouts, a
 * bearer-token JSON request, an answer read into a ConnectorAnswer (JSON when it parses, else the
 * text, at most `maxBytes` kept), and a failure below HTTP classified for core/deliveryDecision.ts.
 */
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { ConnectorAnswer, ConnectorFailure } from '../core/deliveryDecision';
import { exchange } from '../httpExchange';

/**
 * The caller's dispatcher, or a keep-alive Agent of `connections` with connect, headers and body
 * timeouts of `timeoutMs` each; `close` closes only the Agent made here.
 */
export function clientDispatcher(
  options: { readonly timeoutMs: number; readonly dispatcher?: Dispatcher },
  connections: number,
): { readonly dispatcher: Dispatcher; close(): Promise<void> } {
  if (options.dispatcher !== undefined) return { dispatcher: options.dispatcher, close: async () => {} };
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    connections,
    connectTimeout: options.timeoutMs,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return { dispatcher: agent, close: () => agent.close() };
}

export interface BearerRequest {
  readonly method: string;
  readonly token: string;
  /** Sent as JSON with `contentType` when present. */
  readonly body?: unknown;
  readonly contentType: string;
  /** False for a call the client must not replay on its own (the caller decides on retries). */
  readonly idempotent: boolean;
  /** How much of the answer's body is kept. */
  readonly maxBytes: number;
}

/** One request with the token attached, its answer read; throws what undici throws below HTTP. */
export async function requestWithToken(
  url: URL,
  dispatcher: Dispatcher,
  call: BearerRequest,
): Promise<ConnectorAnswer> {
  const answer = await exchange(dispatcher, url.origin, `${url.pathname}${url.search}`, {
    method: call.method as Dispatcher.HttpMethod,
    headers: {
      authorization: `Bearer ${call.token}`,
      accept: 'application/json',
      ...(call.body === undefined ? {} : { 'content-type': call.contentType }),
    },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    idempotent: call.idempotent,
    maxBytes: call.maxBytes,
  });
  let body: unknown = answer.text;
  if (answer.text.trim() !== '') {
    try {
      body = JSON.parse(answer.text) as unknown;
    } catch {
      body = answer.text;
    }
  }
  return { status: answer.status, headers: answer.headers, body };
}

/** The failures undici names by class: timeouts, and a socket closed early. */
export function undiciFailure(err: unknown): ConnectorFailure | undefined {
  if (err instanceof undiciErrors.ConnectTimeoutError) return { kind: 'timeout', message: 'connect timeout' };
  if (err instanceof undiciErrors.HeadersTimeoutError)
    return { kind: 'timeout', message: 'no response headers before the timeout' };
  if (err instanceof undiciErrors.BodyTimeoutError) return { kind: 'timeout', message: 'response body timeout' };
  if (err instanceof undiciErrors.SocketError)
    return { kind: 'reset', message: 'connection closed before the response completed' };
  return undefined;
}

export function classifyNetworkError(err: unknown): ConnectorFailure {
  const named = undiciFailure(err);
  if (named !== undefined) return named;
  const code = (err as { code?: unknown }).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED')
    return { kind: 'reset', message: `connection reset (${code})` };
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH')
    return { kind: 'connect', message: `cannot connect (${code})` };
  return { kind: 'other', message: err instanceof Error ? `${err.name}: ${err.message}` : 'network error' };
}
