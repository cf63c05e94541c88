/**
 * The HTTP details of graphClient.ts: reading a bounded answer, and naming a failure below HTTP.
 */
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { failure, type GraphAnswer, type GraphFailure } from './graphResult';

const MAX_BODY_BYTES = 64 * 1024;

export function networkFailure(err: unknown): GraphFailure {
  const fail = (what: string) => failure('GraphNetwork', `no answer from Graph: ${what}`);
  if (err instanceof undiciErrors.ConnectTimeoutError) return fail('connect timeout');
  if (err instanceof undiciErrors.HeadersTimeoutError) return fail('no response headers before the timeout');
  if (err instanceof undiciErrors.BodyTimeoutError) return fail('response body timeout');
  if (err instanceof undiciErrors.SocketError) return fail('connection closed before the response completed');
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return fail(code);
  return fail(err instanceof Error ? err.name : 'network error');
}

export async function readAnswer(response: Dispatcher.ResponseData<unknown>): Promise<GraphAnswer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    const buffer = chunk as Buffer;
    if (total < MAX_BODY_BYTES) chunks.push(buffer);
    total += buffer.length;
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY_BYTES);
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
