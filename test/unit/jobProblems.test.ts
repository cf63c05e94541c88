/**
 * What the sender tells a flow about a bad job: every problem, each naming its field, word for
 * word (docs/delivery.md: "a reason that lists every problem and names each field"). One case per
 * rule of src/core/job.ts, and the queue message forms decodeQueueMessage takes or refuses.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeQueueMessage,
  MAX_BROADCAST_USERS,
  MAX_SCHEDULE_MS,
  parseJob,
  peekJobId,
  toEnvelope,
} from '../../src/core/job';
import { JobValidationError } from '../../src/errors';

function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}
const problems = (body: unknown): unknown => outcome(() => parseJob(body, 'queue-message-id'));
const to = { conversationId: 'a:1' };

const INVALID_JOBS: readonly (readonly [string, unknown])[] = [
  ['not an object', 'x'],
  ['an array', [{ to, text: 'x' }]],
  ['null', null],
  ['nothing at all', {}],
  ['to is not an object', { to: 'a:1', text: 'x' }],
  ['to has no target', { to: {}, text: 'x' }],
  ['to has two targets', { to: { conversationId: 'a:1', channelId: '19:c' }, text: 'x' }],
  ['a key of another target form', { to: { conversationId: 'a:1', tenantId: 't' }, text: 'x' }],
  ['a target id that is null', { to: { conversationId: null }, text: 'x' }],
  ['a user id that is null', { to: { aadObjectId: null, tenantId: 't' }, text: 'x' }],
  ['conversationId not a string', { to: { conversationId: 5 }, text: 'x' }],
  ['conversationId an array', { to: { conversationId: ['a:1'] }, text: 'x' }],
  ['conversationId blank', { to: { conversationId: '  ' }, text: 'x' }],
  ['conversationId too long', { to: { conversationId: 'c'.repeat(401) }, text: 'x' }],
  ['conversationId ".."', { to: { conversationId: '..' }, text: 'x' }],
  ['conversationId "."', { to: { conversationId: '.' }, text: 'x' }],
  ['aadObjectId too long, tenantId blank', { to: { aadObjectId: 'u'.repeat(129), tenantId: ' ' }, text: 'x' }],
  ['aadObjectIds empty', { to: { aadObjectIds: [] }, text: 'x' }],
  ['batch: an unknown form', { to: { batch: 'everyone' }, text: 'x' }],
  ['batch: null', { to: { batch: null, tenantId: 't' }, text: 'x' }],
  ['batch users: nothing but the form', { to: { batch: 'users' }, text: 'x' }],
  [
    'batch users: fewer than 5 different users',
    {
      to: {
        batch: 'users',
        users: ['u1', 'U1', 'u2', 'u2', '6F2C1A4E-1B7D-4C38-9D5E-0000000000A1', '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1'],
        tenantId: 't',
      },
      text: 'x',
    },
  ],
  [
    'batch users: bad entries, a field of another form',
    { to: { batch: 'users', users: ['u1', '', 7, 'u'.repeat(257)], tenantId: ' ', teamId: '19:t' }, text: 'x' },
  ],
  ['batch tenant: no tenant', { to: { batch: 'tenant', tenantId: null }, text: 'x' }],
  ['batch team: a blank team', { to: { batch: 'team', teamId: ' ' }, text: 'x' }],
  [
    'batch channels: a thread, "..", too few',
    { to: { batch: 'channels', channelIds: ['19:c;messageid=1', '..', '19:d'] }, text: 'x' },
  ],
  [
    'batch: mentions and mention entities',
    {
      to: { batch: 'tenant', tenantId: 't' },
      text: '<at>Ana</at>',
      mentions: [{ id: '29:a', name: 'Ana' }],
      activity: { entities: [{ type: 'mention', text: '<at>A</at>', mentioned: { id: '29:a', name: 'A' } }] },
    },
  ],
  ['aadObjectIds not an array', { to: { aadObjectIds: 'u1' }, text: 'x' }],
  [
    'aadObjectIds with bad entries',
    { to: { aadObjectIds: ['u1', '', 7, 'u'.repeat(129), ' '], tenantId: 5 }, text: 'x' },
  ],
  [
    'aadObjectIds too many',
    {
      to: {
        aadObjectIds: Array.from({ length: MAX_BROADCAST_USERS + 2 }, (_, i) =>
          i === MAX_BROADCAST_USERS + 1 ? 5 : `u${i}`,
        ),
      },
      text: 'x',
    },
  ],
  [
    'allInstalled false, bad type and tenant',
    { to: { allInstalled: false, conversationType: 'team', tenantId: '' }, text: 'x' },
  ],
  ['channelId with ;messageid= and a bad thread', { to: { channelId: '19:c;messageid=1', threadId: '..' }, text: 'x' }],
  ['threadId too long', { to: { channelId: '19:c', threadId: '1'.repeat(65) }, text: 'x' }],
  ['no content', { to }],
  ['blank text only', { to, text: ' ' }],
  ['text not a string, bad format', { to, text: 5, textFormat: 'html' }],
  ['textFormat not a string', { to, text: 'x', textFormat: 5 }],
  ['a card that is not an object', { to, adaptiveCard: 'card' }],
  ['a card of another type', { to, adaptiveCard: { type: 'HeroCard' } }],
  ['summary too long', { to, text: 'x', summary: 's'.repeat(1001) }],
  ['mentions not an array', { to, text: 'x', mentions: { id: '29:a', name: 'A' } }],
  [
    'mentions with bad entries',
    {
      to,
      text: 'x',
      mentions: ['29:a', { id: '29:b' }, { name: 'C' }, { id: 5, name: 'D'.repeat(201) }, { id: '29:e', name: 'E' }],
    },
  ],
  [
    'too many mentions',
    {
      to,
      text: 'x',
      mentions: Array.from({ length: 52 }, (_, i) => (i === 51 ? 'bad' : { id: `29:${i}`, name: `N${i}` })),
    },
  ],
  ['mentions without text', { to, adaptiveCard: { type: 'AdaptiveCard' }, mentions: [{ id: '29:a', name: 'A' }] }],
  ['activity not an object', { to, text: 'x', activity: 'x' }],
  [
    'activity with forbidden and bad fields',
    {
      to,
      activity: {
        from: { id: '28:x' },
        type: 'event',
        text: 5,
        textFormat: 'html',
        attachments: [1],
        suggestedActions: [],
        summary: 7,
        channelData: { tenant: { id: 't' }, notification: { alert: 'yes' } },
        entities: [{ type: 'clientInfo' }],
      },
    },
  ],
  [
    'activity channelData not an object',
    { to, text: 'x', activity: { channelData: 'x', entities: 'x', attachments: {} } },
  ],
  [
    'activity notification with another key',
    { to, text: 'x', activity: { channelData: { notification: { alert: true, sound: true } } } },
  ],
  [
    'activity mention entity variants',
    {
      to,
      text: 'x',
      activity: {
        entities: [
          null,
          { type: 'mention', text: 'a', mentioned: { id: 'i', name: 'n', role: 'user' } },
          { type: 'mention', text: 'a', mentioned: { id: 'i' } },
          { type: 'mention', mentioned: { id: 'i', name: 'n' } },
          { type: 'mention', text: 'a', mentioned: 'i', extra: 1 },
        ],
      },
    },
  ],
  ['activity content that is not content', { to, activity: { summary: 'only a summary' } }],
  ['an unknown field', { to, text: 'x', colour: 'red' }],
  ['an id that is not a string, a bad date', { id: 5, to, text: 'x', notBefore: 'Tuesday' }],
  ['a date without a zone', { to, text: 'x', notBefore: '2026-12-01T08:00:00' }],
  ['a date that is no day', { to, text: 'x', notBefore: '2026-13-01T08:00:00Z' }],
  ['a date that is not a string', { to, text: 'x', notBefore: 1_800_000_000_000 }],
  ['an id too long', { id: 'i'.repeat(129), to, text: 'x' }],
  ['an id too long once escaped', { id: '\ud800'.repeat(70), to, text: 'x' }],
  ['update with a target', { update: 'j1', to, text: 'x' }],
  ['update without content', { update: 'j1' }],
  ['update naming itself', { id: 'j1', update: 'j1', text: 'x' }],
  ['update that is not a string', { update: 5, text: 'x' }],
  ['update null', { update: null, text: 'x' }],
  ['update and delete', { update: 'j1', delete: 'j1', text: 'x' }],
  ['delete with content and a target', { delete: 'j1', text: 'x', to }],
  ['delete naming itself', { id: 'j1', delete: 'j1' }],
  ['delete blank', { delete: ' ' }],
  ['a raw activity without content', { type: 'message', conversation: { id: 'a:1' } }],
  ['a raw activity with a bad id and fields', { type: 'message', conversation: { id: '..' }, text: 5, value: 1 }],
  ['a raw activity without conversation.id', { type: 'message', conversation: {}, text: 'x' }],
  ['a raw activity with only bad content', { type: 'message', conversation: { id: 'a:1' }, attachments: 'x' }],
  ['a raw activity whose text is not a string', { type: 'message', conversation: { id: 'a:1' }, text: [] }],
  [
    'a raw activity with our envelope keys',
    { type: 'message', conversation: { id: 'a:1' }, text: 'x', teamsCourier: { jobId: 'v' }, job: {} },
  ],
];

describe('parseJob: the problems it names', () => {
  it('names every problem of each invalid job, and its field', () => {
    const named = Object.fromEntries(INVALID_JOBS.map(([label, body]) => [label, problems(body)]));
    expect(named).toMatchInlineSnapshot(`
      {
        "a card of another type": [
          "adaptiveCard.type: must be "AdaptiveCard"",
        ],
        "a card that is not an object": [
          "adaptiveCard: must be an Adaptive Card JSON object",
        ],
        "a date that is no day": [
          "notBefore: must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z",
        ],
        "a date that is not a string": [
          "notBefore: must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z",
        ],
        "a date without a zone": [
          "notBefore: must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z",
        ],
        "a key of another target form": [
          "to.tenantId: is not allowed with to.conversationId",
        ],
        "a raw activity whose text is not a string": [
          "text: must be a string",
        ],
        "a raw activity with a bad id and fields": [
          "conversation.id: must not be "." or ".." (it would change the Bot Connector URL)",
          "text: must be a string",
          "value: is not an activity field a job may set (allowed: type, text, textFormat, attachments, attachmentLayout, summary, importance, speak, inputHint, locale, suggestedActions, channelData, entities)",
        ],
        "a raw activity with only bad content": [
          "attachments: must be an array of attachment objects",
        ],
        "a raw activity with our envelope keys": [
          "teamsCourier: is not an activity field a job may set (allowed: type, text, textFormat, attachments, attachmentLayout, summary, importance, speak, inputHint, locale, suggestedActions, channelData, entities)",
          "job: is not an activity field a job may set (allowed: type, text, textFormat, attachments, attachmentLayout, summary, importance, speak, inputHint, locale, suggestedActions, channelData, entities)",
        ],
        "a raw activity without content": [
          "text: a raw activity needs text or attachments",
        ],
        "a raw activity without conversation.id": [
          "conversation.id: is required",
        ],
        "a target id that is null": [
          "to.conversationId: must not be null",
        ],
        "a user id that is null": [
          "to.aadObjectId: must not be null",
        ],
        "aadObjectId too long, tenantId blank": [
          "to.aadObjectId: must be at most 128 characters (got 129)",
          "to.tenantId: must not be empty",
        ],
        "aadObjectIds empty": [
          "to.aadObjectIds: must be a non-empty array of Entra object ids",
        ],
        "aadObjectIds not an array": [
          "to.aadObjectIds: must be a non-empty array of Entra object ids",
        ],
        "aadObjectIds too many": [
          "to.aadObjectIds: must have at most 1000 entries (got 1002); split the list or use allInstalled",
        ],
        "aadObjectIds with bad entries": [
          "to.tenantId: must be a string (got number)",
          "to.aadObjectIds[1]: must be a non-empty string of at most 128 characters",
          "to.aadObjectIds[2]: must be a non-empty string of at most 128 characters",
          "to.aadObjectIds[3]: must be a non-empty string of at most 128 characters",
          "to.aadObjectIds[4]: must be a non-empty string of at most 128 characters",
        ],
        "activity channelData not an object": [
          "activity.channelData: must be an object",
          "activity.entities: must be an array of mention entities",
          "activity.attachments: must be an array of attachment objects",
        ],
        "activity content that is not content": [
          "text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)",
        ],
        "activity mention entity variants": [
          "activity.entities[0]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
          "activity.entities[1]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
          "activity.entities[2]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
          "activity.entities[3]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
          "activity.entities[4]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
        ],
        "activity not an object": [
          "activity: must be an object of Bot Framework activity fields",
        ],
        "activity notification with another key": [
          "activity.channelData.notification: must be {"alert": true|false, "alertInFeed": true|false}",
        ],
        "activity with forbidden and bad fields": [
          "activity.from: is not an activity field a job may set (allowed: type, text, textFormat, attachments, attachmentLayout, summary, importance, speak, inputHint, locale, suggestedActions, channelData, entities)",
          "activity.type: must be "message"",
          "activity.text: must be a string",
          "activity.textFormat: must be one of markdown, plain, xml",
          "activity.attachments: must be an array of attachment objects",
          "activity.suggestedActions: must be an object",
          "activity.summary: must be a string",
          "activity.channelData.tenant: is not allowed (a job may set channelData.notification only)",
          "activity.channelData.notification: must be {"alert": true|false, "alertInFeed": true|false}",
          "activity.entities[0]: must be {"type": "mention", "mentioned": {"id", "name"}, "text"}",
          "text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)",
        ],
        "allInstalled false, bad type and tenant": [
          "to.allInstalled: must be true",
          "to.tenantId: must not be empty",
          "to.conversationType: must be personal, groupChat or channel",
        ],
        "an array": [
          "(job): must be a JSON object",
        ],
        "an id that is not a string, a bad date": [
          "id: must be a string (got number)",
          "notBefore: must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z",
        ],
        "an id too long": [
          "id: must be at most 128 characters (got 129)",
        ],
        "an id too long once escaped": [
          "id: is too long once escaped for Table Storage (at most 400 characters, where "/\\#?%" and control or unpaired surrogate characters count as 3 to 6)",
        ],
        "an unknown field": [
          "colour: is not a job field (see schemas/job.schema.json)",
        ],
        "batch channels: a thread, "..", too few": [
          "to.channelIds[0]: must be a channel id without ";messageid=" (a batch posts to channels)",
          "to.channelIds[1]: must not be "." or ".."",
        ],
        "batch team: a blank team": [
          "to.teamId: must not be empty",
        ],
        "batch tenant: no tenant": [
          "to.tenantId: is required",
        ],
        "batch users: bad entries, a field of another form": [
          "to.teamId: is not allowed with to.batch "users"",
          "to.tenantId: must not be empty",
          "to.users[1]: must be a non-empty string of at most 256 characters",
          "to.users[2]: must be a non-empty string of at most 256 characters",
          "to.users[3]: must be a non-empty string of at most 256 characters",
        ],
        "batch users: fewer than 5 different users": [
          "to.users: must name at least 5 different users, Teams' fewest for a batch request (got 4); for fewer, use to.aadObjectIds (one message each)",
        ],
        "batch users: nothing but the form": [
          "to.tenantId: is required",
          "to.users: is required: an array of Entra object ids or 29: ids",
        ],
        "batch: an unknown form": [
          "to.batch: must be one of "users", "tenant", "team", "channels": {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?}, {batch: "channels", channelIds, tenantId?}",
        ],
        "batch: mentions and mention entities": [
          "mentions: is not possible in a batch job (one activity reaches every recipient); send per recipient instead",
          "activity.entities: is not possible in a batch job (one activity reaches every recipient); send per recipient instead",
        ],
        "batch: null": [
          "to.batch: must be one of "users", "tenant", "team", "channels": {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?}, {batch: "channels", channelIds, tenantId?}",
        ],
        "blank text only": [
          "text: must not be empty",
        ],
        "channelId with ;messageid= and a bad thread": [
          "to.threadId: must not be "." or ".." (it would change the Bot Connector URL)",
          "to.channelId: must be the channel id without ";messageid=" (put the thread root id in to.threadId)",
        ],
        "conversationId "."": [
          "to.conversationId: must not be "." or ".." (it would change the Bot Connector URL)",
        ],
        "conversationId ".."": [
          "to.conversationId: must not be "." or ".." (it would change the Bot Connector URL)",
        ],
        "conversationId an array": [
          "to.conversationId: must be a string (got array)",
        ],
        "conversationId blank": [
          "to.conversationId: must not be empty",
        ],
        "conversationId not a string": [
          "to.conversationId: must be a string (got number)",
        ],
        "conversationId too long": [
          "to.conversationId: must be at most 400 characters (got 401)",
        ],
        "delete blank": [
          "delete: must not be empty",
        ],
        "delete naming itself": [
          "delete: must name an earlier job, not this one",
        ],
        "delete with content and a target": [
          "text: is not allowed in a delete job (it only names the earlier job)",
          "to: is not allowed in a delete job (it only names the earlier job)",
        ],
        "mentions not an array": [
          "mentions: must be an array of {id, name}",
        ],
        "mentions with bad entries": [
          "mentions[0]: must be an object {id, name}",
          "mentions[1].name: is required",
          "mentions[2].id: is required",
          "mentions[3].id: must be a string (got number)",
          "mentions[3].name: must be at most 200 characters (got 201)",
        ],
        "mentions without text": [
          "mentions: need text to place the <at> tags in",
        ],
        "no content": [
          "text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)",
        ],
        "not an object": [
          "(job): must be a JSON object",
        ],
        "nothing at all": [
          "to: is required: exactly one of {conversationId}, {aadObjectId, tenantId?}, {channelId, threadId?}, {aadObjectIds, tenantId?}, {allInstalled, tenantId?, conversationType?}, {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?} or {batch: "channels", channelIds, tenantId?}",
          "text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)",
        ],
        "null": [
          "(job): must be a JSON object",
        ],
        "summary too long": [
          "summary: must be at most 1000 characters (got 1001)",
        ],
        "text not a string, bad format": [
          "text: must be a string (got number)",
          "textFormat: must be one of markdown, plain, xml",
        ],
        "textFormat not a string": [
          "textFormat: must be one of markdown, plain, xml",
        ],
        "threadId too long": [
          "to.threadId: must be at most 64 characters (got 65)",
        ],
        "to has no target": [
          "to: has no target: exactly one of {conversationId}, {aadObjectId, tenantId?}, {channelId, threadId?}, {aadObjectIds, tenantId?}, {allInstalled, tenantId?, conversationType?}, {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?} or {batch: "channels", channelIds, tenantId?}",
        ],
        "to has two targets": [
          "to: has conflicting targets (conversationId, channelId): exactly one of {conversationId}, {aadObjectId, tenantId?}, {channelId, threadId?}, {aadObjectIds, tenantId?}, {allInstalled, tenantId?, conversationType?}, {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?} or {batch: "channels", channelIds, tenantId?}",
        ],
        "to is not an object": [
          "to: must be an object: exactly one of {conversationId}, {aadObjectId, tenantId?}, {channelId, threadId?}, {aadObjectIds, tenantId?}, {allInstalled, tenantId?, conversationType?}, {batch: "users", users, tenantId}, {batch: "tenant", tenantId}, {batch: "team", teamId, tenantId?} or {batch: "channels", channelIds, tenantId?}",
        ],
        "too many mentions": [
          "mentions: must have at most 50 entries (got 52)",
        ],
        "update and delete": [
          "delete: cannot be combined with update",
        ],
        "update naming itself": [
          "update: must name an earlier job, not this one",
        ],
        "update null": [
          "update: is required",
        ],
        "update that is not a string": [
          "update: must be a string (got number)",
        ],
        "update with a target": [
          "to: is not allowed in an update job (the earlier job says where)",
        ],
        "update without content": [
          "text: a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)",
        ],
      }
    `);
  });

  it('takes what is valid, with defaults, and nothing it was not given', () => {
    expect(parseJob({ to, text: 'x' }, 'm-1')).toStrictEqual({
      kind: 'message',
      id: 'm-1',
      to: { kind: 'conversation', conversationId: 'a:1' },
      text: 'x',
      textFormat: 'markdown',
      mentions: [],
    });
    expect(
      parseJob(
        { id: null, to: { aadObjectId: 'u', tenantId: null }, text: 'x', summary: null, textFormat: 'xml' },
        'm-2',
      ),
    ).toStrictEqual({
      kind: 'message',
      id: 'm-2',
      to: { kind: 'user', aadObjectId: 'u' },
      text: 'x',
      textFormat: 'xml',
      mentions: [],
    });
    expect(
      parseJob({ to: { aadObjectId: 'u', tenantId: 't' }, adaptiveCard: { type: 'AdaptiveCard' } }, 'm'),
    ).toMatchObject({ to: { kind: 'user', aadObjectId: 'u', tenantId: 't' } });
    expect(parseJob({ to: { channelId: '19:c' }, text: 'x' }, 'm')).toStrictEqual({
      kind: 'message',
      id: 'm',
      to: { kind: 'channel', channelId: '19:c' },
      text: 'x',
      textFormat: 'markdown',
      mentions: [],
    });
    expect(parseJob({ to: { channelId: '19:c', threadId: '42' }, text: 'x' }, 'm')).toMatchObject({
      to: { kind: 'channel', channelId: '19:c', threadId: '42' },
    });
    expect(parseJob({ to: { aadObjectIds: ['u1', 'u2', 'u1'] }, text: 'x' }, 'm')).toMatchObject({
      kind: 'broadcast',
      to: { kind: 'users', aadObjectIds: ['u1', 'u2'] },
    });
    expect(parseJob({ to: { aadObjectIds: ['u1'], tenantId: 't' }, text: 'x' }, 'm')).toMatchObject({
      to: { kind: 'users', tenantId: 't' },
    });
    expect(parseJob({ to: { allInstalled: true }, text: 'x' }, 'm')).toStrictEqual({
      kind: 'broadcast',
      id: 'm',
      to: { kind: 'allInstalled' },
      text: 'x',
      textFormat: 'markdown',
      mentions: [],
    });
    expect(
      parseJob({ to: { allInstalled: true, tenantId: 't', conversationType: 'groupChat' }, text: 'x' }, 'm'),
    ).toMatchObject({ to: { kind: 'allInstalled', tenantId: 't', conversationType: 'groupChat' } });
    const card = { type: 'AdaptiveCard', body: [] };
    expect(
      parseJob(
        {
          to,
          adaptiveCard: card,
          summary: 's',
          mentions: [{ id: '29:a', name: 'A', extra: 1 }],
          text: 'hi',
          activity: { importance: 'high' },
        },
        'm',
      ),
    ).toStrictEqual({
      kind: 'message',
      id: 'm',
      to: { kind: 'conversation', conversationId: 'a:1' },
      text: 'hi',
      textFormat: 'markdown',
      adaptiveCard: card,
      summary: 's',
      mentions: [{ id: '29:a', name: 'A' }],
      activity: { importance: 'high' },
    });
    expect(parseJob({ to, activity: { attachments: [] } }, 'm')).toMatchObject({ activity: { attachments: [] } });
    expect(parseJob({ to, activity: { text: '' } }, 'm')).toMatchObject({ activity: { text: '' } });
    expect(parseJob({ to, text: 'x', mentions: [] }, 'm')).toMatchObject({ mentions: [] });
    expect(parseJob({ to, adaptiveCard: card, mentions: [] }, 'm')).toMatchObject({ mentions: [] });
    expect(parseJob({ to, text: 'x', notBefore: '2026-12-01T08:00:00.250+02:00' }, 'm')).toMatchObject({
      notBefore: new Date('2026-12-01T06:00:00.250Z'),
    });
    expect(parseJob({ to, text: 'x', notBefore: '2026-12-01T08:00Z' }, 'm')).toMatchObject({
      notBefore: new Date('2026-12-01T08:00:00Z'),
    });
    expect(parseJob({ to, text: 'x' }, 'm')).not.toHaveProperty('notBefore');
    expect(parseJob({ id: 'j2', update: 'j1', text: 'y' }, 'm')).toStrictEqual({
      kind: 'update',
      id: 'j2',
      target: 'j1',
      text: 'y',
      textFormat: 'markdown',
      mentions: [],
    });
    expect(parseJob({ delete: 'j1', notBefore: '2026-12-01T08:00:00Z' }, 'm')).toStrictEqual({
      kind: 'delete',
      id: 'm',
      target: 'j1',
      notBefore: new Date('2026-12-01T08:00:00Z'),
    });
    expect(
      parseJob(
        {
          id: 'r',
          type: 'message',
          conversation: { id: 'a:1', name: 'x' },
          from: 5,
          recipient: 'y',
          serviceUrl: 7,
          channelId: null,
          replyToId: [],
          text: 'hi',
          locale: 'de-DE',
        },
        'm',
      ),
    ).toStrictEqual({
      kind: 'message',
      id: 'r',
      to: { kind: 'conversation', conversationId: 'a:1' },
      textFormat: 'markdown',
      mentions: [],
      activity: { text: 'hi', locale: 'de-DE' },
    });
    expect(
      parseJob({ type: 'message', conversation: { id: 'a:1' }, attachments: [{ contentType: 'x' }] }, 'm'),
    ).toMatchObject({ activity: { attachments: [{ contentType: 'x' }] } });
    // Not a raw activity: a job whose type happens to be "message" but has a target.
    expect(problems({ type: 'message', conversation: { id: 'a:1' }, to, text: 'x' })).toEqual([
      'type: is not a job field (see schemas/job.schema.json)',
      'conversation: is not a job field (see schemas/job.schema.json)',
    ]);
    expect(problems({ type: 'message', conversation: 'a:1', text: 'x' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^to: is required/)]),
    );
  });

  it('allows the longest of everything', () => {
    const long = (n: number) => 'x'.repeat(n);
    expect(() =>
      parseJob(
        {
          id: long(128),
          to: { conversationId: long(400) },
          text: 'x',
          summary: long(1000),
          mentions: Array.from({ length: 50 }, () => ({ id: long(200), name: long(200) })),
        },
        'm',
      ),
    ).not.toThrow();
    expect(() => parseJob({ to: { aadObjectId: long(128), tenantId: long(128) }, text: 'x' }, 'm')).not.toThrow();
    expect(() => parseJob({ to: { channelId: long(400), threadId: long(64) }, text: 'x' }, 'm')).not.toThrow();
    expect(() =>
      parseJob(
        { to: { aadObjectIds: Array.from({ length: MAX_BROADCAST_USERS }, (_, i) => `${long(120)}${i}`) }, text: 'x' },
        'm',
      ),
    ).not.toThrow();
    expect(() => parseJob({ id: '%'.repeat(128), to, text: 'x' }, 'm')).not.toThrow();
    expect(() => parseJob({ update: '\ud800'.repeat(66), text: 'x' }, 'm')).not.toThrow();
    expect(() => parseJob({ update: '\ud800'.repeat(67), text: 'x' }, 'm')).toThrow(JobValidationError);
    expect(MAX_SCHEDULE_MS).toBe(7 * 24 * 60 * 60 * 1000);
  });
});

const job = { id: 'j1', to, text: 'hi' };
const b64 = (text: string) => Buffer.from(text).toString('base64');
const NOT_JOBS: readonly (readonly [string, unknown])[] = [
  ['an empty string', ''],
  ['only blanks', ' \n '],
  ['text that is neither', 'hello world'],
  ['broken JSON', '{"to":'],
  ['a JSON array', '[1,2]'],
  ['base64 of text', b64('hello')],
  ['a number', 42],
  ['null', null],
  ['an array', [job]],
  ['a string that is JSON null', 'null'],
  ['our envelope with a bad job id', { teamsCourier: { jobId: '' }, job }],
  ['our envelope with a job id that is not a string', { teamsCourier: { jobId: 5 }, job }],
  ['our envelope with a job id too long for a key', { teamsCourier: { jobId: '\ud800'.repeat(81) }, job }],
  ['our envelope with a caller that is no name', { teamsCourier: { jobId: 'j1', caller: 'billing team' }, job }],
];

describe('decodeQueueMessage: what a queue message may be', () => {
  it('refuses what is not a job, saying what it is', () => {
    const refused = Object.fromEntries(
      NOT_JOBS.map(([label, input]) => [label, outcome(() => decodeQueueMessage(input))]),
    );
    expect(refused).toMatchInlineSnapshot(`
      {
        "a JSON array": [
          "(message): must be a JSON object (got an array)",
        ],
        "a number": [
          "(message): must be a JSON object (got number)",
        ],
        "a string that is JSON null": [
          "(message): is base64 but does not decode to JSON",
        ],
        "an array": [
          "(message): must be a JSON object (got an array)",
        ],
        "an empty string": [
          "(message): is empty",
        ],
        "base64 of text": [
          "(message): is base64 but does not decode to JSON",
        ],
        "broken JSON": [
          "(message): is not valid JSON",
        ],
        "null": [
          "(message): must be a JSON object (got null)",
        ],
        "only blanks": [
          "(message): is empty",
        ],
        "our envelope with a bad job id": [
          "teamsCourier.jobId: must be a job id that fits a table key",
        ],
        "our envelope with a caller that is no name": [
          "teamsCourier.caller: is not a caller name",
        ],
        "our envelope with a job id that is not a string": [
          "teamsCourier.jobId: must be a job id that fits a table key",
        ],
        "our envelope with a job id too long for a key": [
          "teamsCourier.jobId: must be a job id that fits a table key",
        ],
        "text that is neither": [
          "(message): is neither JSON nor base64-encoded JSON",
        ],
      }
    `);
  });

  it('takes a job as the trigger hands it over: parsed, as text with blanks, as bytes, or as base64', () => {
    expect(decodeQueueMessage(job)).toStrictEqual({ body: job });
    expect(decodeQueueMessage(`  ${JSON.stringify(job)}\n`)).toStrictEqual({ body: job });
    expect(decodeQueueMessage(Buffer.from(JSON.stringify(job)))).toStrictEqual({ body: job });
    expect(decodeQueueMessage(new Uint8Array(Buffer.from(JSON.stringify(job))))).toStrictEqual({ body: job });
    expect(decodeQueueMessage(`${b64(JSON.stringify(job))}\n`)).toStrictEqual({ body: job });
    expect(decodeQueueMessage(b64(` ${JSON.stringify(job)} `))).toStrictEqual({ body: job });
    // Base64 with line breaks, as some producers wrap it.
    const wrapped = b64(JSON.stringify({ ...job, text: 'x'.repeat(200) })).replace(/(.{76})/g, '$1\n');
    expect(decodeQueueMessage(wrapped)).toMatchObject({ body: { id: 'j1' } });
  });

  it('reads only our exact envelope, and only the fields it knows', () => {
    expect(
      decodeQueueMessage(
        JSON.parse(toEnvelope(job, { jobId: 'j1', deferrals: 2, parentId: 'p', cursor: 'c', caller: 'billing-1' })),
      ),
    ).toStrictEqual({
      body: job,
      envelope: { jobId: 'j1', deferrals: 2, parentId: 'p', cursor: 'c', caller: 'billing-1' },
    });
    for (const deferrals of [-1, 1.5, '3', null])
      expect(
        decodeQueueMessage({ teamsCourier: { jobId: 'j1', deferrals }, job }).envelope,
        String(deferrals),
      ).toStrictEqual({ jobId: 'j1', deferrals: 0 });
    expect(
      decodeQueueMessage({ teamsCourier: { jobId: 'j1', deferrals: 0, parentId: '', cursor: 7, caller: '' }, job })
        .envelope,
    ).toStrictEqual({ jobId: 'j1', deferrals: 0 });
    // Anything but exactly {teamsCourier: {...}, job: {...}} is a caller's job, refused by parseJob later.
    for (const body of [
      { teamsCourier: 'x', job },
      { teamsCourier: { jobId: 'j1' }, job: 'x' },
      { teamsCourier: { jobId: 'j1' }, job, extra: 1 },
      { teamsCourier: { jobId: 'j1' } },
      { job, other: {} },
    ]) {
      expect(decodeQueueMessage(body)).toStrictEqual({ body });
    }
  });
});

describe('peekJobId', () => {
  it('names a failed job by its own id when it has a usable one', () => {
    expect(peekJobId({ id: 'j1' })).toBe('j1');
    expect(peekJobId({ id: 'x'.repeat(128) })).toBe('x'.repeat(128));
    for (const body of [
      { id: 'x'.repeat(129) },
      { id: ' ' },
      { id: '' },
      { id: 5 },
      { id: null },
      {},
      'j1',
      null,
      ['j1'],
      { id: '\ud800'.repeat(70) },
    ])
      expect(peekJobId(body), JSON.stringify(body)).toBeUndefined();
  });
});
