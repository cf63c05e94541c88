/**
 * What to do with a Bot Connector answer: the one table-driven decision for the sender.
 * Source: bot-connector.md §4 (retry rules) and §7 (status codes). Pure.
 */

export type Decision =
  | { readonly kind: 'sent'; readonly activityId?: string }
  | {
      readonly kind: 'retry';
      readonly code: string;
      readonly reason: string;
      readonly retryAfterMs?: number;
      readonly throttled: boolean;
    }
  | { readonly kind: 'fail'; readonly code: string; readonly reason: string; readonly undeliverable: boolean }
  | { readonly kind: 'refreshToken'; readonly code: string; readonly reason: string }
  | { readonly kind: 'retryOnGcc'; readonly code: string; readonly reason: string };

export interface ConnectorAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parsed JSON body when there was one; otherwise the (truncated) text. */
  readonly body: unknown;
}

/** Network-level outcome: the request may or may not have reached Teams. */
export interface ConnectorFailure {
  readonly kind: 'timeout' | 'reset' | 'connect' | 'other';
  readonly message: string;
}

const RETRYABLE = new Set([412, 429, 502, 503, 504]);
/**
 * 403 codes that say the conversation itself cannot receive from the bot (bot-connector.md §7):
 * blocked, removed, disabled by the admin, not installed. Any other 403 (NotEnoughPermissions,
 * BadArgument, or none) is about the one request, and must not stop later jobs to the conversation.
 */
const CONVERSATION_REFUSALS = new Set([
  'BotDisabledByAdmin',
  'BotNotInConversationRoster',
  'ConversationBlockedByUser',
  'ForbiddenOperationException',
  'MessageWritesBlocked',
]);
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** A header of the answer; undici (and every client here) gives header names in lower case. */
function header(headers: ConnectorAnswer['headers'], lowerCaseName: string): string | undefined {
  const value = headers[lowerCaseName];
  return Array.isArray(value) ? value[0] : value;
}

/** `Retry-After` in seconds or as an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (value === undefined) return undefined;
  // A blank value matches neither form below.
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(Math.round(Number(trimmed) * 1000), MAX_RETRY_AFTER_MS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now.getTime()), MAX_RETRY_AFTER_MS);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The Teams error code in any of the body shapes seen: `{error:{code,message}}` (ErrorResponse),
 * `{code,message}`, and MessageWritesBlocked's `{errorCode:209, message:"{\"subCode\":...}"}`.
 */
export function errorCodeOf(body: unknown): { code?: string; message?: string } {
  if (!isRecord(body)) return {};
  if (isRecord(body.error)) {
    const inner = body.error;
    return {
      code: typeof inner.code === 'string' ? inner.code : undefined,
      message: typeof inner.message === 'string' ? inner.message : undefined,
    };
  }
  if (typeof body.message === 'string') {
    try {
      const nested = JSON.parse(body.message) as unknown;
      if (isRecord(nested) && typeof nested.subCode === 'string') {
        return { code: nested.subCode, message: typeof nested.details === 'string' ? nested.details : undefined };
      }
    } catch {
      // A plain message, not JSON: the plain shape below.
    }
    return { code: typeof body.code === 'string' ? body.code : undefined, message: body.message };
  }
  return { code: typeof body.code === 'string' ? body.code : undefined };
}

function describe(status: number, code: string | undefined, message: string | undefined): string {
  const text = message === undefined ? '' : `: ${message.slice(0, 300)}`;
  return `HTTP ${status}${code === undefined ? '' : ` ${code}`}${text}`;
}

export interface DecideOptions {
  readonly now: Date;
  /** True when this attempt already followed a token refresh after a 401. */
  readonly tokenRefreshed: boolean;
  /** True when this attempt already went to the GCC host after InvalidBotApiHost. */
  readonly onGccHost: boolean;
}

export function decide(answer: ConnectorAnswer, options: DecideOptions): Decision {
  const { status } = answer;
  if (status >= 200 && status < 300) {
    const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
    return id === undefined ? { kind: 'sent' } : { kind: 'sent', activityId: id };
  }
  const { code, message } = errorCodeOf(answer.body);
  const reason = describe(status, code, message);

  if (RETRYABLE.has(status)) {
    const retryAfterMs = parseRetryAfter(header(answer.headers, 'retry-after'), options.now);
    return {
      kind: 'retry',
      code: code ?? (status === 429 ? 'Throttled' : status === 412 ? 'PreconditionFailed' : `HTTP${status}`),
      reason,
      throttled: status === 429,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  if (status === 401) {
    return options.tokenRefreshed
      ? {
          kind: 'fail',
          code: code ?? 'Unauthorized',
          reason: `${reason} (after a token refresh: check MicrosoftAppId, the credential and MicrosoftAppType/MicrosoftAppTenantId)`,
          undeliverable: false,
        }
      : { kind: 'refreshToken', code: code ?? 'Unauthorized', reason };
  }
  if (status === 403 && code === 'InvalidBotApiHost' && !options.onGccHost) {
    return { kind: 'retryOnGcc', code, reason };
  }
  // A conversation-level 403 and a 404 (conversation gone) say the conversation cannot receive:
  // the sender remembers it on the reference (for a new message to the conversation itself).
  const undeliverable = status === 404 || (status === 403 && code !== undefined && CONVERSATION_REFUSALS.has(code));
  return { kind: 'fail', code: code ?? `HTTP${status}`, reason, undeliverable };
}

/** Network failures: transient. A timeout or reset may hide a delivered message (the ambiguous window). */
export function decideFailure(failure: ConnectorFailure): Decision {
  return {
    kind: 'retry',
    code: `Network${failure.kind[0]!.toUpperCase()}${failure.kind.slice(1)}`,
    reason: failure.message,
    throttled: false,
  };
}

export interface BackoffOptions {
  /** Delay after the first failure; default 2 s. */
  readonly baseMs?: number;
  /** Upper bound; default 5 min. */
  readonly maxMs?: number;
  /** Uniform random in [0, 1). */
  readonly random: () => number;
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread but progress. */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  const base = options.baseMs ?? 2_000;
  const max = options.maxMs ?? 5 * 60_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (options.random() * ceiling) / 2);
}
