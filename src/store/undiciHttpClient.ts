/**
 * The HTTP client under the table SDK: undici's keep-alive pool instead of core-rest-pipeline's
 * default (node:http). Table requests are small JSON exchanges, three per message on the sender's
 * path, and node:http's per-request overhead showed in the benchmark's CPU profile. Only what the
 * Table SDK sends is supported: string or absent bodies (no streams, no multipart uploads).
 */
import {
  createHttpHeaders,
  RestError,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { Agent, request as undiciRequest } from 'undici';

export function createUndiciHttpClient(
  options: { connectTimeoutMs?: number } = {},
): HttpClient & { close(): Promise<void> } {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: options.connectTimeoutMs ?? 10_000 } });
  return {
    async sendRequest(req: PipelineRequest): Promise<PipelineResponse> {
      const body = req.body;
      if (body !== undefined && body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) {
        throw new Error('this HTTP client sends string or Buffer bodies only');
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of req.headers) headers[name] = value;
      const response = await undiciRequest(req.url, {
        method: req.method,
        headers,
        ...(body === undefined || body === null ? {} : { body }),
        dispatcher,
        ...(req.timeout > 0 ? { headersTimeout: req.timeout, bodyTimeout: req.timeout } : {}),
        // The SDK's AbortSignalLike is the platform AbortSignal in Node.
        ...(req.abortSignal === undefined ? {} : { signal: req.abortSignal as AbortSignal }),
      }).catch((err: unknown) => {
        throw toRestError(err, req);
      });
      const responseHeaders = createHttpHeaders();
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const bodyAsText = req.method === 'HEAD' ? '' : await response.body.text();
      return { request: req, status: response.statusCode, headers: responseHeaders, bodyAsText };
    },
    close: () => dispatcher.close(),
  };
}

/**
 * As the SDK's own client reports a request that got no answer: a RestError whose code its retry
 * policy knows (a reset or a timeout is retried, like node:http's ECONNRESET and ETIMEDOUT).
 */
function toRestError(err: unknown, request: PipelineRequest): unknown {
  if (!(err instanceof Error)) return err;
  if (err.name === 'AbortError') return err;
  const code = (err as { code?: unknown }).code;
  const mapped =
    code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED'
      ? 'ECONNRESET'
      : code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
        ? 'ETIMEDOUT'
        : typeof code === 'string'
          ? code
          : RestError.REQUEST_SEND_ERROR;
  return new RestError(err.message, { code: mapped, request });
}
