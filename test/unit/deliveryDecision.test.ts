import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  decide,
  decideFailure,
  errorCodeOf,
  parseRetryAfter,
  type Decision,
} from '../../src/core/deliveryDecision';

const now = new Date('2026-11-25T10:00:00.000Z');
const opts = { now, tokenRefreshed: false, onGccHost: false };
const answer = (status: number, body: unknown = '', headers: Record<string, string | string[]> = {}) => ({
  status,
  body,
  headers,
});
const teamsError = (code: string, message = 'msg') => ({ error: { code, message } });
const DAY_MS = 24 * 60 * 60 * 1000;

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, never negative', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('ignores surrounding blanks, treats a blank value as absent, and rounds to whole milliseconds', () => {
    expect(parseRetryAfter(' 4 ', now)).toBe(4000);
    expect(parseRetryAfter('  Wed, 25 Nov 2026 10:00:02 GMT ', now)).toBe(2000);
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('   ', now)).toBeUndefined();
    expect(parseRetryAfter('0.0004', now)).toBe(0);
    expect(parseRetryAfter('0.0006', now)).toBe(1);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('is seconds only when the whole value is a number: "3s", "3 4" and "1e3" are not', () => {
    for (const value of ['3s', '3 4', '1e3', '.5', '+3'])
      expect(parseRetryAfter(value, now), value).not.toBe(Number(value.replace(/s$/, '')) * 1000);
    expect(parseRetryAfter('3s', now)).toBeUndefined();
  });

  it('caps a wait at one day, in seconds and as a date', () => {
    expect(parseRetryAfter(String(DAY_MS / 1000 + 1), now)).toBe(DAY_MS);
    expect(parseRetryAfter(String(DAY_MS / 1000 - 1), now)).toBe(DAY_MS - 1000);
    expect(parseRetryAfter('Fri, 27 Nov 2026 10:00:00 GMT', now)).toBe(DAY_MS);
    expect(parseRetryAfter('Thu, 26 Nov 2026 09:59:59 GMT', now)).toBe(DAY_MS - 1000);
  });
});

describe('errorCodeOf', () => {
  it('reads the ErrorResponse shape, the flat shape and MessageWritesBlocked', () => {
    expect(errorCodeOf(teamsError('ConversationBlockedByUser', 'User blocked'))).toEqual({
      code: 'ConversationBlockedByUser',
      message: 'User blocked',
    });
    expect(
      errorCodeOf({
        errorCode: 209,
        message:
          '{\r\n  "subCode": "MessageWritesBlocked",\r\n  "details": "Thread is blocked from message writes.",\r\n  "errorCode": null,\r\n  "errorSubCode": null\r\n}',
      }),
    ).toEqual({
      code: 'MessageWritesBlocked',
      message: 'Thread is blocked from message writes.',
    });
    expect(errorCodeOf('<html>')).toEqual({});
  });

  it('takes only strings from each shape, and nothing from non-objects', () => {
    expect(errorCodeOf({ error: { code: 42, message: ['x'] } })).toEqual({ code: undefined, message: undefined });
    expect(errorCodeOf({ error: { code: 'C' } })).toEqual({ code: 'C', message: undefined });
    expect(errorCodeOf({ error: 'flat', code: 'Outer' })).toEqual({ code: 'Outer' });
    expect(errorCodeOf({ error: ['x'], code: 'Outer' })).toEqual({ code: 'Outer' });
    expect(errorCodeOf({ code: 'Flat', message: 'flat message' })).toEqual({ code: 'Flat', message: 'flat message' });
    expect(errorCodeOf({ code: 7, message: 'm' })).toEqual({ code: undefined, message: 'm' });
    expect(errorCodeOf({ code: 'OnlyCode' })).toEqual({ code: 'OnlyCode' });
    expect(errorCodeOf({ code: 7 })).toEqual({ code: undefined });
    expect(errorCodeOf({})).toEqual({ code: undefined });
    expect(errorCodeOf(null)).toEqual({});
    expect(errorCodeOf(undefined)).toEqual({});
    expect(errorCodeOf([{ code: 'InArray' }])).toEqual({});
    expect(errorCodeOf(403)).toEqual({});
  });

  it('reads a JSON message only when it has a string subCode; otherwise the message is plain text', () => {
    expect(errorCodeOf({ code: 'Outer', message: '  {"subCode":"Inner","details":"d"}  ' })).toEqual({
      code: 'Inner',
      message: 'd',
    });
    expect(errorCodeOf({ message: '{"subCode":"Inner","details":5}' })).toEqual({ code: 'Inner', message: undefined });
    expect(errorCodeOf({ code: 'Outer', message: '{"subCode":5}' })).toEqual({
      code: 'Outer',
      message: '{"subCode":5}',
    });
    expect(errorCodeOf({ code: 'Outer', message: '{"details":"no sub code"}' })).toEqual({
      code: 'Outer',
      message: '{"details":"no sub code"}',
    });
    expect(errorCodeOf({ code: 'Outer', message: '{not json' })).toEqual({ code: 'Outer', message: '{not json' });
    expect(errorCodeOf({ code: 'Outer', message: '["subCode"]' })).toEqual({ code: 'Outer', message: '["subCode"]' });
    expect(errorCodeOf({ code: 'Outer', message: 'x {"subCode":"Inner"}' })).toEqual({
      code: 'Outer',
      message: 'x {"subCode":"Inner"}',
    });
    expect(errorCodeOf({ message: 'null' })).toEqual({ code: undefined, message: 'null' });
    expect(errorCodeOf({ message: '{"subCode":null}' })).toEqual({ code: undefined, message: '{"subCode":null}' });
  });
});

describe('decide', () => {
  it('2xx is sent, with the activity id', () => {
    expect(decide(answer(201, { id: '1:abc' }), opts)).toEqual({ kind: 'sent', activityId: '1:abc' });
    expect(decide(answer(200, ''), opts)).toStrictEqual({ kind: 'sent' });
  });

  it('every 2xx is sent, and only 2xx; an id that is not a string is no id', () => {
    for (const status of [200, 201, 202, 204, 299])
      expect(decide(answer(status, { id: 'a' }), opts), String(status)).toEqual({ kind: 'sent', activityId: 'a' });
    for (const status of [199, 300, 301, 304])
      expect(decide(answer(status, { id: 'a' }), opts).kind, String(status)).toBe('fail');
    expect(decide(answer(201, { id: 5 }), opts)).toStrictEqual({ kind: 'sent' });
    expect(decide(answer(201, ['1:abc']), opts)).toStrictEqual({ kind: 'sent' });
    expect(decide(answer(201, null), opts)).toStrictEqual({ kind: 'sent' });
  });

  it.each([429, 412, 502, 503, 504])('%i is transient', (status) => {
    expect(decide(answer(status), opts)).toMatchObject({ kind: 'retry', throttled: status === 429 });
  });

  // The whole table, exactly (docs/delivery.md "Decide and record"): what is retried, what fails,
  // and what marks the conversation undeliverable.
  it.each<[string, number, unknown, Decision]>([
    [
      '429 Throttled',
      429,
      teamsError('Throttled'),
      { kind: 'retry', code: 'Throttled', reason: 'HTTP 429 Throttled: msg', throttled: true },
    ],
    ['429 without a body', 429, '', { kind: 'retry', code: 'Throttled', reason: 'HTTP 429', throttled: true }],
    [
      '412 without a body',
      412,
      '',
      { kind: 'retry', code: 'PreconditionFailed', reason: 'HTTP 412', throttled: false },
    ],
    [
      '412 PreconditionFailed',
      412,
      teamsError('PreconditionFailed'),
      { kind: 'retry', code: 'PreconditionFailed', reason: 'HTTP 412 PreconditionFailed: msg', throttled: false },
    ],
    ['502 without a body', 502, '', { kind: 'retry', code: 'HTTP502', reason: 'HTTP 502', throttled: false }],
    [
      '502 ServiceError',
      502,
      teamsError('ServiceError'),
      { kind: 'retry', code: 'ServiceError', reason: 'HTTP 502 ServiceError: msg', throttled: false },
    ],
    ['503 without a body', 503, '', { kind: 'retry', code: 'HTTP503', reason: 'HTTP 503', throttled: false }],
    ['504 without a body', 504, '', { kind: 'retry', code: 'HTTP504', reason: 'HTTP 504', throttled: false }],
    [
      '500 ServiceError',
      500,
      teamsError('ServiceError'),
      { kind: 'fail', code: 'ServiceError', reason: 'HTTP 500 ServiceError: msg', undeliverable: false },
    ],
    ['500 without a body', 500, '', { kind: 'fail', code: 'HTTP500', reason: 'HTTP 500', undeliverable: false }],
    ['501', 501, '', { kind: 'fail', code: 'HTTP501', reason: 'HTTP 501', undeliverable: false }],
    ['505', 505, '', { kind: 'fail', code: 'HTTP505', reason: 'HTTP 505', undeliverable: false }],
    [
      '400 BadArgument',
      400,
      teamsError('BadArgument'),
      { kind: 'fail', code: 'BadArgument', reason: 'HTTP 400 BadArgument: msg', undeliverable: false },
    ],
    [
      '400 ConversationBlockedByUser (not a 403)',
      400,
      teamsError('ConversationBlockedByUser'),
      {
        kind: 'fail',
        code: 'ConversationBlockedByUser',
        reason: 'HTTP 400 ConversationBlockedByUser: msg',
        undeliverable: false,
      },
    ],
    [
      '404 ConversationNotFound',
      404,
      teamsError('ConversationNotFound'),
      { kind: 'fail', code: 'ConversationNotFound', reason: 'HTTP 404 ConversationNotFound: msg', undeliverable: true },
    ],
    ['404 without a body', 404, '', { kind: 'fail', code: 'HTTP404', reason: 'HTTP 404', undeliverable: true }],
    ['405', 405, '', { kind: 'fail', code: 'HTTP405', reason: 'HTTP 405', undeliverable: false }],
    ['409', 409, '', { kind: 'fail', code: 'HTTP409', reason: 'HTTP 409', undeliverable: false }],
    [
      '413 MessageSizeTooBig',
      413,
      teamsError('MessageSizeTooBig'),
      { kind: 'fail', code: 'MessageSizeTooBig', reason: 'HTTP 413 MessageSizeTooBig: msg', undeliverable: false },
    ],
    [
      '403 NotEnoughPermissions',
      403,
      teamsError('NotEnoughPermissions'),
      {
        kind: 'fail',
        code: 'NotEnoughPermissions',
        reason: 'HTTP 403 NotEnoughPermissions: msg',
        undeliverable: false,
      },
    ],
    ['403 without a body', 403, '', { kind: 'fail', code: 'HTTP403', reason: 'HTTP 403', undeliverable: false }],
    [
      '403 ConversationBlockedByUser',
      403,
      teamsError('ConversationBlockedByUser'),
      {
        kind: 'fail',
        code: 'ConversationBlockedByUser',
        reason: 'HTTP 403 ConversationBlockedByUser: msg',
        undeliverable: true,
      },
    ],
    [
      '403 BotNotInConversationRoster',
      403,
      teamsError('BotNotInConversationRoster'),
      {
        kind: 'fail',
        code: 'BotNotInConversationRoster',
        reason: 'HTTP 403 BotNotInConversationRoster: msg',
        undeliverable: true,
      },
    ],
    [
      '403 BotDisabledByAdmin',
      403,
      teamsError('BotDisabledByAdmin'),
      { kind: 'fail', code: 'BotDisabledByAdmin', reason: 'HTTP 403 BotDisabledByAdmin: msg', undeliverable: true },
    ],
    [
      '403 ForbiddenOperationException',
      403,
      teamsError('ForbiddenOperationException'),
      {
        kind: 'fail',
        code: 'ForbiddenOperationException',
        reason: 'HTTP 403 ForbiddenOperationException: msg',
        undeliverable: true,
      },
    ],
    [
      '401 (first)',
      401,
      teamsError('BotNotRegistered'),
      { kind: 'refreshToken', code: 'BotNotRegistered', reason: 'HTTP 401 BotNotRegistered: msg' },
    ],
    ['401 without a body (first)', 401, '', { kind: 'refreshToken', code: 'Unauthorized', reason: 'HTTP 401' }],
    [
      '403 InvalidBotApiHost (first)',
      403,
      teamsError('InvalidBotApiHost'),
      { kind: 'retryOnGcc', code: 'InvalidBotApiHost', reason: 'HTTP 403 InvalidBotApiHost: msg' },
    ],
  ])('%s', (_label, status, body, expected) => {
    expect(decide(answer(status, body), opts)).toEqual(expected);
  });

  it('429 honours Retry-After', () => {
    expect(decide(answer(429, teamsError('Throttled'), { 'retry-after': '2' }), opts)).toEqual({
      kind: 'retry',
      code: 'Throttled',
      reason: 'HTTP 429 Throttled: msg',
      throttled: true,
      retryAfterMs: 2000,
    });
  });

  it('reads Retry-After on every transient answer, as seconds or a date, the first of repeated headers', () => {
    expect(decide(answer(503, '', { 'retry-after': '7' }), opts)).toMatchObject({ kind: 'retry', retryAfterMs: 7000 });
    expect(decide(answer(429, '', { 'retry-after': 'Wed, 25 Nov 2026 10:00:05 GMT' }), opts)).toMatchObject({
      kind: 'retry',
      retryAfterMs: 5000,
    });
    expect(decide(answer(429, '', { 'retry-after': ['3', '9'] }), opts)).toMatchObject({
      kind: 'retry',
      retryAfterMs: 3000,
    });
    expect(decide(answer(429, '', { 'retry-after': 'later' }), opts)).not.toHaveProperty('retryAfterMs');
    // A failure is final: a Retry-After on it changes nothing.
    expect(decide(answer(500, '', { 'retry-after': '7' }), opts)).toEqual({
      kind: 'fail',
      code: 'HTTP500',
      reason: 'HTTP 500',
      undeliverable: false,
    });
  });

  it("quotes at most 300 characters of Teams' message in the reason", () => {
    const long = 'x'.repeat(400);
    expect(decide(answer(400, teamsError('BadArgument', long)), opts)).toMatchObject({
      reason: `HTTP 400 BadArgument: ${'x'.repeat(300)}`,
    });
    expect(decide(answer(400, { message: 'plain' }), opts)).toMatchObject({
      code: 'HTTP400',
      reason: 'HTTP 400: plain',
    });
  });

  it.each([
    'ConversationBlockedByUser',
    'BotNotInConversationRoster',
    'BotDisabledByAdmin',
    'ForbiddenOperationException',
  ])('403 %s is permanent and marks the conversation', (code) => {
    expect(decide(answer(403, teamsError(code)), opts)).toMatchObject({ kind: 'fail', code, undeliverable: true });
  });

  it.each([['NotEnoughPermissions'], ['BadArgument'], [undefined]])(
    '403 %s refuses this request only: permanent, the conversation stays deliverable',
    (code) => {
      expect(decide(answer(403, code === undefined ? '' : teamsError(code)), opts)).toMatchObject({
        kind: 'fail',
        undeliverable: false,
      });
    },
  );

  it('403 MessageWritesBlocked in its odd body shape is permanent', () => {
    const body = {
      errorCode: 209,
      message: JSON.stringify({ subCode: 'MessageWritesBlocked', details: 'Thread is blocked from message writes.' }),
    };
    expect(decide(answer(403, body), opts)).toEqual({
      kind: 'fail',
      code: 'MessageWritesBlocked',
      reason: 'HTTP 403 MessageWritesBlocked: Thread is blocked from message writes.',
      undeliverable: true,
    });
  });

  it('404 is permanent and marks the conversation; 400, 413 and 500 are permanent and do not', () => {
    expect(decide(answer(404, teamsError('ConversationNotFound')), opts)).toMatchObject({
      kind: 'fail',
      code: 'ConversationNotFound',
      undeliverable: true,
    });
    expect(decide(answer(400, teamsError('BadArgument')), opts)).toMatchObject({ kind: 'fail', undeliverable: false });
    expect(decide(answer(413, teamsError('MessageSizeTooBig')), opts)).toMatchObject({
      kind: 'fail',
      code: 'MessageSizeTooBig',
      undeliverable: false,
    });
    // Teams documents 500 as not retryable; it says nothing about the conversation.
    expect(decide(answer(500, teamsError('ServiceError')), opts)).toMatchObject({
      kind: 'fail',
      code: 'ServiceError',
      undeliverable: false,
    });
  });

  it('401 refreshes the token once, then fails loudly', () => {
    expect(decide(answer(401), opts)).toMatchObject({ kind: 'refreshToken' });
    expect(decide(answer(401), { ...opts, tokenRefreshed: true })).toEqual({
      kind: 'fail',
      code: 'Unauthorized',
      reason:
        'HTTP 401 (after a token refresh: check MicrosoftAppId, the credential and MicrosoftAppType/MicrosoftAppTenantId)',
      undeliverable: false,
    });
    expect(decide(answer(401, teamsError('BotNotRegistered')), { ...opts, tokenRefreshed: true })).toMatchObject({
      kind: 'fail',
      code: 'BotNotRegistered',
      undeliverable: false,
    });
    // A refreshed token changes nothing else.
    expect(decide(answer(403, teamsError('InvalidBotApiHost')), { ...opts, tokenRefreshed: true })).toMatchObject({
      kind: 'retryOnGcc',
    });
    expect(decide(answer(503), { ...opts, tokenRefreshed: true })).toMatchObject({ kind: 'retry' });
  });

  it('403 InvalidBotApiHost retries once on the GCC host', () => {
    expect(decide(answer(403, teamsError('InvalidBotApiHost')), opts)).toMatchObject({ kind: 'retryOnGcc' });
    expect(decide(answer(403, teamsError('InvalidBotApiHost')), { ...opts, onGccHost: true })).toEqual({
      kind: 'fail',
      code: 'InvalidBotApiHost',
      reason: 'HTTP 403 InvalidBotApiHost: msg',
      undeliverable: false,
    });
    // Only a 403 says "wrong host".
    expect(decide(answer(400, teamsError('InvalidBotApiHost')), opts)).toMatchObject({
      kind: 'fail',
      undeliverable: false,
    });
    expect(decide(answer(401, teamsError('InvalidBotApiHost')), { ...opts, onGccHost: false })).toMatchObject({
      kind: 'refreshToken',
    });
  });

  it('network failures are transient', () => {
    expect(decideFailure({ kind: 'timeout', message: 'no response headers before the timeout' })).toEqual({
      kind: 'retry',
      code: 'NetworkTimeout',
      reason: 'no response headers before the timeout',
      throttled: false,
    });
    expect(decideFailure({ kind: 'reset', message: 'reset' })).toEqual({
      kind: 'retry',
      code: 'NetworkReset',
      reason: 'reset',
      throttled: false,
    });
    expect(decideFailure({ kind: 'connect', message: 'refused' })).toEqual({
      kind: 'retry',
      code: 'NetworkConnect',
      reason: 'refused',
      throttled: false,
    });
    expect(decideFailure({ kind: 'other', message: 'x' })).toMatchObject({ kind: 'retry', code: 'NetworkOther' });
  });
});

describe('backoffMs', () => {
  it('grows exponentially with jitter inside [ceiling/2, ceiling], capped', () => {
    expect(backoffMs(1, { random: () => 0 })).toBe(1000);
    expect(backoffMs(1, { random: () => 0.999999 })).toBe(2000);
    expect(backoffMs(3, { random: () => 0 })).toBe(4000);
    expect(backoffMs(30, { random: () => 0.5 })).toBe(225_000);
  });

  it('doubles per attempt from the base (2 s by default) up to the cap (5 min by default)', () => {
    const ceiling = (attempt: number, options: { baseMs?: number; maxMs?: number } = {}) =>
      backoffMs(attempt, { ...options, random: () => 1 });
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((a) => ceiling(a))).toEqual([
      2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000,
    ]);
    expect(ceiling(0)).toBe(2000);
    expect(ceiling(-3)).toBe(2000);
    expect([1, 2, 3].map((a) => ceiling(a, { baseMs: 500 }))).toEqual([500, 1000, 2000]);
    expect([1, 2, 3].map((a) => ceiling(a, { baseMs: 500, maxMs: 1500 }))).toEqual([500, 1000, 1500]);
    expect(backoffMs(2, { baseMs: 1000, random: () => 0.5 })).toBe(1500);
  });
});
