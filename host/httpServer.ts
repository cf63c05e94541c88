/**
 * The HTTP front end of the local host: routes requests to HTTP-triggered functions and converts
 * between node:http and the RPC shapes the worker exchanges with `@azure/functions`.
 *
 * Request -> RpcHttpData as the host sends it to a Node worker (method, absolute url, lower-case
 * headers with repeated values joined by ",", empty headers dropped, query values joined by ",",
 * route params, body and rawBody as bytes: only with a Content-Length above 0, like the host).
 * RpcHttpData -> response: status, headers, cookies
 * (Set-Cookie as ASP.NET Core writes it) and body bytes; no response at all means 200 with an
 * empty body (FunctionInvocationMiddleware returns OkResult).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describeError, type InvocationOutcome, type RegisteredFunction } from './functionsCore';
import type { HostLogger } from './log';
import { decodePath, matchRoute, type CompiledRoute } from './routes';
import type { RpcHttpCookie, RpcHttpData, RpcTypedData } from './rpcTypes';

export interface HttpFunction {
  readonly fn: RegisteredFunction;
  readonly route: CompiledRoute;
  /** Upper-case methods; `undefined` allows every method (function.json without `methods`). */
  readonly methods: readonly string[] | undefined;
}

export interface HttpDispatchRequest {
  readonly invocationId: string;
  readonly http: RpcHttpData;
  readonly traceParent?: string;
}

/** Runs the function and flushes its output bindings; provided by the host. */
export type HttpDispatcher = (fn: HttpFunction, request: HttpDispatchRequest) => Promise<InvocationOutcome>;

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest request body read, in bytes; larger bodies get 413. */
  readonly maxRequestBodyBytes: number;
  /** Status for a path that matches a route whose methods exclude the request's method. */
  readonly methodNotAllowedStatus: 404 | 405;
  readonly log: HostLogger;
  readonly dispatch: HttpDispatcher;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);
const NO_BODY_STATUS = new Set([204, 205, 304]);
/** Past this many discarded bytes of an over-limit body, the connection is dropped instead of drained. */
const MAX_DISCARD_BYTES = 64 * 1024 * 1024;

type BodyResult = { kind: 'ok'; body: Buffer } | { kind: 'tooLarge' } | { kind: 'aborted' };

/**
 * Whether the host would hand this request's body to the worker. GrpcMessageConversionExtensions.
 * ToRpcHttp fills the body only `if (request.Body != null && request.ContentLength > 0)`, so a
 * chunked request (Transfer-Encoding, no Content-Length) reaches a Node function with no body at all
 * (Azure/azure-functions-nodejs-worker#524, Azure/azure-functions-host#4926). With HTTP streams
 * (`app.setup({ enableHttpStream: true })`) the host proxies the request instead, body included.
 */
export function hostForwardsBody(req: http.IncomingMessage): boolean {
  const declared = Number(req.headers['content-length']);
  return req.headers['content-length'] !== undefined && Number.isFinite(declared) && declared > 0;
}

/** Reads and drops a body the function will not get; a connection sending too much is dropped. */
function discardBody(req: http.IncomingMessage): void {
  let total = 0;
  req.on('data', (chunk: Buffer) => {
    total += chunk.length;
    if (total > MAX_DISCARD_BYTES) req.destroy();
  });
  req.on('error', () => undefined);
}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve({ kind: 'tooLarge' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (done) {
        if (total > MAX_DISCARD_BYTES) req.destroy();
        return;
      }
      if (total > maxBytes) {
        chunks.length = 0;
        finish({ kind: 'tooLarge' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish({ kind: 'ok', body: Buffer.concat(chunks) }));
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) finish({ kind: 'aborted' });
    });
  });
}

/** Lower-case names; repeated values joined with "," like StringValues.ToString(); empty values dropped. */
export function toRpcHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!values) continue;
    const joined = values.filter((v) => v !== '').join(',');
    if (joined !== '') headers[name.toLowerCase()] = joined;
  }
  return headers;
}

/** Query values joined with "," per key, as IQueryCollection gives them to the worker. */
export function toRpcQuery(searchParams: URLSearchParams): Record<string, string> {
  const query: Record<string, string> = {};
  for (const key of new Set(searchParams.keys())) query[key] = searchParams.getAll(key).join(',');
  return query;
}

export function typedDataToBuffer(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
  if (data.stream) return Buffer.from(data.stream.buffer, data.stream.byteOffset, data.stream.byteLength);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  if (typeof data.int === 'number') return Buffer.from(String(data.int), 'utf8');
  if (typeof data.double === 'number') return Buffer.from(String(data.double), 'utf8');
  return Buffer.alloc(0);
}

/** Serializes a cookie the way ASP.NET Core's SetCookieHeaderValue does (path defaults to "/"). */
export function serializeCookie(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name ?? ''}=${cookie.value ?? ''}`];
  const expires = cookie.expires?.value?.seconds;
  if (typeof expires === 'number') parts.push(`expires=${new Date(expires * 1000).toUTCString()}`);
  const maxAge = cookie.maxAge?.value;
  if (typeof maxAge === 'number') parts.push(`max-age=${Math.trunc(maxAge)}`);
  if (cookie.domain?.value) parts.push(`domain=${cookie.domain.value}`);
  parts.push(`path=${cookie.path?.value || '/'}`);
  if (cookie.secure?.value) parts.push('secure');
  switch (cookie.sameSite) {
    case 'lax':
      parts.push('samesite=lax');
      break;
    case 'strict':
      parts.push('samesite=strict');
      break;
    case 'explicitNone':
      parts.push('samesite=none');
      break;
    default:
      break;
  }
  if (cookie.httpOnly?.value) parts.push('httponly');
  return parts.join('; ');
}

/** Picks the HTTP output of an invocation: the `$return` binding or the first `http` output binding. */
export function findHttpOutput(
  fn: RegisteredFunction,
  outcome: {
    response: {
      returnValue?: RpcTypedData | null;
      outputData?: { name?: string | null; data?: RpcTypedData | null }[] | null;
    };
  },
): RpcHttpData | undefined {
  const bindings = fn.metadata.bindings;
  const isHttp = (name: string | null | undefined): boolean =>
    !!name && bindings[name]?.direction === 'out' && bindings[name]?.type?.toLowerCase() === 'http';
  if (isHttp('$return') && outcome.response.returnValue?.http) return outcome.response.returnValue.http;
  for (const output of outcome.response.outputData ?? []) {
    if (isHttp(output.name) && output.data?.http) return output.data.http;
  }
  return undefined;
}

function traceParentOf(req: http.IncomingMessage): string | undefined {
  const raw = req.headers.traceparent;
  return typeof raw === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(raw) ? raw : undefined;
}

const LANDING_PAGE =
  '<!DOCTYPE html><html><head><title>Your Functions 4.0 app is up and running</title></head><body><h1>Your Functions 4.0 app is up and running</h1><p>teams-courier local host</p></body></html>';

export class FunctionsHttpServer {
  readonly #options: HttpServerOptions;
  readonly #server: http.Server;
  readonly #startedAt = Date.now();
  #functions: HttpFunction[] = [];
  #ready = false;
  #closing = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#server = http.createServer((req, res) => {
      this.#inFlight++;
      this.#handle(req, res)
        .catch((error: unknown) => {
          options.log.error('http.unhandled', { error: describeError(error) });
          if (!res.headersSent) this.#sendText(res, 500, '');
          else res.destroy();
        })
        .finally(() => {
          this.#inFlight--;
          if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
        });
    });
    // Node closes a CONNECT request's connection without a word unless someone listens; the host
    // is no proxy, so it answers like any method it does not serve.
    this.#server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', () => undefined);
      socket.end(
        'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      );
      options.log.info('http.request', { method: 'CONNECT', path: req.url ?? '', status: 405, durationMs: 0 });
    });
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#server.once('error', onError);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', onError);
        resolve(this.port);
      });
    });
  }

  /** Routes, most specific first. Requests get 503 until this is called. */
  setFunctions(functions: readonly HttpFunction[]): void {
    this.#functions = [...functions];
    this.#ready = true;
  }

  /** Stops accepting connections, waits up to `drainMs` for in-flight requests, then drops the rest. */
  async close(drainMs: number): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.#idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.#inFlight > 0) this.#options.log.warn('http.drain.timeout', { inFlight: this.#inFlight, drainMs });
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const hostHeader = req.headers.host ?? `${this.#options.host}:${this.port}`;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${hostHeader}`);
    } catch {
      this.#sendText(res, 400, 'Bad Request');
      this.#logRequest(method, req.url ?? '', 400, started);
      return;
    }
    if (this.#closing) res.setHeader('connection', 'close');

    const decodedPath = decodePath(url.pathname);
    const builtin = this.#builtin(method, decodedPath, res);
    if (builtin !== undefined) {
      this.#logRequest(method, url.pathname, builtin, started);
      return;
    }
    if (!this.#ready || this.#closing) {
      this.#sendText(res, 503, 'Function host is not running.');
      this.#logRequest(method, url.pathname, 503, started);
      return;
    }

    const allowed = new Set<string>();
    let target: { fn: HttpFunction; params: Record<string, string> } | undefined;
    for (const candidate of this.#functions) {
      const params = matchRoute(candidate.route, decodedPath);
      if (!params) continue;
      if (candidate.methods === undefined || candidate.methods.includes(method)) {
        target = { fn: candidate, params };
        break;
      }
      for (const m of candidate.methods) allowed.add(m);
    }
    if (!target) {
      const status = allowed.size > 0 ? this.#options.methodNotAllowedStatus : 404;
      if (status === 405) res.setHeader('allow', [...allowed].join(', '));
      this.#sendText(res, status, '');
      this.#logRequest(method, url.pathname, status, started);
      return;
    }

    const forwardBody = hostForwardsBody(req);
    if (!forwardBody) {
      if (req.headers['transfer-encoding'] !== undefined) {
        this.#options.log.warn('http.request.bodyDropped', {
          function: target.fn.fn.name,
          detail:
            'no Content-Length (Transfer-Encoding: chunked): like the Functions host, the function gets no body; send a Content-Length',
        });
      }
      discardBody(req);
    }
    const body: BodyResult = forwardBody
      ? await readBody(req, this.#options.maxRequestBodyBytes)
      : { kind: 'ok', body: Buffer.alloc(0) };
    if (body.kind === 'aborted') {
      this.#logRequest(method, url.pathname, 499, started, target.fn.fn.name);
      return;
    }
    if (body.kind === 'tooLarge') {
      this.#sendText(res, 413, 'Request body too large');
      this.#logRequest(method, url.pathname, 413, started, target.fn.fn.name);
      return;
    }

    const invocationId = randomUUID();
    const rpcHttp: RpcHttpData = {
      method,
      url: url.toString(),
      headers: toRpcHeaders(req),
      query: toRpcQuery(url.searchParams),
      params: target.params,
      ...(forwardBody ? { body: { bytes: body.body }, rawBody: { bytes: body.body } } : {}),
    };
    const outcome = await this.#options.dispatch(target.fn, {
      invocationId,
      http: rpcHttp,
      traceParent: traceParentOf(req),
    });
    if (res.destroyed) {
      this.#logRequest(method, url.pathname, 499, started, target.fn.fn.name, invocationId);
      return;
    }
    if (!outcome.ok) {
      // Like the host: the failure is logged, the caller only learns that it failed.
      this.#options.log.error('http.invocation.failed', {
        function: target.fn.fn.name,
        invocationId,
        error: describeError(outcome.error),
      });
      this.#sendText(res, 500, 'Internal Server Error');
      this.#logRequest(method, url.pathname, 500, started, target.fn.fn.name, invocationId);
      return;
    }
    const status = this.#writeResponse(
      method,
      res,
      findHttpOutput(target.fn.fn, outcome),
      target.fn.fn.name,
      invocationId,
    );
    this.#logRequest(method, url.pathname, status, started, target.fn.fn.name, invocationId);
  }

  /** The host's own endpoints: the landing page and the host status. */
  #builtin(method: string, decodedPath: string, res: http.ServerResponse): number | undefined {
    if ((method === 'GET' || method === 'HEAD') && (decodedPath === '/' || decodedPath === '')) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(LANDING_PAGE),
      });
      res.end(method === 'HEAD' ? undefined : LANDING_PAGE);
      return 200;
    }
    if (method === 'GET' && decodedPath.toLowerCase().replace(/\/$/, '') === '/admin/host/status') {
      const state = this.#closing ? 'Stopping' : this.#ready ? 'Running' : 'Initialized';
      const body = JSON.stringify({
        id: 'local',
        state,
        version: '4.0.0-local',
        processUptime: Date.now() - this.#startedAt,
      });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return 200;
    }
    return undefined;
  }

  #writeResponse(
    method: string,
    res: http.ServerResponse,
    httpOut: RpcHttpData | undefined,
    functionName: string,
    invocationId: string,
  ): number {
    if (!httpOut) {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      return 200;
    }
    let status = httpOut.statusCode ? Number.parseInt(httpOut.statusCode, 10) : 200;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      this.#options.log.error('http.response.invalidStatus', {
        function: functionName,
        invocationId,
        statusCode: httpOut.statusCode ?? '',
      });
      this.#sendText(res, 500, 'Internal Server Error');
      return 500;
    }
    if (status < 200) status = 200;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(httpOut.headers ?? {})) {
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      headers[name] = value;
    }
    const cookies = (httpOut.cookies ?? []).map(serializeCookie);
    if (cookies.length > 0) {
      const key = Object.keys(headers).find((k) => k.toLowerCase() === 'set-cookie');
      const existing = key === undefined ? [] : ([] as string[]).concat(headers[key]!);
      if (key !== undefined) delete headers[key];
      headers['set-cookie'] = [...existing, ...cookies];
    }
    const body = NO_BODY_STATUS.has(status) ? Buffer.alloc(0) : typedDataToBuffer(httpOut.body);
    if (!NO_BODY_STATUS.has(status)) headers['content-length'] = String(body.length);
    try {
      res.writeHead(status, headers);
    } catch (error) {
      this.#options.log.error('http.response.invalidHeaders', {
        function: functionName,
        invocationId,
        error: describeError(error),
      });
      this.#sendText(res, 500, 'Internal Server Error');
      return 500;
    }
    res.end(method === 'HEAD' || body.length === 0 ? undefined : body);
    return status;
  }

  #sendText(res: http.ServerResponse, status: number, text: string): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(text) };
    if (text) headers['content-type'] = 'text/plain; charset=utf-8';
    res.writeHead(status, headers);
    res.end(text || undefined);
  }

  #logRequest(
    method: string,
    path: string,
    status: number,
    started: number,
    functionName?: string,
    invocationId?: string,
  ): void {
    this.#options.log.info('http.request', {
      method,
      path,
      status,
      durationMs: Math.round(performance.now() - started),
      function: functionName,
      invocationId,
    });
  }
}
