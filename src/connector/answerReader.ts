/**
 * A Bot Connector answer read into a ConnectorAnswer (JSON when it parses, else the text, at most
 * `maxBytes` kept), and a failure below HTTP classified for core/deliveryDecision.ts.
 * Shared by the message client (connectorClient.ts, 16 KiB: an error body) and the batch client
 * (batchClient.ts, more: a failed-entries page).
 */
import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { ConnectorAnswer, ConnectorFailure } from '../core/deliveryDecision';

export function classifyNetworkError(err: unknown): ConnectorFailure {
  if (err instanceof undiciErrors.ConnectTimeoutError) return { kind: 'timeout', message: 'connect timeout' };
  if (err instanceof undiciErrors.HeadersTimeoutError)
    return { kind: 'timeout', message: 'no response headers before the timeout' };
  if (err instanceof undiciErrors.BodyTimeoutError) return { kind: 'timeout', message: 'response body timeout' };
  if (err instanceof undiciErrors.SocketError)
    return { kind: 'reset', message: 'connection closed before the response completed' };
  const code = (err as { code?: unknown }).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED')
    return { kind: 'reset', message: `connection reset (${code})` };
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH')
    return { kind: 'connect', message: `cannot connect (${code})` };
  return { kind: 'other', message: err instanceof Error ? `${err.name}: ${err.message}` : 'network error' };
}

export async function readAnswer(
  response: Dispatcher.ResponseData<unknown>,
  maxBytes = 16 * 1024,
): Promise<ConnectorAnswer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    const buffer = chunk as Buffer;
    if (total < maxBytes) chunks.push(buffer);
    total += buffer.length;
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, maxBytes);
  let body: unknown = text;
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = text;
    }
  }
  return { status: response.statusCode, headers: response.headers, body };
}
