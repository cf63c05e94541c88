/**
 * The edges of the small pure modules the sender leans on, each pinned where a one-character slip
 * would change what Teams receives or when: admission (ids, batches, tenants, sizes, schedules),
 * the outgoing activity, the sliding-window limiter, queue message sizes, and a tenant's share.
 */
import { describe, expect, it } from 'vitest';
import { admitJob, admitJobs, fromInternalId, isReservedJobId, toInternalId } from '../../src/core/admission';
import { conversationWindowsFor, tenantShare } from '../../src/core/budgetShare';
import { MAX_SCHEDULE_MS } from '../../src/core/job';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  MAX_ACTIVITY_UTF16_BYTES,
  toOutgoingActivity,
  utf16Size,
} from '../../src/core/outgoing';
import {
  MAX_ENVELOPED_JOB_BYTES,
  MAX_QUEUE_MESSAGE_BYTES,
  MAX_VISIBILITY_SECONDS,
  queueMessageBytes,
} from '../../src/core/queueMessage';
import {
  CONVERSATION_WINDOW_SAFETY_MS,
  CONVERSATION_WINDOWS,
  createRateLimiter,
  tenantWindows,
  WINDOW_SAFETY_MS,
} from '../../src/core/rateLimiter';
import { JobValidationError } from '../../src/errors';

const now = new Date('2026-12-07T08:00:00Z');
const newId = (): string => 'generated';
const to = { conversationId: 'a:1' };

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    if (err instanceof JobValidationError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

describe('admission', () => {
  it('gives a job without an id (or with "id": null) a new one, and keeps the body as written otherwise', () => {
    expect(admitJob({ to, text: 'x' }, { now, newId })).toMatchObject({
      id: 'generated',
      body: { id: 'generated', to, text: 'x' },
      delayMs: 0,
    });
    expect(admitJob({ id: null, to, text: 'x' }, { now, newId })).toMatchObject({ id: 'generated' });
    expect(admitJob({ id: 'mine', to, text: 'x' }, { now, newId })).toMatchObject({ id: 'mine', job: { id: 'mine' } });
  });

  it("puts a namespaced caller's ids, and the targets of its updates and deletes, in its namespace", () => {
    const submitter = { name: 'billing' };
    expect(admitJob({ id: 'j1', update: 'j0', text: 'x' }, { now, newId, submitter })).toMatchObject({
      id: 'j1',
      job: { id: 'billing:j1', target: 'billing:j0' },
      envelope: { jobId: 'billing:j1', caller: 'billing' },
    });
    expect(admitJob({ id: 'j2', delete: 'j0' }, { now, newId, submitter })).toMatchObject({
      job: { kind: 'delete', id: 'billing:j2', target: 'billing:j0' },
    });
    expect(admitJob({ id: 'j3', to, text: 'x' }, { now, newId, submitter }).job).not.toHaveProperty('target');
    expect(admitJob({ id: 'j4', delete: 'j0' }, { now, newId }).job).toMatchObject({ target: 'j0' });
    expect(toInternalId('j', undefined)).toBe('j');
    expect(fromInternalId('billing:j', submitter)).toBe('j');
    expect(fromInternalId('other:j', submitter)).toBeUndefined();
    expect(fromInternalId('other:j', undefined)).toBe('other:j');
  });

  it('wraps the job in an envelope with exactly what the sender needs', () => {
    expect(admitJob({ id: 'j', to, text: 'x' }, { now, newId }).envelope).toStrictEqual({ jobId: 'j', deferrals: 0 });
    expect(
      admitJob({ id: 'j', to, text: 'x' }, { now, newId, parentId: 'batch-1', submitter: { name: 'hr' } }).envelope,
    ).toStrictEqual({ jobId: 'hr:j', deferrals: 0, parentId: 'batch-1', caller: 'hr' });
    const admitted = admitJob({ id: 'j', to, text: 'x' }, { now, newId });
    expect(JSON.parse(admitted.queueText)).toStrictEqual({
      teamsCourier: { jobId: 'j', deferrals: 0 },
      job: { id: 'j', to, text: 'x' },
    });
  });

  it("refuses reserved ids next to the job's other problems, and what is not an object", () => {
    expect(problemsOf(() => admitJob({ id: 'welcome-1', to, text: 'x' }, { now, newId }))).toEqual([
      'id: is reserved for teams-courier\'s own jobs ("welcome-…", "…~<n>")',
    ]);
    expect(problemsOf(() => admitJob({ id: 'b~2', to }, { now, newId }))).toEqual([
      'text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)',
      'id: is reserved for teams-courier\'s own jobs ("welcome-…", "…~<n>")',
    ]);
    expect(problemsOf(() => admitJob('x', { now, newId }))).toEqual(['(job): must be a JSON object']);
    expect(problemsOf(() => admitJob([{ to, text: 'x' }], { now, newId }))).toEqual(['(job): must be a JSON object']);
    expect(isReservedJobId('welcome-')).toBe(true);
    expect(isReservedJobId('x-welcome-1')).toBe(false);
    expect(isReservedJobId('a~12')).toBe(true);
    expect(isReservedJobId('a~12b')).toBe(false);
    expect(isReservedJobId('a~')).toBe(false);
  });

  it('schedules up to 7 days ahead, from now, and no further', () => {
    const at = (ms: number) => new Date(now.getTime() + ms).toISOString();
    expect(admitJob({ to, text: 'x', notBefore: at(MAX_SCHEDULE_MS) }, { now, newId }).delayMs).toBe(MAX_SCHEDULE_MS);
    expect(admitJob({ to, text: 'x', notBefore: at(-60_000) }, { now, newId }).delayMs).toBe(0);
    expect(problemsOf(() => admitJob({ to, text: 'x', notBefore: at(MAX_SCHEDULE_MS + 1) }, { now, newId }))).toEqual([
      'notBefore: is more than 7 days ahead; a queue cannot hold a message that long',
    ]);
  });

  it('refuses a job that would not fit a queue message with its envelope, naming its size', () => {
    const fits =
      MAX_ENVELOPED_JOB_BYTES -
      queueMessageBytes(JSON.stringify({ teamsCourier: { jobId: 'j', deferrals: 0 }, job: { id: 'j', to, text: '' } }));
    expect(() => admitJob({ id: 'j', to, text: 'x'.repeat(fits) }, { now, newId })).not.toThrow();
    expect(problemsOf(() => admitJob({ id: 'j', to, text: 'x'.repeat(fits + 1) }, { now, newId }))).toEqual([
      `(job): is ${MAX_ENVELOPED_JOB_BYTES + 1} bytes as a queue message; a job must fit in ${MAX_ENVELOPED_JOB_BYTES} bytes (a queue message is 64 KiB, less room for retries)`,
    ]);
  });

  it('keeps a tenant-limited caller to its tenants, also for broadcasts', () => {
    const submitter = { name: 'hr', tenants: ['t-1'] };
    expect(() =>
      admitJob({ to: { aadObjectId: 'u', tenantId: 't-1' }, text: 'x' }, { now, newId, submitter }),
    ).not.toThrow();
    expect(
      problemsOf(() => admitJob({ to: { aadObjectId: 'u', tenantId: 't-2' }, text: 'x' }, { now, newId, submitter })),
    ).toEqual(['to.tenantId: is not a tenant this caller may reach']);
    expect(
      problemsOf(() =>
        admitJob({ to: { aadObjectIds: ['u'], tenantId: 't-2' }, text: 'x' }, { now, newId, submitter }),
      ),
    ).toEqual(['to.tenantId: is not a tenant this caller may reach']);
    expect(problemsOf(() => admitJob({ to: { allInstalled: true }, text: 'x' }, { now, newId, submitter }))).toEqual([
      'to.tenantId: is required: this caller may only reach some tenants',
    ]);
    expect(() =>
      admitJob({ to: { allInstalled: true, tenantId: 't-1' }, text: 'x' }, { now, newId, submitter }),
    ).not.toThrow();
    // A conversation id or a user without a tenant: checked when the target is resolved (the sender).
    expect(() => admitJob({ to, text: 'x' }, { now, newId, submitter })).not.toThrow();
    expect(() => admitJob({ to: { aadObjectIds: ['u'] }, text: 'x' }, { now, newId, submitter })).not.toThrow();
    expect(() => admitJob({ update: 'j0', text: 'x' }, { now, newId, submitter })).not.toThrow();
    expect(() =>
      admitJob({ to: { allInstalled: true }, text: 'x' }, { now, newId, submitter: { name: 'any' } }),
    ).not.toThrow();
  });

  it("admits a batch whole or not at all, each problem prefixed with the job's index", () => {
    const ok = admitJobs(
      [
        { id: 'a', to, text: 'x' },
        { to, text: 'y' },
      ],
      { now, newId, batchId: 'b-1' },
    );
    expect(ok).toMatchObject({
      jobs: [
        { id: 'a', envelope: { parentId: 'b-1' } },
        { id: 'generated', envelope: { parentId: 'b-1' } },
      ],
    });
    expect(admitJobs({ id: 'single', to, text: 'x' }, { now, newId, batchId: 'b-1' })).toMatchObject({
      jobs: [{ id: 'single', envelope: { jobId: 'single', deferrals: 0 } }],
    });
    expect(
      (admitJobs({ id: 'single', to, text: 'x' }, { now, newId, batchId: 'b-1' }) as { jobs: { envelope: object }[] })
        .jobs[0]!.envelope,
    ).not.toHaveProperty('parentId');
    expect(
      (admitJobs([{ id: 'a', to, text: 'x' }], { now, newId }) as { jobs: { envelope: object }[] }).jobs[0]!.envelope,
    ).not.toHaveProperty('parentId');
    expect(
      admitJobs([{ id: 'a', to, text: 'x' }, 'x', { id: 'a', to }, { id: 5, to, text: 'x' }], { now, newId }),
    ).toEqual({
      problems: [
        { path: '[1]', message: 'must be a JSON object' },
        { path: '[2].id', message: '"a" appears more than once in this request' },
        {
          path: '[2].text',
          message: 'a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)',
        },
        { path: '[3].id', message: 'must be a string (got number)' },
      ],
    });
    expect(
      admitJobs(
        [
          { id: 'a', to, text: 'x' },
          { id: 'a', to, text: 'x' },
        ],
        { now, newId, rootPath: '(file)' },
      ),
    ).toEqual({ problems: [{ path: '[1].id', message: '"a" appears more than once in this file' }] });
    expect(admitJobs({ to }, { now, newId })).toEqual({
      problems: [
        {
          path: 'text',
          message: 'a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)',
        },
      ],
    });
    expect(admitJobs('x', { now, newId })).toEqual({ problems: [{ path: '(job)', message: 'must be a JSON object' }] });
    expect(admitJobs([], { now, newId })).toEqual({ problems: [{ path: '(body)', message: 'is an empty array' }] });
    expect(admitJobs([], { now, newId, rootPath: '(file)' })).toEqual({
      problems: [{ path: '(file)', message: 'is an empty array' }],
    });
    const three = [
      { to, text: '1' },
      { to, text: '2' },
      { to, text: '3' },
    ];
    expect(admitJobs(three, { now, newId, maxJobs: 2 })).toEqual({
      problems: [{ path: '(body)', message: 'has 3 jobs; at most 2 per request' }],
    });
    expect(admitJobs(three.slice(0, 2), { now, newId, maxJobs: 2 })).toHaveProperty('jobs');
  });
});

describe('the outgoing activity', () => {
  const context = { botId: '28:bot', conversationId: 'a:1' };
  const content = { textFormat: 'markdown' as const, mentions: [] };

  it('speaks as the bot, in the conversation, with only what the job says', () => {
    expect(toOutgoingActivity({ ...content, text: 'hi' }, context)).toStrictEqual({
      type: 'message',
      from: { id: '28:bot' },
      conversation: { id: 'a:1' },
      text: 'hi',
      textFormat: 'markdown',
    });
    expect(
      toOutgoingActivity({ ...content, text: 'hi' }, { ...context, botName: 'Courier', tenantId: 't' }),
    ).toMatchObject({ from: { id: '28:bot', name: 'Courier' }, conversation: { id: 'a:1', tenantId: 't' } });
    const card = { type: 'AdaptiveCard' };
    expect(toOutgoingActivity({ ...content, adaptiveCard: card, summary: 's' }, context)).toStrictEqual({
      type: 'message',
      from: { id: '28:bot' },
      conversation: { id: 'a:1' },
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: card }],
      summary: 's',
    });
    expect(ADAPTIVE_CARD_CONTENT_TYPE).toBe('application/vnd.microsoft.card.adaptive');
  });

  it('tags each mention once, escaping the name, in front of the text when the author did not', () => {
    const mentions = [
      { id: '29:a', name: 'Ana & <Bo>' },
      { id: '29:c', name: 'Cy' },
    ];
    expect(toOutgoingActivity({ ...content, text: 'Hello <at>Cy</at>', mentions }, context)).toMatchObject({
      text: '<at>Ana &amp; &lt;Bo&gt;</at> Hello <at>Cy</at>',
      entities: [
        { type: 'mention', mentioned: { id: '29:a', name: 'Ana & <Bo>' }, text: '<at>Ana &amp; &lt;Bo&gt;</at>' },
        { type: 'mention', mentioned: { id: '29:c', name: 'Cy' }, text: '<at>Cy</at>' },
      ],
    });
    expect(
      toOutgoingActivity(
        {
          ...content,
          text: 'x',
          mentions: [
            { id: '1', name: 'A' },
            { id: '2', name: 'B' },
          ],
        },
        context,
      ),
    ).toMatchObject({ text: '<at>A</at> <at>B</at> x' });
  });

  it('merges raw fields last, but never where or as whom it speaks', () => {
    const activity = toOutgoingActivity(
      {
        ...content,
        text: 'hi',
        activity: {
          importance: 'high',
          text: 'raw',
          conversation: { id: 'a:evil' },
          from: { id: '28:evil' },
          summary: 'raw summary',
        },
      },
      context,
    );
    expect(activity).toMatchObject({
      importance: 'high',
      text: 'raw',
      summary: 'raw summary',
      conversation: { id: 'a:1' },
      from: { id: '28:bot' },
    });
  });

  it('measures the payload as UTF-16, against 100 KB', () => {
    expect(utf16Size({ a: 'é' })).toBe(JSON.stringify({ a: 'é' }).length * 2);
    expect(utf16Size('x')).toBe(6);
    expect(MAX_ACTIVITY_UTF16_BYTES).toBe(102_400);
  });
});

describe('the rate limiter, window by window', () => {
  function clock(start = 1_000_000) {
    let t = start;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  it('counts sends inside (now - window, now]: one that left exactly at the edge no longer counts', () => {
    const c = clock();
    const limiter = createRateLimiter({
      tenantWindows: [{ limit: 1000, windowMs: 1_000 }],
      conversationWindows: [{ limit: 2, windowMs: 1_000, marginMs: 0 }],
      now: c.now,
    });
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    c.advance(400);
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('a', 't')).toBe(600);
    expect(limiter.waitTime('a', 't')).toBe(600);
    c.advance(599);
    expect(limiter.tryAcquire('a', 't')).toBe(1);
    c.advance(1);
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    // Sends at +400 and +1000 are kept (the window's limit): both within 1000 ms and 601 ms, one within 600.
    expect(limiter.recentSends('a', 1_000)).toBe(2);
    expect(limiter.recentSends('a', 601)).toBe(2);
    expect(limiter.recentSends('a', 600)).toBe(1);
    expect(limiter.recentSends('nobody', 1_000)).toBe(0);
  });

  it('adds the safety margin of each scope unless a window names its own', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: [{ limit: 1, windowMs: 1_000 }], now: c.now });
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('b', 't')).toBe(1_000 + WINDOW_SAFETY_MS);
    expect(WINDOW_SAFETY_MS).toBe(75);
    expect(CONVERSATION_WINDOW_SAFETY_MS).toBe(150);
    expect(CONVERSATION_WINDOWS.map((w) => [w.limit, w.windowMs])).toEqual([
      [7, 1_000],
      [8, 2_000],
      [60, 30_000],
      [1800, 3_600_000],
    ]);
    expect(tenantWindows(50)).toEqual([
      { limit: 50, windowMs: 1_000 },
      { limit: 5, windowMs: 100, marginMs: 0 },
    ]);
    expect(tenantWindows(7)).toEqual([
      { limit: 7, windowMs: 1_000 },
      { limit: 1, windowMs: 100, marginMs: 0 },
    ]);
    expect(tenantWindows(11)[1]).toEqual({ limit: 2, windowMs: 100, marginMs: 0 });
  });

  it('a share of nothing waits a window; a pause holds a scope, and a longer pause wins', () => {
    const c = clock();
    const limiter = createRateLimiter({
      tenantWindows: tenantWindows(50),
      windowsFor: (tenantId) => ({
        tenant: tenantId === 'starved' ? [{ limit: 0, windowMs: 1_000 }] : tenantWindows(50),
        conversation: CONVERSATION_WINDOWS,
      }),
      now: c.now,
    });
    expect(limiter.tryAcquire('a', 'starved')).toBe(1_000);
    expect(limiter.waitTime('never-seen', 'starved')).toBe(1_000);
    limiter.pause({ tenantId: 't' }, c.now() + 3_000);
    limiter.pause({ tenantId: 't' }, c.now() + 1_000);
    expect(limiter.tryAcquire('b', 't')).toBe(3_000);
    limiter.pause({ conversationId: 'c', tenantId: 'u' }, c.now() + 2_000);
    expect(limiter.tryAcquire('c', 'v')).toBe(2_000);
    expect(limiter.tryAcquire('d', 'u')).toBe(2_000);
    limiter.pause({}, c.now() + 9_000);
    expect(limiter.tryAcquire('e', 'w')).toBe(0);
  });

  it('remembers what the longest window needs, and forgets idle scopes only when their pause is over', () => {
    const c = clock();
    const limiter = createRateLimiter({
      tenantWindows: [{ limit: 100, windowMs: 1_000 }],
      conversationWindows: [{ limit: 3, windowMs: 10_000, marginMs: 0 }],
      now: c.now,
      idleMs: 20_000,
    });
    for (let i = 0; i < 3; i += 1) expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.size).toBe(2);
    c.advance(10_000);
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('a', 't')).toBe(10_000);
    limiter.pause({ conversationId: 'paused' }, c.now() + 120_000);
    expect(limiter.size).toBe(3);
    // Idle past idleMs, and a sweep (once a minute): gone, except the paused one.
    c.advance(61_000);
    expect(limiter.tryAcquire('b', 't2')).toBe(0);
    expect(limiter.size).toBe(3);
    expect(limiter.tryAcquire('paused', 't2')).toBe(59_000);
    // A minute later the pause is over and everything is idle: only the new scopes remain.
    c.advance(60_000);
    expect(limiter.tryAcquire('c', 't3')).toBe(0);
    expect(limiter.size).toBe(2);
  });

  it('keeps at most maxScopes, dropping the least recently used first', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: [{ limit: 1_000, windowMs: 1_000 }], now: c.now, maxScopes: 4 });
    limiter.tryAcquire('a1', 't');
    limiter.tryAcquire('a2', 't');
    limiter.tryAcquire('a3', 't');
    expect(limiter.size).toBe(4);
    limiter.tryAcquire('a1', 't');
    limiter.tryAcquire('a4', 't');
    expect(limiter.size).toBe(5);
    // One too many: the next send first forgets a2, the least recently used, then adds a5.
    limiter.tryAcquire('a5', 't');
    expect(limiter.size).toBe(5);
    expect(limiter.recentSends('a2', 1_000)).toBe(0);
    expect(limiter.recentSends('a3', 1_000)).toBe(1);
    expect(limiter.recentSends('a1', 1_000)).toBe(2);
  });

  it("defaults to Teams' conversation windows and forgets after the longest window", () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: [{ limit: 1_000, windowMs: 1_000 }], now: c.now });
    for (let i = 0; i < 7; i += 1) expect(limiter.tryAcquire('a', 't')).toBe(0);
    expect(limiter.tryAcquire('a', 't')).toBe(1_000 + CONVERSATION_WINDOW_SAFETY_MS);
    c.advance(3_600_000 + 60_000);
    limiter.tryAcquire('b', 't');
    expect(limiter.recentSends('a', 10_000_000)).toBe(0);
    expect(limiter.size).toBe(2);
  });
});

describe('queue message sizes', () => {
  it('counts UTF-8 bytes, and five more for each character the queue sends XML-escaped', () => {
    expect(queueMessageBytes('abc')).toBe(3);
    expect(queueMessageBytes('é')).toBe(2);
    expect(queueMessageBytes('😀')).toBe(4);
    for (const ch of ['<', '>', '&', '"', "'"]) expect(queueMessageBytes(`a${ch}b`), ch).toBe(8);
    expect(queueMessageBytes('<>&"\'')).toBe(30);
    expect(queueMessageBytes('')).toBe(0);
  });

  it("has the queue's limits", () => {
    expect(MAX_QUEUE_MESSAGE_BYTES).toBe(65_536);
    expect(MAX_ENVELOPED_JOB_BYTES).toBe(64_512);
    expect(MAX_VISIBILITY_SECONDS).toBe(604_800);
  });
});

describe("a tenant's share", () => {
  it('hands the remainder to the first instances by id only when that is safe', () => {
    // 50 among 3: 16 each, and 2 extra for the first two (50 >= 3 * 4).
    expect(['b', 'a', 'c'].map((m) => tenantShare(50, ['c', 'a', 'b'], m))).toEqual([17, 17, 16]);
    // 10 among 3: 3 each; 10 < 3 * 4, so no extras.
    expect(['a', 'b', 'c'].map((m) => tenantShare(10, ['a', 'b', 'c'], m))).toEqual([3, 3, 3]);
    // 12 among 3 is exactly safe (12 >= 3 * 4) and divides evenly.
    expect(['a', 'b', 'c'].map((m) => tenantShare(12, ['a', 'b', 'c'], m))).toEqual([4, 4, 4]);
    // 13 among 3: 12 < 13, extras for the first one.
    expect(['a', 'b', 'c'].map((m) => tenantShare(13, ['a', 'b', 'c'], m))).toEqual([5, 4, 4]);
    // More instances than sends: one each for the first R.
    expect(['a', 'b', 'c', 'd'].map((m) => tenantShare(2, ['d', 'c', 'b', 'a'], m))).toEqual([1, 1, 0, 0]);
    // Alone, or not in the view: the view still counts it.
    expect(tenantShare(50, [], 'a')).toBe(50);
    expect(tenantShare(50, ['b', 'c'], 'a')).toBe(25);
    expect(tenantShare(3, ['b', 'c'], 'a')).toBe(1);
    expect(tenantShare(5, ['a', 'b'], 'a')).toBe(2);
  });

  it('divides each conversation window, never below one', () => {
    expect(conversationWindowsFor(0)).toEqual(conversationWindowsFor(1));
    expect(conversationWindowsFor(2).map((w) => [w.limit, w.windowMs])).toEqual([
      [3, 1_000],
      [4, 2_000],
      [30, 30_000],
      [900, 3_600_000],
    ]);
    expect(conversationWindowsFor(100).map((w) => w.limit)).toEqual([1, 1, 1, 18]);
  });
});
