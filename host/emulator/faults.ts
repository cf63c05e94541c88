/**
 * Faults the Bot Connector stub can inject, with the status codes and bodies of bot-connector.md §7,
 * plus a seeded random fault mode whose runs replay exactly (same seed + same request order).
 */
import type { ErrorResponse } from './types';

function errorResponse(code: string, message: string): ErrorResponse {
  return { error: { code, message } };
}

export interface CannedError {
  readonly status: number;
  readonly body: unknown;
}

/**
 * Error responses from §7, bodies in the ErrorResponse shape `{error:{code,message}}` except
 * MessageWritesBlocked, whose body is copied verbatim from §7 (its `message` is a JSON string).
 */
export const TEAMS_ERRORS = Object.freeze({
  BadArgument: { status: 400, body: errorResponse('BadArgument', 'Invalid request payload') },
  BotNotRegistered: { status: 401, body: errorResponse('BotNotRegistered', 'No registration found for this bot.') },
  BotDisabledByAdmin: { status: 403, body: errorResponse('BotDisabledByAdmin', 'The tenant admin disabled this bot') },
  BotNotInConversationRoster: {
    status: 403,
    body: errorResponse('BotNotInConversationRoster', "The bot isn't part of the conversation roster."),
  },
  ConversationBlockedByUser: {
    status: 403,
    body: errorResponse('ConversationBlockedByUser', 'User blocked the conversation with the bot.'),
  },
  ForbiddenOperationException: {
    status: 403,
    body: errorResponse('ForbiddenOperationException', "Bot isn't installed in user's personal scope"),
  },
  InvalidBotApiHost: {
    status: 403,
    body: errorResponse(
      'InvalidBotApiHost',
      'Invalid bot api host. For GCC tenants, call https://smba.infra.gcc.teams.microsoft.com',
    ),
  },
  NotEnoughPermissions: {
    status: 403,
    body: errorResponse('NotEnoughPermissions', 'The bot does not have enough permissions for this operation.'),
  },
  MessageWritesBlocked: {
    status: 403,
    body: {
      errorCode: 209,
      message:
        '{\r\n  "subCode": "MessageWritesBlocked",\r\n  "details": "Thread is blocked from message writes.",\r\n  "errorCode": null,\r\n  "errorSubCode": null\r\n}',
    },
  },
  /** §7 / §11 #3: a reference stored under another bot id, or a mangled id. */
  FailedToDecryptConversationId: {
    status: 403,
    body: errorResponse('BadArgument', 'Failed to decrypt conversation id'),
  },
  ActivityNotFoundInConversation: {
    status: 404,
    body: errorResponse('ActivityNotFoundInConversation', 'Activity not found in conversation.'),
  },
  ConversationNotFound: { status: 404, body: errorResponse('ConversationNotFound', 'Conversation not found.') },
  MemberNotFoundInConversation: {
    status: 404,
    body: errorResponse('MemberNotFoundInConversation', 'Member not found in conversation.'),
  },
  PreconditionFailed: {
    status: 412,
    body: errorResponse('PreconditionFailed', 'Precondition failed, please try again.'),
  },
  MessageSizeTooBig: { status: 413, body: errorResponse('MessageSizeTooBig', 'Message size too big.') },
  Throttled: { status: 429, body: errorResponse('Throttled', 'Too many requests.') },
  ServiceError: { status: 500, body: errorResponse('ServiceError', 'Internal server error.') },
  BadGateway: { status: 502, body: errorResponse('ServiceError', 'Bad gateway.') },
  ServiceUnavailable: { status: 503, body: errorResponse('ServiceUnavailable', 'Service unavailable.') },
  GatewayTimeout: { status: 504, body: errorResponse('GatewayTimeout', 'Gateway timeout.') },
} satisfies Record<string, CannedError>);

export type TeamsErrorName = keyof typeof TEAMS_ERRORS;

/** How a 429's Retry-After is expressed (§4: seconds per the Teams doc; HTTP also allows a date). */
export type RetryAfterFormat = 'seconds' | 'http-date' | 'none';

export type Fault =
  /** 429 Throttled; `retryAfterSeconds` default 1. */
  | { readonly kind: 'throttle'; readonly retryAfterSeconds?: number; readonly format?: RetryAfterFormat }
  /** One of the canned §7 errors. */
  | { readonly kind: 'error'; readonly name: TeamsErrorName }
  /** Any status/body/headers. */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Wait, then apply `then` (or process normally). */
  | { readonly kind: 'delay'; readonly ms: number; readonly then?: Fault }
  /** Destroy the socket before doing anything: the message is NOT delivered. */
  | { readonly kind: 'drop' }
  /** Deliver (record the message as sent), then destroy the socket: the ambiguous window of §4. */
  | { readonly kind: 'dropAfterAccept' };

/** Shorthands: `Faults.throttle(3)`, `Faults.error('ConversationBlockedByUser')`, `Faults.drop()` ... */
export const Faults = Object.freeze({
  throttle: (retryAfterSeconds = 1, format: RetryAfterFormat = 'seconds'): Fault => ({
    kind: 'throttle',
    retryAfterSeconds,
    format,
  }),
  throttleHttpDate: (retryAfterSeconds = 1): Fault => ({ kind: 'throttle', retryAfterSeconds, format: 'http-date' }),
  throttleWithoutRetryAfter: (): Fault => ({ kind: 'throttle', format: 'none' }),
  error: (name: TeamsErrorName): Fault => ({ kind: 'error', name }),
  status: (status: number, body?: unknown, headers?: Record<string, string>): Fault => ({
    kind: 'status',
    status,
    ...(body === undefined ? {} : { body }),
    ...(headers === undefined ? {} : { headers }),
  }),
  delay: (ms: number, then?: Fault): Fault => ({ kind: 'delay', ms, ...(then ? { then } : {}) }),
  drop: (): Fault => ({ kind: 'drop' }),
  dropAfterAccept: (): Fault => ({ kind: 'dropAfterAccept' }),
});

export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case 'throttle':
      return `429 (Retry-After ${fault.format === 'none' ? 'absent' : `${fault.retryAfterSeconds ?? 1}s as ${fault.format ?? 'seconds'}`})`;
    case 'error':
      return `${TEAMS_ERRORS[fault.name].status} ${fault.name}`;
    case 'status':
      return `${fault.status}`;
    case 'delay':
      return `delay ${fault.ms}ms${fault.then ? ` then ${describeFault(fault.then)}` : ''}`;
    case 'drop':
      return 'drop';
    case 'dropAfterAccept':
      return 'drop after accept';
  }
}

/** A 32-bit seeded PRNG (mulberry32): tiny, fast and identical on every platform. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Fault kinds the random mode can pick, in the fixed order used to map one draw to one fault. */
export const RANDOM_FAULT_KINDS = [
  'throttle',
  'throttleHttpDate',
  'throttleNoRetryAfter',
  'preconditionFailed',
  'serviceError',
  'badGateway',
  'serviceUnavailable',
  'gatewayTimeout',
  'drop',
  'dropAfterAccept',
  'delay',
] as const;
export type RandomFaultKind = (typeof RANDOM_FAULT_KINDS)[number];

export interface RandomFaultOptions {
  readonly seed: number;
  /** Probability per request of each kind; the sum must be at most 1. */
  readonly probabilities: Partial<Record<RandomFaultKind, number>>;
  /** Retry-After of random 429s; default 1. */
  readonly retryAfterSeconds?: number;
  /** Delay of random `delay` faults; default 200. */
  readonly delayMs?: number;
}

/** Maps each request to a fault (or none) with exactly one PRNG draw, so runs replay. */
export class RandomFaultPlan {
  private readonly next: () => number;
  private readonly options: RandomFaultOptions;
  draws = 0;

  constructor(options: RandomFaultOptions) {
    const total = Object.values(options.probabilities).reduce((a: number, b) => a + (b ?? 0), 0);
    if (total > 1 + 1e-9) throw new Error(`Random fault probabilities add up to ${total} (> 1)`);
    for (const [kind, p] of Object.entries(options.probabilities)) {
      if (!(RANDOM_FAULT_KINDS as readonly string[]).includes(kind))
        throw new Error(`Unknown random fault kind "${kind}"`);
      if (p === undefined || p < 0) throw new Error(`Probability of "${kind}" must be >= 0`);
    }
    this.options = options;
    this.next = mulberry32(options.seed);
  }

  pick(): Fault | undefined {
    const r = this.next();
    this.draws += 1;
    let cumulative = 0;
    for (const kind of RANDOM_FAULT_KINDS) {
      cumulative += this.options.probabilities[kind] ?? 0;
      if (r < cumulative) return this.faultFor(kind);
    }
    return undefined;
  }

  private faultFor(kind: RandomFaultKind): Fault {
    const retryAfter = this.options.retryAfterSeconds ?? 1;
    switch (kind) {
      case 'throttle':
        return Faults.throttle(retryAfter);
      case 'throttleHttpDate':
        return Faults.throttleHttpDate(retryAfter);
      case 'throttleNoRetryAfter':
        return Faults.throttleWithoutRetryAfter();
      case 'preconditionFailed':
        return Faults.error('PreconditionFailed');
      case 'serviceError':
        return Faults.error('ServiceError');
      case 'badGateway':
        return Faults.error('BadGateway');
      case 'serviceUnavailable':
        return Faults.error('ServiceUnavailable');
      case 'gatewayTimeout':
        return Faults.error('GatewayTimeout');
      case 'drop':
        return Faults.drop();
      case 'dropAfterAccept':
        return Faults.dropAfterAccept();
      case 'delay':
        return Faults.delay(this.options.delayMs ?? 200);
    }
  }
}
