/**
 * What a Microsoft Graph call for proactive installation can come to: a typed result, never an
 * exception for what Graph or the network answered. Pure.
 *
 * Graph answers errors as `{"error": {"code", "message", "innerError": {...}}}` with a standard
 * HTTP status (learn.microsoft.com/graph/errors); throttling is 429 with a `Retry-After` header
 * (learn.microsoft.com/graph/throttling), and 503 may carry one too.
 */
import { parseRetryAfter } from '../core/deliveryDecision';
import { GRAPH_FAILURE_CODES, type GraphFailureCode } from '../core/failureCodes';

/** Thrown for what must never be sent: a bad base URL, a URL off the base, the bot's own token. */
export class GraphError extends Error {
  readonly code: 'GRAPH_BASE_INVALID' | 'GRAPH_URL_REFUSED' | 'GRAPH_TOKEN_REFUSED';
  constructor(code: GraphError['code'], message: string) {
    super(message);
    this.code = code;
    this.name = 'GraphError';
  }
}

/** Every failure code, whether it is worth trying again, and what it means: src/core/failureCodes.ts. */
export { GRAPH_FAILURE_CODES, type GraphFailureCode } from '../core/failureCodes';

export interface GraphFailure {
  readonly code: GraphFailureCode;
  readonly retryable: boolean;
  /** One line for the delivery record and the log; never a token. */
  readonly reason: string;
  readonly status?: number;
  /** Graph's own `error.code`, when it sent one. */
  readonly graphCode?: string;
  /** From `Retry-After` (seconds or an HTTP date), when Graph sent it. */
  readonly retryAfterMs?: number;
}

/** A Graph token could not be had; `failure` says whether that may change (GraphTokenUnavailable) or not. */
export class GraphTokenError extends Error {
  readonly failure: GraphFailure;
  constructor(failure: GraphFailure, options?: { cause?: unknown }) {
    super(failure.reason, options);
    this.failure = failure;
    this.name = 'GraphTokenError';
  }
}

export type GraphResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: GraphFailure };

export type GraphOperation = 'install' | 'findInstallation' | 'getChat';

export interface GraphAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parsed JSON when there was some, else the (truncated) text. */
  readonly body: unknown;
}

/** What the call was about, for reasons that name it. */
export interface GraphCallContext {
  readonly tenantId: string;
  readonly userId: string;
  readonly catalogId?: string;
  readonly installationId?: string;
}

const MAX_MESSAGE_CHARS = 300;

export function failure(code: GraphFailureCode, reason: string, extra: Partial<GraphFailure> = {}): GraphFailure {
  return { code, retryable: GRAPH_FAILURE_CODES[code].retryable, reason, ...extra };
}

/** Graph's `error.code` and `error.message` (one line, bounded), whatever the body was. */
export function graphErrorOf(body: unknown): { code?: string; message?: string } {
  const error = (body as { error?: unknown } | null | undefined)?.error;
  const clean = (value: unknown): string | undefined => {
    if (typeof value !== 'string') return undefined;
    // eslint-disable-next-line no-control-regex -- control characters are what it removes
    const line = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
    return line === '' ? undefined : line.length > MAX_MESSAGE_CHARS ? `${line.slice(0, MAX_MESSAGE_CHARS)}…` : line;
  };
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const out: { code?: string; message?: string } = {};
    const c = clean(code);
    const m = clean(message);
    if (c !== undefined) out.code = c;
    if (m !== undefined) out.message = m;
    return out;
  }
  const text = clean(body);
  return text === undefined ? {} : { message: text };
}

function header(headers: GraphAnswer['headers'], name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

/** Which thing a 404 was about, when Graph says so. */
function notFoundSubject(op: GraphOperation, code: string | undefined, message: string, ctx: GraphCallContext) {
  if (op === 'getChat' && /install/i.test(message)) return 'installation';
  if (code === 'Request_ResourceNotFound') return 'user';
  if ((ctx.catalogId !== undefined && message.includes(ctx.catalogId)) || /\bapp\b|teamsApp|catalog/i.test(message))
    return 'app';
  if (message.includes(ctx.userId) || /\buser\b/i.test(message)) return 'user';
  return undefined;
}

/** The failure a non-success Graph answer stands for (`op` decides what a 404 means). */
export function mapGraphFailure(
  op: GraphOperation,
  answer: GraphAnswer,
  ctx: GraphCallContext,
  now: Date,
): GraphFailure {
  const { status } = answer;
  const graph = graphErrorOf(answer.body);
  const said = `Graph ${status}${graph.code === undefined ? '' : ` ${graph.code}`}${graph.message === undefined ? '' : `: ${graph.message}`}`;
  const extra = { status, ...(graph.code === undefined ? {} : { graphCode: graph.code }) };
  const retryAfterMs = parseRetryAfter(header(answer.headers, 'retry-after'), now);
  const wait = retryAfterMs === undefined ? {} : { retryAfterMs };

  if (status === 429) return failure('GraphThrottled', `Graph throttled the request (${said})`, { ...extra, ...wait });
  if (status >= 500) return failure('GraphUnavailable', `Graph is unavailable (${said})`, { ...extra, ...wait });
  if (status === 401) return failure('GraphUnauthorized', `Graph refused the token (${said})`, extra);
  if (status === 403) {
    if (/not allowed to manage the Teams App/i.test(graph.message ?? ''))
      return failure(
        'GraphAppNotManageable',
        `Graph refused to let this app install the Teams app (${said}): TeamsAppInstallation.ReadWriteSelfForUser.All covers only the Teams app whose manifest webApplicationInfo.id is the bot's app id`,
        extra,
      );
    return failure(
      'GraphConsentMissing',
      `admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All in tenant ${ctx.tenantId} (${said})`,
      extra,
    );
  }
  if (status === 404) {
    const subject = notFoundSubject(op, graph.code, graph.message ?? '', ctx);
    if (subject === 'user')
      return failure(
        'GraphUserUnknown',
        `user ${ctx.userId} is unknown to Graph in tenant ${ctx.tenantId} (${said})`,
        extra,
      );
    if (subject === 'app')
      return failure(
        'GraphAppUnknown',
        `Teams app ${ctx.catalogId ?? '(no catalog id)'} is not in the catalog of tenant ${ctx.tenantId} (${said})`,
        extra,
      );
    const what =
      op === 'getChat'
        ? `installation ${ctx.installationId ?? '?'} of user ${ctx.userId}`
        : `user ${ctx.userId} or Teams app ${ctx.catalogId ?? '?'}`;
    return failure('GraphNotFound', `Graph does not know ${what} in tenant ${ctx.tenantId} (${said})`, extra);
  }
  if (status === 400) return failure('GraphBadRequest', `Graph refused the request as invalid (${said})`, extra);
  return failure('GraphRefused', `Graph refused the request (${said})`, extra);
}
