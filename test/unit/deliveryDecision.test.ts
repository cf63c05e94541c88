import { describe, expect, it } from 'vitest';
import { backoffMs, decide, decideFailure, errorCodeOf, parseRetryAfter } from '../../src/core/deliveryDecision';

const now = new Date('2026-11-25T10:00:00.000Z');
const opts = { now, tokenRefreshed: false, onGccHost: false };
const answer = (status: number, body: unknown = '', headers: Record<string, string> = {}) => ({ status, body, headers });
const teamsError = (code: string, message = 'msg') => ({ error: { code, message } });

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, never negative', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('errorCodeOf', () => {
  it('reads the ErrorResponse shape, the flat shape and MessageWritesBlocked', () => {
    expect(errorCodeOf(teamsError('ConversationBlockedByUser', 'User blocked'))).toEqual({ code: 'ConversationBlockedByUser', message: 'User blocked' });
    expect(errorCodeOf({ errorCode: 209, message: '{\r\n  "subCode": "MessageWritesBlocked",\r\n  "details": "Thread is blocked from message writes.",\r\n  "errorCode": null,\r\n  "errorSubCode": null\r\n}' })).toEqual({
      code: 'MessageWritesBlocked',
      message: 'Thread is blocked from message writes.',
    });
    expect(errorCodeOf('<html>')).toEqual({});
  });
});

describe('decide', () => {
  it('2xx is sent, with the activity id', () => {
    expect(decide(answer(201, { id: '1:abc' }), opts)).toEqual({ kind: 'sent', activityId: '1:abc' });
    expect(decide(answer(200, ''), opts)).toEqual({ kind: 'sent' });
  });

  it.each([429, 412, 502, 503, 504])('%i is transient', (status) => {
    expect(decide(answer(status), opts)).toMatchObject({ kind: 'retry', throttled: status === 429 });
  });

  it('429 honours Retry-After', () => {
    expect(decide(answer(429, teamsError('Throttled'), { 'retry-after': '2' }), opts)).toEqual({ kind: 'retry', code: 'Throttled', reason: 'HTTP 429 Throttled: msg', throttled: true, retryAfterMs: 2000 });
  });

  it.each(['ConversationBlockedByUser', 'BotNotInConversationRoster', 'BotDisabledByAdmin', 'ForbiddenOperationException'])('403 %s is permanent and marks the conversation', (code) => {
    expect(decide(answer(403, teamsError(code)), opts)).toMatchObject({ kind: 'fail', code, undeliverable: true });
  });

  it.each([['NotEnoughPermissions'], ['BadArgument'], [undefined]])('403 %s refuses this request only: permanent, the conversation stays deliverable', (code) => {
    expect(decide(answer(403, code === undefined ? '' : teamsError(code)), opts)).toMatchObject({ kind: 'fail', undeliverable: false });
  });

  it('403 MessageWritesBlocked in its odd body shape is permanent', () => {
    const body = { errorCode: 209, message: JSON.stringify({ subCode: 'MessageWritesBlocked', details: 'Thread is blocked from message writes.' }) };
    expect(decide(answer(403, body), opts)).toMatchObject({ kind: 'fail', code: 'MessageWritesBlocked', undeliverable: true });
  });

  it('404 is permanent and marks the conversation; 400 and 413 are permanent only', () => {
    expect(decide(answer(404, teamsError('ConversationNotFound')), opts)).toMatchObject({ kind: 'fail', code: 'ConversationNotFound', undeliverable: true });
    expect(decide(answer(400, teamsError('BadArgument')), opts)).toMatchObject({ kind: 'fail', undeliverable: false });
    expect(decide(answer(413, teamsError('MessageSizeTooBig')), opts)).toMatchObject({ kind: 'fail', code: 'MessageSizeTooBig', undeliverable: false });
    expect(decide(answer(500, teamsError('ServiceError')), opts)).toMatchObject({ kind: 'fail', code: 'ServiceError' });
  });

  it('401 refreshes the token once, then fails loudly', () => {
    expect(decide(answer(401), opts)).toMatchObject({ kind: 'refreshToken' });
    expect(decide(answer(401), { ...opts, tokenRefreshed: true })).toMatchObject({ kind: 'fail', undeliverable: false });
  });

  it('403 InvalidBotApiHost retries once on the GCC host', () => {
    expect(decide(answer(403, teamsError('InvalidBotApiHost')), opts)).toMatchObject({ kind: 'retryOnGcc' });
    expect(decide(answer(403, teamsError('InvalidBotApiHost')), { ...opts, onGccHost: true })).toMatchObject({ kind: 'fail' });
  });

  it('network failures are transient', () => {
    expect(decideFailure({ kind: 'timeout', message: 'no response headers before the timeout' })).toMatchObject({ kind: 'retry', code: 'NetworkTimeout' });
    expect(decideFailure({ kind: 'reset', message: 'reset' })).toMatchObject({ kind: 'retry', code: 'NetworkReset' });
  });
});

describe('backoffMs', () => {
  it('grows exponentially with jitter inside [ceiling/2, ceiling], capped', () => {
    expect(backoffMs(1, { random: () => 0 })).toBe(1000);
    expect(backoffMs(1, { random: () => 0.999999 })).toBe(2000);
    expect(backoffMs(3, { random: () => 0 })).toBe(4000);
    expect(backoffMs(30, { random: () => 0.5 })).toBe(225_000);
  });
});
