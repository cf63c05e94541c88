import { describe, expect, it } from 'vitest';
import {
  BATCH_MAX_MEMBERS_PER_REQUEST,
  batchRequestBody,
  belowBatchMinimum,
  chunkMembers,
  uniqueMembers,
} from '../../src/core/batch';
import {
  nextContinuationToken,
  parseFailedEntriesPage,
  parseOperationState,
  parseSendResponse,
  retryAfterMsOf,
  sumProgress,
  toProgress,
  type OperationState,
} from '../../src/core/batchState';

const now = new Date('2026-11-25T10:00:00.000Z');
const ids = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const activity = { type: 'message', text: 'hi' };

describe('chunkMembers', () => {
  it('keeps a list within the limit as one request, and an empty list as none', () => {
    expect(chunkMembers(ids(100))).toEqual([ids(100)]);
    expect(chunkMembers([])).toEqual([]);
    expect(chunkMembers(['  ', ''])).toEqual([]);
  });

  it('splits into as few requests as the limit allows, balanced so none falls below the minimum', () => {
    const chunks = chunkMembers(ids(205));
    expect(chunks.map((c) => c.length)).toEqual([69, 68, 68]);
    expect(chunks.flat()).toEqual(ids(205));
    expect(chunkMembers(ids(101)).map((c) => c.length)).toEqual([51, 50]);
    expect(chunkMembers(ids(12), { maxPerRequest: 10 }).map((c) => c.length)).toEqual([6, 6]);
    expect(chunkMembers(ids(2001), { maxPerRequest: 1000 }).map((c) => c.length)).toEqual([667, 667, 667]);
    for (let n = 5; n <= 450; n += 1) {
      const sizes = chunkMembers(ids(n), { maxPerRequest: 10, minPerRequest: 5 }).map((c) => c.length);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(5);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(10);
      expect(sizes.reduce((a, b) => a + b)).toBe(n);
      expect(sizes.length).toBe(Math.ceil(n / 10));
    }
  });

  it('drops duplicates (Entra object ids in any case) and blanks, keeping the first spelling', () => {
    const guid = '6F2C1A4E-1B7D-4C38-9D5E-0000000000A1';
    expect(uniqueMembers([guid, guid.toLowerCase(), ' 29:1a ', '29:1a', '29:1A', ''])).toEqual([
      guid,
      '29:1a',
      '29:1A',
    ]);
    expect(chunkMembers([...ids(6), 'u0', 'u1'], { maxPerRequest: 10 })).toEqual([ids(6)]);
  });

  it('refuses limits outside 1..1000 or below twice the minimum', () => {
    expect(() => chunkMembers(ids(3), { maxPerRequest: 0 })).toThrow(RangeError);
    expect(() => chunkMembers(ids(3), { maxPerRequest: BATCH_MAX_MEMBERS_PER_REQUEST + 1 })).toThrow(/1 to 1000/);
    expect(() => chunkMembers(ids(3), { maxPerRequest: 1.5 })).toThrow(RangeError);
    expect(() => chunkMembers(ids(3), { maxPerRequest: 9, minPerRequest: 5 })).toThrow(/minPerRequest/);
    expect(() => chunkMembers(ids(3), { minPerRequest: 0 })).toThrow(/minPerRequest/);
    expect(chunkMembers(ids(3), { maxPerRequest: 2, minPerRequest: 1 }).map((c) => c.length)).toEqual([2, 1]);
  });

  it('says when a list is too short for a batch', () => {
    expect(belowBatchMinimum(ids(4))).toBe(true);
    expect(belowBatchMinimum(['a', 'a', 'b', 'c', 'd', 'e'])).toBe(false);
    expect(belowBatchMinimum(['a', 'a', 'b', 'c', 'd'])).toBe(true);
    expect(belowBatchMinimum(ids(2), 2)).toBe(false);
  });
});

describe('batchRequestBody', () => {
  it('builds the body each kind takes', () => {
    expect(batchRequestBody({ kind: 'users', tenantId: 't', activity, members: ['29:a', 'b'] })).toEqual({
      activity,
      members: [{ id: '29:a' }, { id: 'b' }],
      tenantId: 't',
    });
    expect(batchRequestBody({ kind: 'channels', tenantId: 't', activity, members: ['19:c'] })).toEqual({
      activity,
      members: [{ id: '19:c' }],
      tenantId: 't',
    });
    expect(batchRequestBody({ kind: 'tenant', tenantId: 't', activity })).toEqual({ activity, tenantId: 't' });
    expect(batchRequestBody({ kind: 'team', tenantId: 't', activity, teamId: '19:team' })).toEqual({
      activity,
      tenantId: 't',
      teamId: '19:team',
    });
  });

  it('refuses a request that does not fit its kind', () => {
    expect(() => batchRequestBody({ kind: 'users', tenantId: ' ', activity, members: ['a'] })).toThrow(/tenantId/);
    expect(() => batchRequestBody({ kind: 'users', tenantId: 't', activity, members: [] })).toThrow(/members/);
    expect(() => batchRequestBody({ kind: 'channels', tenantId: 't', activity })).toThrow(/members/);
    expect(() => batchRequestBody({ kind: 'users', tenantId: 't', activity, members: ['a'], teamId: 'x' })).toThrow(
      /teamId/,
    );
    expect(() => batchRequestBody({ kind: 'tenant', tenantId: 't', activity, members: ['a'] })).toThrow(/nobody/);
    expect(() => batchRequestBody({ kind: 'tenant', tenantId: 't', activity, teamId: 'x' })).toThrow(/nobody/);
    expect(() => batchRequestBody({ kind: 'team', tenantId: 't', activity })).toThrow(/teamId/);
    expect(() => batchRequestBody({ kind: 'team', tenantId: 't', activity, teamId: ' ' })).toThrow(/teamId/);
    expect(() => batchRequestBody({ kind: 'team', tenantId: 't', activity, teamId: 'x', members: ['a'] })).toThrow(
      /no members/,
    );
  });
});

describe('parseSendResponse', () => {
  it('reads {operationId} and its spellings', () => {
    expect(parseSendResponse({ operationId: 'op-1' })).toBe('op-1');
    expect(parseSendResponse({ OperationId: ' op-2 ' })).toBe('op-2');
    expect(parseSendResponse({ id: 'op-3' })).toBe('op-3');
    expect(parseSendResponse({ Id: 'op-4' })).toBe('op-4');
  });

  it('reads a bare id, as parsed JSON, JSON text or plain text (the .NET SDKs)', () => {
    expect(parseSendResponse('operation-1')).toBe('operation-1');
    expect(parseSendResponse('"operation-2"')).toBe('operation-2');
    expect(parseSendResponse('{"operationId":"operation-3"}')).toBe('operation-3');
    expect(parseSendResponse(' operation-4\n')).toBe('operation-4');
  });

  it('names no id for empty, malformed or unusable answers', () => {
    for (const body of [undefined, null, '', '  ', '"', '{bad', 42, [], {}, { operationId: '' }, { operationId: 7 }]) {
      expect(parseSendResponse(body)).toBeUndefined();
    }
    expect(parseSendResponse('op\u0000x')).toBeUndefined();
    expect(parseSendResponse('x'.repeat(1025))).toBeUndefined();
  });
});

describe('parseOperationState', () => {
  it('reads statusMap keyed by HTTP status: 2xx sent, 429 throttled, others failed', () => {
    const state = parseOperationState(
      {
        state: 'Ongoing',
        statusMap: { '201': 5, '200': 1, '429': 2, '403': 3, '404': 1, '500': 1 },
        totalEntriesCount: 20,
        retryAfter: '2026-11-25T10:00:05.000Z',
      },
      now,
    );
    expect(state).toEqual({
      state: 'Ongoing',
      finished: false,
      totalEntries: 20,
      sent: 6,
      failed: 5,
      throttled: 2,
      retryAfterMs: 5000,
    });
  });

  it('reads the typo stateMap (botbuilder-js), PascalCase, named counters (teams.net) and 0..3 indexes', () => {
    expect(parseOperationState({ state: 'Completed', stateMap: { 201: 4, 403: 1 } }, now)).toMatchObject({
      finished: true,
      sent: 4,
      failed: 1,
      throttled: 0,
    });
    expect(
      parseOperationState({ State: 'Ongoing', StatusMap: { 201: 1 }, TotalEntriesCount: 3, RetryAfter: 2 }, now),
    ).toMatchObject({ state: 'Ongoing', sent: 1, totalEntries: 3, retryAfterMs: 2000 });
    expect(
      parseOperationState(
        { state: 'Ongoing', statusMap: { success: 3, Failed: 1, throttled: 2, pending: 4 }, totalEntriesCount: 10 },
        now,
      ),
    ).toEqual({ state: 'Ongoing', finished: false, totalEntries: 10, sent: 3, failed: 1, throttled: 2, pending: 4 });
    expect(parseOperationState({ state: 'Ongoing', statusMap: { '0': 2, '1': 1, '2': 1, '3': 5 } }, now)).toMatchObject(
      { sent: 2, failed: 1, throttled: 1, pending: 5 },
    );
  });

  it('ignores unknown keys, bad counts and missing parts', () => {
    expect(
      parseOperationState(
        { state: 'Ongoing', statusMap: { '201': '3', '403': -1, '404': 1.5, foo: 9, '42': 1, '700': 2, '429': 'x' } },
        now,
      ),
    ).toEqual({ state: 'Ongoing', finished: false, sent: 3, failed: 0, throttled: 0 });
    expect(parseOperationState({}, now)).toEqual({ state: '', finished: false, sent: 0, failed: 0, throttled: 0 });
    expect(parseOperationState({ state: 7, statusMap: [1, 2] }, now)).toMatchObject({ state: '', sent: 0 });
    expect(parseOperationState('Completed', now)).toBeUndefined();
    expect(parseOperationState(null, now)).toBeUndefined();
    expect(parseOperationState([], now)).toBeUndefined();
  });

  it('knows the terminal states, in any case', () => {
    for (const state of ['Completed', 'FAILED', 'cancelled', 'Canceled'])
      expect(parseOperationState({ state }, now)?.finished).toBe(true);
    for (const state of ['Ongoing', 'NotStarted', 'Running', ''])
      expect(parseOperationState({ state }, now)?.finished).toBe(false);
  });
});

describe('retryAfterMsOf', () => {
  it('turns a future date or seconds into a wait; past, bad or absent values into none', () => {
    expect(retryAfterMsOf('2026-11-25T10:00:01.500Z', now)).toBe(1500);
    expect(retryAfterMsOf('Wed, 25 Nov 2026 10:00:03 GMT', now)).toBe(3000);
    expect(retryAfterMsOf(1.5, now)).toBe(1500);
    expect(retryAfterMsOf('2026-11-25T09:00:00Z', now)).toBeUndefined();
    expect(retryAfterMsOf('0001-01-01T00:00:00', now)).toBeUndefined();
    expect(retryAfterMsOf(0, now)).toBeUndefined();
    expect(retryAfterMsOf('soon', now)).toBeUndefined();
    expect(retryAfterMsOf(' ', now)).toBeUndefined();
    expect(retryAfterMsOf(Number.NaN, now)).toBeUndefined();
    expect(retryAfterMsOf(undefined, now)).toBeUndefined();
    expect(retryAfterMsOf('2027-11-25T10:00:00Z', now)).toBe(24 * 60 * 60 * 1000);
  });
});

describe('parseFailedEntriesPage', () => {
  it('reads failedEntries (.NET) with a continuation token', () => {
    expect(
      parseFailedEntriesPage({
        failedEntries: [
          { id: '29:a', error: 'BotNotInConversationRoster' },
          { id: '29:b', error: 'ConversationBlockedByUser' },
        ],
        continuationToken: 'tok-2',
      }),
    ).toEqual({
      entries: [
        { id: '29:a', error: 'BotNotInConversationRoster' },
        { id: '29:b', error: 'ConversationBlockedByUser' },
      ],
      continuationToken: 'tok-2',
    });
  });

  it('reads failedEntryResponses (JS) with Id or entryId, and any error form', () => {
    expect(
      parseFailedEntriesPage({
        failedEntryResponses: [
          { Id: '29:a', error: { code: 'Forbidden', message: 'no' } },
          { entryId: '29:b', error: { message: 'gone' } },
          { id: '29:c', Error: 404 },
          { id: '29:d', error: { other: 1 } },
          { id: '29:e' },
          { id: '29:f', error: '  ' },
          { error: 'no id' },
          'junk',
        ],
        continuationToken: null,
      }),
    ).toEqual({
      entries: [
        { id: '29:a', error: 'Forbidden' },
        { id: '29:b', error: 'gone' },
        { id: '29:c', error: '404' },
        { id: '29:d', error: '{"other":1}' },
        { id: '29:e', error: 'Unknown' },
        { id: '29:f', error: 'Unknown' },
      ],
    });
  });

  it('treats a blank token as the last page, truncates long errors, and refuses non-objects', () => {
    const page = parseFailedEntriesPage({
      FailedEntries: [{ id: 'x', error: 'e'.repeat(500) }],
      ContinuationToken: '',
    });
    expect(page?.continuationToken).toBeUndefined();
    expect(page?.entries[0]?.error).toHaveLength(300);
    expect(parseFailedEntriesPage({})).toEqual({ entries: [] });
    expect(parseFailedEntriesPage({ failedEntries: 'none' })).toEqual({ entries: [] });
    expect(parseFailedEntriesPage('[]')).toBeUndefined();
    expect(parseFailedEntriesPage([])).toBeUndefined();
  });

  it('stops paging on the last page and on a token already followed', () => {
    const followed = new Set(['t1']);
    expect(nextContinuationToken({ entries: [], continuationToken: 't2' }, followed)).toBe('t2');
    expect(nextContinuationToken({ entries: [], continuationToken: 't1' }, followed)).toBeUndefined();
    expect(nextContinuationToken({ entries: [] }, followed)).toBeUndefined();
  });
});

describe('progress', () => {
  const base: OperationState = { state: 'Ongoing', finished: false, sent: 0, failed: 0, throttled: 0 };

  it('counts what is neither sent, failed nor throttled as pending while running', () => {
    expect(toProgress({ ...base, totalEntries: 10, sent: 3, failed: 1, throttled: 2 })).toEqual({
      total: 10,
      sent: 3,
      failed: 1,
      throttled: 2,
      pending: 4,
      skipped: 0,
      finished: false,
    });
  });

  it('uses the named pending count when there is no total, and the larger of total and counted', () => {
    expect(toProgress({ ...base, sent: 2, pending: 5 })).toMatchObject({ total: 7, pending: 5 });
    expect(toProgress({ ...base, totalEntries: 2, sent: 3, failed: 1 })).toMatchObject({ total: 4, pending: 0 });
    expect(toProgress(base)).toMatchObject({ total: 0, pending: 0, finished: false });
  });

  it('counts what a finished operation never processed as skipped (cancelled)', () => {
    expect(toProgress({ ...base, state: 'Cancelled', finished: true, totalEntries: 10, sent: 4, pending: 6 })).toEqual({
      total: 10,
      sent: 4,
      failed: 0,
      throttled: 0,
      pending: 0,
      skipped: 6,
      finished: true,
    });
  });

  it('sums operations: finished only when all are', () => {
    const a = toProgress({ ...base, state: 'Completed', finished: true, totalEntries: 5, sent: 4, failed: 1 });
    const b = toProgress({ ...base, totalEntries: 5, sent: 1, throttled: 1 });
    expect(sumProgress([a, b])).toEqual({
      total: 10,
      sent: 5,
      failed: 1,
      throttled: 1,
      pending: 3,
      skipped: 0,
      finished: false,
    });
    expect(sumProgress([a, a]).finished).toBe(true);
    expect(sumProgress([])).toEqual({
      total: 0,
      sent: 0,
      failed: 0,
      throttled: 0,
      pending: 0,
      skipped: 0,
      finished: true,
    });
  });
});
