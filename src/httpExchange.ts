/**
 * One HTTP request through undici's dispatcher API, its answer collected as text: what undici's
 * `request()` does for the short JSON and XML answers of the Bot Connector and Storage, without the
 * body stream and async iterator those answers do not need (issue 12 measured about a fifth of a
 * request's CPU there). Errors are undici's own (timeouts, sockets) or an `AbortError` for `signal`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

export interface ExchangeRequest {
  readonly method: Dispatcher.HttpMethod;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly signal?: AbortSignal;
  /** False for a request undici must never replay on its own. */
  readonly idempotent?: boolean;
  readonly headersTimeout?: number;
  readonly bodyTimeout?: number;
  /** How much of the answer's body is kept (the rest is read and dropped); default all. */
  readonly maxBytes?: number;
}

export interface Exchanged {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

const aborted = (): DOMException => new DOMException('The request was aborted', 'AbortError');

/** `path` is the request target: the encoded path and query, as sent. */
export function exchange(
  dispatcher: Dispatcher,
  origin: string,
  path: string,
  request: ExchangeRequest,
): Promise<Exchanged> {
  const { signal, maxBytes = Infinity } = request;
  return new Promise<Exchanged>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(aborted());
      return;
    }
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = (): void => controller?.abort(aborted());
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let kept = 0;
    dispatcher.dispatch(
      {
        origin,
        path,
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        ...(request.idempotent === undefined ? {} : { idempotent: request.idempotent }),
        ...(request.headersTimeout === undefined ? {} : { headersTimeout: request.headersTimeout }),
        ...(request.bodyTimeout === undefined ? {} : { bodyTimeout: request.bodyTimeout }),
      },
      {
        onRequestStart(c) {
          controller = c;
          if (signal?.aborted === true) c.abort(aborted());
        },
        onResponseStart(_c, statusCode, answerHeaders) {
          status = statusCode;
          headers = answerHeaders;
        },
        onResponseData(_c, chunk) {
          if (kept < maxBytes) chunks.push(chunk);
          kept += chunk.length;
        },
        onResponseEnd() {
          done();
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status, headers, text: maxBytes === Infinity ? text : text.slice(0, maxBytes) });
        },
        onResponseError(_c, error) {
          done();
          reject(error);
        },
      },
    );
  });
}
