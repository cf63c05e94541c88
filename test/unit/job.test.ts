import { describe, expect, it } from 'vitest';
import { decodeQueueMessage, parseJob, toEnvelope, type MessageJob } from '../../src/core/job';
import { JobValidationError } from '../../src/errors';

const USER = { aadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1', tenantId: '72f988bf-0000-4000-8000-00000000c0de' };

function problems(body: unknown): string[] {
  try {
    parseJob(body, 'msg-1');
  } catch (err) {
    expect(err).toBeInstanceOf(JobValidationError);
    return (err as JobValidationError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected a JobValidationError');
}

describe('decodeQueueMessage', () => {
  const job = { id: 'j1', to: { conversationId: 'a:1' }, text: 'hi' };

  it('takes the object the trigger already parsed', () => {
    expect(decodeQueueMessage(job).body).toEqual(job);
  });

  it('takes plain JSON text', () => {
    expect(decodeQueueMessage(JSON.stringify(job)).body).toEqual(job);
  });

  it('takes base64-encoded JSON (Functions output bindings)', () => {
    expect(decodeQueueMessage(Buffer.from(JSON.stringify(job)).toString('base64')).body).toEqual(job);
  });

  it('unwraps its own envelope, keeping the resolved id', () => {
    const decoded = decodeQueueMessage(JSON.parse(toEnvelope(job, { jobId: 'j1', deferrals: 2 })));
    expect(decoded).toEqual({ body: job, envelope: { jobId: 'j1', deferrals: 2 } });
  });

  it('takes an envelope only in its exact form: a job with extra keys is a job, not an envelope', () => {
    const forged = {
      type: 'message',
      conversation: { id: 'a:evil' },
      text: 'x',
      teamsCourier: { jobId: 'victim' },
      job: job,
    };
    expect(decodeQueueMessage(forged)).toEqual({ body: forged });
    expect(problems(forged)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^teamsCourier: /), expect.stringMatching(/^job: /)]),
    );
    expect(problems({ ...job, teamsCourier: { jobId: 'victim' } })).toEqual([
      'teamsCourier: is not a job field (see schemas/job.schema.json)',
    ]);
  });

  it('carries the caller through the envelope, and refuses an envelope id that cannot be a key', () => {
    expect(
      decodeQueueMessage(JSON.parse(toEnvelope(job, { jobId: 'billing:j1', deferrals: 0, caller: 'billing' })))
        .envelope,
    ).toEqual({ jobId: 'billing:j1', deferrals: 0, caller: 'billing' });
    expect(() => decodeQueueMessage({ teamsCourier: { jobId: '\uD800'.repeat(100) }, job })).toThrow(
      'teamsCourier.jobId',
    );
    expect(() => decodeQueueMessage({ teamsCourier: { jobId: 'x', caller: 'not a name!' }, job })).toThrow(
      'teamsCourier.caller',
    );
  });

  it.each([
    ['', 'is empty'],
    ['not json at all!', 'neither JSON nor base64'],
    ['{"broken":', 'is not valid JSON'],
    [Buffer.from('plain words').toString('base64'), 'does not decode to JSON'],
    [42, 'must be a JSON object (got number)'],
    [[1, 2], 'must be a JSON object (got an array)'],
    [null, 'got null'],
  ])('rejects %j with a reason', (input, message) => {
    expect(() => decodeQueueMessage(input)).toThrow(message);
  });
});

describe('parseJob: what a job may put into the activity', () => {
  it('raw form: only allowlisted activity fields, and routing fields are resolved by teams-courier', () => {
    const job = parseJob(
      {
        type: 'message',
        conversation: { id: 'a:1' },
        from: { id: '28:x' },
        serviceUrl: 'https://evil/',
        text: 'hi',
        channelData: { notification: { alert: true } },
      },
      'm',
    ) as MessageJob;
    expect(job.activity).toEqual({ text: 'hi', channelData: { notification: { alert: true } } });
    expect(
      problems({ type: 'message', conversation: { id: 'a:1' }, text: 'hi', channelData: { onBehalfOf: [] } }),
    ).toEqual(['channelData.onBehalfOf: is not allowed (a job may set channelData.notification only)']);
    expect(problems({ type: 'message', conversation: { id: 'a:1' }, text: 'hi', value: { x: 1 } })[0]).toMatch(
      /^value: is not an activity field a job may set/,
    );
    expect(problems({ type: 'message', conversation: { id: '..' }, text: 'hi' })).toEqual([
      'conversation.id: must not be "." or ".." (it would change the Bot Connector URL)',
    ]);
  });

  it('mention entities pass in their exact shape; other entities are refused', () => {
    const mention = { type: 'mention', mentioned: { id: '29:a', name: 'A' }, text: '<at>A</at>' };
    expect(
      (
        parseJob(
          { to: { conversationId: 'a:1' }, text: '<at>A</at>', activity: { entities: [mention] } },
          'm',
        ) as MessageJob
      ).activity,
    ).toEqual({ entities: [mention] });
    expect(
      problems({
        to: { conversationId: 'a:1' },
        text: 'x',
        activity: { entities: [{ ...mention, mentioned: { id: '29:a', name: 'A', role: 'bot' } }] },
      }),
    ).toEqual(['activity.entities[0]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}']);
  });

  it('ids must fit a table key once escaped (unpaired surrogates take six characters)', () => {
    expect(problems({ id: '\uD800'.repeat(100), to: { conversationId: 'a:1' }, text: 'x' })[0]).toMatch(
      /^id: is too long once escaped/,
    );
    expect(parseJob({ id: '/'.repeat(128), to: { conversationId: 'a:1' }, text: 'x' }, 'm').id).toBe('/'.repeat(128));
  });
});

describe('parseJob', () => {
  it('parses the documented example', () => {
    expect(
      parseJob(
        { id: 'invoice-4711-reminder', to: USER, text: 'Invoice **4711** is overdue.', textFormat: 'markdown' },
        'msg-1',
      ),
    ).toEqual({
      kind: 'message',
      id: 'invoice-4711-reminder',
      to: { kind: 'user', ...USER },
      text: 'Invoice **4711** is overdue.',
      textFormat: 'markdown',
      mentions: [],
    });
  });

  it('defaults the id to the queue message id and the format to markdown', () => {
    expect(parseJob({ to: { conversationId: 'a:1' }, text: 'x' }, 'msg-9')).toMatchObject({
      id: 'msg-9',
      textFormat: 'markdown',
    });
  });

  it('takes a user without tenant, a channel post and a thread reply', () => {
    expect((parseJob({ to: { aadObjectId: 'u1' }, text: 'x' }, 'm') as MessageJob).to).toEqual({
      kind: 'user',
      aadObjectId: 'u1',
    });
    expect((parseJob({ to: { channelId: '19:c@thread.tacv2' }, text: 'x' }, 'm') as MessageJob).to).toEqual({
      kind: 'channel',
      channelId: '19:c@thread.tacv2',
    });
    expect(
      (parseJob({ to: { channelId: '19:c@thread.tacv2', threadId: '1763660000000' }, text: 'x' }, 'm') as MessageJob)
        .to,
    ).toEqual({ kind: 'channel', channelId: '19:c@thread.tacv2', threadId: '1763660000000' });
  });

  it('takes a card, summary, mentions and raw activity fields', () => {
    const job = parseJob(
      {
        to: { conversationId: 'a:1' },
        text: 'Hi <at>Ana</at>',
        adaptiveCard: { type: 'AdaptiveCard', version: '1.5', body: [] },
        summary: 'Reminder',
        mentions: [{ id: '29:ana', name: 'Ana' }],
        activity: { importance: 'high' },
      },
      'm',
    );
    expect(job).toMatchObject({
      summary: 'Reminder',
      mentions: [{ id: '29:ana', name: 'Ana' }],
      activity: { importance: 'high' },
    });
  });

  it("accepts the original tutorial's raw activity as a message to its conversation", () => {
    const raw = {
      type: 'message',
      from: { id: '28:bot', name: 'Bot' },
      conversation: { id: 'a:1tutorial' },
      recipient: { id: '29:user' },
      text: 'Hello, Human!',
    };
    expect(parseJob(raw, 'msg-7')).toEqual({
      kind: 'message',
      id: 'msg-7',
      to: { kind: 'conversation', conversationId: 'a:1tutorial' },
      textFormat: 'markdown',
      mentions: [],
      activity: { text: 'Hello, Human!' },
    });
  });

  it('lists every problem, each naming its field', () => {
    expect(
      problems({
        id: 'x'.repeat(129),
        to: { conversationId: 'a:1', aadObjectId: 'u' },
        textFormat: 'html',
        adaptiveCard: { type: 'HeroCard' },
        mentions: [{ id: 1 }],
        extra: true,
      }),
    ).toEqual(
      expect.arrayContaining([
        'id: must be at most 128 characters (got 129)',
        expect.stringMatching(/^to: has conflicting targets \(conversationId, aadObjectId\)/),
        'textFormat: must be one of markdown, plain, xml',
        'adaptiveCard.type: must be "AdaptiveCard"',
        'mentions[0].id: must be a string (got number)',
        'mentions[0].name: is required',
        'extra: is not a job field (see schemas/job.schema.json)',
      ]),
    );
  });

  it.each([
    [{ text: 'x' }, 'to: is required'],
    [{ to: {}, text: 'x' }, 'to: has no target'],
    [{ to: 'a:1', text: 'x' }, 'to: must be an object'],
    [{ to: { conversationId: '' }, text: 'x' }, 'to.conversationId: must not be empty'],
    [{ to: { conversationId: 'a:1', tenantId: 't' }, text: 'x' }, 'to.tenantId: is not allowed with to.conversationId'],
    [
      { to: { channelId: '19:c;messageid=1' }, text: 'x' },
      'to.channelId: must be the channel id without ";messageid="',
    ],
    [{ to: { conversationId: 'a:1' } }, 'text: a job needs content'],
    [{ to: { conversationId: 'a:1' }, text: 5 }, 'text: must be a string (got number)'],
    [{ to: { conversationId: 'a:1' }, adaptiveCard: 'card' }, 'adaptiveCard: must be an Adaptive Card JSON object'],
    [
      { to: { conversationId: 'a:1' }, mentions: [{ id: '29:a', name: 'A' }], adaptiveCard: { type: 'AdaptiveCard' } },
      'mentions: need text',
    ],
  ])('rejects %j', (body, message) => {
    expect(problems(body).join('\n')).toContain(message);
  });

  it('parses update, delete, schedules and broadcasts', () => {
    expect(parseJob({ id: 'u1', update: 'j1', text: 'step 3 of 5 done' }, 'm')).toMatchObject({
      kind: 'update',
      id: 'u1',
      target: 'j1',
      text: 'step 3 of 5 done',
    });
    expect(parseJob({ id: 'd1', delete: 'j1' }, 'm')).toEqual({ kind: 'delete', id: 'd1', target: 'j1' });
    expect(
      parseJob({ to: { conversationId: 'a:1' }, text: 'x', notBefore: '2026-12-01T08:00:00Z' }, 'm'),
    ).toMatchObject({ notBefore: new Date('2026-12-01T08:00:00Z') });
    expect(parseJob({ to: { aadObjectIds: ['a', 'b', 'a'], tenantId: 't' }, text: 'x' }, 'm')).toMatchObject({
      kind: 'broadcast',
      to: { kind: 'users', aadObjectIds: ['a', 'b'], tenantId: 't' },
    });
    expect(parseJob({ to: { allInstalled: true, conversationType: 'personal' }, text: 'x' }, 'm')).toMatchObject({
      kind: 'broadcast',
      to: { kind: 'allInstalled', conversationType: 'personal' },
    });
  });

  it.each([
    [{ update: 'j1', to: { conversationId: 'a:1' }, text: 'x' }, 'to: is not allowed in an update job'],
    [{ update: 'j1' }, 'text: a job needs content'],
    [{ delete: 'j1', text: 'x' }, 'text: is not allowed in a delete job'],
    [{ id: 'same', delete: 'same' }, 'delete: must name an earlier job'],
    [{ update: 'a', delete: 'b', text: 'x' }, 'delete: cannot be combined with update'],
    [{ to: { conversationId: 'a:1' }, text: 'x', notBefore: 'tomorrow' }, 'notBefore: must be an ISO 8601 date-time'],
    [{ to: { conversationId: 'a:1' }, text: 'x', notBefore: '2026-12-01' }, 'notBefore: must be an ISO 8601 date-time'],
    [{ to: { aadObjectIds: [] }, text: 'x' }, 'to.aadObjectIds: must be a non-empty array'],
    [{ to: { aadObjectIds: ['ok', 5] }, text: 'x' }, 'to.aadObjectIds[1]: must be a non-empty string'],
    [{ to: { allInstalled: false }, text: 'x' }, 'to.allInstalled: must be true'],
    [
      { to: { allInstalled: true, conversationType: 'meeting' }, text: 'x' },
      'to.conversationType: must be personal, groupChat or channel',
    ],
  ])('rejects %j', (body, message) => {
    expect(problems(body).join('\n')).toContain(message);
  });
});
